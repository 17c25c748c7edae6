// jinja2's builtin filters (3.1 semantics), with transformers' tojson in place of jinja2's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/formatting.h"
#include "vllm/chat/interpreter.h"
#include "vllm/chat/operators.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

namespace {

// ---- helpers shared by several filters -----------------------------------------------------

Value lowered_if_string(const Value& v) {
  return v.is_string() ? Value::string(unicode::lower(v.as_string())) : v;
}

// jinja2's make_attrgetter: "a.b.0" walks item-then-attribute lookups; digits index lists.
class AttrGetter {
 public:
  AttrGetter(const Value& attribute, Value default_value, bool ignore_case)
      : default_(std::move(default_value)), ignore_case_(ignore_case) {
    if (attribute.is_none() || attribute.is_undefined()) return;
    if (attribute.is_integral()) {
      parts_.push_back(Value::integer(attribute.as_int()));
      return;
    }
    const std::string& text = arg_str(attribute, "attribute", "attribute");
    size_t start = 0;
    while (true) {
      const size_t dot = text.find('.', start);
      const std::string part = text.substr(start, dot == std::string::npos ? dot : dot - start);
      const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
        return c >= '0' && c <= '9';
      });
      parts_.push_back(numeric ? Value::integer(std::stoll(part)) : Value::string(part));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  }

  Value operator()(const Value& item) const {
    Value v = item;
    for (const auto& part : parts_) v = get_item(v, part);
    if (!default_.is_none() && v.is_undefined()) v = default_;
    return ignore_case_ ? lowered_if_string(v) : v;
  }

 private:
  std::vector<Value> parts_;
  Value default_ = Value::none();
  bool ignore_case_;
};

bool flag(const Params& p, size_t i) { return p.has(i) && p[i].truthy(); }

std::string str_arg_or(const Params& p, size_t i, std::string fallback) {
  return p.has(i) ? to_str(p[i]) : std::move(fallback);
}

// Sorts by key with Python's sorted(): stable, and reverse keeps equal keys in order.
std::vector<Value> sorted_by(std::vector<Value> items, const std::function<Value(const Value&)>& key,
                             bool reverse) {
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key(items[i]), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? less(b.first, a.first) : less(a.first, b.first);
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (auto& [k, i] : keyed) out.push_back(std::move(items[i]));
  return out;
}

