#include "vllm/structured/json_schema_validate.h"

#include <cstdint>
#include <cmath>

#include "vllm/structured/gbnf_writer.h"

namespace vllm::structured {

namespace {

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::vector<uint32_t> to_code_points(const std::string& s) {
  std::vector<uint32_t> out;
  decode_utf8(s, out);
  return out;
}

double num(const ojson& v, const std::string& key, const std::string& ptr) {
  if (!v.is_number()) throw_invalid(cat("'", key, "' must be a number"), ptr);
  return v.get<double>();
}

}  // namespace

bool SchemaValidator::valid_all(const ojson& value, const std::vector<SchemaRef>& schemas, size_t depth) {
  for (const auto& s : schemas)
    if (!valid(value, s, depth)) return false;
  return true;
}

bool SchemaValidator::valid(const ojson& v, const SchemaRef& s, size_t depth) {
  if (depth > 4 * kMaxSchemaDepth) throw_invalid("schema nesting too deep (or a $ref cycle) while checking a value", s.ptr);
  const ojson& schema = *s.node;
  if (schema.is_boolean()) return schema.get<bool>();
  if (!schema.is_object()) throw_invalid("a schema must be an object or a boolean", s.ptr);
  auto ref = schema.find("$ref");
  if (ref != schema.end()) {
    if (!valid(v, doc_.resolve(*ref, s.ptr), depth + 1)) return false;
    if (doc_.legacy_ref()) return true;
  }
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    if (it.key() == "$ref") continue;
    if (!keyword_ok(v, schema, it.key(), it.value(), s.ptr, depth)) return false;
  }
  return true;
}

