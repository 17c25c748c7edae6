// json_schema_to_gbnf: per keyword, valid instances accepted and invalid ones rejected (through
// the test oracle), the text of small schemas, options, and each error with its pointer.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include "language_checker.h"
#include "vllm/structured/gbnf_writer.h"
#include "vllm/structured/json_schema.h"

namespace vllm::structured {
namespace {

using nlohmann::ordered_json;
using testing::LanguageChecker;

std::string compile(const std::string& schema, const JsonSchemaOptions& o = {}) {
  return json_schema_to_gbnf(ordered_json::parse(schema), o);
}

// Each valid instance compact and pretty-printed (indent 2 and 4) is accepted; each invalid one
// (compact) is rejected.
void check(const std::string& schema, const std::vector<std::string>& valid,
           const std::vector<std::string>& invalid, const JsonSchemaOptions& o = {}) {
  SCOPED_TRACE(schema);
  std::string text = compile(schema, o);
  LanguageChecker g(text);
  for (const auto& v : valid) {
    ordered_json j = ordered_json::parse(v);
    EXPECT_TRUE(g.accepts(j.dump())) << "valid rejected: " << j.dump() << "\n" << text;
    if (!o.disable_any_whitespace) {
      EXPECT_TRUE(g.accepts(j.dump(2))) << "valid (indent 2) rejected: " << j.dump(2) << "\n" << text;
      EXPECT_TRUE(g.accepts(j.dump(4))) << "valid (indent 4) rejected: " << j.dump(4);
    }
  }
  for (const auto& v : invalid) EXPECT_FALSE(g.accepts(v)) << "invalid accepted: " << v << "\n" << text;
}

void expect_error(const std::string& schema, const std::string& message, const JsonSchemaOptions& o = {}) {
  try {
    std::string g = compile(schema, o);
    ADD_FAILURE() << "no error for " << schema << "\n" << g;
  } catch (const JsonSchemaError& e) {
    EXPECT_EQ(std::string(e.what()), message) << schema;
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
}

void expect_error_contains(const std::string& schema, const std::string& part) {
  try {
    compile(schema);
    ADD_FAILURE() << "no error for " << schema;
  } catch (const vllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(JsonSchemaToGbnf, TextOfSmallSchemas) {
  JsonSchemaOptions compact;
  compact.disable_any_whitespace = true;
  EXPECT_EQ(compile(R"({"type": "integer"})"), "root ::= json-integer\njson-integer ::= \"-\"? ( \"0\" | [1-9] [0-9]* )\n");
  EXPECT_EQ(compile(R"({"const": "a\"b"})"), "root ::= \"\\\"a\\\\\\\"b\\\"\"\n");
  EXPECT_EQ(compile(R"({"enum": [1, null, true]})"), "root ::= ( \"1\" | \"null\" | \"true\" )\n");
  EXPECT_EQ(compile(R"({"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"],
                        "additionalProperties": false})", compact),
            "root ::= root-2\nroot-2 ::= \"{\" \"\\\"a\\\"\" \":\" ( \"true\" | \"false\" ) \"}\"\n");
  EXPECT_EQ(compile(R"({"type": "array", "items": {"type": "null"}, "minItems": 1, "maxItems": 3})", compact),
            "root ::= root-2\nroot-2 ::= \"[\" \"null\" ( \",\" \"null\" ){0,2} \"]\"\n");
}

TEST(JsonSchemaToGbnf, Types) {
  check(R"({"type": "null"})", {"null"}, {"0", "\"null\"", "nul"});
  check(R"({"type": "boolean"})", {"true", "false"}, {"0", "null", "True"});
  check(R"({"type": "integer"})", {"0", "-1", "1234567890123"}, {"01", "1.5", "1e3", "\"1\"", "-"});
  check(R"({"type": "number"})", {"0", "-1.5", "1e-7", "2.5E+3", "10"}, {"01", ".5", "1.", "+1", "1e", "NaN"});
  check(R"({"type": "string"})", {R"("")", R"("a\"b\\c\/\u00e9\n")", "\"\xc3\xa9\""}, {"\"a", "a", "\"\n\"", R"("\x")", R"("\u12")"});
  check(R"({"type": ["string", "null"]})", {"null", R"("x")"}, {"1", "true"});
  check(R"({"type": "string", "nullable": true})", {"null", R"("x")"}, {"1"});
  check(R"({})", {"null", "1", R"({"a": [1, {"b": null}]})", R"("s")", "[]", "{}"}, {"", "nul", "[1,]"});
  check(R"(true)", {"1", "{}"}, {"x"});
}

TEST(JsonSchemaToGbnf, EnumAndConst) {
  check(R"({"enum": ["a", 1, null, [1, 2], {"k": "v"}]})", {R"("a")", "1", "null", "[1,2]", R"({"k":"v"})"},
        {R"("b")", "2", "[1]", "{}"});
  check(R"({"const": {"a": [true]}})", {R"({"a": [true]})"}, {R"({"a": [false]})", "{}"});
  // Values the other keywords exclude are dropped.
  check(R"({"type": "string", "enum": ["a", 1, "bb"], "maxLength": 1})", {R"("a")"}, {"1", R"("bb")"});
  check(R"({"enum": [1, 2, 3, 4], "multipleOf": 2, "not": {"const": 4}})", {"2"}, {"1", "3", "4"});
  check(R"({"allOf": [{"enum": [1, 2, 3]}, {"enum": [2, 3, 4]}]})", {"2", "3"}, {"1", "4"});
}

TEST(JsonSchemaToGbnf, Objects) {
  const std::string s = R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                            "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]})";
  check(s, {R"({"name": "x"})", R"({"name": "x", "age": 3})", R"({"name": "x", "tags": ["a"], "extra": 1})",
            R"({"name": "x", "age": 3, "tags": []})", R"({"name": "x", "zz": {}, "age": 1})"},
        {"{}", R"({"age": 3})", R"({"name": 1})", R"({"name": "x", "age": "3"})", R"({"name": "x", "name": 1})",
         R"({"name": "x", "age": 1, "age": "s"})", "[]"});
  // Optional properties only; the order is the schema's.
  check(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "additionalProperties": false})",
        {"{}", R"({"a": 1})", R"({"b": 2})", R"({"a": 1, "b": 2})"}, {R"({"b": 2, "a": 1})", R"({"c": 1})", R"({"a": 1,})"});
  // additionalProperties as a schema, and required keys not listed in properties.
  check(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["b"], "additionalProperties": {"type": "boolean"}})",
        {R"({"b": true})", R"({"a": 1, "b": false, "c": true})"}, {R"({"a": 1})", R"({"b": 1})", R"({"b": true, "c": 1})"});
  check(R"({"type": "object", "additionalProperties": false})", {"{}"}, {R"({"a": 1})"});
  // minProperties / maxProperties that the rest of the schema implies.
  check(R"({"type": "object", "properties": {"a": {}}, "required": ["a"], "minProperties": 1})", {R"({"a": 1})"}, {"{}"});
  check(R"({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": false, "maxProperties": 2})",
        {R"({"a": 1, "b": 2})"}, {R"({"c": 1})"});
  check(R"({"type": "object", "properties": {"a": false}})", {"{}", R"({"b": 1})"}, {R"({"a": 1})"});
}

