// The GPU's sampler (CudaBackend::sample_tokens) against the rule it implements
// (DeviceSamplingRow), computed here in double precision on the host: greedy rows give the
// argmax; a row drawn at N evenly spaced draws u = (i + 1/2) / N gives each token N times its
// probability to within one draw (the inverse CDF of a stratified sample), for temperature,
// top-k, top-p (ties included) and min-p, over vocabularies from 37 to 151,936 tokens; random
// draws pass a chi-square test; a row gives the same token alone or in a batch of 64; a bitmask
// is never crossed. Skips itself when no CUDA device is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "vllm/backends/cuda/cuda_backend.h"
#include "vllm/core/dtype.h"
#include "vllm/sampling/philox.h"

using namespace vllm;

namespace {

bool have_gpu() {
  static const int n = cuda_device_count();
  return n > 0;
}

float round_to(float v, DType t) {
  switch (t) {
    case DType::F16: return f16_to_f32(f32_to_f16(v));
    case DType::BF16: return bf16_to_f32(f32_to_bf16(v));
    default: return v;
  }
}

bool allowed(const std::vector<uint32_t>& mask, int64_t i) {
  return mask.empty() || ((mask[static_cast<size_t>(i >> 5)] >> (i & 31)) & 1u);
}

// The rule, in double precision: each token's probability.
std::vector<double> expected_probs(const std::vector<float>& logits, const DeviceSamplingRow& p,
                                   const std::vector<uint32_t>& mask) {
  const int64_t V = static_cast<int64_t>(logits.size());
  std::vector<double> x(logits.size());
  for (int64_t i = 0; i < V; ++i) x[i] = allowed(mask, i) ? logits[i] : -INFINITY;
  const double mx = *std::max_element(x.begin(), x.end());
  std::vector<double> w(x.size(), 0.0);
  double kth = -INFINITY;
  if (p.top_k > 0 && p.top_k < V) {
    std::vector<double> sorted = x;
    std::nth_element(sorted.begin(), sorted.begin() + (p.top_k - 1), sorted.end(), std::greater<>());
    kth = sorted[static_cast<size_t>(p.top_k - 1)];
  }
  for (int64_t i = 0; i < V; ++i) {
    if (x[i] < kth || x[i] == -INFINITY) continue;
    const double wi = std::exp((x[i] - mx) * p.inv_temperature);
    if (wi >= p.min_p) w[i] = wi;
  }
  if (p.top_p < 1.0f) {
    std::vector<int64_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return w[a] > w[b]; });
    const double target = p.top_p * std::accumulate(w.begin(), w.end(), 0.0);
    double before = 0;
    for (int64_t id : order) {
      if (before >= target) {
        w[id] = 0;
        continue;
      }
      before += w[id];
    }
  }
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& v : w) v /= total;
  return w;
}

class DeviceSampler : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device visible";
    gpu_ = std::make_unique<CudaBackend>(GetParam());
  }
  DType dt() const { return GetParam(); }

  // Random logits N(0, spread), rounded to the compute dtype.
  std::vector<float> random_logits(int64_t V, float spread, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> l(static_cast<size_t>(V));
    for (float& v : l) v = round_to(d(rng), dt());
    return l;
  }
  Tensor upload(const std::vector<float>& rows, int64_t V) {
    Tensor h = Tensor::empty({static_cast<int64_t>(rows.size()) / V, V}, DType::F32);
    std::copy(rows.begin(), rows.end(), h.data<float>());
    return gpu_->upload(h, dt());
  }
  // Token counts of a row drawn at N evenly spaced draws.
  std::vector<int64_t> stratified_counts(const Tensor& logits, DeviceSamplingRow p, int64_t N,
                                         const std::vector<uint32_t>& mask = {}) {
    std::vector<DeviceSamplingRow> rows(static_cast<size_t>(N), p);
    for (int64_t i = 0; i < N; ++i) {
      rows[i].u = (static_cast<double>(i) + 0.5) / static_cast<double>(N);
      rows[i].mask_row = mask.empty() ? -1 : 0;
    }
    const std::vector<int32_t> tokens = gpu_->sample_tokens(logits, rows, mask);
    std::vector<int64_t> counts(static_cast<size_t>(logits.size(1)), 0);
    for (int32_t t : tokens) {
      EXPECT_GE(t, 0);
      EXPECT_LT(t, logits.size(1));
      if (t >= 0 && t < logits.size(1)) ++counts[t];
    }
    return counts;
  }
  void expect_stratified(const std::vector<float>& l, DeviceSamplingRow p, const std::vector<uint32_t>& mask = {}) {
    const int64_t V = static_cast<int64_t>(l.size()), N = 8192;
    const std::vector<int64_t> counts = stratified_counts(upload(l, V), p, N, mask);
    const std::vector<double> probs = expected_probs(l, p, mask);
    int64_t bad = 0;
    for (int64_t i = 0; i < V; ++i) {
      const double want = probs[i] * static_cast<double>(N);
      if (std::abs(static_cast<double>(counts[i]) - want) > 1.5 + 1e-4 * static_cast<double>(N)) {
        if (++bad <= 5)
          ADD_FAILURE() << "token " << i << ": " << counts[i] << " draws, expected " << want << " (V " << V
                        << ", T " << 1 / p.inv_temperature << ", top_k " << p.top_k << ", top_p " << p.top_p
                        << ", min_p " << p.min_p << ")";
      }
      if (probs[i] == 0) {
        EXPECT_EQ(counts[i], 0) << "token " << i << " is filtered out";
      }
    }
  }

  std::unique_ptr<CudaBackend> gpu_;
};

