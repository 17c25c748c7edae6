// AVX-512 kernels (this file alone is compiled with -mavx512f -mavx512bw -mavx512vl -mavx512bf16
// -mfma -mf16c; nothing here may be called unless cpu_features says the CPU can run it).
//
// Panels are 64 output columns wide (4 zmm). A micro-tile is MR rows x 64 columns held in
// MR x 4 zmm accumulators; per k step it loads one 64-column row of the panel (4 zmm) and
// broadcasts one activation per row, so each weight load feeds MR multiply-adds.
//   avx512_bf16, BF16 weights: vdpbf16ps on pairs of k (activations rounded to bf16), MR = 6.
//   avx512 (any), F32 weights: vfmadd231ps, MR = 6.   F16 weights: vcvtph2ps + FMA, MR = 6.
//   avx512 without bf16, BF16 weights: each pair register is widened (shift / mask) to the two
//   float32 k rows, then FMA, MR = 4.
// Loop order (run()): panels of the thread's range -> k blocks (gemm.cpp picks the block: all of K
// for a single row tile, else 1024) -> row tiles. Partial sums of a k block go through y, which
// is exact, so the order of operations per output element is the same for every M, k blocking
// and thread split: results are bitwise independent of batch size and thread count.
#include "vllm/backends/cpu/gemm.h"

// GCC < 13 reports the intrinsics' own _mm512_undefined_*() pass-through operands as possibly
// uninitialised once inlined (GCC PR 105593); the warning says nothing about this file.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__) && defined(__F16C__)
#define VLLM_HAVE_AVX512 1
#include <immintrin.h>
#endif

#include <cstring>

namespace vllm::cpu::detail {

#ifdef VLLM_HAVE_AVX512
namespace {

constexpr int kNR = 64;  // panel width: 4 zmm of float32
constexpr int kNV = 4;

#define VLLM_INLINE inline __attribute__((always_inline))

// Everything in this file has internal linkage or is one of the entry points declared in gemm.h:
// an inline or template function shared with other files (std::min, ...) would be emitted here
// with AVX-512 instructions, and the linker could keep this copy for the whole program.
VLLM_INLINE int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
VLLM_INLINE int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// Column masks of a panel with `ncols` valid columns.
struct PanelMasks {
  __mmask16 m[kNV];
  bool full;
  explicit PanelMasks(int64_t ncols) {
    full = ncols >= kNR;
    for (int j = 0; j < kNV; ++j) {
      int64_t c = imin(imax(ncols - 16 * j, 0), 16);
      m[j] = static_cast<__mmask16>(c >= 16 ? 0xffffu : ((1u << c) - 1u));
    }
  }
};

// Loads the accumulators of a tile (or zeroes them on the first k block).
template <int MR>
VLLM_INLINE void tile_init(__m512 (&acc)[MR][kNV], const float* c, int64_t ldc, const PanelMasks& pm, bool load_c) {
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int j = 0; j < kNV; ++j)
      acc[m][j] = load_c ? _mm512_maskz_loadu_ps(pm.m[j], c + m * ldc + 16 * j) : _mm512_setzero_ps();
}

// Stores a tile (adding the bias on the last k block).
template <int MR>
VLLM_INLINE void tile_store(__m512 (&acc)[MR][kNV], float* c, int64_t ldc, const PanelMasks& pm, const float* bias) {
  if (bias) {
#pragma GCC unroll 4
    for (int j = 0; j < kNV; ++j) {
      __m512 bv = _mm512_maskz_loadu_ps(pm.m[j], bias + 16 * j);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) acc[m][j] = _mm512_add_ps(acc[m][j], bv);
    }
  }
  if (pm.full) {
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) _mm512_storeu_ps(c + m * ldc + 16 * j, acc[m][j]);
  } else {
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) _mm512_mask_storeu_ps(c + m * ldc + 16 * j, pm.m[j], acc[m][j]);
  }
}