TEST(JsonSchemaToGbnf, DisableAdditionalProperties) {
  JsonSchemaOptions o;
  o.disable_additional_properties = true;
  check(R"({"type": "object", "properties": {"a": {"type": "integer"}}})", {"{}", R"({"a": 1})"}, {R"({"b": 1})"}, o);
  check(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": true})",
        {R"({"a": 1, "b": 1})"}, {}, o);
  check(R"({"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {"type": "integer"}}}], "type": "object"})",
        {R"({"a": 1, "b": 2})"}, {R"({"c": 1})"}, o);
}

TEST(JsonSchemaToGbnf, PatternProperties) {
  check(R"({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": false})",
        {"{}", R"({"x-a": 1, "x-b": 2})"}, {R"({"y": 1})", R"({"x-a": "s"})"});
  check(R"({"type": "object", "properties": {"x-fixed": {"type": "string"}}, "patternProperties": {"^x-": {"type": "integer"}},
           "additionalProperties": false})",
        {R"({"x-a": 1})"}, {R"({"x-fixed": 1})", R"({"x-fixed": "s"})"});  // x-fixed must be both: impossible
  check(R"({"type": "object", "patternProperties": {"a": {}}, "properties": {"b": {"type": "integer"}}})",
        {R"({"b": 1, "xa": [1]})", R"({"zz": 0})"}, {R"({"b": "s"})"});
}

