// Statistical tests: with fixed seeds, >= 20,000 draws per case, the sampler's token counts
// must fit the distribution a plain float64 reference of vLLM's pipeline predicts
// (chi-square p > 0.001), and tokens the reference gives probability 0 must never appear.
#include <gtest/gtest.h>

#include <random>

#include "sampling_test_util.h"
#include "vllm/core/thread_pool.h"

using namespace sampling_test;
using vllm::SamplingParams;

namespace {

constexpr int64_t kDraws = 20000;

const std::vector<float> kLogits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -0.5f, 1.5f, -2.0f};

SamplingParams make(double temperature, int top_k = 0, double top_p = 1.0, double min_p = 0.0) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.finalize();
  return p;
}

void check(const std::vector<float>& logits, const SamplingParams& p, uint64_t seed, bool seeded_rows = false) {
  vllm::ThreadPool pool(2);
  vllm::Sampler sampler(seed, &pool);
  auto counts = draw_counts(sampler, logits, p, kDraws, 1000, seeded_rows, seed * 7919);
  expect_distribution(counts, reference_distribution(logits, p), kDraws);
}

std::vector<float> random_logits(size_t n, uint64_t seed, float scale) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

}  // namespace

TEST(ChiSquare, SurvivalFunctionKnownValues) {
  EXPECT_NEAR(chi_square_sf(3.841458820694124, 1), 0.05, 1e-9);
  EXPECT_NEAR(chi_square_sf(18.307038053275146, 10), 0.05, 1e-9);
  EXPECT_NEAR(chi_square_sf(6.634896601021214, 1), 0.01, 1e-9);
  EXPECT_NEAR(chi_square_sf(124.34211340400407, 100), 0.05, 1e-9);
  for (double x : {0.5, 2.0, 7.0, 30.0}) EXPECT_NEAR(chi_square_sf(x, 2), std::exp(-x / 2), 1e-12);
}

TEST(SamplerStats, Temperature) {
  check(kLogits, make(1.0), 11);
  check(kLogits, make(0.5), 12);
  check(kLogits, make(1.7), 13);
  check(kLogits, make(0.05), 14);  // very peaked: the top token almost always
}

TEST(SamplerStats, TopK) {
  check(kLogits, make(1.0, 3), 21);
  check(kLogits, make(0.7, 1), 22);  // top_k = 1 is greedy in effect
  check(kLogits, make(1.3, 9), 23);
}

TEST(SamplerStats, TopKKeepsTiesAtTheBoundary) {
  std::vector<float> tied = {2.0f, 1.0f, 1.0f, 1.0f, 0.0f, -1.0f};
  SamplingParams p = make(1.0, 2);
  auto probs = reference_distribution(tied, p);
  EXPECT_GT(probs[3], 0.0);  // vLLM keeps every logit equal to the k-th
  EXPECT_EQ(probs[4], 0.0);
  check(tied, p, 24);
}

TEST(SamplerStats, TopP) {
  check(kLogits, make(1.0, 0, 0.6), 31);
  check(kLogits, make(0.9, 0, 0.3), 32);
  check(kLogits, make(1.5, 0, 0.95), 33);
}

TEST(SamplerStats, TopPTiesGoToLowerIds) {
  // Four equal logits share 0.25 each; top_p 0.6 keeps the three lowest ids of them.
  std::vector<float> tied = {0.0f, 0.0f, 0.0f, 0.0f};
  SamplingParams p = make(1.0, 0, 0.6);
  auto probs = reference_distribution(tied, p);
  EXPECT_EQ(probs, (std::vector<double>{1.0 / 3, 1.0 / 3, 1.0 / 3, 0.0}));
  check(tied, p, 34);
}

TEST(SamplerStats, MinP) {
  check(kLogits, make(1.0, 0, 1.0, 0.15), 41);
  check(kLogits, make(2.0, 0, 1.0, 0.3), 42);
}

TEST(SamplerStats, Combinations) {
  check(kLogits, make(0.8, 6, 0.85, 0.05), 51);
  check(kLogits, make(1.2, 5, 0.7), 52);
  check(kLogits, make(1.0, 0, 0.8, 0.1), 53);  // min_p first changes the mass top-p sees
  check(kLogits, make(1.5, 4, 1.0, 0.2), 54);
}

TEST(SamplerStats, LargeVocabularyPaths) {
  // Block-wise inverse CDF over a whole vocabulary, the weighted quickselect for top-p
  // without top-k, and top-k candidates with top-p; bins of small expectation are pooled.
  auto logits = random_logits(3000, 5, 2.0f);
  check(logits, make(1.3), 61);
  check(logits, make(1.0, 0, 0.9), 62);
  check(logits, make(0.7, 40, 0.8), 63);
  check(logits, make(1.0, 3000 - 1, 0.5, 0.01), 64);  // k close to the vocabulary: nth_element
}

TEST(SamplerStats, MinPDenseAndSparsePaths) {
  // Few survivors of min_p become a candidate list; many stay a dense row.
  auto logits = random_logits(3000, 8, 2.0f);
  check(logits, make(1.0, 0, 1.0, 0.3), 81);
  check(logits, make(1.0, 0, 0.7, 0.2), 82);
  // 40 strong tokens over a long weak tail: min_p 1e-5 keeps > 4096 tokens (dense path).
  std::vector<float> head_tail = random_logits(8000, 9, 1.0f);
  for (size_t i = 0; i < 40; ++i) head_tail[i * 197] = 6.0f + 0.05f * static_cast<float>(i);
  check(head_tail, make(1.0, 0, 0.9, 1e-5), 83);
  check(head_tail, make(0.8, 0, 1.0, 1e-5), 84);
}

TEST(SamplerStats, SeededRowsDrawTheRightDistribution) {
  check(kLogits, make(1.0, 0, 0.9), 71, /*seeded_rows=*/true);
  check(random_logits(500, 6, 1.0f), make(0.9, 50), 72, /*seeded_rows=*/true);
}
