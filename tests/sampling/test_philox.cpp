// The sampler's counter-based generator: Philox4x32-10 against Random123's known-answer vectors
// (kat_vectors, philox4x32 with 10 rounds), the uniform draw's range and moments, and the
// draw a sampled row takes (seeded: its seed alone; unseeded: the engine's seed and its own
// stream).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "vllm/sampling/philox.h"
#include "vllm/sampling/sampler.h"

using vllm::Philox4x32;
using vllm::philox4x32_10;
using vllm::philox_uniform;

namespace {

void expect_philox(Philox4x32 counter, uint32_t k0, uint32_t k1, Philox4x32 want) {
  const Philox4x32 got = philox4x32_10(counter, k0, k1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], want.v[i]) << "word " << i;
}

}  // namespace

TEST(Philox, MatchesRandom123KnownAnswers) {
  expect_philox({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  expect_philox({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
                {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  expect_philox({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
                {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST(Philox, UniformDrawsAreInRangeAndUniform) {
  const int n = 200000;
  double sum = 0.0, sum_sq = 0.0, lo = 1.0, hi = 0.0;
  int buckets[10] = {};
  for (int i = 0; i < n; ++i) {
    const double u = philox_uniform(42, 7, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    buckets[static_cast<int>(u * 10)]++;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.003);          // sd of the mean: 0.29 / sqrt(n) = 0.00065
  EXPECT_NEAR(sum_sq / n, 1.0 / 3.0, 0.003);  // E[u^2]
  EXPECT_LT(lo, 1e-4);
  EXPECT_GT(hi, 1 - 1e-4);
  // Chi-square over 10 equal buckets, 9 degrees of freedom: 27.9 is the 0.001 critical value.
  double chi = 0.0;
  for (int b : buckets) chi += (b - n / 10.0) * (b - n / 10.0) / (n / 10.0);
  EXPECT_LT(chi, 27.9);
}

TEST(Philox, EveryWordOfTheCounterAndKeyMatters) {
  std::set<double> seen;
  const double base = philox_uniform(1, 2, 3);
  for (const double u : {philox_uniform(1, 2, 3 + (uint64_t{1} << 32)), philox_uniform(1, 2 + (uint64_t{1} << 32), 3),
                         philox_uniform(1, 3, 3), philox_uniform(1, 2, 4), philox_uniform(2, 2, 3),
                         philox_uniform(1 + (uint64_t{1} << 32), 2, 3)}) {
    EXPECT_NE(u, base);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(philox_uniform(1, 2, 3), base);  // a pure function
}

TEST(SamplingDraw, SeededRowsDrawByTheirSeedAndPositionAlone) {
  vllm::SamplingParams seeded;
  seeded.seed = 99;
  seeded.finalize();
  vllm::SamplingRow a{&seeded};
  a.sequence_id = 5;
  a.draw_index = 17;
  vllm::SamplingRow b = a;
  b.sequence_id = 6;  // another sequence (a fork, or another request with the seed)
  const vllm::SamplingDraw da = vllm::sampling_draw(a, 1), db = vllm::sampling_draw(b, 2);
  EXPECT_EQ(da.key, 99u);
  EXPECT_EQ(da.stream, 0u);
  EXPECT_EQ(da.index, 17u);
  EXPECT_EQ(da.key, db.key);
  EXPECT_EQ(da.stream, db.stream);
  EXPECT_EQ(da.index, db.index);

  vllm::SamplingParams unseeded;
  unseeded.finalize();
  vllm::SamplingRow c{&unseeded};
  c.sequence_id = 5;
  c.draw_index = 17;
  const vllm::SamplingDraw dc = vllm::sampling_draw(c, 1234);
  EXPECT_EQ(dc.key, 1234u);             // the engine's seed
  EXPECT_EQ(dc.stream >> 63, 1u);        // never a seeded request's stream
  EXPECT_EQ(dc.stream & ~(uint64_t{1} << 63), 5u);
  c.sequence_id = 6;
  EXPECT_NE(vllm::sampling_draw(c, 1234).stream, dc.stream);
}
