// Test helpers: the chi-square goodness-of-fit test (with the regularized incomplete gamma
// written out here), and a plain float64 reference of vLLM's sampling pipeline, written the
// way vLLM's torch code does it (full sorts and cumsums), independent of the sampler's code.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "vllm/sampling/sampler.h"

namespace sampling_test {

// Q(a, x) = Γ(a, x) / Γ(a): a power series for x < a + 1, else a continued fraction
// (modified Lentz), both to ~1e-15.
inline double regularized_gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    double ap = a, term = 1.0 / a, sum = term;
    for (int n = 0; n < 100000; ++n) {
      ap += 1.0;
      term *= x / ap;
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-16) break;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  const double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(log_prefix) * h;
}

// P(X >= chi2) for X ~ chi-square(df).
inline double chi_square_sf(double chi2, double df) { return regularized_gamma_q(df / 2.0, chi2 / 2.0); }

// Goodness of fit of counts to probs. Bins of expected count < 5 are pooled into one bin so the
// chi-square approximation holds. Tokens of probability 0 are left out (check them apart).
inline double chi_square_p_value(const std::vector<int64_t>& counts, const std::vector<double>& probs,
                                 int64_t total) {
  std::vector<double> expected, observed;
  double pooled_e = 0.0, pooled_o = 0.0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.0) continue;
    double e = probs[i] * static_cast<double>(total);
    if (e < 5.0) {
      pooled_e += e;
      pooled_o += static_cast<double>(counts[i]);
    } else {
      expected.push_back(e);
      observed.push_back(static_cast<double>(counts[i]));
    }
  }
  if (pooled_e > 0.0) {
    expected.push_back(pooled_e);
    observed.push_back(pooled_o);
  }
  if (expected.size() < 2) return 1.0;
  double chi2 = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) chi2 += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
  return chi_square_sf(chi2, static_cast<double>(expected.size() - 1));
}

inline std::vector<double> softmax(const std::vector<double>& z) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : z) m = std::max(m, v);
  std::vector<double> p(z.size());
  double s = 0.0;
  for (size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(z[i] - m));
  for (auto& v : p) v /= s;
  return p;
}

// vLLM's pipeline after the logits processors, in float64: greedy one-hot; else divide by
// temperature, min_p (probs < min_p * max prob masked), top-k (logits below the k-th largest
// masked), top-p (ascending sort, cumsum <= 1 - p masked, the largest kept), softmax.
// Ascending ties are ordered by descending id (the reverse of "lower id first").
inline std::vector<double> reference_distribution(const std::vector<float>& logits, const vllm::SamplingParams& p) {
  const size_t n = logits.size();
  const double inf = std::numeric_limits<double>::infinity();
  if (p.is_greedy()) {
    std::vector<double> one(n, 0.0);
    one[static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())] = 1.0;
    return one;
  }
  std::vector<double> z(n);
  for (size_t i = 0; i < n; ++i) z[i] = static_cast<double>(logits[i]) / p.temperature;
  if (p.min_p > 0.0) {
    auto probs = softmax(z);
    double top = *std::max_element(probs.begin(), probs.end());
    for (size_t i = 0; i < n; ++i)
      if (probs[i] < p.min_p * top) z[i] = -inf;
  }
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    auto sorted = z;
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    double kth = sorted[static_cast<size_t>(p.top_k) - 1];
    for (auto& v : z)
      if (v < kth) v = -inf;
  }
  if (p.top_p < 1.0) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return z[a] < z[b] || (z[a] == z[b] && a > b); });
    std::vector<double> zs(n);
    for (size_t j = 0; j < n; ++j) zs[j] = z[order[j]];
    auto ps = softmax(zs);
    double cum = 0.0;
    std::vector<size_t> masked;
    for (size_t j = 0; j < n; ++j) {
      cum += ps[j];
      if (cum <= 1.0 - p.top_p && j + 1 < n) masked.push_back(order[j]);
    }
    for (size_t i : masked) z[i] = -inf;
  }
  return softmax(z);
}

// Draws `draws` tokens from copies of one logits row, `batch` rows per sampler call, each call
// the next output position of `batch` sequences. With seeded_rows every row is a request of
// its own seed (seed_base + row), else rows draw under the sampler's engine seed.
inline std::vector<int64_t> draw_counts(vllm::Sampler& sampler, const std::vector<float>& logits,
                                        const vllm::SamplingParams& params, int64_t draws, int64_t batch = 1000,
                                        bool seeded_rows = false, uint64_t seed_base = 1000) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  std::vector<int64_t> counts(logits.size(), 0);
  std::vector<float> buf(static_cast<size_t>(batch * vocab));
  std::vector<vllm::SamplingParams> seeded(static_cast<size_t>(batch), params);
  for (int64_t r = 0; r < batch; ++r) seeded[static_cast<size_t>(r)].seed = static_cast<int64_t>(seed_base) + r;
  std::vector<vllm::SamplingRow> rows(static_cast<size_t>(batch));
  for (int64_t r = 0; r < batch; ++r) {
    rows[static_cast<size_t>(r)].params = seeded_rows ? &seeded[static_cast<size_t>(r)] : &params;
    rows[static_cast<size_t>(r)].sequence_id = static_cast<uint64_t>(r);
  }
  for (int64_t done = 0; done < draws; done += batch) {
    const int64_t b = std::min(batch, draws - done);
    for (auto& row : rows) row.draw_index = done / batch;
    for (int64_t r = 0; r < b; ++r) std::copy(logits.begin(), logits.end(), buf.begin() + r * vocab);
    auto res = sampler.sample(buf.data(), b, vocab, std::span<const vllm::SamplingRow>(rows).first(static_cast<size_t>(b)));
    for (const auto& x : res) counts[static_cast<size_t>(x.token_id)]++;
  }
  return counts;
}

// Every zero-probability token must never be drawn, and the rest must pass chi-square.
inline void expect_distribution(const std::vector<int64_t>& counts, const std::vector<double>& probs, int64_t draws) {
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
    }
  }
  double p = chi_square_p_value(counts, probs, draws);
  EXPECT_GT(p, 0.001) << "chi-square p-value " << p;
}

}  // namespace sampling_test
