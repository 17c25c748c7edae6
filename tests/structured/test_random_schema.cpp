// Random schemas from the supported keywords (random_schema.h) all compile; a sample of each
// grammar's short strings is checked to be valid JSON, so a compiled grammar never admits text
// that is not JSON. The schemas that were the costliest to compile for a 128k vocabulary stay
// well inside the compile budget.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include "language_checker.h"
#include "random_schema.h"
#include "structured_test_util.h"
#include "vllm/structured/json_schema.h"
#include "vllm/structured/limits.h"

namespace vllm::structured {
namespace {

TEST(RandomSchemas, TwoHundredCompile) {
  testing::RandomSchemaGenerator gen(20240611);
  size_t total_bytes = 0;
  for (int i = 0; i < 200; ++i) {
    nlohmann::ordered_json s = gen.schema();
    std::string g;
    ASSERT_NO_THROW(g = json_schema_to_gbnf(s)) << s.dump();
    ASSERT_NO_THROW(testing::LanguageChecker{g}) << s.dump() << "\n" << g;
    total_bytes += g.size();
    // Compact and whitespace-free forms compile too.
    JsonSchemaOptions o;
    o.disable_any_whitespace = true;
    o.disable_additional_properties = i % 2 == 0;
    ASSERT_NO_THROW(json_schema_to_gbnf(s, o)) << s.dump();
  }
  EXPECT_GT(total_bytes, 0u);
}

TEST(RandomSchemas, InstancesAccepted) {
  testing::RandomSchemaGenerator gen(99);
  int checked = 0;
  for (int i = 0; i < 200; ++i) {
    nlohmann::ordered_json s = gen.schema();
    testing::LanguageChecker g(json_schema_to_gbnf(s), /*with_oracle=*/false);
    for (int k = 0; k < 5; ++k) {
      nlohmann::ordered_json v = gen.instance(s);
      EXPECT_TRUE(g.accepts(v.dump())) << s.dump() << "\n" << v.dump();
      EXPECT_TRUE(g.accepts(v.dump(2))) << s.dump() << "\n" << v.dump(2);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 1000);
}

// Random schemas numbered as structured_bench --schemas and constrained_generation_dump number
// them (schema i: the first of generator seed i * 7919 + 1) that were the costliest to compile
// for Llama 3's 128k-token vocabulary: 5 went past limits::kMaxCompileMoves (2^26 parser
// moves) and 54, 56 and 102 took 40 to 65 million, because every JSON string of a grammar walked
// the whole vocabulary again; 150 (a format: email) is the costliest since strings are shared.
// Each now takes 3 to 6 million: a quarter of the limit is a generous bound that still catches a
// return of that cost, whatever the machine's speed. Masks along an instance match brute force.
TEST(RandomSchemas, CostliestCompileWithinAQuarterOfTheBudgetForLlama3) {
  const test::LoadedTokenizer& lt = test::load_tokenizer("tiny-llama3");
  const TokenVocabulary& v = *lt.vocab;
  CompileOptions o;
  o.max_moves = limits::kMaxCompileMoves / 4;
  for (int i : {5, 54, 56, 102, 150}) {
    testing::RandomSchemaGenerator gen(static_cast<uint64_t>(i) * 7919 + 1);
    const nlohmann::ordered_json s = gen.schema();
    std::shared_ptr<const CompiledGrammar> g;
    ASSERT_NO_THROW(g = CompiledGrammar::from_gbnf(json_schema_to_gbnf(s), lt.vocab, o)) << "random schema " << i;
    EXPECT_LE(g->stats().classify_moves, o.max_moves) << "random schema " << i;
    std::string doc;  // an instance inside the grammar (it is tighter than the schema on a few)
    for (int k = 0; k < 5 && doc.empty(); ++k) {
      std::string d = gen.instance(s).dump();
      GrammarMatcher probe(g);
      if (probe.accept_bytes(d) && probe.can_terminate()) doc = std::move(d);
    }
    ASSERT_FALSE(doc.empty()) << "random schema " << i;
    const std::vector<int32_t> ids = lt.tokenizer->encode(doc, false);
    GrammarMatcher m(g);
    std::vector<uint32_t> fast(v.mask_words());
    int checked = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k % 7 == 0 && checked < 4) {
        ++checked;
        m.fill_next_token_bitmask(fast.data());
        EXPECT_EQ(fast, test::brute_mask(m, v, v.stop_token_ids())) << "random schema " << i << " token " << k << " of " << doc;
      }
      ASSERT_TRUE(m.accept_token(ids[k])) << "random schema " << i << " token " << k << " of " << doc;
    }
    EXPECT_TRUE(m.can_terminate()) << doc;
  }
}

TEST(RandomSchemas, Deterministic) {
  testing::RandomSchemaGenerator a(7), b(7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.schema(), b.schema());
}

}  // namespace
}  // namespace vllm::structured
