// Property tests of the front ends on random inputs:
//  - random patterns: the grammar's language equals std::regex's (full match and search);
//  - soundness: for random schemas and mutated instances, whatever the grammar accepts the
//    schema validator accepts too (a grammar is never looser than its schema);
//  - robustness: random junk schemas compile or throw vllm::Error, nothing else.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include <random>
#include <regex>

#include "language_checker.h"
#include "random_schema.h"
#include "vllm/structured/json_schema.h"
#include "vllm/structured/json_schema_validate.h"
#include "vllm/structured/regex.h"

namespace vllm::structured {
namespace {

using nlohmann::ordered_json;

class RandomPattern {
 public:
  explicit RandomPattern(uint64_t seed) : rng_(seed) {}
  std::string next() { return alt(0); }

 private:
  size_t pick(size_t n) { return rng_() % n; }
  std::string alt(int depth) {
    std::string s = seq(depth);
    while (depth < 3 && pick(4) == 0) s += "|" + seq(depth);
    return s;
  }
  std::string seq(int depth) {
    std::string s;
    for (size_t n = 1 + pick(3); n > 0; --n) s += quantified(depth);
    return s;
  }
  std::string quantified(int depth) {
    std::string a = atom(depth);
    static const char* qs[] = {"", "", "", "*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "{1,3}?"};
    return a + qs[pick(std::size(qs))];
  }
  std::string atom(int depth) {
    static const char* atoms[] = {"a", "b", "c", ".", "[ab]", "[^a]", "[a-c]", "\\d", "\\w", "\\s", "\\.", "[-b]"};
    if (depth < 3 && pick(4) == 0) return (pick(2) ? "(" : "(?:") + alt(depth + 1) + ")";
    return atoms[pick(std::size(atoms))];
  }
  std::mt19937_64 rng_;
};

TEST(FrontendProperties, RandomPatternsMatchStdRegex) {
  RandomPattern gen(42);
  std::mt19937 rng(7);
  const std::string alphabet = "abc1 .\n-";
  int compared = 0;
  for (int i = 0; i < 150; ++i) {
    std::string p = gen.next();
    for (bool srch : {false, true}) {
      SCOPED_TRACE(p + (srch ? " (search)" : " (full)"));
      testing::LanguageChecker g(regex_to_gbnf(p, RegexOptions{srch, false}), /*with_oracle=*/i % 5 == 0);
      std::regex re(p, std::regex::ECMAScript);
      for (int k = 0; k < 40; ++k) {
        std::string s;
        for (size_t n = rng() % 6; n > 0; --n) s += alphabet[rng() % alphabet.size()];
        bool want = srch ? std::regex_search(s, re) : std::regex_match(s, re);
        EXPECT_EQ(g.accepts(s), want) << "input '" << s << "'";
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 150 * 2 * 40);
}

// A random change somewhere in a JSON value.
ordered_json mutate(const ordered_json& v, std::mt19937_64& rng, int depth = 0) {
  static const ordered_json replacements[] = {nullptr, true, 0, -7, 2.5, "", "x", "2024-13-01",
                                              ordered_json::array(), ordered_json::object(),
                                              ordered_json::array({1, "a"}), {{"k", 1}}};
  if ((v.is_object() || v.is_array()) && !v.empty() && rng() % 3 != 0 && depth < 6) {
    ordered_json out = v;
    if (v.is_object()) {
      auto it = out.begin();
      std::advance(it, static_cast<long>(rng() % out.size()));
      switch (rng() % 3) {
        case 0: *it = mutate(*it, rng, depth + 1); break;
        case 1: out.erase(it.key()); break;
        default: out["unexpected key"] = replacements[rng() % std::size(replacements)]; break;
      }
    } else {
      size_t i = rng() % out.size();
      switch (rng() % 3) {
        case 0: out[i] = mutate(out[i], rng, depth + 1); break;
        case 1: out.erase(out.begin() + static_cast<long>(i)); break;
        default: out.push_back(out[i]); break;
      }
    }
    return out;
  }
  return replacements[rng() % std::size(replacements)];
}

TEST(FrontendProperties, GrammarNeverLooserThanSchema) {
  testing::RandomSchemaGenerator gen(2024);
  std::mt19937_64 rng(11);
  int accepted_mutants = 0, rejected_mutants = 0;
  for (int i = 0; i < 200; ++i) {
    ordered_json s = gen.schema();
    testing::LanguageChecker g(json_schema_to_gbnf(s), /*with_oracle=*/false);
    SchemaDocument doc(s);
    SchemaValidator validator(doc);
    for (int k = 0; k < 10; ++k) {
      ordered_json v = mutate(gen.instance(s), rng);
      if (g.accepts(v.dump())) {
        ++accepted_mutants;
        EXPECT_TRUE(validator.valid(v, SchemaRef{&s, ""})) << s.dump() << "\naccepted invalid: " << v.dump();
      } else {
        ++rejected_mutants;
      }
    }
  }
  EXPECT_GT(rejected_mutants, 0);
  EXPECT_GT(accepted_mutants, 0);
}

TEST(FrontendProperties, JunkSchemasFailCleanly) {
  std::mt19937_64 rng(5);
  static const char* keys[] = {"type", "properties", "items", "anyOf", "allOf", "oneOf", "$ref", "enum", "const",
                               "required", "additionalProperties", "pattern", "minLength", "maximum",
                               "prefixItems", "format", "patternProperties", "not", "$defs", "x"};
  static const ordered_json values[] = {nullptr, true, false, -1, 0, 3, 1.5, 1e300, "string", "#", "#/$defs/a",
                                        "[", "(a", "integer", ordered_json::array(), ordered_json::object(),
                                        ordered_json::array({"a", 1}), ordered_json::array({ordered_json::object()})};
  std::function<ordered_json(int)> junk = [&](int depth) -> ordered_json {
    if (depth > 4 || rng() % 4 == 0) return values[rng() % std::size(values)];
    ordered_json o = ordered_json::object();
    for (size_t n = rng() % 4; n > 0; --n) {
      const char* k = keys[rng() % std::size(keys)];
      o[k] = rng() % 2 ? junk(depth + 1) : ordered_json::array({junk(depth + 1), junk(depth + 1)});
    }
    if (rng() % 3 == 0) o["$defs"] = {{"a", junk(depth + 1)}};
    return o;
  };
  int compiled = 0, errors = 0, wrong_type = 0;
  for (int i = 0; i < 2000; ++i) {
    ordered_json s = junk(0);
    try {
      std::string g = json_schema_to_gbnf(s);
      CompiledGrammar::from_gbnf(g, nullptr);  // what we emit always parses
      ++compiled;
    } catch (const vllm::Error& e) {
      EXPECT_NE(e.kind(), ErrorKind::kInternal) << s.dump() << ": " << e.what();
      ++errors;
      wrong_type += std::string(e.what()).find("value of the wrong type") != std::string::npos;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a vllm::Error: " << e.what() << "\n" << s.dump();
    }
  }
  EXPECT_GT(compiled, 0);
  EXPECT_GT(errors, 0);
  // Most malformed values are caught by a check that names the keyword.
  EXPECT_LT(wrong_type, errors / 10) << wrong_type << " of " << errors;
}

}  // namespace
}  // namespace vllm::structured
