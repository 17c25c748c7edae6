// Portable kernels (baseline x86-64 or any CPU): the same panel layouts as the AVX2 kernels
// (16 columns), plain C++ loops over a 2 x 16 tile of float accumulators (8 SSE registers),
// which the compiler vectorises with the baseline instruction set (SSE2 on x86-64). Summation
// order per output element: k ascending, one multiply and one add per k (no fused multiply-add).
#include <cstring>
#include <vector>

#include "vllm/backends/cpu/gemm.h"

namespace vllm::cpu::detail {
namespace {

constexpr int kNR = 16;

int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// float32 value of every half, so that the inner loop is a table load.
const float* f16_table() {
  static const float* table = [] {
    static float t[65536];
    for (uint32_t h = 0; h < 65536; ++h) t[h] = f16_to_f32(static_cast<uint16_t>(h));
    return t;
  }();
  return table;
}

enum class Kind { kF32, kF16, kBf16 };

// One k step of the panel row as float32.
template <Kind kind>
inline void load_row(const void* bv, int64_t k, float (&wrow)[kNR], const float* table) {
  if constexpr (kind == Kind::kF32) {
    std::memcpy(wrow, static_cast<const float*>(bv) + k * kNR, sizeof(wrow));
  } else if constexpr (kind == Kind::kF16) {
    const uint16_t* row = static_cast<const uint16_t*>(bv) + k * kNR;
    for (int n = 0; n < kNR; ++n) wrow[n] = table[row[n]];
  } else {  // pairs layout: k's row is every other element of its pair row
    const uint16_t* row = static_cast<const uint16_t*>(bv) + (k / 2) * 2 * kNR + (k & 1);
    for (int n = 0; n < kNR; ++n) wrow[n] = bf16_to_f32(row[2 * n]);
  }
}

// MR rows x 16 columns; the accumulators are locals (fully unrolled) so that they can live in
// registers.
template <Kind kind, int MR>
void tile(const GemmArgs& g, int64_t m, int64_t kb, int64_t kl, const void* bv, float* c, int ncols, bool first,
          const float* bias) {
  float acc[MR][kNR];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int n = 0; n < kNR; ++n) acc[r][n] = (!first && n < ncols) ? c[r * g.ldy + n] : 0.0f;
  const float* a = g.x + m * g.ldx + kb;
  const float* table = kind == Kind::kF16 ? f16_table() : nullptr;
  for (int64_t k = 0; k < kl; ++k) {
    float wrow[kNR];
    load_row<kind>(bv, k, wrow, table);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const float av = a[r * g.ldx + k];
#pragma GCC unroll 16
      for (int n = 0; n < kNR; ++n) acc[r][n] += av * wrow[n];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < ncols; ++n) c[r * g.ldy + n] = bias ? acc[r][n] + bias[n] : acc[r][n];
}

// 16-bit weights are first widened, one k block of a panel at a time, into a float32 scratch
// block; every row tile then runs the float32 tile on it (the widening is paid once, not per tile).
template <Kind kind>
void run(const GemmArgs& g, int64_t p0, int64_t p1, int64_t m0, int64_t m1) {
  constexpr int MR = 2;
  const size_t esize = kind == Kind::kF32 ? 4 : 2;
  const char* w = static_cast<const char*>(g.w);
  const int64_t kc = imax(2, imin(g.kc, g.K));
  thread_local std::vector<float> scratch;
  if (kind != Kind::kF32 && scratch.size() < static_cast<size_t>(kc * kNR)) scratch.resize(static_cast<size_t>(kc * kNR));
  const float* table = kind == Kind::kF16 ? f16_table() : nullptr;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * kNR;
    const int ncols = static_cast<int>(imin(kNR, g.N - n0));
    const char* panel = w + static_cast<size_t>(p * g.kp * kNR) * esize;
    const float* bias = g.bias ? g.bias + n0 : nullptr;
    for (int64_t kb = 0; kb < g.K; kb += kc) {
      const int64_t kl = imin(kc, g.K - kb);
      const bool first = kb == 0, last = kb + kl >= g.K;
      const void* b = panel + static_cast<size_t>(kb * kNR) * esize;
      if (m1 - m0 == 1) {  // one row: widen in the tile, no scratch round trip
        tile<kind, 1>(g, m0, kb, kl, b, g.y + m0 * g.ldy + n0, ncols, first, last ? bias : nullptr);
        continue;
      }
      if constexpr (kind != Kind::kF32) {
        for (int64_t k = 0; k < kl; ++k) {
          float wrow[kNR];
          load_row<kind>(b, k, wrow, table);
          std::memcpy(scratch.data() + k * kNR, wrow, sizeof(wrow));
        }
        b = scratch.data();
      }
      const float* bb = last ? bias : nullptr;
      int64_t m = m0;
      for (; m + MR <= m1; m += MR) tile<Kind::kF32, MR>(g, m, kb, kl, b, g.y + m * g.ldy + n0, ncols, first, bb);
      if (m < m1) tile<Kind::kF32, 1>(g, m, kb, kl, b, g.y + m * g.ldy + n0, ncols, first, bb);
    }
  }
}

}  // namespace

GemmKernel scalar_kernel(DType dtype) {
  switch (dtype) {
    case DType::F32: return &run<Kind::kF32>;
    case DType::F16: return &run<Kind::kF16>;
    case DType::BF16: return &run<Kind::kBf16>;
    default: return nullptr;
  }
}

}  // namespace vllm::cpu::detail
