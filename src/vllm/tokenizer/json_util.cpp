#include "vllm/tokenizer/json_util.h"

#include <fstream>
#include <sstream>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm::tok {

JsonPath JsonPath::operator/(std::string_view key) const {
  return JsonPath(file_, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
}

JsonPath JsonPath::operator[](size_t index) const {
  return JsonPath(file_, path_ + "[" + std::to_string(index) + "]");
}

void JsonPath::fail(const std::string& what) const {
  throw Error(file_ + ": field '" + (path_.empty() ? std::string("<root>") : path_) + "' " + what,
              ErrorKind::kModelLoad);
}

void JsonPath::fail_component(const std::string& what) const {
  throw Error(file_ + ": " + what + " at '" + (path_.empty() ? std::string("<root>") : path_) + "'",
              ErrorKind::kModelLoad);
}

const char* json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a float";
    default: return "an unsupported value";
  }
}

const Json* json_find(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const Json& json_require(const Json& obj, std::string_view key, const JsonPath& where) {
  if (!obj.is_object()) where.fail(std::string("must be an object, got ") + json_type_name(obj));
  auto it = obj.find(key);
  if (it == obj.end()) (where / key).fail("is missing");
  return *it;
}

std::string json_string(const Json& v, const JsonPath& where) {
  if (!v.is_string()) where.fail(std::string("must be a string, got ") + json_type_name(v));
  return v.get<std::string>();
}

bool json_bool(const Json& v, const JsonPath& where) {
  if (!v.is_boolean()) where.fail(std::string("must be a boolean, got ") + json_type_name(v));
  return v.get<bool>();
}

int64_t json_int(const Json& v, const JsonPath& where) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) where.fail("is out of range");
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer()) where.fail(std::string("must be an integer, got ") + json_type_name(v));
  return v.get<int64_t>();
}

const Json& json_object(const Json& v, const JsonPath& where) {
  if (!v.is_object()) where.fail(std::string("must be an object, got ") + json_type_name(v));
  return v;
}

const Json& json_array(const Json& v, const JsonPath& where) {
  if (!v.is_array()) where.fail(std::string("must be an array, got ") + json_type_name(v));
  return v;
}

std::string json_get_string(const Json& obj, std::string_view key, const JsonPath& where) {
  return json_string(json_require(obj, key, where), where / key);
}

std::optional<std::string> json_opt_string(const Json& obj, std::string_view key,
                                           const JsonPath& where) {
  const Json* v = json_find(obj, key);
  if (v == nullptr) return std::nullopt;
  return json_string(*v, where / key);
}

bool json_get_bool(const Json& obj, std::string_view key, bool fallback, const JsonPath& where) {
  const Json* v = json_find(obj, key);
  if (v == nullptr) return fallback;
  return json_bool(*v, where / key);
}

std::optional<bool> json_opt_bool(const Json& obj, std::string_view key, const JsonPath& where) {
  const Json* v = json_find(obj, key);
  if (v == nullptr) return std::nullopt;
  return json_bool(*v, where / key);
}

int64_t json_get_int(const Json& obj, std::string_view key, int64_t fallback, const JsonPath& where) {
  const Json* v = json_find(obj, key);
  if (v == nullptr) return fallback;
  return json_int(*v, where / key);
}

char32_t json_char(const Json& v, const JsonPath& where) {
  const std::string s = json_string(v, where);
  if (s.empty()) where.fail("must be exactly one character, got an empty string");
  size_t i = 0;
  const char32_t c = utf8_next(s, i);
  if (i != s.size()) where.fail("must be exactly one character, got \"" + s + "\"");
  return c;
}

Json json_parse_text(const std::string& text, const std::string& display_name) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw Error(display_name + ": invalid JSON: " + e.what(), ErrorKind::kModelLoad);
  }
}

Json json_parse_file(const std::string& path, const std::string& display_name) {
  return json_parse_text(read_regular_file(path), display_name);
}

}  // namespace vllm::tok
