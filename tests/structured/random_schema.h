// Test helper: random JSON Schemas built from the keywords json_schema_to_gbnf supports, and
// random instances valid for them (instance()), from a seed, for property tests (compile,
// generate, validate). Header-only so any test target can use it. Instances put object keys in
// the schema's order (the order the grammar asks for).
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vllm::structured::testing {

// Patterns and formats the generator uses, each with strings valid for it.
struct StringExample {
  const char* rule;
  const char* examples[3];
};
inline const StringExample kPatternExamples[] = {
    {"^[a-z]+$", {"abc", "z", "hello"}},
    {"\\d{3}-\\d{4}", {"555-1234", "call 555-1234 now", "x000-0000"}},
    {"^(foo|bar)+$", {"foo", "barfoo", "foofoobar"}},
    {"[A-Z]", {"aBc", "Z", "hello World"}},
    {"^\\w+@\\w+\\.com$", {"me@site.com", "a_1@b2.com", "x@y.com"}},
    {"^.{2,5}$", {"h\xc3\xa9llo", "ab", "\"q\"\\"}},
};
inline const StringExample kFormatExamples[] = {
    {"date-time", {"2024-02-29T12:30:00Z", "1999-12-31t23:59:59.5+01:00", "2000-01-01T00:00:00-00:00"}},
    {"date", {"2023-12-31", "2024-02-29", "2000-02-29"}},
    {"time", {"08:15:00+02:00", "23:59:59Z", "00:00:00.123z"}},
    {"email", {"a.b@example.org", "x+y@sub.example.com", "me@[10.0.0.1]"}},
    {"uri", {"https://example.com/x?y=1#z", "urn:isbn:123", "ftp://user@host:21/a/b"}},
    {"uuid", {"123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000", "ABCDEF01-2345-6789-abcd-ef0123456789"}},
    {"ipv4", {"10.0.0.255", "192.168.1.1", "0.0.0.0"}},
    {"ipv6", {"fe80::1", "::", "2001:db8:0:0:0:0:2:1"}},
};

class RandomSchemaGenerator {
 public:
  explicit RandomSchemaGenerator(uint64_t seed) : rng_(seed) {}

  // A schema with $defs referenced from inside (possibly recursively through a nullable or
  // optional path, so it always has finite instances).
  nlohmann::ordered_json schema() {
    defs_ = nlohmann::ordered_json::object();
    ndefs_ = 0;
    nlohmann::ordered_json s = node(0);
    if (!defs_.empty()) s["$defs"] = defs_;
    return s;
  }

 public:
  // A random instance valid for `schema` (one made by schema()).
  nlohmann::ordered_json instance(const nlohmann::ordered_json& schema) {
    root_ = &schema;
    return sample(schema, 0);
  }

 private:
  using J = nlohmann::ordered_json;

  static const char* example(const StringExample* table, size_t n, const std::string& rule, size_t k) {
    for (size_t i = 0; i < n; ++i)
      if (rule == table[i].rule) return table[i].examples[k % 3];
    return nullptr;
  }

  J sample(const J& s, int depth) {
    if (s.is_boolean()) return 1;
    if (s.contains("$ref")) {
      std::string ref = s["$ref"];
      return sample((*root_)["$defs"][ref.substr(ref.rfind('/') + 1)], depth + 1);
    }
    if (s.contains("const")) return s["const"];
    if (s.contains("enum")) return s["enum"][pick(s["enum"].size())];
    if (s.contains("anyOf")) return sample(s["anyOf"][pick(s["anyOf"].size())], depth + 1);
    if (s.contains("oneOf")) return sample(s["oneOf"][pick(s["oneOf"].size())], depth + 1);
    if (s.contains("allOf")) {
      J out = J::object();
      for (const auto& part : s["allOf"]) {
        J o = object_of(part, depth);
        for (auto it = o.begin(); it != o.end(); ++it) out[it.key()] = it.value();
      }
      return out;
    }
    if (s.value("nullable", false) && coin(0.3)) return nullptr;
    J type = s.value("type", J("null"));
    if (type.is_array()) type = type[pick(type.size())];
    const std::string t = type;
    if (t == "null") return nullptr;
    if (t == "boolean") return coin();
    if (t == "number") return range(-1000, 1000) / 8.0;
    if (t == "integer") {
      int lo = s.value("minimum", -1000), hi = s.value("maximum", 100000);
      if (s.contains("exclusiveMinimum")) lo = std::max(lo, s["exclusiveMinimum"].get<int>() + 1);
      return range(lo, hi);
    }
    if (t == "string") {
      if (s.contains("pattern"))
        return example(kPatternExamples, std::size(kPatternExamples), s["pattern"], pick(3));
      if (s.contains("format"))
        return example(kFormatExamples, std::size(kFormatExamples), s["format"], pick(3));
      int lo = s.value("minLength", 0), hi = s.value("maxLength", lo + 6);
      static const char* chars[] = {"a", "Z", "0", " ", "\"", "\\", "\n", "\xc3\xa9", "\xf0\x9f\x98\x80", "/"};
      std::string out;
      for (int n = range(lo, hi); n > 0; --n) out += chars[pick(std::size(chars))];
      return out;
    }
    if (t == "array") {
      J out = J::array();
      if (s.contains("prefixItems")) {
        size_t n = pick(s["prefixItems"].size() + 1);
        for (size_t i = 0; i < n; ++i) out.push_back(sample(s["prefixItems"][i], depth + 1));
        if (n == s["prefixItems"].size() && !s["items"].is_boolean() && coin())
          out.push_back(sample(s["items"], depth + 1));
        return out;
      }
      int lo = s.value("minItems", 0), hi = s.value("maxItems", lo + 3);
      for (int n = range(lo, depth > 3 ? lo : hi); n > 0; --n) out.push_back(sample(s["items"], depth + 1));
      return out;
    }
    return object_of(s, depth);
  }

  J object_of(const J& s, int depth) {
    J out = J::object();
    std::vector<std::string> required;
    if (s.contains("required")) required = s["required"].get<std::vector<std::string>>();
    if (s.contains("properties")) {
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
        bool req = std::find(required.begin(), required.end(), it.key()) != required.end();
        if (req || (depth < 4 && coin())) out[it.key()] = sample(it.value(), depth + 1);
      }
    }
    if (s.contains("patternProperties") && coin()) out["x-extra"] = sample(s["patternProperties"]["^x-"], depth + 1);
    if (s.contains("additionalProperties") && s["additionalProperties"].is_object() && coin())
      out["zz extra"] = sample(s["additionalProperties"], depth + 1);
    return out;
  }

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool coin(double p = 0.5) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int range(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::string name() {
    static const char* words[] = {"id", "name", "value", "items", "kind", "x", "y", "tags", "meta", "created_at", "a b", "ünï", "q\"t"};
    return words[pick(std::size(words))];
  }

  nlohmann::ordered_json leaf() {
    using J = nlohmann::ordered_json;
    switch (pick(12)) {
      case 0: return {{"type", "string"}};
      case 1: return {{"type", "string"}, {"minLength", range(0, 3)}, {"maxLength", range(3, 8)}};
      case 2: return {{"type", "string"}, {"pattern", kPatternExamples[pick(std::size(kPatternExamples))].rule}};
      case 3: return {{"type", "string"}, {"format", kFormatExamples[pick(std::size(kFormatExamples))].rule}};
      case 4: return {{"type", "integer"}};
      case 5: {
        J s = {{"type", "integer"}};
        if (coin()) s["minimum"] = range(-1000, 10);
        if (coin()) s["maximum"] = range(10, 100000);
        if (coin(0.2)) s["exclusiveMinimum"] = range(-50, 0);
        return s;
      }
      case 6: return {{"type", "number"}};
      case 7: return {{"type", "boolean"}};
      case 8: return {{"type", "null"}};
      case 9: return {{"enum", J::array({"red", "green", 3, nullptr, J::array({1, 2})})}};
      case 10: return {{"const", coin() ? J("fixed") : J(42)}};
      default: return {{"type", J::array({"string", "null"})}, {"maxLength", 10}};
    }
  }

  nlohmann::ordered_json node(int depth) {
    using J = nlohmann::ordered_json;
    if (depth >= 4) return leaf();
    switch (pick(9)) {
      case 0:
      case 1: {
        J s = {{"type", "object"}, {"properties", J::object()}};
        J required = J::array();
        int n = range(0, 4);
        for (int i = 0; i < n; ++i) {
          std::string k = name() + std::to_string(i);
          s["properties"][k] = node(depth + 1);
          if (coin()) required.push_back(k);
        }
        if (!required.empty()) s["required"] = required;
        switch (pick(4)) {
          case 0: s["additionalProperties"] = false; break;
          case 1: s["additionalProperties"] = leaf(); break;
          case 2: break;
          default: s["patternProperties"] = {{"^x-", leaf()}}, s["additionalProperties"] = false; break;
        }
        if (coin(0.2)) s["nullable"] = true;
        return s;
      }
      case 2: {
        J s = {{"type", "array"}, {"items", node(depth + 1)}};
        if (coin()) s["minItems"] = range(0, 2);
        if (coin()) s["maxItems"] = range(2, 5);
        return s;
      }
      case 3: {
        J s = {{"type", "array"}, {"prefixItems", J::array({node(depth + 1), leaf()})}};
        s["items"] = coin() ? J(false) : leaf();
        return s;
      }
      case 4: return {{"anyOf", J::array({node(depth + 1), node(depth + 1)})}};
      case 5: {
        // Disjoint by type.
        return {{"oneOf", J::array({{{"type", "string"}}, {{"type", "integer"}, {"minimum", 0}}, {{"type", "null"}}})}};
      }
      case 6: {
        // Objects merged by allOf.
        return {{"allOf", J::array({{{"type", "object"}, {"properties", {{"a", leaf()}}}, {"required", {"a"}}},
                                    {{"properties", {{"b", node(depth + 1)}}}}})}};
      }
      case 7: {
        // A definition, sometimes recursive through an optional property.
        std::string d = "def" + std::to_string(ndefs_++);
        J body = {{"type", "object"}, {"properties", {{"v", leaf()}, {"next", {{"$ref", "#/$defs/" + d}}}}},
                  {"required", {"v"}}, {"additionalProperties", false}};
        defs_[d] = coin() ? body : node(depth + 1);
        return {{"$ref", "#/$defs/" + d}};
      }
      default:
        return leaf();
    }
  }

  std::mt19937_64 rng_;
  const nlohmann::ordered_json* root_ = nullptr;
  nlohmann::ordered_json defs_;
  int ndefs_ = 0;
};

}  // namespace vllm::structured::testing