TEST(JsonSchemaToGbnf, Arrays) {
  check(R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3})",
        {"[1, 2]", "[1, 2, 3]"}, {"[]", "[1]", "[1,2,3,4]", "[1, \"a\"]"});
  check(R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})",
        {"[]", R"(["a"])", R"(["a", 1])"}, {R"(["a", 1, 2])", R"([1])"});
  check(R"({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "null"}, "minItems": 2})",
        {R"(["a", null])", R"(["a", null, null])"}, {R"(["a"])", R"(["a", 1])"});
  // draft-07 array items and additionalItems
  check(R"({"type": "array", "items": [{"const": 1}, {"const": 2}], "additionalItems": {"type": "string"}})",
        {"[]", "[1]", "[1, 2, \"x\"]"}, {"[2]", "[1, 2, 3]"});
  check(R"({"type": "array", "maxItems": 0})", {"[]"}, {"[1]"});
  check(R"({"type": "array", "uniqueItems": true, "maxItems": 1})", {"[]", "[1]"}, {"[1, 2]"});
  check(R"({"type": "array", "uniqueItems": false})", {"[1, 1]"}, {});
}

TEST(JsonSchemaToGbnf, Strings) {
  check(R"({"type": "string", "minLength": 2, "maxLength": 3})",
        {R"("ab")", R"("abc")", "\"\xc3\xa9\xc3\xa9\"", R"("\ud83d\ude00a")", R"("\n\t")"},
        {R"("a")", R"("abcd")", R"("\ud83d")", "\"\xf0\x9f\x98\x80\""});
  check(R"({"type": "string", "pattern": "^[a-z]+\\d$"})", {R"("abc1")"}, {R"("abc")", R"("1")", R"("Abc1")"});
  check(R"({"type": "string", "pattern": "b+"})", {R"("abbc")", R"("b")", R"("x\"b")"}, {R"("ac")", R"("")"});
  check(R"({"type": "string", "pattern": "^\\w+\"$"})", {R"("ab\"")"}, {R"("ab")"});
}