// select/reject/selectattr/rejectattr share jinja2's prepare_select_or_reject.
Value select_or_reject(Renderer& r, const Value& seq, CallArgs& args, bool select, bool by_attr,
                       const char* name) {
  if (!seq.truthy()) return Value::list();  // jinja2: `if value:` guards the loop
  size_t offset = 0;
  std::optional<AttrGetter> getter;
  if (by_attr) {
    if (args.positional.empty()) fail(std::string(name) + ": missing parameter for attribute name");
    getter.emplace(args.positional[0], Value::none(), false);
    offset = 1;
  }
  std::string test_name;
  CallArgs test_args;
  const bool has_test = args.positional.size() > offset;
  if (has_test) {
    test_name = arg_str(args.positional[offset], name, "test");
    test_args.positional.assign(args.positional.begin() + static_cast<long>(offset) + 1,
                                args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> out;
  for (auto& item : iterate(seq)) {
    const Value subject = getter ? (*getter)(item) : item;
    bool ok;
    if (has_test) {
      CallArgs call_args = test_args;
      ok = r.apply_test(test_name, subject, call_args);
    } else {
      ok = subject.truthy();
    }
    if (ok == select) out.push_back(std::move(item));
  }
  return Value::list(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// Python's round(x, ndigits) for floats: correctly rounded, ties to even on the exact value.
double round_float(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits > 300) return x;
  if (ndigits >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-ndigits));
  const double y = x / scale;
  double r = std::nearbyint(y);  // default rounding mode: ties to even
  return r * scale;
}

// ---- the filters -----------------------------------------------------------------------------

Value f_abs(Renderer&, Value& v, CallArgs& a) {
  Params p("abs", a, {});
  require_defined(v);
  if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
  if (v.is_integral()) return unary_op(v.as_int() < 0 ? UnaryOp::kNeg : UnaryOp::kPos, v);
  fail("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(Renderer&, Value& v, CallArgs& a) {
  Params p("attr", a, {"name"}, 1);
  const std::string name = to_str(p[0]);
  // Only attributes, never dict items: jinja2 uses plain getattr here.
  if (v.is_undefined()) throw_undefined(v);
  if (v.is_namespace()) {
    if (const Value* x = v.as_dict().find(std::string_view(name))) return *x;
  } else if (v.is_object()) {
    return v.as_object().get_attr(name);
  } else if (has_method(v, name)) {
    return bound_method(v, name);
  }
  return Value::undefined("'" + object_type_repr(v) + "' has no attribute '" + name + "'");
}

Value f_batch(Renderer&, Value& v, CallArgs& a) {
  Params p("batch", a, {"linecount", "fill_with"}, 1);
  const int64_t count = arg_int(p[0], "batch", "linecount");
  if (count <= 0) fail("batch(): linecount must be positive");
  std::vector<Value> out;
  std::vector<Value> row;
  for (auto& item : iterate(v)) {
    if (static_cast<int64_t>(row.size()) == count) {
      out.push_back(Value::list(std::move(row)));
      row.clear();
    }
    row.push_back(std::move(item));
  }
  if (!row.empty()) {
    if (p.has(1) && !p[1].is_none())
      while (static_cast<int64_t>(row.size()) < count) row.push_back(p[1]);
    out.push_back(Value::list(std::move(row)));
  }
  return Value::list(std::move(out));
}

// Calls a str method by name, as the filters that are thin wrappers over one do.
Value call_str_method(Renderer& r, const std::string& s, const std::string& name, CallArgs args) {
  return get_attr(Value::string(s), name).as_object().call(r, args);
}

Value f_capitalize(Renderer& r, Value& v, CallArgs& a) {
  Params p("capitalize", a, {});
  return call_str_method(r, to_str(v), "capitalize", {});
}

Value f_center(Renderer& r, Value& v, CallArgs& a) {
  Params p("center", a, {"width"});
  CallArgs args;
  args.positional.push_back(p.get(0, Value::integer(80)));
  return call_str_method(r, to_str(v), "center", std::move(args));
}

Value f_default(Renderer&, Value& v, CallArgs& a) {
  Params p("default", a, {"default_value", "boolean"});
  if (v.is_undefined() || (flag(p, 1) && !v.truthy())) return p.get(0, Value::string(""));
  return v;
}

Value f_dictsort(Renderer&, Value& v, CallArgs& a) {
  Params p("dictsort", a, {"case_sensitive", "by", "reverse"});
  if (!v.is_mapping()) {
    require_defined(v);
    fail("dictsort(): value must be a dict, not " + type_name(v));
  }
  const std::string by = str_arg_or(p, 1, "key");
  if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
  const size_t pos = by == "key" ? 0 : 1;
  const bool case_sensitive = flag(p, 0);
  std::vector<Value> items;
  for (const auto& [key, value] : v.as_dict().entries) items.push_back(Value::tuple({key, value}));
  return Value::list(sorted_by(
      std::move(items),
      [&](const Value& item) {
        const Value& k = item.as_list().items[pos];
        return case_sensitive ? k : lowered_if_string(k);
      },
      flag(p, 2)));
}

Value f_escape(Renderer&, Value& v, CallArgs& a) {
  Params p("escape", a, {});
  return Value::string(html_escape(to_str(v)));
}

Value f_first(Renderer&, Value& v, CallArgs& a) {
  Params p("first", a, {});
  if (v.is_list()) {
    if (!v.as_list().items.empty()) return v.as_list().items.front();
  } else {
    std::vector<Value> items = iterate(v);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

Value f_last(Renderer&, Value& v, CallArgs& a) {
  Params p("last", a, {});
  if (v.is_list()) {
    if (!v.as_list().items.empty()) return v.as_list().items.back();
  } else {
    std::vector<Value> items = iterate(v);
    if (!items.empty()) return items.back();
  }
  return Value::undefined("No last item, sequence was empty.");
}

Value f_float(Renderer&, Value& v, CallArgs& a) {
  Params p("float", a, {"default"});
  require_defined(v);
  if (v.is_number()) return Value::floating(v.as_double());
  double out;
  if (v.is_string() && parse_python_float(v.as_string(), out)) return Value::floating(out);
  return p.get(0, Value::floating(0.0));
}

Value f_int(Renderer&, Value& v, CallArgs& a) {
  Params p("int", a, {"default", "base"});
  require_defined(v);
  const Value fallback = p.get(0, Value::integer(0));
  if (v.is_integral()) return Value::integer(v.as_int());
  auto from_double = [&](double d) {
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::integer(static_cast<int64_t>(d));
  };
  if (v.is_float()) return from_double(v.as_double());
  if (v.is_string()) {
    int64_t n;
    const int base = p.has(1) ? static_cast<int>(arg_int(p[1], "int", "base")) : 10;
    if (parse_python_int(v.as_string(), base, n)) return Value::integer(n);
    // jinja2's quirk: "42.23"|int gives 42 through float().
    double d;
    if (parse_python_float(v.as_string(), d)) return from_double(d);
  }
  return fallback;
}

Value f_format(Renderer&, Value& v, CallArgs& a) {
  if (!a.positional.empty() && !a.keyword.empty()) {
    fail("format(): can't handle positional and keyword arguments at the same time");
  }
  if (!a.keyword.empty()) {
    Value mapping = Value::dict();
    for (auto& [key, value] : a.keyword) mapping.as_dict().set(Value::string(key), value);
    return Value::string(percent_format(to_str(v), mapping));
  }
  return Value::string(percent_format(to_str(v), Value::tuple(a.positional)));
}

Value f_groupby(Renderer&, Value& v, CallArgs& a) {
  Params p("groupby", a, {"attribute", "default", "case_sensitive"}, 1);
  const bool case_sensitive = flag(p, 2);
  const AttrGetter key(p[0], p.get(1, Value::none()), !case_sensitive);
  const AttrGetter real_key(p[0], p.get(1, Value::none()), false);
  std::vector<Value> items = sorted_by(iterate(v), key, false);
  std::vector<Value> out;
  for (size_t i = 0; i < items.size();) {
    const Value k = key(items[i]);
    std::vector<Value> group;
    size_t j = i;
    while (j < items.size() && equals(key(items[j]), k)) group.push_back(items[j++]);
    Value grouper = case_sensitive ? k : real_key(group.front());
    Value t = Value::tuple({std::move(grouper), Value::list(std::move(group))});
    t.as_list().field_names = {"grouper", "list"};
    out.push_back(std::move(t));
    i = j;
  }
  return Value::list(std::move(out));
}

Value f_indent(Renderer& r, Value& v, CallArgs& a) {
  Params p("indent", a, {"width", "first", "blank"});
  std::string indentation;
  if (p.has(0) && p[0].is_string()) {
    indentation = p[0].as_string();
  } else {
    const int64_t width = p.has(0) ? arg_int(p[0], "indent", "width") : 4;
    indentation.assign(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  require_defined(v);
  if (!v.is_string()) fail("unsupported operand type(s) for +=: " + in_quotes(type_name(v)) + " and 'str'");
  std::string s = v.as_string() + "\n";  // jinja2 appends a newline so splitlines sees the last line
  const std::vector<Value> lines = call_str_method(r, s, "splitlines", {}).as_list().items;
  std::string out;
  if (flag(p, 2)) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) out += "\n" + indentation;
      out += lines[i].as_string();
    }
  } else {
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string& line = lines[i].as_string();
      if (i) out += "\n" + (line.empty() ? std::string() : indentation);
      out += line;
    }
  }
  if (flag(p, 1)) out = indentation + out;
  return Value::string(out);
}

Value f_items(Renderer&, Value& v, CallArgs& a) {
  Params p("items", a, {});
  if (v.is_undefined()) return Value::list();
  if (!v.is_mapping()) fail("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [key, value] : v.as_dict().entries) out.push_back(Value::tuple({key, value}));
  return Value::list(std::move(out));
}

Value f_join(Renderer&, Value& v, CallArgs& a) {
  Params p("join", a, {"d", "attribute"});
  const std::string sep = str_arg_or(p, 0, "");
  std::vector<Value> items = iterate(v);
  if (p.has(1) && !p[1].is_none()) {
    const AttrGetter getter(p[1], Value::none(), false);
    for (auto& item : items) item = getter(item);
  }
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += to_str(items[i]);
    if (out.size() > kMaxStringBytes) fail("string is too large");
  }
  return Value::string(out);
}

Value f_length(Renderer&, Value& v, CallArgs& a) {
  Params p("length", a, {});
  if (v.is_object()) {
    Value n = v.as_object().get_attr("length");  // loop contexts have a length
    if (n.is_integral()) return n;
  }
  return Value::integer(static_cast<int64_t>(length(v)));
}

Value f_list(Renderer&, Value& v, CallArgs& a) {
  Params p("list", a, {});
  return Value::list(iterate(v));
}

Value f_lower(Renderer&, Value& v, CallArgs& a) {
  Params p("lower", a, {});
  return Value::string(unicode::lower(to_str(v)));
}

Value f_upper(Renderer&, Value& v, CallArgs& a) {
  Params p("upper", a, {});
  return Value::string(unicode::upper(to_str(v)));
}

Value f_map(Renderer& r, Value& v, CallArgs& a) {
  if (!v.truthy()) return Value::list();  // jinja2: `if value:` guards the loop
  std::vector<Value> items = iterate(v);
  std::vector<Value> out;
  out.reserve(items.size());
  if (a.positional.empty()) {
    // map(attribute='x', default=...)
    Value attribute;
    Value default_value = Value::none();
    bool has_attribute = false;
    for (auto& [key, value] : a.keyword) {
      if (key == "attribute") {
        attribute = value;
        has_attribute = true;
      } else if (key == "default") {
        default_value = value;
      } else {
        fail("map(): unexpected keyword argument '" + key + "'");
      }
    }
    if (!has_attribute) fail("map requires a filter argument");
    const AttrGetter getter(attribute, default_value, false);
    for (const auto& item : items) out.push_back(getter(item));
    return Value::list(std::move(out));
  }
  const std::string name = arg_str(a.positional[0], "map", "filter");
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (auto& item : items) {
    CallArgs call_args = rest;
    out.push_back(r.apply_filter(name, std::move(item), call_args));
  }
  return Value::list(std::move(out));
}

Value min_max(Value& v, CallArgs& a, bool want_max, const char* name) {
  Params p(name, a, {"case_sensitive", "attribute"});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const AttrGetter key(p.get(1, Value::none()), Value::none(), !flag(p, 0));
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (want_max ? less(best_key, k) : less(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}
Value f_max(Renderer&, Value& v, CallArgs& a) { return min_max(v, a, true, "max"); }
Value f_min(Renderer&, Value& v, CallArgs& a) { return min_max(v, a, false, "min"); }

Value f_pprint(Renderer&, Value& v, CallArgs& a) {
  Params p("pprint", a, {});
  return Value::string(repr(v));
}

Value f_select(Renderer& r, Value& v, CallArgs& a) {
  return select_or_reject(r, v, a, true, false, "select");
}
Value f_reject(Renderer& r, Value& v, CallArgs& a) {
  return select_or_reject(r, v, a, false, false, "reject");
}
Value f_selectattr(Renderer& r, Value& v, CallArgs& a) {
  return select_or_reject(r, v, a, true, true, "selectattr");
}
Value f_rejectattr(Renderer& r, Value& v, CallArgs& a) {
  return select_or_reject(r, v, a, false, true, "rejectattr");
}

Value f_replace(Renderer& r, Value& v, CallArgs& a) {
  Params p("replace", a, {"old", "new", "count"}, 2);
  CallArgs args;
  args.positional = {Value::string(to_str(p[0])), Value::string(to_str(p[1]))};
  if (p.has(2) && !p[2].is_none()) args.positional.push_back(p[2]);
  return call_str_method(r, to_str(v), "replace", std::move(args));
}

Value f_reverse(Renderer&, Value& v, CallArgs& a) {
  Params p("reverse", a, {});
  if (v.is_string()) {
    std::u32string u = unicode::decode(v.as_string());
    std::reverse(u.begin(), u.end());
    return Value::string(unicode::encode(u));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_round(Renderer&, Value& v, CallArgs& a) {
  Params p("round", a, {"precision", "method"});
  const int64_t precision = p.has(0) ? arg_int(p[0], "round", "precision") : 0;
  const std::string method = str_arg_or(p, 1, "common");
  if (method != "common" && method != "ceil" && method != "floor") {
    fail("method must be common, ceil or floor");
  }
  require_defined(v);
  if (!v.is_number()) fail("type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) {
      if (precision >= 0) return Value::integer(v.as_int());
      return Value::integer(static_cast<int64_t>(round_float(v.as_double(), precision)));
    }
    return Value::floating(round_float(v.as_double(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * scale;
  return Value::floating((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_safe(Renderer&, Value& v, CallArgs& a) {
  Params p("safe", a, {});
  return v.is_string() ? v : Value::string(to_str(v));
}

Value f_slice(Renderer&, Value& v, CallArgs& a) {
  Params p("slice", a, {"slices", "fill_with"}, 1);
  const int64_t slices = arg_int(p[0], "slice", "slices");
  if (slices <= 0) fail("slice(): slices must be positive");
  const std::vector<Value> seq = iterate(v);
  const int64_t n = static_cast<int64_t>(seq.size());
  const int64_t per = n / slices;
  const int64_t with_extra = n % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t k = 0; k < slices; ++k) {
    const int64_t start = offset + k * per;
    if (k < with_extra) ++offset;
    const int64_t end = offset + (k + 1) * per;
    std::vector<Value> part(seq.begin() + start, seq.begin() + end);
    if (p.has(1) && !p[1].is_none() && k >= with_extra) part.push_back(p[1]);
    out.push_back(Value::list(std::move(part)));
  }
  return Value::list(std::move(out));
}

Value f_sort(Renderer&, Value& v, CallArgs& a) {
  Params p("sort", a, {"reverse", "case_sensitive", "attribute"});
  const bool ignore_case = !flag(p, 1);
  std::vector<AttrGetter> keys;
  if (p.has(2) && p[2].is_string()) {
    // "a,b" sorts by several attributes.
    const std::string& spec = p[2].as_string();
    size_t start = 0;
    while (true) {
      const size_t comma = spec.find(',', start);
      keys.emplace_back(Value::string(spec.substr(start, comma == std::string::npos ? comma : comma - start)),
                        Value::none(), ignore_case);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    keys.emplace_back(p.get(2, Value::none()), Value::none(), ignore_case);
  }
  auto key = [&](const Value& item) {
    if (keys.size() == 1) return keys[0](item);
    std::vector<Value> parts;
    for (const auto& k : keys) parts.push_back(k(item));
    return Value::list(std::move(parts));
  };
  return Value::list(sorted_by(iterate(v), key, flag(p, 0)));
}

Value f_string(Renderer&, Value& v, CallArgs& a) {
  Params p("string", a, {});
  return v.is_string() ? v : Value::string(to_str(v));
}

Value f_striptags(Renderer& r, Value& v, CallArgs& a) {
  Params p("striptags", a, {});
  const std::string s = to_str(v);
  std::string text;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t end = s.find("-->", i + 4);
      if (end != std::string::npos) {
        i = end + 3;
        continue;
      }
    }
    if (s[i] == '<') {
      const size_t end = s.find('>', i + 1);
      if (end != std::string::npos) {
        i = end + 1;
        continue;
      }
    }
    text.push_back(s[i++]);
  }
  // Collapse whitespace, then unescape the entities markupsafe knows best.
  std::string collapsed;
  const Value words = call_str_method(r, text, "split", {});
  for (const auto& word : words.as_list().items)
    collapsed += (collapsed.empty() ? "" : " ") + word.as_string();
  static const std::pair<const char*, const char*> kEntities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#34;", "\""}, {"&#39;", "'"},
      {"&amp;", "&"}};
  for (const auto& [from, to] : kEntities) {
    std::string next;
    for (size_t i = 0; i < collapsed.size();) {
      if (collapsed.compare(i, std::string_view(from).size(), from) == 0) {
        next += to;
        i += std::string_view(from).size();
      } else {
        next.push_back(collapsed[i++]);
      }
    }
    collapsed = std::move(next);
  }
  return Value::string(collapsed);
}

Value f_sum(Renderer&, Value& v, CallArgs& a) {
  Params p("sum", a, {"attribute", "start"});
  Value total = p.get(1, Value::integer(0));
  const AttrGetter getter(p.get(0, Value::none()), Value::none(), false);
  for (const auto& item : iterate(v)) total = binary_op(BinaryOp::kAdd, total, getter(item));
  return total;
}

Value f_title(Renderer&, Value& v, CallArgs& a) {
  Params p("title", a, {});
  // jinja2's own title: words start after runs of whitespace, "-", "(", "{", "[" or "<".
  const std::string s = to_str(v);
  std::string out;
  bool at_word_start = true;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::next(s, i);
    const bool separator =
        unicode::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      unicode::append(out, c);
      at_word_start = true;
    } else {
      unicode::append(out, at_word_start ? unicode::to_upper(c) : unicode::to_lower(c));
      at_word_start = false;
    }
  }
  return Value::string(out);
}

Value f_tojson(Renderer&, Value& v, CallArgs& a) {
  // transformers replaces jinja2's tojson with json.dumps(x, ensure_ascii=False, indent=None,
  // separators=None, sort_keys=False): no HTML escaping, and key order kept.
  Params p("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions options;
  options.ensure_ascii = flag(p, 0);
  options.sort_keys = flag(p, 3);
  if (p.has(1) && !p[1].is_none()) {
    options.has_indent = true;
    if (p[1].is_string()) {
      options.indent = p[1].as_string();
    } else {
      const int64_t n = arg_int(p[1], "tojson", "indent");
      options.indent.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    }
    options.item_separator = ",";
  }
  if (p.has(2) && !p[2].is_none()) {
    std::vector<Value> seps = iterate(p[2]);
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string()) {
      fail("tojson(): separators must be a pair of strings");
    }
    options.item_separator = seps[0].as_string();
    options.key_separator = seps[1].as_string();
  }
  return Value::string(to_json(v, options));
}

Value f_trim(Renderer&, Value& v, CallArgs& a) {
  Params p("trim", a, {"chars"});
  return Value::string(py_strip(to_str(v), p.get(0, Value::none()), true, true));
}

Value f_truncate(Renderer&, Value& v, CallArgs& a) {
  Params p("truncate", a, {"length", "killwords", "end", "leeway"});
  if (!v.is_string()) {
    // jinja2 measures len(value) before touching it as text: lists pass through whole.
    const size_t n = length(v);
    const int64_t limit = p.has(0) ? arg_int(p[0], "truncate", "length") : 255;
    const int64_t lee = p.has(3) && !p[3].is_none() ? arg_int(p[3], "truncate", "leeway") : 5;
    if (static_cast<int64_t>(n) <= limit + lee) return v;
  }
  const std::string s = to_str(v);
  const int64_t length_limit = p.has(0) ? arg_int(p[0], "truncate", "length") : 255;
  const std::string end = str_arg_or(p, 2, "...");
  const int64_t leeway = p.has(3) && !p[3].is_none() ? arg_int(p[3], "truncate", "leeway") : 5;
  const int64_t end_len = static_cast<int64_t>(unicode::length(end));
  if (length_limit < end_len) fail("expected length >= " + std::to_string(end_len));
  if (leeway < 0) fail("expected leeway >= 0");
  if (static_cast<int64_t>(unicode::length(s)) <= length_limit + leeway) return Value::string(s);
  std::string head = s.substr(0, unicode::byte_offset(s, static_cast<size_t>(length_limit - end_len)));
  if (flag(p, 1)) return Value::string(head + end);
  const size_t space = head.rfind(' ');
  if (space != std::string::npos) head.resize(space);
  return Value::string(head + end);
}

Value f_unique(Renderer&, Value& v, CallArgs& a) {
  Params p("unique", a, {"case_sensitive", "attribute"});
  const AttrGetter key(p.get(1, Value::none()), Value::none(), !flag(p, 0));
  std::unordered_set<std::string> seen_strings;
  std::vector<Value> seen_other;
  std::vector<Value> out;
  for (auto& item : iterate(v)) {
    const Value k = key(item);
    bool fresh;
    if (k.is_string()) {
      fresh = seen_strings.insert(k.as_string()).second;
    } else {
      fresh = std::none_of(seen_other.begin(), seen_other.end(),
                           [&](const Value& s) { return equals(s, k); });
      if (fresh) seen_other.push_back(k);
    }
    if (fresh) out.push_back(std::move(item));
  }
  return Value::list(std::move(out));
}

std::string url_quote(const std::string& s, bool for_query) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' || (!for_query && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else if (for_query && c == ' ') {
      out.push_back('+');
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Value f_urlencode(Renderer&, Value& v, CallArgs& a) {
  Params p("urlencode", a, {});
  if (v.is_string()) return Value::string(url_quote(v.as_string(), false));
  std::vector<Value> pairs;
  if (v.is_mapping()) {
    for (const auto& [key, value] : v.as_dict().entries) pairs.push_back(Value::tuple({key, value}));
  } else {
    pairs = iterate(v);
  }
  std::string out;
  for (const auto& pair : pairs) {
    std::vector<Value> kv = iterate(pair);
    if (kv.size() != 2) fail("urlencode(): expected key/value pairs");
    if (!out.empty()) out += "&";
    out += url_quote(to_str(kv[0]), true) + "=" + url_quote(to_str(kv[1]), true);
  }
  return Value::string(out);
}

Value f_wordcount(Renderer&, Value& v, CallArgs& a) {
  Params p("wordcount", a, {});
  const std::string s = to_str(v);
  int64_t words = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    const bool w = unicode::is_word(unicode::next(s, i));
    if (w && !in_word) ++words;
    in_word = w;
  }
  return Value::integer(words);
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"batch", f_batch},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"forceescape", f_escape},
      {"format", f_format},
      {"groupby", f_groupby},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"pprint", f_pprint},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"slice", f_slice},
      {"sort", f_sort},
      {"string", f_string},
      {"striptags", f_striptags},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"truncate", f_truncate},
      {"unique", f_unique},
      {"upper", f_upper},
      {"urlencode", f_urlencode},
      {"wordcount", f_wordcount},
  };
  return table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto& table = filter_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace vllm::jinja
