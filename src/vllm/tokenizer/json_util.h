// Typed access to tokenizer JSON files with load errors that name the file and the field
// (internal header). Every failure is a vllm::Error of kind kModelLoad.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vllm::tok {

using Json = nlohmann::json;

// Where a JSON value sits: the file it came from and its path inside the document, e.g.
// "pre_tokenizer.pretokenizers[0].pattern".
class JsonPath {
 public:
  JsonPath(std::string file, std::string path = "") : file_(std::move(file)), path_(std::move(path)) {}
  JsonPath operator/(std::string_view key) const;
  JsonPath operator[](size_t index) const;
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  // "<file>: field '<path>' <what>"
  [[noreturn]] void fail(const std::string& what) const;
  // "<file>: <what> at '<path>'"
  [[noreturn]] void fail_component(const std::string& what) const;

 private:
  std::string file_;
  std::string path_;
};

const char* json_type_name(const Json& v);

// The member `key` of object `obj` (at `where`); missing -> error.
const Json& json_require(const Json& obj, std::string_view key, const JsonPath& where);
// nullptr when missing or null.
const Json* json_find(const Json& obj, std::string_view key);

// Scalars. The `where` names the value itself. Wrong types are errors.
std::string json_string(const Json& v, const JsonPath& where);
bool json_bool(const Json& v, const JsonPath& where);
int64_t json_int(const Json& v, const JsonPath& where);
const Json& json_object(const Json& v, const JsonPath& where);
const Json& json_array(const Json& v, const JsonPath& where);

// Members of an object: required, or optional (missing or null -> default / nullopt).
std::string json_get_string(const Json& obj, std::string_view key, const JsonPath& where);
std::optional<std::string> json_opt_string(const Json& obj, std::string_view key, const JsonPath& where);
bool json_get_bool(const Json& obj, std::string_view key, bool fallback, const JsonPath& where);
std::optional<bool> json_opt_bool(const Json& obj, std::string_view key, const JsonPath& where);
int64_t json_get_int(const Json& obj, std::string_view key, int64_t fallback, const JsonPath& where);

// A one-character string (Metaspace replacement, Strip content); returns the code point.
char32_t json_char(const Json& v, const JsonPath& where);

// Parses a whole file; errors name it (missing, unreadable, invalid JSON).
Json json_parse_file(const std::string& path, const std::string& display_name);
Json json_parse_text(const std::string& text, const std::string& display_name);

}  // namespace vllm::tok
