#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "vllm/sampling/selection.h"
#include "vllm/sampling/vec_math.h"

using vllm::selection::ranks_before;
using vllm::selection::ScoredToken;

namespace {

std::vector<ScoredToken> sorted_reference(const std::vector<float>& x) {
  std::vector<ScoredToken> all;
  for (size_t i = 0; i < x.size(); ++i) all.push_back({x[i], static_cast<int32_t>(i)});
  std::sort(all.begin(), all.end(), ranks_before);
  return all;
}

// Values drawn from a small set so ties are everywhere.
std::vector<float> tied_values(std::mt19937& rng, size_t n, int distinct) {
  std::uniform_int_distribution<int> pick(0, distinct - 1);
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(pick(rng)) * (6.0f / static_cast<float>(distinct)) - 3.0f;
  return x;
}

}  // namespace

TEST(VecMath, ExpMatchesStdExp) {
  double worst = 0.0;
  for (double x = -87.0; x <= 88.0; x += 0.001) {
    float xf = static_cast<float>(x);
    double want = std::exp(static_cast<double>(xf));
    double got = vllm::vecmath::exp_f(xf);
    worst = std::max(worst, std::abs(got - want) / want);
  }
  EXPECT_LT(worst, 3e-7);  // ~2.5 ulp of float
  EXPECT_EQ(vllm::vecmath::exp_f(0.0f), 1.0f);
  EXPECT_EQ(vllm::vecmath::exp_f(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(vllm::vecmath::exp_f(-100.0f), 0.0f);
  EXPECT_EQ(vllm::vecmath::exp_f(std::nanf("")), 0.0f);
}

TEST(VecMath, RowKernelsMatchScalarBitForBit) {
  // exp_shifted/sum run as an AVX2 or AVX-512 clone where the CPU has them; they must give
  // exactly what the plain scalar code gives, or seeded sampling would depend on the machine.
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 5);
  std::vector<float> x(10007), out(10007);
  for (auto& v : x) v = nd(rng);
  x[3] = -std::numeric_limits<float>::infinity();
  double total = vllm::vecmath::exp_shifted(x.data(), 10007, 4.0f, 0.7f, out.data());
  double acc[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(out[i], vllm::vecmath::exp_f((x[i] - 4.0f) * 0.7f)) << i;
    if (i < 10004) acc[i % 4] += out[i];
  }
  acc[0] += static_cast<double>(out[10004]) + static_cast<double>(out[10005]) + static_cast<double>(out[10006]);
  EXPECT_EQ(total, (acc[0] + acc[1]) + (acc[2] + acc[3]));
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(vllm::vecmath::sum(out.data(), 10007), total);
  std::vector<double> sums(40);
  double blocks_total = vllm::vecmath::block_sums(out.data(), 10007, 256, sums.data());
  double check = 0.0;
  for (int64_t b = 0; b < 40; ++b) {
    EXPECT_EQ(sums[static_cast<size_t>(b)],
              vllm::vecmath::sum(out.data() + b * 256, std::min<int64_t>(256, 10007 - b * 256)));
    check += sums[static_cast<size_t>(b)];
  }
  EXPECT_EQ(blocks_total, check);
}

TEST(VecMath, MaxAndArgmaxFirst) {
  std::vector<float> x = {1, 5, 3, 5, -2, 5};
  EXPECT_EQ(vllm::vecmath::row_max(x.data(), 6), 5.0f);
  EXPECT_EQ(vllm::vecmath::argmax_first(x.data(), 6), 1);
  std::vector<float> big(1000, -1.0f);
  big[999] = 2.0f;
  big[517] = 2.0f;
  big[3] = std::nanf("");
  EXPECT_EQ(vllm::vecmath::argmax_first(big.data(), 1000), 517);
  std::vector<float> masked(37, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(vllm::vecmath::argmax_first(masked.data(), 37), 0);
}

TEST(Selection, TopNMatchesFullSort) {
  std::mt19937 rng(1);
  for (size_t n : {1u, 7u, 100u, 1000u, 5000u}) {
    for (int distinct : {3, 50, 100000}) {
      auto x = tied_values(rng, n, distinct);
      if (distinct == 100000) {
        std::normal_distribution<float> nd(0, 3);
        for (auto& v : x) v = nd(rng);
      }
      auto ref = sorted_reference(x);
      std::vector<ScoredToken> got;
      for (int64_t k : {int64_t{1}, int64_t{5}, int64_t{64}, static_cast<int64_t>(n), static_cast<int64_t>(n) + 3}) {
        vllm::selection::top_n(x.data(), static_cast<int64_t>(n), k, got);
        ASSERT_EQ(got.size(), std::min<size_t>(static_cast<size_t>(k), n));
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(got[i].id, ref[i].id) << "n=" << n << " k=" << k << " i=" << i;
          EXPECT_EQ(got[i].value, ref[i].value);
        }
      }
    }
  }
}

TEST(Selection, TopKCandidatesKeepTiesBothPaths) {
  std::mt19937 rng(2);
  vllm::selection::TopKScratch scratch;
  std::vector<ScoredToken> got;
  for (size_t n : {40u, 1000u, 20000u}) {
    for (int distinct : {4, 300, 0}) {
      std::vector<float> x;
      if (distinct) {
        x = tied_values(rng, n, distinct);
      } else {
        std::normal_distribution<float> nd(0, 2);
        for (size_t i = 0; i < n; ++i) x.push_back(nd(rng));
      }
      x[n / 3] = std::nanf("");
      x[n / 2] = -std::numeric_limits<float>::infinity();
      auto clean = x;
      for (auto& v : clean)
        if (std::isnan(v)) v = -std::numeric_limits<float>::infinity();
      auto sorted = clean;
      std::sort(sorted.begin(), sorted.end(), std::greater<float>());
      for (int64_t k : {int64_t{1}, int64_t{5}, int64_t{50}, int64_t{128}, int64_t{129}, int64_t{700},
                        static_cast<int64_t>(n) - 1, static_cast<int64_t>(n)}) {
        if (k > static_cast<int64_t>(n)) continue;
        const float kth = sorted[static_cast<size_t>(k - 1)];
        EXPECT_EQ(vllm::selection::kth_largest(x.data(), static_cast<int64_t>(n), k, scratch), kth);
        std::set<int32_t> want;
        for (size_t i = 0; i < n; ++i)
          if (clean[i] >= kth && clean[i] > -std::numeric_limits<float>::infinity()) want.insert(static_cast<int32_t>(i));
        float max = vllm::selection::top_k_candidates(x.data(), static_cast<int64_t>(n), k, got, scratch);
        std::set<int32_t> have;
        for (const auto& t : got) {
          have.insert(t.id);
          EXPECT_EQ(t.value, x[static_cast<size_t>(t.id)]);
        }
        EXPECT_EQ(have.size(), got.size()) << "duplicates";
        EXPECT_EQ(have, want) << "n=" << n << " distinct=" << distinct << " k=" << k;
        EXPECT_EQ(max, sorted[0]);
      }
    }
  }
}

TEST(Selection, TopPCutMatchesSortedCumsum) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    size_t n = 1 + rng() % 400;
    auto x = tied_values(rng, n, trial % 2 ? 6 : 1000);
    std::vector<float> w(n);
    for (size_t i = 0; i < n; ++i) w[i] = std::exp(x[i]);
    double total = 0.0;
    for (float v : w) total += v;
    double p = std::uniform_real_distribution<double>(0.05, 0.999)(rng);
    // Reference: walk in rank order, keep while the mass before is below p * total.
    auto ref = sorted_reference(w);
    std::vector<bool> keep(n, false);
    double before = 0.0;
    for (const auto& t : ref) {
      if (before < p * total) keep[static_cast<size_t>(t.id)] = true;
      before += t.value;
    }
    std::vector<ScoredToken> entries;
    for (size_t i = 0; i < n; ++i) entries.push_back({w[i], static_cast<int32_t>(i)});
    auto cut = vllm::selection::top_p_cut(entries, p * total);
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(cut.keeps(w[i], static_cast<int32_t>(i)), keep[i]) << "trial " << trial << " token " << i;
    std::vector<double> hist;
    std::vector<ScoredToken> bucket;
    auto dense = vllm::selection::top_p_cut_dense(w.data(), static_cast<int64_t>(n), p * total, hist, bucket);
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(dense.keeps(w[i], static_cast<int32_t>(i)), keep[i]) << "dense, trial " << trial << " token " << i;
  }
}

