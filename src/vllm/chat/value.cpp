#include "vllm/chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "vllm/chat/errors.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

// ---- construction ----------------------------------------------------------------------

Value Value::undefined(std::string hint) {
  Value v;
  v.v_ = Undefined{std::move(hint)};
  return v;
}
Value Value::none() {
  Value v;
  v.v_ = NoneType{};
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.v_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.v_ = i;
  return v;
}
Value Value::floating(double d) {
  Value v;
  v.v_ = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.v_ = std::move(s);
  return v;
}
Value Value::list(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  Value v;
  v.v_ = std::move(data);
  return v;
}
Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.as_list().is_tuple = true;
  return v;
}
Value Value::dict() {
  Value v;
  v.v_ = std::make_shared<DictData>();
  return v;
}
Value Value::namespace_object() {
  Value v = dict();
  v.as_dict().type = DictData::Type::kNamespace;
  return v;
}
Value Value::object(std::shared_ptr<Object> o) {
  Value v;
  v.v_ = std::move(o);
  return v;
}

bool Value::is_tuple() const { return is_list() && as_list().is_tuple; }
bool Value::is_mapping() const { return is_dict() && as_dict().type == DictData::Type::kDict; }
bool Value::is_namespace() const {
  return is_dict() && as_dict().type == DictData::Type::kNamespace;
}

int64_t Value::as_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  return std::get<int64_t>(v_);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int() != 0;
    case Kind::kFloat:
      return as_double() != 0.0;
    case Kind::kString:
      return !as_string().empty();
    case Kind::kList:
      return !as_list().items.empty();
    case Kind::kDict:
      // A Namespace is an object, always true; a dict is true when not empty.
      return is_namespace() || !as_dict().entries.empty();
    case Kind::kObject:
      return true;
  }
  return false;
}

// ---- containers --------------------------------------------------------------------------

namespace {

bool is_container(const Value& v) { return v.is_list() || v.is_dict(); }

// Destroys a tree of containers without recursing once per level: every container that is
// about to die hands its children to a work list first, so it dies empty.
void teardown(std::vector<Value>& work) {
  while (!work.empty()) {
    Value v = std::move(work.back());
    work.pop_back();
    if (v.is_list() && v.list_ptr().use_count() == 1) {
      auto& items = v.as_list().items;
      for (auto& item : items)
        if (is_container(item)) work.push_back(std::move(item));
      items.clear();
    } else if (v.is_dict() && v.dict_ptr().use_count() == 1) {
      auto& entries = v.as_dict().entries;
      for (auto& [key, value] : entries) {
        if (is_container(key)) work.push_back(std::move(key));
        if (is_container(value)) work.push_back(std::move(value));
      }
      entries.clear();
    }
  }
}

}  // namespace

ListData::~ListData() {
  std::vector<Value> work;
  for (auto& item : items)
    if (is_container(item)) work.push_back(std::move(item));
  teardown(work);
}

DictData::~DictData() {
  std::vector<Value> work;
  for (auto& [key, value] : entries) {
    if (is_container(key)) work.push_back(std::move(key));
    if (is_container(value)) work.push_back(std::move(value));
  }
  teardown(work);
}

const Value* DictData::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.is_string() && k.as_string() == key) return &v;
  return nullptr;
}

const Value* DictData::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries)
    if (equals(k, key)) return &v;
  return nullptr;
}

void DictData::set(Value key, Value value) {
  if (const Value* existing = find(key)) {
    *const_cast<Value*>(existing) = std::move(value);
    return;
  }
  entries.emplace_back(std::move(key), std::move(value));
}

