// JSON Schema -> GBNF text in our dialect (docs/structured_outputs.md).
//
// Honoured (draft 2020-12, and draft-04/06/07 as real schemas use them): `type` (a name or a
// list); `enum`, `const` (any JSON values; values failing the schema's other keywords are
// dropped); `properties`, `required`, `additionalProperties` (true/false/schema),
// `patternProperties`; `anyOf`, `oneOf` (only where its branches are provably disjoint: distinct
// types, distinct const/enum values, or objects with a required property of distinct
// const/enum values), `allOf` (merged: intersection per keyword, sibling keywords distributed
// into anyOf/oneOf branches); `$ref` to any JSON pointer in the document (`#`, `#/$defs/x`,
// `#/definitions/x`, ...), recursion included (rules reference each other); `items`,
// `prefixItems`, draft-07 array `items` + `additionalItems`, `minItems`, `maxItems`;
// `minLength`, `maxLength` (code points; a \uD83D\uDE00 escape pair is one); `pattern`
// (ECMAScript, search semantics unless anchored; see regex.h); `format` date-time, date, time,
// email, uri, uuid, ipv4, ipv6 (see json_formats.h); integer `minimum`, `maximum`,
// `exclusiveMinimum`, `exclusiveMaximum` (2020-12 numbers and draft-04 booleans; exact ranges);
// the same on numbers when every bound is 0 (>= 0, > 0, <= 0, < 0: the sign is in the text;
// any other number bound is an error);
// `multipleOf` where every integer satisfies it; `minProperties` / `maxProperties` /
// `uniqueItems` where the rest of the schema already implies them; OpenAPI `nullable`;
// boolean schemas. Annotations are ignored: title, description, default, examples, $schema,
// $id/id, $comment, $anchor, deprecated, readOnly, writeOnly, content*, and keywords unknown to
// JSON Schema. A keyword that only applies to types the schema excludes is ignored too (as the
// spec says: {"type": "string", "minimum": 1} is any string).
//
// Anything else that constrains is an error (JsonSchemaError, kInvalidArgument) naming the
// keyword and the JSON pointer of the schema holding it, e.g.
//   unsupported JSON Schema keyword 'minimum' (for type number) at /properties/price
// never a silently looser grammar. The root's pointer is written "/".
//
// The grammar is exact for the keywords above, or tighter where generation does not need the
// slack: object keys come in schema order (required ones present, optional ones may be
// omitted; additional keys may stand between and after them); integers are written as plain
// integers (not 1.0 or 1e2); enum/const values in their compact form (with whitespace between
// tokens); strings with a `pattern`, `format`, or used as additional property names, use
// canonical escapes (\" \\ \b \f \n \r \t \u00XX for other controls; nothing else escaped).
//
// Whitespace between tokens (no leading or trailing whitespace around the document):
//   default                  `ws ::= [ \t]{0,4} | "\r"? "\n" [ \t]{0,64}`: bounded, so a model
//                            cannot loop on whitespace, and enough for documents pretty-printed
//                            with indent 2-4 up to 16 levels deep
//   disable_any_whitespace   none at all: {"a":1,"b":[1,2]}
//   whitespace_pattern       a regex (full match, regex.h) for what may stand between tokens
//
// Key order: with nlohmann::ordered_json, the document's order (a schema's own properties,
// then those of its $ref target and allOf parts, then keys only named by `required`); with
// nlohmann::json (a std::map, which has no document order) keys are sorted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "vllm/core/error.h"
#include "vllm/structured/limits.h"

namespace vllm::structured {

// Limits (a schema past them is a JsonSchemaError, never a hang or an oversized grammar):
inline constexpr size_t kMaxSchemaDepth = 64;         // nested subschemas compiled inline, and
                                                      // $ref/allOf expansions in one chain
inline constexpr size_t kMaxSchemaProperties = 1024;  // properties + patternProperties of one object
inline constexpr size_t kMaxSchemaEnumValues = 4096;  // values of one enum
inline constexpr size_t kMaxSchemaBranches = 1024;    // alternatives of one schema after
                                                      // distributing anyOf/oneOf over siblings
inline constexpr size_t kMaxSchemaRepetition = limits::kMaxRepetition;  // min/maxLength, min/maxItems
// Integer bounds are limited to |bound| <= 1e18 (integer_range.h); the grammar text to
// kMaxFrontendGrammarBytes (gbnf_writer.h); patterns to the limits of regex.h.
inline constexpr size_t kWhitespaceMaxInline = 4;
inline constexpr size_t kWhitespaceMaxIndent = 64;

class JsonSchemaError : public vllm::Error {
 public:
  JsonSchemaError(const std::string& message, std::string pointer)
      : vllm::Error(message, ErrorKind::kInvalidArgument), pointer_(std::move(pointer)) {}
  // The JSON pointer of the schema at fault ("" for the root).
  const std::string& pointer() const { return pointer_; }

 private:
  std::string pointer_;
};

struct JsonSchemaOptions {
  // No whitespace between tokens (compact JSON).
  bool disable_any_whitespace = false;
  // additionalProperties defaults to false instead of true: an object schema that names
  // properties (properties/patternProperties/required) allows no other keys unless one of its
  // parts says additionalProperties itself.
  bool disable_additional_properties = false;
  // When non-empty: the regex (full match) for whitespace between tokens; overrides the default.
  std::string whitespace_pattern;
};

std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opts = {});
std::string json_schema_to_gbnf(const nlohmann::json& schema, const JsonSchemaOptions& opts = {});

}  // namespace vllm::structured