bool SchemaValidator::keyword_ok(const ojson& v, const ojson& schema, const std::string& k,
                                 const ojson& x, const std::string& ptr, size_t depth) {
  const uint8_t t = value_type(v);
  const std::string kptr = pointer_child(ptr, k);
  auto sub = [&](const ojson& node, const std::string& p) { return SchemaRef{&node, p}; };
  if (k == "type") {
    uint8_t allowed = parse_type_keyword(x, ptr);
    auto n = schema.find("nullable");
    if (n != schema.end() && n->is_boolean() && n->get<bool>()) allowed |= kTypeNull;
    return (allowed & t) != 0;
  }
  if (k == "enum") {
    if (!x.is_array()) throw_invalid("'enum' must be an array", ptr);
    for (const auto& e : x)
      if (e == v) return true;
    return false;
  }
  if (k == "const") return x == v;
  if (k == "allOf" || k == "anyOf" || k == "oneOf") {
    if (!x.is_array() || x.empty()) throw_invalid(cat("'", k, "' must be a non-empty array"), ptr);
    size_t n = 0;
    for (size_t i = 0; i < x.size(); ++i) n += valid(v, sub(x[i], pointer_child(kptr, i)), depth + 1);
    if (k == "allOf") return n == x.size();
    if (k == "anyOf") return n > 0;
    return n == 1;
  }
  if (k == "not") return !valid(v, sub(x, kptr), depth + 1);
  if (k == "if") {
    bool cond = valid(v, sub(x, kptr), depth + 1);
    auto branch = schema.find(cond ? "then" : "else");
    if (branch == schema.end()) return true;
    return valid(v, sub(*branch, pointer_child(ptr, cond ? "then" : "else")), depth + 1);
  }
  if (keyword_class(k) == KeywordClass::kIgnored) return true;
  // Keyword values of the wrong JSON type are schema errors, whatever the instance.
  if ((k == "properties" || k == "patternProperties" || k == "dependentRequired" ||
       k == "dependentSchemas" || k == "dependencies") && !x.is_object())
    throw_invalid(cat("'", k, "' must be an object"), ptr);
  if ((k == "prefixItems" || k == "required") && !x.is_array())
    throw_invalid(cat("'", k, "' must be an array"), ptr);
  if (t == kTypeString) {
    const std::string& s = v.get_ref<const std::string&>();
    if (k == "minLength") return code_points(s) >= num(x, k, ptr);
    if (k == "maxLength") return code_points(s) <= num(x, k, ptr);
    if (k == "pattern") {
      if (!x.is_string()) throw_invalid("'pattern' must be a string", ptr);
      return regex_full_match(doc_.pattern(x.get<std::string>(), "pattern", ptr), to_code_points(s));
    }
    if (k == "format") {
      if (!x.is_string()) throw_invalid("'format' must be a string", ptr);
      return regex_full_match(doc_.format(x.get<std::string>(), ptr), to_code_points(s));
    }
  }
  if (t & kTypeNumber) {
    double d = v.get<double>();
    if (k == "minimum" || k == "maximum") {
      double b = num(x, k, ptr);
      auto ex = schema.find(k == "minimum" ? "exclusiveMinimum" : "exclusiveMaximum");
      bool exclusive = ex != schema.end() && ex->is_boolean() && ex->get<bool>();
      if (k == "minimum") return exclusive ? d > b : d >= b;
      return exclusive ? d < b : d <= b;
    }
    if (k == "exclusiveMinimum" && x.is_number()) return d > x.get<double>();
    if (k == "exclusiveMaximum" && x.is_number()) return d < x.get<double>();
    if (k == "multipleOf") {
      double m = num(x, k, ptr);
      if (!(m > 0)) throw_invalid("'multipleOf' must be positive", ptr);
      double q = d / m;
      return std::isfinite(q) && std::fabs(q - std::round(q)) < 1e-9;
    }
  }
  if (t == kTypeObject) {
    if (k == "required") {
      if (!x.is_array()) throw_invalid("'required' must be an array", ptr);
      for (const auto& r : x)
        if (!r.is_string() || !v.contains(r.get<std::string>())) return false;
      return true;
    }
    if (k == "minProperties") return v.size() >= num(x, k, ptr);
    if (k == "maxProperties") return v.size() <= num(x, k, ptr);
    if (k == "properties") {
      for (auto it = x.begin(); it != x.end(); ++it) {
        auto f = v.find(it.key());
        if (f != v.end() && !valid(*f, sub(it.value(), pointer_child(kptr, it.key())), depth + 1)) return false;
      }
      return true;
    }
    if (k == "patternProperties" || k == "additionalProperties" || k == "propertyNames") {
      auto props = schema.find("properties");
      auto pats = schema.find("patternProperties");
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::vector<uint32_t> key = to_code_points(it.key());
        if (k == "propertyNames") {
          if (!valid(ojson(it.key()), sub(x, kptr), depth + 1)) return false;
          continue;
        }
        bool matched = props != schema.end() && props->is_object() && props->contains(it.key());
        if (pats != schema.end() && pats->is_object()) {
          for (auto p = pats->begin(); p != pats->end(); ++p) {
            if (!regex_full_match(doc_.pattern(p.key(), "patternProperties", ptr), key)) continue;
            matched = true;
            if (k == "patternProperties" &&
                !valid(it.value(), sub(p.value(), pointer_child(pointer_child(ptr, "patternProperties"), p.key())), depth + 1))
              return false;
          }
        }
        if (k == "additionalProperties" && !matched && !valid(it.value(), sub(x, kptr), depth + 1)) return false;
      }
      return true;
    }
    if (k == "dependentRequired" || k == "dependentSchemas" || k == "dependencies") {
      for (auto it = x.begin(); it != x.end(); ++it) {
        if (!v.contains(it.key())) continue;
        if (it.value().is_array()) {
          for (const auto& r : it.value()) {
            if (!r.is_string()) throw_invalid(cat("'", k, "' lists must hold strings"), ptr);
            if (!v.contains(r.get<std::string>())) return false;
          }
        } else if (!valid(v, sub(it.value(), pointer_child(kptr, it.key())), depth + 1)) {
          return false;
        }
      }
      return true;
    }
  }
  if (t == kTypeArray) {
    if (k == "minItems") return v.size() >= num(x, k, ptr);
    if (k == "maxItems") return v.size() <= num(x, k, ptr);
    if (k == "uniqueItems") {
      if (!x.is_boolean() || !x.get<bool>()) return true;
      for (size_t i = 0; i < v.size(); ++i)
        for (size_t j = i + 1; j < v.size(); ++j)
          if (v[i] == v[j]) return false;
      return true;
    }
    if (k == "prefixItems" || (k == "items" && x.is_array())) {
      for (size_t i = 0; i < x.size() && i < v.size(); ++i)
        if (!valid(v[i], sub(x[i], pointer_child(kptr, i)), depth + 1)) return false;
      return true;
    }
    if (k == "items" || k == "additionalItems") {
      size_t from = 0;
      if (k == "items") {
        auto pre = schema.find("prefixItems");
        if (pre != schema.end() && pre->is_array()) from = pre->size();
      } else {
        auto items = schema.find("items");
        if (items == schema.end() || !items->is_array()) return true;  // ignored then
        from = items->size();
      }
      for (size_t i = from; i < v.size(); ++i)
        if (!valid(v[i], sub(x, kptr), depth + 1)) return false;
      return true;
    }
    if (k == "contains") {
      size_t n = 0;
      for (const auto& e : v) n += valid(e, sub(x, kptr), depth + 1);
      auto mn = schema.find("minContains"), mx = schema.find("maxContains");
      size_t lo = mn != schema.end() ? static_cast<size_t>(num(*mn, "minContains", ptr)) : 1;
      if (n < lo) return false;
      return mx == schema.end() || n <= num(*mx, "maxContains", ptr);
    }
  }
  if (k == "unevaluatedProperties" || k == "unevaluatedItems" || k == "$dynamicRef" || k == "$recursiveRef") {
    if ((t == kTypeObject && k == "unevaluatedProperties") || (t == kTypeArray && k == "unevaluatedItems") ||
        k[0] == '$')
      throw_unsupported(k, "", ptr);
  }
  return true;  // a keyword for another type
}

}  // namespace vllm::structured