DeviceSamplingRow params(float temperature, int top_k, float top_p, float min_p) {
  DeviceSamplingRow p;
  p.inv_temperature = 1.0f / temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

TEST_P(DeviceSampler, GreedyRowsTakeTheFirstArgmax) {
  const int64_t V = 1000, R = 16;
  std::vector<float> all;
  for (int r = 0; r < R; ++r) {
    std::vector<float> l = random_logits(V, 2.0f, 100 + r);
    if (r == 3) l[10] = l[20] = 50.0f;  // a tie: the lower id wins
    if (r == 5) std::fill(l.begin(), l.end(), -INFINITY);  // nothing: token 0
    if (r == 7) l[99] = NAN;                                // NaN counts as -inf
    all.insert(all.end(), l.begin(), l.end());
  }
  Tensor logits = upload(all, V);
  std::vector<DeviceSamplingRow> rows(R);
  for (int r = 0; r < R; ++r) rows[r].logits_row = R - 1 - r, rows[r].greedy = 1;
  const std::vector<int32_t> tokens = gpu_->sample_tokens(logits, rows, {});
  ASSERT_EQ(tokens.size(), static_cast<size_t>(R));
  for (int r = 0; r < R; ++r) {
    const int64_t src = R - 1 - r;
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i) {
      const float v = all[src * V + i], b = all[src * V + best];
      if (!(v != v) && (v > b || b != b)) best = i;
    }
    EXPECT_EQ(tokens[r], best) << "row " << src;
  }
}

TEST_P(DeviceSampler, StratifiedDrawsFollowTheDistribution) {
  for (int64_t V : {37, 1000, 151936}) {
    const std::vector<float> l = random_logits(V, V > 1000 ? 3.0f : 1.5f, static_cast<unsigned>(V));
    expect_stratified(l, params(1.0f, 0, 1.0f, 0.0f));
    expect_stratified(l, params(0.7f, 0, 0.9f, 0.0f));
    expect_stratified(l, params(1.3f, 20, 1.0f, 0.0f));
    expect_stratified(l, params(1.0f, 300, 0.8f, 0.0f));
    expect_stratified(l, params(0.8f, 0, 1.0f, 0.05f));
    expect_stratified(l, params(1.0f, 50, 0.95f, 0.01f));
  }
}

TEST_P(DeviceSampler, TiesAtTheCutAreKeptByIdAsTheHostSamplerKeepsThem) {
  const int64_t V = 100;
  const std::vector<float> flat(V, 0.0f);
  const int64_t N = 8192;
  // top-p 0.5 over 100 equal weights keeps ids 0..49 (the mass before id j is j).
  std::vector<int64_t> c = stratified_counts(upload(flat, V), params(1.0f, 0, 0.5f, 0.0f), N);
  for (int64_t i = 0; i < V; ++i) {
    if (i < 50) {
      EXPECT_NEAR(c[i], N / 50.0, 1.5) << i;
    } else {
      EXPECT_EQ(c[i], 0) << i;
    }
  }
  // top-k keeps every token tied with the k-th largest.
  c = stratified_counts(upload(flat, V), params(1.0f, 10, 1.0f, 0.0f), N);
  for (int64_t i = 0; i < V; ++i) EXPECT_NEAR(c[i], N / 100.0, 1.5) << i;
  // Ties below the cut: one top token, then 99 equal ones; top-p 0.6 keeps the top one and the first ties.
  std::vector<float> l = flat;
  l[42] = 3.0f;
  expect_stratified(l, params(1.0f, 0, 0.6f, 0.0f));
}