bool DictData::erase(const Value& key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (equals(it->first, key)) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

std::string Object::repr() const {
  std::string out = "<";
  out += type_name();
  out += " object>";
  return out;
}

Value Object::call(Renderer&, CallArgs&) { fail(in_quotes(type_name()) + " object is not callable"); }

Value Object::get_attr(const std::string& name) {
  return Value::undefined(in_quotes(type_name() + " object") + " has no attribute " + in_quotes(name));
}

// ---- json in -----------------------------------------------------------------------------

namespace {

template <class Json>
Value convert_json(const Json& j, int depth) {
  if (depth > kMaxValueDepth) fail("input value is nested too deeply");
  using T = typename Json::value_t;
  switch (j.type()) {
    case T::null:
    case T::discarded:
      return Value::none();
    case T::boolean:
      return Value::boolean(j.template get<bool>());
    case T::number_integer:
      return Value::integer(j.template get<int64_t>());
    case T::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::floating(static_cast<double>(u));
    }
    case T::number_float:
      return Value::floating(j.template get<double>());
    case T::string:
      return Value::string(j.template get_ref<const std::string&>());
    case T::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert_json(item, depth + 1));
      return Value::list(std::move(items));
    }
    case T::object: {
      Value d = Value::dict();
      auto& entries = d.as_dict().entries;
      entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        entries.emplace_back(Value::string(it.key()), convert_json(it.value(), depth + 1));
      return d;
    }
    case T::binary:
      fail("binary json values cannot be used in templates");
  }
  return Value::none();
}

}  // namespace

Value from_json(const nlohmann::json& j) { return convert_json(j, 0); }
Value from_json(const nlohmann::ordered_json& j) { return convert_json(j, 0); }

// ---- text forms --------------------------------------------------------------------------

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest digits that round-trip, as Python's repr, laid out by Python's rule: plain
  // notation when the decimal exponent is in [-4, 16), scientific otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits.push_back(c);
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      const size_t int_len = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    } else {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

std::string repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::next(s, i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (unicode::is_printable(c)) {
      unicode::append(out, c);
    } else {
      char buf[16];
      if (c < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

namespace {

void check_depth(int depth) {
  if (depth > kMaxValueDepth) fail("value is nested too deeply");
}

std::string repr_impl(const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kString:
      return repr_string(v.as_string());
    case Value::Kind::kList: {
      const auto& l = v.as_list();
      std::string out = l.view_name ? std::string(l.view_name) + "([" : l.is_tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += repr_impl(l.items[i], depth + 1);
      }
      if (l.is_tuple && l.items.size() == 1) out += ",";
      out += l.view_name ? "])" : l.is_tuple ? ")" : "]";
      return out;
    }
    case Value::Kind::kDict: {
      std::string out = v.is_namespace() ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [key, value] : v.as_dict().entries) {
        if (!first) out += ", ";
        first = false;
        out += repr_impl(key, depth + 1) + ": " + repr_impl(value, depth + 1);
      }
      out += v.is_namespace() ? "}>" : "}";
      return out;
    }
    case Value::Kind::kObject:
      return v.as_object().repr();
    default:
      return to_str(v);
  }
}

}  // namespace

std::string repr(const Value& v) { return repr_impl(v, 0); }

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return float_repr(v.as_double());
    case Value::Kind::kString:
      return v.as_string();
    case Value::Kind::kObject:
      return v.as_object().repr();
    default:
      return repr(v);
  }
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::kDict:
      return v.is_namespace() ? "Namespace" : "dict";
    case Value::Kind::kObject:
      return v.as_object().type_name();
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return type_name(v) + " object";
}

// ---- json out ----------------------------------------------------------------------------

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto byte = static_cast<unsigned char>(s[i]);
    if (byte < 0x80) {
      ++i;
      switch (byte) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (byte < 0x20 || (ensure_ascii && byte == 0x7F)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", byte);
            out += buf;
          } else {
            out.push_back(static_cast<char>(byte));
          }
      }
      continue;
    }
    const size_t start = i;
    const char32_t c = unicode::next(s, i);
    if (!ensure_ascii) {
      out.append(s.substr(start, i - start));
      continue;
    }
    char buf[16];
    if (c >= 0x10000) {
      const char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                    static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
    }
    out += buf;
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return float_repr(d);
}

void json_newline(std::string& out, const JsonOptions& o, int level) {
  out.push_back('\n');
  for (int i = 0; i < level; ++i) out += o.indent;
}

std::string json_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::kString:
      return key.as_string();
    case Value::Kind::kInt:
      return std::to_string(key.as_int());
    case Value::Kind::kFloat:
      return json_float(key.as_double());
    case Value::Kind::kBool:
      return key.as_bool() ? "true" : "false";
    case Value::Kind::kNone:
      return "null";
    default:
      fail("keys must be str, int, float, bool or None, not " + type_name(key));
  }
}

