#include "vllm/structured/json_schema_document.h"

#include <cstdint>
#include <cctype>
#include <cmath>
#include <set>

#include "vllm/structured/gbnf_writer.h"
#include "vllm/structured/json_formats.h"
#include "vllm/structured/regex.h"

namespace vllm::structured {

namespace {

// Annotations and containers; listed for readers (anything unknown is ignored as well).
[[maybe_unused]] const std::set<std::string_view>& ignored_keywords() {
  static const std::set<std::string_view> k = {
      "title", "description", "default", "examples", "example", "$schema", "$id", "id",
      "$comment", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$vocabulary", "deprecated",
      "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "contentSchema", "$defs",
      "definitions", "discriminator", "xml", "externalDocs"};
  return k;
}
const std::set<std::string_view>& handled_keywords() {
  static const std::set<std::string_view> k = {
      "type", "enum", "const", "nullable", "properties", "required", "additionalProperties",
      "patternProperties", "anyOf", "oneOf", "allOf", "$ref", "items", "prefixItems",
      "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format",
      "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
      "minProperties", "maxProperties", "uniqueItems",
      // Without their partner keyword these do nothing (checked where they are read).
      "then", "else", "minContains", "maxContains"};
  return k;
}
const std::set<std::string_view>& unsupported_keywords() {
  static const std::set<std::string_view> k = {
      "not", "if", "dependentSchemas", "dependentRequired", "dependencies", "propertyNames",
      "unevaluatedProperties", "unevaluatedItems", "contains", "$dynamicRef", "$recursiveRef"};
  return k;
}

// A JSON pointer token in a URI fragment: ~0 ~1 and percent escapes undone.
std::string unescape_pointer_token(std::string_view t) {
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c == '~' && i + 1 < t.size() && (t[i + 1] == '0' || t[i + 1] == '1')) {
      out += t[i + 1] == '0' ? '~' : '/';
      ++i;
    } else if (c == '%' && i + 2 < t.size() && std::isxdigit(static_cast<unsigned char>(t[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(t[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(t.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

KeywordClass keyword_class(std::string_view keyword) {
  if (handled_keywords().count(keyword)) return KeywordClass::kHandled;
  if (unsupported_keywords().count(keyword)) return KeywordClass::kUnsupported;
  return KeywordClass::kIgnored;
}

uint8_t keyword_types(std::string_view k) {
  if (k == "minLength" || k == "maxLength" || k == "pattern" || k == "format") return kTypeString;
  if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum" ||
      k == "multipleOf")
    return kTypeNumber;
  if (k == "properties" || k == "required" || k == "additionalProperties" ||
      k == "patternProperties" || k == "minProperties" || k == "maxProperties" ||
      k == "dependentSchemas" || k == "dependentRequired" || k == "dependencies" ||
      k == "propertyNames" || k == "unevaluatedProperties")
    return kTypeObject;
  if (k == "items" || k == "prefixItems" || k == "additionalItems" || k == "minItems" ||
      k == "maxItems" || k == "uniqueItems" || k == "contains" || k == "unevaluatedItems" ||
      k == "minContains" || k == "maxContains")
    return kTypeArray;
  return kTypeAll;
}

std::string pointer_child(const std::string& ptr, std::string_view key) {
  std::string out = ptr;
  out += '/';
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string pointer_child(const std::string& ptr, size_t index) {
  return pointer_child(ptr, std::to_string(index));
}

void throw_unsupported(std::string_view keyword, std::string_view detail, const std::string& ptr) {
  std::string msg = "unsupported JSON Schema keyword '";
  msg += keyword;
  msg += "'";
  if (!detail.empty()) {
    msg += " (";
    msg += detail;
    msg += ")";
  }
  msg += " at ";
  msg += pointer_text(ptr);
  throw JsonSchemaError(msg, ptr);
}

void throw_invalid(const std::string& what, const std::string& ptr) {
  throw JsonSchemaError(cat("invalid JSON Schema: ", what, " at ", pointer_text(ptr)), ptr);
}

uint8_t parse_type_keyword(const ojson& value, const std::string& ptr) {
  auto one = [&](const ojson& name) -> uint8_t {
    if (!name.is_string()) throw_invalid("'type' must be a string or an array of strings", ptr);
    const std::string& s = name.get_ref<const std::string&>();
    if (s == "null") return kTypeNull;
    if (s == "boolean") return kTypeBool;
    if (s == "object") return kTypeObject;
    if (s == "array") return kTypeArray;
    if (s == "string") return kTypeString;
    if (s == "integer") return kTypeInteger;
    if (s == "number") return kTypeNumber;
    if (s == "any") return kTypeAll;  // draft-03
    throw_invalid(cat("unknown type '", s, "'"), ptr);
  };
  if (!value.is_array()) return one(value);
  uint8_t bits = 0;
  for (const auto& v : value) bits |= one(v);
  return bits;
}

uint8_t value_type(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::null: return kTypeNull;
    case ojson::value_t::boolean: return kTypeBool;
    case ojson::value_t::object: return kTypeObject;
    case ojson::value_t::array: return kTypeArray;
    case ojson::value_t::string: return kTypeString;
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned: return kTypeInteger;
    case ojson::value_t::number_float: {
      double d = v.get<double>();
      return std::isfinite(d) && std::floor(d) == d ? kTypeInteger : kTypeFraction;
    }
    default: return 0;
  }
}

std::string type_names(uint8_t bits) {
  std::string out;
  auto add = [&](const char* n) {
    if (!out.empty()) out += ", ";
    out += n;
  };
  if (bits & kTypeNull) add("null");
  if (bits & kTypeBool) add("boolean");
  if (bits & kTypeObject) add("object");
  if (bits & kTypeArray) add("array");
  if (bits & kTypeString) add("string");
  if ((bits & kTypeNumber) == kTypeNumber) add("number");
  else if (bits & kTypeInteger) add("integer");
  else if (bits & kTypeFraction) add("number");
  return out;
}

SchemaDocument::SchemaDocument(const ojson& root) : root_(root) {
  if (root.is_object()) {
    auto s = root.find("$schema");
    if (s != root.end() && s->is_string()) {
      const std::string& v = s->get_ref<const std::string&>();
      for (const char* d : {"draft-03", "draft-04", "draft-06", "draft-07"})
        if (v.find(d) != std::string::npos) legacy_ref_ = true;
    }
    for (const char* key : {"$id", "id"}) {
      auto id = root.find(key);
      if (id != root.end() && id->is_string()) base_id_ = id->get<std::string>();
    }
    auto hash = base_id_.find('#');
    if (hash != std::string::npos) base_id_.resize(hash);
  }
}

SchemaRef SchemaDocument::resolve(const ojson& ref, const std::string& ptr) const {
  if (!ref.is_string()) throw_invalid("'$ref' must be a string", ptr);
  std::string r = ref.get<std::string>();
  // A reference through the root's own $id is a reference inside the document.
  if (!base_id_.empty() && r.compare(0, base_id_.size(), base_id_) == 0) {
    r = r.substr(base_id_.size());
    if (r.empty()) r.push_back('#');
  }
  if (r.empty() || r[0] != '#')
    throw_unsupported("$ref", cat("'", r, "': only references inside the document (#...) are supported"), ptr);
  std::string_view frag(r);
  frag.remove_prefix(1);
  if (!frag.empty() && frag[0] != '/')
    throw_unsupported("$ref", cat("'", r, "': anchors are unsupported, use a JSON pointer"), ptr);
  const ojson* node = &root_;
  std::string target;
  while (!frag.empty()) {
    frag.remove_prefix(1);  // '/'
    size_t end = frag.find('/');
    std::string token = unescape_pointer_token(frag.substr(0, end));
    frag = end == std::string_view::npos ? std::string_view() : frag.substr(end);
    if (node->is_object()) {
      auto it = node->find(token);
      if (it == node->end()) throw_invalid(cat("'$ref' target '", r, "' does not exist"), ptr);
      node = &*it;
    } else if (node->is_array()) {
      size_t idx = 0;
      bool ok = !token.empty() && token.find_first_not_of("0123456789") == std::string::npos;
      if (ok) idx = std::stoul(token);
      if (!ok || idx >= node->size()) throw_invalid(cat("'$ref' target '", r, "' does not exist"), ptr);
      node = &(*node)[idx];
    } else {
      throw_invalid(cat("'$ref' target '", r, "' does not exist"), ptr);
    }
    target = pointer_child(target, token);
  }
  return SchemaRef{node, target};
}

const RegexNode& SchemaDocument::pattern(const std::string& source, std::string_view keyword, const std::string& ptr) {
  auto& slot = patterns_[source];
  if (!slot) {
    try {
      slot = std::make_unique<RegexNode>(resolve_anchors(parse_regex(source), /*search=*/true));
    } catch (const RegexError& e) {
      patterns_.erase(source);
      throw_unsupported(keyword, cat("pattern '", source, "': ", e.what()), ptr);
    }
  }
  return *slot;
}

const RegexNode& SchemaDocument::format(const std::string& name, const std::string& ptr) {
  auto& slot = formats_[name];
  if (!slot) {
    const char* p = json_format_pattern(name);
    if (!p) {
      formats_.erase(name);
      throw_unsupported("format", cat("format '", name, "'"), ptr);
    }
    slot = std::make_unique<RegexNode>(resolve_anchors(parse_regex(p), /*search=*/false));
  }
  return *slot;
}

}  // namespace vllm::structured