VLLM_INLINE __m512 bcast_f32(const float* p) { return _mm512_set1_ps(*p); }

// Software prefetch of a range of the weight stream into L2, spread evenly over the k steps of a
// tile: `lines` cache lines from `next` over `steps` calls of step() (Bresenham, no division).
struct Prefetcher {
  const char* next = nullptr;
  int64_t lines = 0, steps = 1, acc = 0;
  VLLM_INLINE void step() {
    acc += lines;
    while (acc >= steps) {
      _mm_prefetch(next, _MM_HINT_T1);
      next += 64;
      acc -= steps;
    }
  }
};

// ---- F32 weights: [K][64] ----
struct F32Kernel {
  static constexpr int kMR = 6;
  static constexpr int64_t kStepBytes = kNR * 4;  // weight bytes per k step
  static int64_t steps(int64_t kl) { return kl; }
  using W = float;
  template <int MR>
  static VLLM_INLINE void tile(const GemmArgs& g, int64_t m, int64_t kb, int64_t kl, const W* b, float* c,
                               const PanelMasks& pm, bool first, const float* bias, Prefetcher& pf) {
    __m512 acc[MR][kNV];
    tile_init<MR>(acc, c, g.ldy, pm, !first);
    const float* a = g.x + m * g.ldx + kb;
    const int64_t lda = g.ldx;
    for (int64_t k = 0; k < kl; ++k) {
      const float* bk = b + k * kNR;
      pf.step();
      __m512 bv[kNV];
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) bv[j] = _mm512_loadu_ps(bk + 16 * j);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m512 av = bcast_f32(a + r * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < kNV; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
      }
    }
    tile_store<MR>(acc, c, g.ldy, pm, bias);
  }
};

// ---- F16 weights: [K][64] ----
struct F16Kernel {
  static constexpr int kMR = 6;
  static constexpr int64_t kStepBytes = kNR * 2;
  static int64_t steps(int64_t kl) { return kl; }
  using W = uint16_t;
  template <int MR>
  static VLLM_INLINE void tile(const GemmArgs& g, int64_t m, int64_t kb, int64_t kl, const W* b, float* c,
                               const PanelMasks& pm, bool first, const float* bias, Prefetcher& pf) {
    __m512 acc[MR][kNV];
    tile_init<MR>(acc, c, g.ldy, pm, !first);
    const float* a = g.x + m * g.ldx + kb;
    const int64_t lda = g.ldx;
    for (int64_t k = 0; k < kl; ++k) {
      const uint16_t* bk = b + k * kNR;
      pf.step();
      __m512 bv[kNV];
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j)
        bv[j] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bk + 16 * j)));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m512 av = bcast_f32(a + r * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < kNV; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
      }
    }
    tile_store<MR>(acc, c, g.ldy, pm, bias);
  }
};

// ---- BF16 weights widened to float32: [K/2][64][2] ----
struct Bf16WidenKernel {
  static constexpr int kMR = 4;
  static constexpr int64_t kStepBytes = kNR * 4;  // a pair of k
  static int64_t steps(int64_t kl) { return kl / 2; }
  using W = uint16_t;
  template <int MR>
  static VLLM_INLINE void tile(const GemmArgs& g, int64_t m, int64_t kb, int64_t kl, const W* b, float* c,
                               const PanelMasks& pm, bool first, const float* bias, Prefetcher& pf) {
    __m512 acc[MR][kNV];
    tile_init<MR>(acc, c, g.ldy, pm, !first);
    const float* a = g.x + m * g.ldx + kb;
    const int64_t lda = g.ldx;
    const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    const int64_t pairs = kl / 2;
    for (int64_t i = 0; i < pairs; ++i) {
      const uint16_t* bk = b + i * 2 * kNR;
      pf.step();
      __m512 lo[kNV], hi[kNV];
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) {
        __m512i raw = _mm512_loadu_si512(bk + 32 * j);
        lo[j] = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
        hi[j] = _mm512_castsi512_ps(_mm512_and_si512(raw, hi_mask));
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m512 a0 = bcast_f32(a + r * lda + 2 * i);
        __m512 a1 = bcast_f32(a + r * lda + 2 * i + 1);
#pragma GCC unroll 4
        for (int j = 0; j < kNV; ++j) {
          acc[r][j] = _mm512_fmadd_ps(a0, lo[j], acc[r][j]);
          acc[r][j] = _mm512_fmadd_ps(a1, hi[j], acc[r][j]);
        }
      }
    }
    if (kl & 1) {  // the last, unpaired k (only at the very end of K)
      const uint16_t* bk = b + pairs * 2 * kNR;
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) {
        __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(bk + 32 * j), 16));
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) acc[r][j] = _mm512_fmadd_ps(bcast_f32(a + r * lda + 2 * pairs), lo, acc[r][j]);
      }
    }
    tile_store<MR>(acc, c, g.ldy, pm, bias);
  }
};