TEST_P(DeviceSampler, RandomDrawsPassAChiSquareTest) {
  const int64_t V = 500, N = 50000;
  const std::vector<float> l = random_logits(V, 1.0f, 7);
  const DeviceSamplingRow p = params(1.0f, 100, 0.9f, 0.0f);
  std::vector<DeviceSamplingRow> rows(static_cast<size_t>(N), p);
  for (int64_t i = 0; i < N; ++i) rows[i].u = philox_uniform(99, 0, static_cast<uint64_t>(i));
  const std::vector<int32_t> tokens = gpu_->sample_tokens(upload(l, V), rows, {});
  std::vector<double> counts(V, 0.0);
  for (int32_t t : tokens) counts[t] += 1;
  const std::vector<double> probs = expected_probs(l, p, {});
  double chi2 = 0;
  int df = -1;
  for (int64_t i = 0; i < V; ++i) {
    if (probs[i] == 0) {
      EXPECT_EQ(counts[i], 0) << i;
      continue;
    }
    const double e = probs[i] * N;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  // The 99.9th percentile of chi-square is below df + 4.5 sqrt(2 df) for these df.
  EXPECT_LT(chi2, df + 4.5 * std::sqrt(2.0 * df)) << "df " << df;
}

TEST_P(DeviceSampler, ARowSamplesTheSameAloneOrInABatch) {
  const int64_t V = 32000, R = 64;
  std::vector<float> all;
  std::vector<DeviceSamplingRow> rows;
  for (int r = 0; r < R; ++r) {
    const std::vector<float> l = random_logits(V, 2.0f, 500 + r);
    all.insert(all.end(), l.begin(), l.end());
    DeviceSamplingRow p = params(0.5f + 0.1f * (r % 10), r % 3 == 0 ? 40 : 0, r % 2 ? 0.9f : 1.0f, r % 5 == 0 ? 0.02f : 0.0f);
    p.logits_row = r;
    p.u = philox_uniform(3, 0, static_cast<uint64_t>(r));
    p.greedy = r % 7 == 0;
    rows.push_back(p);
  }
  Tensor logits = upload(all, V);
  const std::vector<int32_t> batch = gpu_->sample_tokens(logits, rows, {});
  for (int r = 0; r < R; ++r) {
    const std::vector<int32_t> alone = gpu_->sample_tokens(logits, std::span<const DeviceSamplingRow>(&rows[r], 1), {});
    EXPECT_EQ(alone[0], batch[r]) << "row " << r;
  }
  // And again: the same tokens (no state, no race).
  EXPECT_EQ(gpu_->sample_tokens(logits, rows, {}), batch);
}

TEST_P(DeviceSampler, TheBitmaskIsNeverCrossed) {
  const int64_t V = 5000, words = (V + 31) / 32;
  const std::vector<float> l = random_logits(V, 2.0f, 11);
  std::mt19937 rng(3);
  std::vector<uint32_t> mask(static_cast<size_t>(words));
  for (uint32_t& w : mask) w = rng() & rng();  // about a quarter allowed
  mask.back() &= (1u << (V % 32)) - 1;
  expect_stratified(l, params(1.0f, 0, 1.0f, 0.0f), mask);
  expect_stratified(l, params(0.7f, 30, 0.9f, 0.0f), mask);
  // One allowed token: always it, greedy or not; none allowed: token 0, as the host sampler.
  std::vector<uint32_t> one(static_cast<size_t>(words), 0u);
  one[123 / 32] = 1u << (123 % 32);
  std::vector<uint32_t> both = one;
  both.insert(both.end(), static_cast<size_t>(words), 0u);
  Tensor logits = upload(l, V);
  std::vector<DeviceSamplingRow> rows(4, params(1.0f, 0, 1.0f, 0.0f));
  rows[0].mask_row = 0, rows[0].u = 0.9;
  rows[1].mask_row = 0, rows[1].greedy = 1;
  rows[2].mask_row = 1, rows[2].u = 0.3;
  rows[3].mask_row = 1, rows[3].greedy = 1;
  EXPECT_EQ(gpu_->sample_tokens(logits, rows, both), (std::vector<int32_t>{123, 123, 0, 0}));
}

// The engine hands its masks over as StepMasks filled them: rows wider than the vocabulary's
// words (a tokenizer with more tokens than the model has logits) in page-locked memory from
// empty_host. Each row then samples as its narrow mask in plain memory makes it; bits past the
// vocabulary are never taken, even where a row allows nothing else.
TEST_P(DeviceSampler, WideMasksInPinnedMemorySampleAsNarrowOnes) {
  const int64_t V = 5000, words = (V + 31) / 32, wide = words + 3;
  std::mt19937 rng(5);
  std::vector<float> l;
  for (int r = 0; r < 8; ++r) {
    const std::vector<float> row = random_logits(V, 2.0f, 20 + r);
    l.insert(l.end(), row.begin(), row.end());
  }
  const int64_t rows_n = 8;
  std::vector<uint32_t> narrow(static_cast<size_t>(rows_n * words));
  for (uint32_t& w : narrow) w = rng() & rng();
  for (int64_t r = 0; r < rows_n; ++r) narrow[static_cast<size_t>(r * words + words - 1)] &= (1u << (V % 32)) - 1;
  // Row 7 allows only tokens past the vocabulary.
  std::fill(narrow.begin() + 7 * words, narrow.begin() + 8 * words, 0u);
  Tensor pinned = gpu_->empty_host({rows_n * wide}, DType::I32);
  auto* w = static_cast<uint32_t*>(pinned.raw());
  for (int64_t r = 0; r < rows_n; ++r) {
    std::copy(narrow.begin() + r * words, narrow.begin() + (r + 1) * words, w + r * wide);
    for (int64_t k = words; k < wide; ++k) w[r * wide + k] = 0xFFFFFFFFu;
  }
  w[7 * wide + words - 1] = ~((1u << (V % 32)) - 1);  // ids V.. of the last vocabulary word
  Tensor logits = upload(l, V);
  std::vector<DeviceSamplingRow> rows(static_cast<size_t>(rows_n), params(0.8f, 0, 1.0f, 0.0f));
  for (int64_t r = 0; r < rows_n; ++r) {
    rows[static_cast<size_t>(r)].logits_row = r;
    rows[static_cast<size_t>(r)].mask_row = rows_n - 1 - r;  // not in order
    rows[static_cast<size_t>(r)].u = (static_cast<double>(r) + 0.5) / static_cast<double>(rows_n);
    rows[static_cast<size_t>(r)].greedy = r % 3 == 0;
  }
  const std::vector<int32_t> from_narrow = gpu_->sample_tokens(logits, rows, narrow);
  const std::vector<int32_t> from_wide =
      gpu_->sample_tokens(logits, rows, std::span<const uint32_t>(w, static_cast<size_t>(rows_n * wide)), wide);
  EXPECT_EQ(from_wide, from_narrow);
  for (int64_t r = 0; r < rows_n; ++r) {
    const int32_t t = from_wide[static_cast<size_t>(r)];
    const int64_t m = rows_n - 1 - r;
    ASSERT_GE(t, 0);
    ASSERT_LT(t, V);
    if (m == 7) {
      EXPECT_EQ(t, 0) << "a row that allows no token of the vocabulary gives token 0";
    } else {
      EXPECT_TRUE((narrow[static_cast<size_t>(m * words + t / 32)] >> (t % 32)) & 1u) << "row " << r;
    }
  }
  EXPECT_THROW(gpu_->sample_tokens(logits, rows, std::span<const uint32_t>(w, static_cast<size_t>(rows_n * wide)), words - 1),
               Error);
}

TEST_P(DeviceSampler, BadRowsAreErrors) {
  Tensor logits = upload(std::vector<float>(100, 0.0f), 100);
  std::vector<DeviceSamplingRow> rows(1);
  rows[0].logits_row = 1;
  EXPECT_THROW(gpu_->sample_tokens(logits, rows, {}), Error);
  rows[0].logits_row = 0, rows[0].mask_row = 0;
  EXPECT_THROW(gpu_->sample_tokens(logits, rows, {}), Error);
}

INSTANTIATE_TEST_SUITE_P(DTypes, DeviceSampler, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