TEST(JsonSchemaToGbnf, Formats) {
  check(R"({"type": "string", "format": "date"})", {R"("2024-02-29")", R"("2000-02-29")", R"("2023-12-31")"},
        {R"("2023-02-29")", R"("1900-02-29")", R"("2023-04-31")", R"("2023-1-01")"});
  check(R"({"format": "date-time"})", {R"("2024-01-02T03:04:05Z")", R"("2024-01-02t03:04:05.123+05:30")", "1"},
        {R"("2024-01-02T03:04:05")", R"("2024-01-02 03:04:05Z")", R"("2024-01-02T24:00:00Z")"});
  check(R"({"type": "string", "format": "time"})", {R"("23:59:59-01:00")"}, {R"("23:59")"});
  check(R"({"type": "string", "format": "uuid"})", {R"("123e4567-e89b-12d3-A456-426614174000")"}, {R"("123e4567e89b12d3a456426614174000")"});
  check(R"({"type": "string", "format": "ipv4"})", {R"("192.168.0.1")", R"("0.0.0.0")"}, {R"("256.1.1.1")", R"("01.1.1.1")", R"("1.1.1")"});
  check(R"({"type": "string", "format": "ipv6"})", {R"("::1")", R"("2001:db8::8a2e:370:7334")", R"("::ffff:1.2.3.4")", R"("1:2:3:4:5:6:7:8")"},
        {R"("1:2:3:4:5:6:7:8:9")", R"("1::2::3")", R"("12345::")"});
  check(R"({"type": "string", "format": "email"})", {R"("a.b+c@example.com")", R"("x@[1.2.3.4]")"}, {R"("a@")", R"("a..b@x.com")", R"("@x.com")"});
  check(R"({"type": "string", "format": "uri"})", {R"("https://example.com/a?b=c#d")", R"("urn:isbn:0451450523")", R"("http://[::1]:80/")"},
        {R"("//example.com")", R"("http://exa mple.com")", R"("1http://x")", R"("Weary:")", R"("a:?q")"});
}

TEST(JsonSchemaToGbnf, IntegerRanges) {
  check(R"({"type": "integer", "minimum": -15, "maximum": 123})", {"-15", "-1", "0", "9", "99", "123"},
        {"-16", "124", "1000", "-100"});
  check(R"({"type": "integer", "exclusiveMinimum": 0})", {"1", "10", "987654321"}, {"0", "-1"});
  check(R"({"type": "integer", "exclusiveMaximum": -5})", {"-6", "-100"}, {"-5", "0", "5"});
  check(R"({"type": "integer", "minimum": 1.5, "maximum": 3.5})", {"2", "3"}, {"1", "4"});
  check(R"({"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "minimum": 5, "exclusiveMinimum": true,
           "maximum": 7, "exclusiveMaximum": false})", {"6", "7"}, {"5", "8"});
}

TEST(JsonSchemaToGbnf, NumberBoundsAtZero) {
  check(R"({"type": "number", "minimum": 0})", {"0", "0.0", "-0", "-0.0e5", "1.5", "2e-3", "0.001"},
        {"-1", "-0.5", "-1e-9", "-0.001"});
  check(R"({"type": "number", "exclusiveMinimum": 0})", {"1", "0.5", "1e-300", "0.0001E2"},
        {"0", "0.000", "-0", "0e5", "-1"});
  check(R"({"type": "number", "maximum": 0})", {"0", "-0", "-3.5", "-1e9"}, {"1", "0.1"});
  check(R"({"type": "number", "exclusiveMaximum": 0})", {"-1", "-0.5"}, {"0", "-0.0", "1"});
  check(R"({"type": "number", "minimum": 0, "maximum": 0})", {"0", "-0.00"}, {"1", "-1"});
  check(R"({"$schema": "http://json-schema.org/draft-04/schema#", "type": "number", "minimum": 0,
           "exclusiveMinimum": true})", {"3"}, {"0"});
  expect_error(R"({"type": "number", "minimum": 0, "maximum": 1})",
               "unsupported JSON Schema keyword 'maximum' (for type number) at /");
  expect_error(R"({"type": "number", "multipleOf": 0.5})",
               "unsupported JSON Schema keyword 'multipleOf' (for type number) at /");
}

TEST(JsonSchemaToGbnf, Combinators) {
  check(R"({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]})", {"1", R"("a")"}, {R"("ab")", "null"});
  check(R"({"oneOf": [{"type": "integer"}, {"type": "string"}]})", {"1", R"("a")"}, {"null"});
  check(R"({"oneOf": [{"const": "a"}, {"const": "b"}]})", {R"("a")", R"("b")"}, {R"("c")"});
  check(R"({"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
                      {"type": "object", "properties": {"kind": {"enum": ["b", "c"]}, "y": {"type": "string"}}, "required": ["kind"]}]})",
        {R"({"kind": "a", "x": 1})", R"({"kind": "c", "y": "s"})"}, {R"({"kind": "a", "x": "s"})", R"({"kind": "d"})"});
  // allOf of objects merges; siblings distribute into anyOf branches.
  check(R"({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                      {"properties": {"b": {"type": "string"}}, "required": ["b"]}]})",
        {R"({"a": 1, "b": "x"})"}, {R"({"a": 1})", R"({"b": "x"})", R"({"a": "s", "b": "x"})"});
  check(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "anyOf": [{"required": ["a"]}, {"required": ["b"]}]})",
        {R"({"a": 1})", R"({"b": 0})", R"({"a": 1, "b": 0})"}, {"{}", R"({"a": "x"})"});
  check(R"({"allOf": [{"type": "integer", "minimum": 0}, {"maximum": 5}]})", {"0", "5"}, {"6", "-1"});
}

