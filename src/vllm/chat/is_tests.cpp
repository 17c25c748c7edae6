// jinja2's builtin tests: `x is defined`, `x is divisibleby 3`, `x is string`, ...
#include <unordered_map>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/operators.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

namespace {

bool t_defined(Renderer&, const Value& v, CallArgs& a) {
  Params p("defined", a, {});
  return !v.is_undefined();
}
bool t_undefined(Renderer&, const Value& v, CallArgs& a) {
  Params p("undefined", a, {});
  return v.is_undefined();
}
bool t_none(Renderer&, const Value& v, CallArgs& a) {
  Params p("none", a, {});
  return v.is_none();
}
bool t_boolean(Renderer&, const Value& v, CallArgs& a) {
  Params p("boolean", a, {});
  return v.is_bool();
}
bool t_true(Renderer&, const Value& v, CallArgs& a) {
  Params p("true", a, {});
  return v.is_bool() && v.as_bool();
}
bool t_false(Renderer&, const Value& v, CallArgs& a) {
  Params p("false", a, {});
  return v.is_bool() && !v.as_bool();
}
bool t_integer(Renderer&, const Value& v, CallArgs& a) {
  Params p("integer", a, {});
  return v.is_int();  // bool is excluded, as jinja2 does
}
bool t_float(Renderer&, const Value& v, CallArgs& a) {
  Params p("float", a, {});
  return v.is_float();
}
bool t_number(Renderer&, const Value& v, CallArgs& a) {
  Params p("number", a, {});
  return v.is_number();  // includes bool: it is a numbers.Number in Python
}
bool t_string(Renderer&, const Value& v, CallArgs& a) {
  Params p("string", a, {});
  return v.is_string();
}
bool t_mapping(Renderer&, const Value& v, CallArgs& a) {
  Params p("mapping", a, {});
  return v.is_mapping();
}
bool t_iterable(Renderer&, const Value& v, CallArgs& a) {
  Params p("iterable", a, {});
  // Undefined defines __iter__, so it counts, as do strings, lists and dicts.
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping() ||
         (v.is_object() && v.as_object().type_name() == "LoopContext");
}
bool t_sequence(Renderer&, const Value& v, CallArgs& a) {
  Params p("sequence", a, {});
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_mapping();
}
bool t_callable(Renderer&, const Value& v, CallArgs& a) {
  Params p("callable", a, {});
  return v.is_undefined() || (v.is_object() && v.as_object().callable());
}
bool t_escaped(Renderer&, const Value&, CallArgs& a) {
  Params p("escaped", a, {});
  return false;  // autoescaping is off, so nothing is Markup
}

// `value % num == expected` with Python's operators (floats included: 2.5 is neither odd nor
// even).
bool mod_equals(const Value& v, const Value& num, int64_t expected) {
  return equals(binary_op(BinaryOp::kMod, v, num), Value::integer(expected));
}

bool t_even(Renderer&, const Value& v, CallArgs& a) {
  Params p("even", a, {});
  return mod_equals(v, Value::integer(2), 0);
}
bool t_odd(Renderer&, const Value& v, CallArgs& a) {
  Params p("odd", a, {});
  return mod_equals(v, Value::integer(2), 1);
}
bool t_divisibleby(Renderer&, const Value& v, CallArgs& a) {
  Params p("divisibleby", a, {"num"}, 1);
  return mod_equals(v, p[0], 0);
}

bool t_lower(Renderer&, const Value& v, CallArgs& a) {
  Params p("lower", a, {});
  const std::string s = to_str(v);
  bool cased = false;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::next(s, i);
    if (unicode::is_cased(c) && !unicode::is_lower(c)) return false;
    cased = cased || unicode::is_cased(c);
  }
  return cased;
}
bool t_upper(Renderer&, const Value& v, CallArgs& a) {
  Params p("upper", a, {});
  const std::string s = to_str(v);
  bool cased = false;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::next(s, i);
    if (unicode::is_cased(c) && !unicode::is_upper(c)) return false;
    cased = cased || unicode::is_cased(c);
  }
  return cased;
}

template <CompareOp op>
bool t_compare(Renderer&, const Value& v, CallArgs& a) {
  Params p("compare", a, {"other"}, 1);
  return compare_op(op, v, p[0]);
}

bool t_in(Renderer&, const Value& v, CallArgs& a) {
  Params p("in", a, {"seq"}, 1);
  return contains(p[0], v);
}

bool t_sameas(Renderer&, const Value& v, CallArgs& a) {
  Params p("sameas", a, {"other"}, 1);
  const Value& o = p[0];
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::kList: return v.list_ptr() == o.list_ptr();
    case Value::Kind::kDict: return v.dict_ptr() == o.dict_ptr();
    case Value::Kind::kObject: return v.object_ptr() == o.object_ptr();
    case Value::Kind::kUndefined: return false;
    default: return equals(v, o);  // singletons, small ints and interned strings
  }
}

bool t_filter(Renderer&, const Value& v, CallArgs& a) {
  Params p("filter", a, {});
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}
bool t_test(Renderer&, const Value& v, CallArgs& a) {
  Params p("test", a, {});
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

const std::unordered_map<std::string_view, TestFn>& test_table() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"boolean", t_boolean},
      {"callable", t_callable},
      {"defined", t_defined},
      {"divisibleby", t_divisibleby},
      {"escaped", t_escaped},
      {"even", t_even},
      {"false", t_false},
      {"filter", t_filter},
      {"float", t_float},
      {"in", t_in},
      {"integer", t_integer},
      {"iterable", t_iterable},
      {"lower", t_lower},
      {"mapping", t_mapping},
      {"none", t_none},
      {"number", t_number},
      {"odd", t_odd},
      {"sameas", t_sameas},
      {"sequence", t_sequence},
      {"string", t_string},
      {"test", t_test},
      {"true", t_true},
      {"undefined", t_undefined},
      {"upper", t_upper},
      {"eq", t_compare<CompareOp::kEq>},
      {"equalto", t_compare<CompareOp::kEq>},
      {"==", t_compare<CompareOp::kEq>},
      {"ne", t_compare<CompareOp::kNe>},
      {"!=", t_compare<CompareOp::kNe>},
      {"lt", t_compare<CompareOp::kLt>},
      {"lessthan", t_compare<CompareOp::kLt>},
      {"<", t_compare<CompareOp::kLt>},
      {"le", t_compare<CompareOp::kLe>},
      {"<=", t_compare<CompareOp::kLe>},
      {"gt", t_compare<CompareOp::kGt>},
      {"greaterthan", t_compare<CompareOp::kGt>},
      {">", t_compare<CompareOp::kGt>},
      {"ge", t_compare<CompareOp::kGe>},
      {">=", t_compare<CompareOp::kGe>},
  };
  return table;
}

}  // namespace

TestFn find_test(std::string_view name) {
  const auto& table = test_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace vllm::jinja
