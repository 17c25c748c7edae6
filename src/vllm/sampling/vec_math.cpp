#include "vllm/sampling/vec_math.h"

#include <algorithm>

// One copy per x86-64 level, chosen by the dynamic loader (an ifunc) on the first call: the
// e^x polynomial runs 2-4x faster with 8- or 16-wide vectors than with SSE2's 4.
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define VLLM_VEC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VLLM_VEC_CLONES
#endif

namespace vllm::vecmath {

namespace {
// The one summation order every caller shares (four running sums, then pairwise).
inline double sum4(const float* x, int64_t n) {
  double acc[4] = {0, 0, 0, 0};
  const int64_t whole = n - n % 4;
  for (int64_t i = 0; i < whole; i += 4)
    for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(x[i + j]);
  for (int64_t i = whole; i < n; ++i) acc[0] += static_cast<double>(x[i]);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}
}  // namespace

VLLM_VEC_CLONES
double sum(const float* x, int64_t n) { return sum4(x, n); }

VLLM_VEC_CLONES
double block_sums(const float* x, int64_t n, int64_t block, double* sums) {
  double total = 0.0;
  for (int64_t b = 0, begin = 0; begin < n; ++b, begin += block) {
    sums[b] = sum4(x + begin, std::min(block, n - begin));
    total += sums[b];
  }
  return total;
}

VLLM_VEC_CLONES
double exp_shifted(const float* x, int64_t n, float shift, float scale, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = exp_f((x[i] - shift) * scale);
  return sum4(out, n);
}

}  // namespace vllm::vecmath