TEST(JsonSchemaToGbnf, RefsAndRecursion) {
  check(R"({"$defs": {"pos": {"type": "integer", "minimum": 1}}, "type": "array", "items": {"$ref": "#/$defs/pos"}})",
        {"[1, 2]"}, {"[0]"});
  check(R"({"definitions": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/s"}}, "type": "object"})",
        {R"({"a": "x"})"}, {R"({"a": 1})"});
  const std::string tree = R"({"type": "object", "properties": {"value": {"type": "integer"},
      "children": {"type": "array", "items": {"$ref": "#"}}}, "required": ["value"], "additionalProperties": false})";
  check(tree, {R"({"value": 1})", R"({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]})"},
        {R"({"value": 1, "children": [{}]})", R"({"children": []})"});
  check(R"({"$defs": {"list": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"head": {"type": "integer"},
           "tail": {"$ref": "#/$defs/list"}}, "required": ["head", "tail"], "additionalProperties": false}]}},
           "$ref": "#/$defs/list"})",
        {"null", R"({"head": 1, "tail": {"head": 2, "tail": null}})"}, {R"({"head": 1})", "1"});
  // 2020-12: keywords beside $ref apply too; draft-07: they are ignored.
  check(R"({"$defs": {"a": {"type": "array"}}, "$ref": "#/$defs/a", "maxItems": 1})", {"[]", "[1]"}, {"[1, 2]"});
  check(R"({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {"type": "array"}},
           "properties": {"x": {"$ref": "#/definitions/a", "maxItems": 1}}, "type": "object"})",
        {R"({"x": [1, 2]})"}, {R"({"x": 1})"});
  check(R"({"$defs": {"a~b/c": {"const": 1}}, "$ref": "#/$defs/a~0b~1c"})", {"1"}, {"2"});
  check(R"({"$id": "https://example.com/tree.json", "type": "array",
           "items": {"anyOf": [{"type": "integer"}, {"$ref": "https://example.com/tree.json"}]}})",
        {"[]", "[1, [2, []]]"}, {"[\"a\"]", "1"});
}

TEST(JsonSchemaToGbnf, Whitespace) {
  LanguageChecker g(compile(R"({"type": "object", "properties": {"a": {"type": "array"}}})"));
  EXPECT_TRUE(g.accepts("{ \"a\" : [ 1 , 2 ] }"));
  EXPECT_TRUE(g.accepts("{\r\n\t\"a\":[]\n}"));
  EXPECT_FALSE(g.accepts(" {}"));                                    // no leading whitespace
  EXPECT_FALSE(g.accepts("{" + std::string(kWhitespaceMaxInline + 1, ' ') + "}"));   // bounded
  EXPECT_FALSE(g.accepts("{\n" + std::string(kWhitespaceMaxIndent + 1, ' ') + "}"));
  EXPECT_FALSE(g.accepts("{\n\n}"));
  JsonSchemaOptions compact;
  compact.disable_any_whitespace = true;
  LanguageChecker c(compile(R"({"type": "object", "properties": {"a": {"type": "array"}}})", compact));
  EXPECT_TRUE(c.accepts("{\"a\":[1,{\"b\":2}]}"));
  EXPECT_FALSE(c.accepts("{\"a\": []}"));
  JsonSchemaOptions pat;
  pat.whitespace_pattern = "[ ]?";
  LanguageChecker p(compile(R"({"type": "array", "items": {"type": "integer"}})", pat));
  EXPECT_TRUE(p.accepts("[ 1, 2 ]"));
  EXPECT_FALSE(p.accepts("[1,\n2]"));
  EXPECT_FALSE(p.accepts("[1,  2]"));
}