void json_value(std::string& out, const Value& v, const JsonOptions& o, int level) {
  check_depth(level);
  switch (v.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat:
      out += json_float(v.as_double());
      return;
    case Value::Kind::kString:
      json_string(out, v.as_string(), o.ensure_ascii);
      return;
    case Value::Kind::kList: {
      const auto& items = v.as_list().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.has_indent) json_newline(out, o, level + 1);
        json_value(out, items[i], o, level + 1);
      }
      if (o.has_indent) json_newline(out, o, level);
      out.push_back(']');
      return;
    }
    case Value::Kind::kDict: {
      if (v.is_namespace()) break;
      const auto& entries = v.as_dict().entries;
      if (entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> order;
      order.reserve(entries.size());
      for (const auto& e : entries) order.push_back(&e);
      if (o.sort_keys) {
        std::stable_sort(order.begin(), order.end(),
                         [](const auto* a, const auto* b) { return less(a->first, b->first); });
      }
      out.push_back('{');
      bool first = true;
      for (const auto* e : order) {
        if (!first) out += o.item_separator;
        first = false;
        if (o.has_indent) json_newline(out, o, level + 1);
        json_string(out, json_key(e->first), o.ensure_ascii);
        out += o.key_separator;
        json_value(out, e->second, o, level + 1);
      }
      if (o.has_indent) json_newline(out, o, level);
      out.push_back('}');
      return;
    }
    default:
      break;
  }
  fail("Object of type " + type_name(v) + " is not JSON serializable");
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& options) {
  std::string out;
  json_value(out, v, options, 0);
  return out;
}

// ---- Python semantics --------------------------------------------------------------------

void throw_undefined(const Value& v) {
  const std::string& hint = v.undefined_hint();
  fail(hint.empty() ? std::string("value is undefined") : hint);
}

bool equals(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (&x == &y) return true;
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i], depth + 1)) return false;
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.as_dict();
      const auto& y = b.as_dict();
      if (&x == &y) return true;
      if (x.type != y.type || x.type == DictData::Type::kNamespace) return false;
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [key, value] : x.entries) {
        const Value* other = y.find(key);
        if (!other || !equals(value, *other, depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::kObject:
      return &a.as_object() == &b.as_object();
    default:
      return false;
  }
}

bool less(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i], depth + 1)) return less(x[i], y[i], depth + 1);
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) +
       "'");
}

size_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return unicode::length(v.as_string());
    case Value::Kind::kList:
      return v.as_list().items.size();
    case Value::Kind::kDict:
      if (!v.is_namespace()) return v.as_dict().entries.size();
      break;
    default:
      break;
  }
  fail("object of type '" + type_name(v) + "' has no len()");
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kString: {
      std::vector<Value> out;
      const std::string& s = v.as_string();
      for (size_t i = 0; i < s.size();) {
        const size_t start = i;
        unicode::next(s, i);
        out.push_back(Value::string(s.substr(start, i - start)));
      }
      return out;
    }
    case Value::Kind::kList:
      return v.as_list().items;
    case Value::Kind::kDict: {
      if (v.is_namespace()) break;
      std::vector<Value> keys;
      for (const auto& entry : v.as_dict().entries) keys.push_back(entry.first);
      return keys;
    }
    default:
      break;
  }
  fail("'" + type_name(v) + "' object is not iterable");
}

Value shallow_copy(const Value& v) {
  if (v.is_list()) {
    Value copy = Value::list(v.as_list().items);
    copy.as_list().is_tuple = v.as_list().is_tuple;
    return copy;
  }
  if (v.is_dict()) {
    Value copy = Value::dict();
    copy.as_dict().type = v.as_dict().type;
    copy.as_dict().entries = v.as_dict().entries;
    return copy;
  }
  return v;
}

bool contains_container(const Value& haystack, const void* needle, int depth) {
  check_depth(depth);
  if (haystack.is_list()) {
    if (haystack.list_ptr().get() == needle) return true;
    for (const auto& item : haystack.as_list().items)
      if (is_container(item) && contains_container(item, needle, depth + 1)) return true;
  } else if (haystack.is_dict()) {
    if (haystack.dict_ptr().get() == needle) return true;
    for (const auto& [key, value] : haystack.as_dict().entries) {
      if (is_container(key) && contains_container(key, needle, depth + 1)) return true;
      if (is_container(value) && contains_container(value, needle, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace vllm::jinja