// ---- BF16 weights with vdpbf16ps: [K/2][64][2], activations pre-rounded to bf16 ----
struct Bf16DotKernel {
  static constexpr int kMR = 6;
  static constexpr int64_t kStepBytes = kNR * 4;  // a pair of k
  static int64_t steps(int64_t kl) { return (kl + 1) / 2; }
  using W = uint16_t;
  template <int MR>
  static VLLM_INLINE void tile(const GemmArgs& g, int64_t m, int64_t kb, int64_t kl, const W* b, float* c,
                               const PanelMasks& pm, bool first, const float* bias, Prefetcher& pf) {
    __m512 acc[MR][kNV];
    tile_init<MR>(acc, c, g.ldy, pm, !first);
    const uint16_t* a = g.xb + m * g.ldxb + kb;  // kb is even: pairs stay 4-byte aligned
    const int64_t lda = g.ldxb;
    const int64_t pairs = (kl + 1) / 2;           // the odd last k pairs with zero padding
    for (int64_t i = 0; i < pairs; ++i) {
      const uint16_t* bk = b + i * 2 * kNR;
      pf.step();
      __m512bh bv[kNV];
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) bv[j] = (__m512bh)_mm512_loadu_si512(bk + 32 * j);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        int32_t pair;
        std::memcpy(&pair, a + r * lda + 2 * i, 4);
        __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
        for (int j = 0; j < kNV; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], av, bv[j]);
      }
    }
    tile_store<MR>(acc, c, g.ldy, pm, bias);
  }
};

// Rows [m0, m1) x panels [p0, p1): for each panel, for each k block, every row tile. The rows
// are split into tiles of near-equal height (<= MR). A thread's weight stream is contiguous
// (blocks, then panels), so the next block starts where this one ends: with several tiles, each
// tile prefetches its share of the next block while it computes on this one, which keeps DRAM
// busy all along instead of only while the first tile runs. A single tile (M <= MR) leaves the
// sequential stream to the hardware prefetchers (software prefetch measured no better there).
template <class Kern, int R>
VLLM_INLINE void tile_rows(int rows, const GemmArgs& g, int64_t m, int64_t kb, int64_t kl, const typename Kern::W* b,
                           float* c, const PanelMasks& pm, bool first, const float* bias, Prefetcher& pf) {
  if constexpr (R >= 1) {
    if (rows == R) return Kern::template tile<R>(g, m, kb, kl, b, c, pm, first, bias, pf);
    tile_rows<Kern, R - 1>(rows, g, m, kb, kl, b, c, pm, first, bias, pf);
  }
}

