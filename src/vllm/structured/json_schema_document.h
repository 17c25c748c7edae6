// What the JSON Schema compiler and the value validator share: the document with its $ref
// resolution and compiled patterns, keyword classes, JSON types as bits, and the errors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vllm/structured/json_schema.h"
#include "vllm/structured/regex_ast.h"

namespace vllm::structured {

using ojson = nlohmann::ordered_json;

// A subschema and its JSON pointer in the document (for errors and rule names).
struct SchemaRef {
  const ojson* node;
  std::string ptr;
};

// JSON types as bits. Integers and the other numbers are apart, since keywords treat them apart.
enum : uint8_t {
  kTypeNull = 1,
  kTypeBool = 2,
  kTypeObject = 4,
  kTypeArray = 8,
  kTypeString = 16,
  kTypeInteger = 32,
  kTypeFraction = 64,  // numbers that are not integers
  kTypeNumber = kTypeInteger | kTypeFraction,
  kTypeAll = 127,
};

enum class KeywordClass {
  kIgnored,      // annotations, containers ($defs) and keywords unknown to JSON Schema
  kHandled,      // the compiler honours it (maybe under conditions it checks)
  kUnsupported,  // constrains, and we cannot say it in a grammar
};
KeywordClass keyword_class(std::string_view keyword);
// The types a keyword constrains (kTypeAll for the general ones).
uint8_t keyword_types(std::string_view keyword);

std::string pointer_child(const std::string& ptr, std::string_view key);
std::string pointer_child(const std::string& ptr, size_t index);
inline std::string pointer_text(const std::string& ptr) { return ptr.empty() ? "/" : ptr; }

[[noreturn]] void throw_unsupported(std::string_view keyword, std::string_view detail, const std::string& ptr);
[[noreturn]] void throw_invalid(const std::string& what, const std::string& ptr);

// The type bits of a `type` keyword value (a name or a list of names).
uint8_t parse_type_keyword(const ojson& value, const std::string& ptr);
// The type bit of a JSON value (a float with an integral value is an integer, as in draft 6+).
uint8_t value_type(const ojson& value);
std::string type_names(uint8_t bits);

class SchemaDocument {
 public:
  explicit SchemaDocument(const ojson& root);
  const ojson& root() const { return root_; }
  // draft-04/06/07 ($schema says so): keywords beside $ref are ignored.
  bool legacy_ref() const { return legacy_ref_; }
  // The target of `$ref` written at `ptr`; throws for references outside the document.
  SchemaRef resolve(const ojson& ref, const std::string& ptr) const;
  // A `pattern` with search semantics, anchors resolved (cached); throws JsonSchemaError naming
  // `keyword` and `ptr` when the pattern is outside the regex subset.
  const RegexNode& pattern(const std::string& source, std::string_view keyword, const std::string& ptr);
  // A `format` value's pattern, full match; throws unsupported for unknown formats.
  const RegexNode& format(const std::string& name, const std::string& ptr);

 private:
  const ojson& root_;
  bool legacy_ref_ = false;
  std::string base_id_;
  std::map<std::string, std::unique_ptr<RegexNode>> patterns_, formats_;
};

}  // namespace vllm::structured