TEST(JsonSchemaToGbnf, KeyOrderOfPlainJson) {
  // nlohmann::json sorts keys; ordered_json keeps the document's order.
  nlohmann::json j = nlohmann::json::parse(R"({"type": "object", "properties": {"b": {}, "a": {}}, "required": ["b", "a"]})");
  LanguageChecker sorted(json_schema_to_gbnf(j));
  EXPECT_TRUE(sorted.accepts(R"({"a":1,"b":2})"));
  EXPECT_FALSE(sorted.accepts(R"({"b":1,"a":2})"));
  // allOf parts: merged keys sorted too.
  LanguageChecker merged(json_schema_to_gbnf(nlohmann::json::parse(
      R"({"properties": {"c": {}}, "required": ["c"], "allOf": [{"properties": {"a": {}}, "required": ["a"]}]})")));
  EXPECT_TRUE(merged.accepts(R"({"a":1,"c":2})"));
  LanguageChecker doc(compile(R"({"type": "object", "properties": {"b": {}, "a": {}}, "required": ["b", "a"]})"));
  EXPECT_TRUE(doc.accepts(R"({"b":1,"a":2})"));
  EXPECT_FALSE(doc.accepts(R"({"a":1,"b":2})"));
}

TEST(JsonSchemaToGbnf, Errors) {
  expect_error(R"({"type": "object", "properties": {"price": {"type": "number", "minimum": 0.5}}})",
               "unsupported JSON Schema keyword 'minimum' (for type number) at /properties/price");
  expect_error(R"({"not": {"type": "string"}})", "unsupported JSON Schema keyword 'not' at /");
  expect_error(R"({"type": "array", "items": {"type": "array", "contains": {"const": 1}}})",
               "unsupported JSON Schema keyword 'contains' at /items");
  expect_error(R"({"type": "array", "uniqueItems": true})",
               "unsupported JSON Schema keyword 'uniqueItems' (for arrays that may hold more than one item) at /");
  expect_error(R"({"type": "integer", "multipleOf": 3})",
               "unsupported JSON Schema keyword 'multipleOf' (for type integer) at /");
  expect_error(R"({"type": "object", "minProperties": 1})",
               "unsupported JSON Schema keyword 'minProperties' (more than the required properties) at /");
  expect_error(R"({"type": "string", "format": "hostname"})",
               "unsupported JSON Schema keyword 'format' (format 'hostname') at /");
  expect_error(R"({"type": "string", "pattern": "a", "maxLength": 3})",
               "unsupported JSON Schema keyword 'maxLength' (together with 'pattern') at /");
  expect_error(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})",
               "unsupported JSON Schema keyword 'oneOf' (branches 0 and 1 are not provably disjoint; use anyOf, distinct types, or a required property with distinct const/enum values) at /");
  expect_error(R"({"properties": {"a": {"type": "string", "pattern": "(a)\\1"}}})",
               "unsupported JSON Schema keyword 'pattern' (pattern '(a)\\1': backreferences are unsupported at position 3) at /properties/a");
  expect_error(R"({"$ref": "other.json#/a"})",
               "unsupported JSON Schema keyword '$ref' ('other.json#/a': only references inside the document (#...) are supported) at /");
  expect_error(R"({"$ref": "#/$defs/missing"})", "invalid JSON Schema: '$ref' target '#/$defs/missing' does not exist at /");
  expect_error(R"({"type": "strin"})", "invalid JSON Schema: unknown type 'strin' at /");
  expect_error(R"({"type": "integer", "minimum": 5, "maximum": 4})", "the schema accepts no JSON value at /");
  expect_error(R"(false)", "the schema accepts no JSON value at /");
  expect_error(R"({"type": "integer", "maximum": 1e30})", "unsupported JSON Schema keyword 'maximum' (bound 1e+30 beyond +-1e18) at /");
  expect_error(R"({"type": "string", "maxLength": 100000})", "unsupported JSON Schema keyword 'maxLength' (above 4096) at /");
  expect_error(R"({"type": "object", "patternProperties": {"a": {"type": "integer"}}})",
               "unsupported JSON Schema keyword 'patternProperties' (with additionalProperties other than false) at /");
  expect_error(R"({"$defs": {"a": {"$ref": "#/$defs/b", "type": "string"}, "b": {"$ref": "#/$defs/a", "type": "string"}}, "$ref": "#/$defs/a", "minLength": 1})",
               "schema nested deeper than 64 levels (or a $ref/allOf cycle) at /$defs/a");
  // Ignored when the keyword's type is excluded.
  EXPECT_NO_THROW(compile(R"({"type": "string", "minimum": 1, "uniqueItems": true})"));
  EXPECT_NO_THROW(compile(R"({"type": "string", "title": "t", "description": "d", "default": "x", "examples": ["y"], "$comment": "c"})"));
}