TEST(Selection, TopPCutDenseSkipsZeroWeights) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0, 3);
  std::vector<float> w(150000);
  for (auto& v : w) v = std::exp(nd(rng) - 15.0f);
  for (size_t i = 0; i < w.size(); i += 3) w[i] = 0.0f;  // masked tokens
  double total = 0.0;
  for (float v : w) total += v;
  for (double p : {0.01, 0.5, 0.9, 0.999}) {
    auto ref = sorted_reference(w);
    std::vector<bool> keep(w.size(), false);
    double before = 0.0;
    for (const auto& t : ref) {
      if (t.value > 0.0f && before < p * total) keep[static_cast<size_t>(t.id)] = true;
      before += t.value;
    }
    std::vector<double> hist;
    std::vector<ScoredToken> bucket;
    auto cut = vllm::selection::top_p_cut_dense(w.data(), static_cast<int64_t>(w.size()), p * total, hist, bucket);
    size_t mismatches = 0;
    for (size_t i = 0; i < w.size(); ++i)
      mismatches += (w[i] > 0.0f && cut.keeps(w[i], static_cast<int32_t>(i))) != keep[i];
    EXPECT_EQ(mismatches, 0u) << "top_p " << p;
  }
}

TEST(Selection, TopPCutAllEqualWeights) {
  std::vector<ScoredToken> e;
  for (int i = 0; i < 10; ++i) e.push_back({0.5f, 9 - i});
  auto cut = vllm::selection::top_p_cut(e, 0.35 * 5.0);  // 3.5 tokens' worth: keep 4
  int kept = 0;
  for (int i = 0; i < 10; ++i) kept += cut.keeps(0.5f, i);
  EXPECT_EQ(kept, 4);
  EXPECT_TRUE(cut.keeps(0.5f, 3));
  EXPECT_FALSE(cut.keeps(0.5f, 4));
}