template <class Kern>
void run(const GemmArgs& g, int64_t p0, int64_t p1, int64_t m0, int64_t m1) {
  using W = typename Kern::W;
  constexpr int MR = Kern::kMR;
  const W* w = static_cast<const W*>(g.w);
  const int64_t panel_elems = g.kp * kNR;
  const int64_t kc = imax(2, imin(g.kc, g.K));
  const int64_t rows = m1 - m0;
  const int64_t tiles = (rows + MR - 1) / MR;
  const int64_t base = rows / tiles, extra = rows % tiles;  // first `extra` tiles get base + 1 rows
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * kNR;
    const PanelMasks pm(g.N - n0);
    const W* panel = w + p * panel_elems;
    const float* bias = g.bias ? g.bias + n0 : nullptr;
    for (int64_t kb = 0; kb < g.K; kb += kc) {
      const int64_t kl = imin(kc, g.K - kb);
      const bool first = kb == 0, last = kb + kl >= g.K;
      const W* b = panel + kb * kNR;
      const float* bb = last ? bias : nullptr;
      const char* bc = reinterpret_cast<const char*>(b);
      const int64_t steps = Kern::steps(kl), block_bytes = steps * Kern::kStepBytes;
      const int64_t block_lines = block_bytes / 64;
      int64_t m = m0;
      for (int64_t t = 0; t < tiles; ++t) {
        const int h = static_cast<int>(base + (t < extra ? 1 : 0));
        Prefetcher pf;
        pf.steps = imax(steps, 1);
        if (tiles > 1) {
          const int64_t l0 = block_lines * t / tiles, l1 = block_lines * (t + 1) / tiles;
          pf.next = bc + block_bytes + 64 * l0;
          pf.lines = l1 - l0;
        }
        tile_rows<Kern, MR>(h, g, m, kb, kl, b, g.y + m * g.ldy + n0, pm, first, bb, pf);
        m += h;
      }
    }
  }
}

}  // namespace

GemmKernel avx512_kernel(DType dtype) {
  switch (dtype) {
    case DType::F32: return &run<F32Kernel>;
    case DType::F16: return &run<F16Kernel>;
    case DType::BF16: return &run<Bf16WidenKernel>;
    default: return nullptr;
  }
}

#if defined(__AVX512BF16__)
GemmKernel avx512_bf16_kernel(DType dtype) {
  if (dtype == DType::BF16) return &run<Bf16DotKernel>;
  return avx512_kernel(dtype);
}

bool avx512_bf16_convert_rows(const float* x, int64_t ldx, int64_t K, int64_t m0, int64_t m1, uint16_t* out,
                              int64_t ldo, int64_t kpad) {
  for (int64_t m = m0; m < m1; ++m) {
    const float* src = x + m * ldx;
    uint16_t* dst = out + m * ldo;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
      _mm512_storeu_si512(dst + k, (__m512i)v);
    }
    if (k < K) {
      __mmask16 lo = static_cast<__mmask16>(K - k >= 16 ? 0xffffu : (1u << (K - k)) - 1u);
      __mmask16 hi = static_cast<__mmask16>(K - k >= 32 ? 0xffffu : K - k <= 16 ? 0u : (1u << (K - k - 16)) - 1u);
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + k + 16), _mm512_maskz_loadu_ps(lo, src + k));
      __mmask32 keep = static_cast<__mmask32>(K - k >= 32 ? 0xffffffffu : (1u << (K - k)) - 1u);
      _mm512_mask_storeu_epi16(dst + k, keep, (__m512i)v);
      k = K;
    }
    for (; k < kpad; ++k) dst[k] = 0;
  }
  return true;
}
#else
GemmKernel avx512_bf16_kernel(DType) { return nullptr; }
bool avx512_bf16_convert_rows(const float*, int64_t, int64_t, int64_t, int64_t, uint16_t*, int64_t, int64_t) {
  return false;
}
#endif

#else  // !VLLM_HAVE_AVX512

GemmKernel avx512_kernel(DType) { return nullptr; }
GemmKernel avx512_bf16_kernel(DType) { return nullptr; }
bool avx512_bf16_convert_rows(const float*, int64_t, int64_t, int64_t, int64_t, uint16_t*, int64_t, int64_t) {
  return false;
}

#endif

}  // namespace vllm::cpu::detail
