// Test helper: random JSON Schemas built from the keywords json_schema_to_gbnf supports, and
// random instances valid for them, from a seed, for property tests (compile, generate,
// validate). Header-only so any test target can use it.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vllm::structured::testing {

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

 private:
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
      case 2: {
        static const char* pats[] = {"^[a-z]+$", "\\d{3}-\\d{4}", "^(foo|bar)+$", "[A-Z]", "^\\w+@\\w+\\.com$", "^.{2,5}$"};
        return {{"type", "string"}, {"pattern", pats[pick(std::size(pats))]}};
      }
      case 3: {
        static const char* fmts[] = {"date-time", "date", "time", "email", "uri", "uuid", "ipv4", "ipv6"};
        return {{"type", "string"}, {"format", fmts[pick(std::size(fmts))]}};
      }
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
  nlohmann::ordered_json defs_;
  int ndefs_ = 0;
};

}  // namespace vllm::structured::testing
