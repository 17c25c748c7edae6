// Row-wide float kernels the sampler spends its time in: max, first argmax, and e^x over a
// whole vocabulary. Written as plain loops with no branches in the body so the compiler turns
// them into SIMD code without -ffast-math (which would also change the results we test). The
// library is built with -fno-trapping-math (lets GCC vectorise compare-and-select) and
// -ffp-contract=off (no FMA contraction, so results do not depend on the instruction set).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>

namespace vllm::vecmath {

// e^x in float, within 2 ulp of the true value for x in [-87.3, 88.3] (the float range);
// 0 below it, for -inf and for NaN (a weight of 0 is what a masked logit must get). Cody-Waite range reduction to
// r in [-ln2/2, ln2/2], a degree-7 Taylor polynomial (truncation < 1e-8), and 2^n put into
// the exponent bits.
inline float exp_f(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;      // ln 2 split so n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;        // 1.5 * 2^23: adding it rounds to an integer
  float xc = x > -87.3f ? x : -87.3f;  // NaN compares false: clamped too, never cast
  xc = xc < 88.3f ? xc : 88.3f;
  float n = (xc * kLog2e + kRound) - kRound;
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t e = static_cast<int32_t>(n) + 127;
  float scale = std::bit_cast<float>(static_cast<uint32_t>(e) << 23);
  float y = p * scale;
  return x > -87.3f ? y : 0.0f;
}

// Largest element; NaN is skipped (-inf for an empty or all-NaN row). GCC does not turn a
// float max reduction into SIMD code without -ffinite-math-only, so it is spelled with vector
// types: 16 floats a step in four running maxima (maxps keeps the old value on NaN, exactly
// like the scalar `x > m ? x : m`).
inline float row_max(const float* x, int64_t n) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float best = kNegInf;
  int64_t i = 0;
#if defined(__GNUC__)
  typedef float v4sf __attribute__((vector_size(16)));
  const int64_t whole = n - n % 16;
  if (whole > 0) {
    v4sf m0 = {kNegInf, kNegInf, kNegInf, kNegInf}, m1 = m0, m2 = m0, m3 = m0;
    for (; i < whole; i += 16) {
      v4sf a, b, c, d;
      std::memcpy(&a, x + i, sizeof(a));
      std::memcpy(&b, x + i + 4, sizeof(b));
      std::memcpy(&c, x + i + 8, sizeof(c));
      std::memcpy(&d, x + i + 12, sizeof(d));
      m0 = a > m0 ? a : m0;
      m1 = b > m1 ? b : m1;
      m2 = c > m2 ? c : m2;
      m3 = d > m3 ? d : m3;
    }
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    m0 = m2 > m0 ? m2 : m0;
    for (int j = 0; j < 4; ++j) best = m0[j] > best ? m0[j] : best;
  }
#endif
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  return best;
}

// Index of the first maximum (ties go to the lowest id, as torch.argmax does); 0 when every
// element is -inf or NaN. One pass: block maxima, then a look inside the first block that
// holds the overall maximum.
inline int64_t argmax_first(const float* x, int64_t n) {
  constexpr int64_t kBlock = 1024;
  float best = -std::numeric_limits<float>::infinity();
  int64_t best_block = -1;
  for (int64_t b = 0; b < n; b += kBlock) {
    float m = row_max(x + b, std::min(kBlock, n - b));
    if (m > best) {
      best = m;
      best_block = b;
    }
  }
  if (best_block < 0) return 0;
  for (int64_t i = best_block; i < n; ++i)
    if (x[i] == best) return i;
  return 0;
}

// The two whole-row kernels below are compiled once per x86-64 level (baseline SSE2, AVX2,
// AVX-512; vec_math.cpp) and the best one for the running CPU is picked at load time. Built
// with -ffp-contract=off, every version computes bit-identical results, so a seeded request
// samples the same tokens on any x86-64 machine.

// Sum in double, with four running sums so the adds pipeline and vectorise.
double sum(const float* x, int64_t n);

// sums[b] = sum(x[b * block, min(n, (b + 1) * block))) for every block, in double, each as
// sum() computes it; returns their total. One call per row rather than one per block: the
// dispatch to a wide clone is not free on every CPU.
double block_sums(const float* x, int64_t n, int64_t block, double* sums);

// out[i] = e^((x[i] - shift) * scale) for i < n, returning their sum in double. Weights of
// masked (-inf) logits are exactly 0.
double exp_shifted(const float* x, int64_t n, float shift, float scale, float* out);

}  // namespace vllm::vecmath
