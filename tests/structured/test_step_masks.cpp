// StepMasks: the masks it fills, beside the caller (overlap) or in start(), are exactly the
// matchers' own, for every request of every step, and a request not started has none.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "vllm/engine/step_masks.h"
#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/token_vocabulary.h"

namespace vllm {
namespace {

TEST(StepMasks, FillsEachRequestsOwnMaskWithOrWithoutOverlap) {
  // 9 tokens, the last one EOS; after each "a" or "b", "}" may end the output.
  auto vocab = structured::TokenVocabulary::from_token_bytes({"a", "b", "ab", "{", "}", "\"", " ", "ba", "<eos>"}, {}, {8});
  auto grammar = structured::CompiledGrammar::from_gbnf(R"(root ::= "{" ("a" | "b")+ "}")", vocab);
  const int64_t V = 9;
  for (bool overlap : {false, true}) {
    // 40 requests in different states: after "{", then some a/b tokens.
    std::vector<std::unique_ptr<Request>> requests;
    for (int i = 0; i < 40; ++i) {
      auto r = std::make_unique<Request>();
      r->seq_id = static_cast<uint64_t>(i);
      r->matcher.emplace(grammar);
      if (i % 5 != 0) {
        EXPECT_TRUE(r->matcher->accept_token(3));
        for (int k = 0; k < i % 3; ++k) EXPECT_TRUE(r->matcher->accept_token(k % 2 == 0 ? 0 : 7));
      }
      requests.push_back(std::move(r));
    }
    StepMasks masks(overlap);
    for (int step = 0; step < 3; ++step) {
      std::vector<Request*> started;
      for (size_t i = static_cast<size_t>(step); i < requests.size(); i += 2) started.push_back(requests[i].get());
      masks.start(started, V);
      masks.wait();
      for (size_t i = 0; i < requests.size(); ++i) {
        const uint32_t* got = masks.mask_of(requests[i].get());
        if ((i - static_cast<size_t>(step)) % 2 != 0 || i < static_cast<size_t>(step)) {
          EXPECT_EQ(got, nullptr) << i;
          continue;
        }
        ASSERT_NE(got, nullptr) << i;
        std::vector<uint32_t> want(requests[i]->matcher->mask_words());
        requests[i]->matcher->fill_next_token_bitmask(want.data());
        for (size_t w = 0; w < want.size(); ++w) EXPECT_EQ(got[w], want[w]) << "request " << i << " word " << w;
        // Sanity: the state is what the test made ("{" first, then a/b or "}").
        const bool allows_open = (got[0] >> 3) & 1u;
        EXPECT_EQ(allows_open, i % 5 == 0) << i;
      }
    }
    masks.start({}, V);  // a step without constrained rows
    masks.wait();
    EXPECT_EQ(masks.mask_of(requests[0].get()), nullptr);
    masks.start({requests[1].get(), requests[2].get()}, V);  // destroyed while it may be filling
  }
}

// The engine defers a sampled token's accept (Request::pending_accept) to the next fill: the
// fill gives the matcher its token first and fills the mask of the state after it; a token the
// matcher refuses leaves an empty mask (its draw then aborts the request), and nothing is taken twice.
TEST(StepMasks, TheFillTakesEachRequestsPendingTokenFirst) {
  auto vocab = structured::TokenVocabulary::from_token_bytes({"a", "b", "ab", "{", "}", "\"", " ", "ba", "<eos>"}, {}, {8});
  auto grammar = structured::CompiledGrammar::from_gbnf(R"(root ::= "{" ("a" | "b")+ "}")", vocab);
  for (bool overlap : {false, true}) {
    Request opened, refused, none;
    for (Request* r : {&opened, &refused, &none}) r->matcher.emplace(grammar);
    opened.pending_accept = 3;   // "{": allowed at the start
    refused.pending_accept = 4;  // "}": not allowed at the start
    StepMasks masks(overlap);
    masks.start({&opened, &refused, &none}, 9);
    masks.wait();
    EXPECT_EQ(opened.pending_accept, -1);
    EXPECT_EQ(refused.pending_accept, -1);
    // After "{": a, b, ab, ba; not "{" again.
    const uint32_t after_open = masks.mask_of(&opened)[0];
    EXPECT_EQ(after_open, (1u << 0) | (1u << 1) | (1u << 2) | (1u << 7)) << overlap;
    EXPECT_EQ(masks.mask_of(&refused)[0], 0u) << overlap;
    EXPECT_EQ(masks.mask_of(&none)[0], 1u << 3) << overlap;
    // A second fill without a new pending token leaves the state where it is.
    masks.start({&opened}, 9);
    masks.wait();
    EXPECT_EQ(masks.mask_of(&opened)[0], after_open) << overlap;
  }
}

// all() is every started mask in start()'s order, words() words each: what the device sampler
// takes without a copy.
TEST(StepMasks, AllIsEveryStartedMaskInOrder) {
  auto vocab = structured::TokenVocabulary::from_token_bytes({"a", "b", "ab", "{", "}", "\"", " ", "ba", "<eos>"}, {}, {8});
  auto grammar = structured::CompiledGrammar::from_gbnf(R"(root ::= "{" ("a" | "b")+ "}")", vocab);
  for (bool overlap : {false, true}) {
    for (int n : {3, 40}) {
      std::vector<std::unique_ptr<Request>> requests;
      std::vector<Request*> rows;
      for (int i = 0; i < n; ++i) {
        auto r = std::make_unique<Request>();
        r->matcher.emplace(grammar);
        if (i % 2) {
          EXPECT_TRUE(r->matcher->accept_token(3));  // after "{"
        }
        rows.push_back(r.get());
        requests.push_back(std::move(r));
      }
      StepMasks masks(overlap);
      masks.start(rows, 9);
      masks.wait();
      ASSERT_EQ(masks.all().size(), static_cast<size_t>(n) * masks.words());
      for (int i = 0; i < n; ++i) {
        EXPECT_EQ(masks.mask_of(rows[static_cast<size_t>(i)]), masks.all().data() + i * masks.words());
        std::vector<uint32_t> want(rows[static_cast<size_t>(i)]->matcher->mask_words());
        rows[static_cast<size_t>(i)]->matcher->fill_next_token_bitmask(want.data());
        for (size_t w = 0; w < want.size(); ++w) EXPECT_EQ(masks.all()[i * masks.words() + w], want[w]) << i;
      }
    }
  }
}

}  // namespace
}  // namespace vllm
