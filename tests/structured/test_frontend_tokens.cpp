// Front-end grammars under a real tokenizer's masks (tiny-phi, GPT-2's byte-level BPE): random
// schemas' instances go through token by token with every token allowed at its step and the
// stop token at the end; random masked generation only completes with values the schema
// accepts.
#include <gtest/gtest.h>

#include <random>

#include "random_schema.h"
#include "structured_test_util.h"
#include "vllm/structured/json_schema.h"
#include "vllm/structured/json_schema_validate.h"

namespace vllm::structured {
namespace {

using nlohmann::ordered_json;

TEST(FrontendTokens, InstancesWalkAndGenerationIsValid) {
  const test::LoadedTokenizer& lt = test::load_tokenizer("tiny-phi");
  const int32_t eos = lt.vocab->stop_token_ids().at(0);
  std::vector<uint32_t> mask(lt.vocab->mask_words());
  testing::RandomSchemaGenerator gen(31337);
  std::mt19937_64 rng(1);
  size_t walked_tokens = 0, completed = 0;
  for (int i = 0; i < 12; ++i) {
    ordered_json s = gen.schema();
    JsonSchemaOptions opts;
    opts.disable_any_whitespace = i % 2 == 1;
    auto g = CompiledGrammar::from_gbnf(json_schema_to_gbnf(s, opts), lt.vocab);
    // Instances, token by token.
    for (int k = 0; k < 3; ++k) {
      const std::string text = gen.instance(s).dump(opts.disable_any_whitespace ? -1 : (k == 2 ? 2 : -1));
      const std::vector<int32_t> ids = lt.tokenizer->encode(text, false);
      GrammarMatcher m(g);
      for (size_t t = 0; t < ids.size(); ++t) {
        m.fill_next_token_bitmask(mask.data());
        ASSERT_TRUE(test::bit(mask, ids[t])) << s.dump() << "\n" << text << "\ntoken " << t;
        ASSERT_TRUE(m.accept_token(ids[t]));
      }
      walked_tokens += ids.size();
      m.fill_next_token_bitmask(mask.data());
      EXPECT_TRUE(test::bit(mask, eos)) << text;
    }
    // Random generation under the mask: whatever completes is valid for the schema.
    SchemaDocument doc(s);
    SchemaValidator validator(doc);
    for (int k = 0; k < 3; ++k) {
      GrammarMatcher m(g);
      std::string out;
      for (int step = 0; step < 200 && !m.is_terminated(); ++step) {
        m.fill_next_token_bitmask(mask.data());
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < static_cast<int32_t>(lt.vocab->size()); ++id)
          if (test::bit(mask, id)) allowed.push_back(id);
        ASSERT_FALSE(allowed.empty()) << s.dump() << "\n" << out;
        // Prefer ending when possible, so that most runs complete.
        int32_t id = test::bit(mask, eos) && rng() % 2 ? eos : allowed[rng() % allowed.size()];
        ASSERT_TRUE(m.accept_token(id));
        if (id != eos) out += lt.vocab->token_bytes(id);
      }
      if (!m.is_terminated()) continue;
      ++completed;
      ordered_json v = ordered_json::parse(out);  // throws (fails the test) if not JSON
      EXPECT_TRUE(validator.valid(v, SchemaRef{&s, ""})) << s.dump() << "\ngenerated: " << out;
    }
  }
  EXPECT_GT(walked_tokens, 200u);
  EXPECT_GT(completed, 5u);
}

}  // namespace
}  // namespace vllm::structured