TEST(JsonSchemaToGbnf, Limits) {
  std::string deep = "{}";
  for (size_t i = 0; i < kMaxSchemaDepth + 2; ++i) deep = R"({"type": "array", "items": )" + deep + "}";
  expect_error_contains(deep, "nested deeper than");
  ordered_json many = {{"type", "object"}, {"properties", ordered_json::object()}};
  for (size_t i = 0; i <= kMaxSchemaProperties; ++i) many["properties"]["p" + std::to_string(i)] = {{"type", "integer"}};
  expect_error_contains(many.dump(), "more than 1024 properties");
  ordered_json big_enum = {{"enum", ordered_json::array()}};
  for (size_t i = 0; i <= kMaxSchemaEnumValues; ++i) big_enum["enum"].push_back(i);
  expect_error_contains(big_enum.dump(), "'enum' with more than");
  ordered_json huge_enum = {{"enum", ordered_json::array()}};
  for (size_t i = 0; i < 4000; ++i) huge_enum["enum"].push_back(std::string(300, 'a') + std::to_string(i));
  try {
    compile(huge_enum.dump());
    ADD_FAILURE() << "no error for a grammar over the size limit";
  } catch (const GrammarTooLargeError& e) {
    EXPECT_NE(std::string(e.what()).find("generated grammar exceeds"), std::string::npos);
  }
  // Long prefixItems nest through rules, within the grammar parser's parenthesis depth.
  ordered_json tuple = {{"type", "array"}, {"prefixItems", ordered_json::array()}};
  for (int i = 0; i < 300; ++i) tuple["prefixItems"].push_back({{"const", i}});
  LanguageChecker t(compile(tuple.dump()), /*with_oracle=*/false);
  EXPECT_TRUE(t.accepts("[0,1,2]"));
  EXPECT_FALSE(t.accepts("[0,2]"));
  ordered_json branches = {{"allOf", ordered_json::array()}};
  for (int i = 0; i < 4; ++i)
    branches["allOf"].push_back({{"anyOf", {{{"type", "integer"}}, {{"type", "string"}}, {{"type", "null"}},
                                            {{"type", "boolean"}}, {{"type", "array"}}, {{"type", "object"}}}}});
  expect_error_contains(branches.dump(), "multiply to more than");
}

}  // namespace
}  // namespace vllm::structured
