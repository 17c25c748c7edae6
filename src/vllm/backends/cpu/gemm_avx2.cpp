// AVX2 kernels (this file alone is compiled with -mavx2 -mfma -mf16c; nothing here may be called
// unless cpu_features says the CPU can run it).
//
// Panels are 16 output columns wide (2 ymm). A micro-tile is MR rows x NP panels: MR x 2·NP ymm
// accumulators (16 registers in all, so MR = 6). BF16 widens each pair of k rows into 4 more
// registers: up to 4 rows in C++, 5 or 6 rows in assembly (tile6_pairs) that widens half a pair
// at a time. Per k step a tile loads one 16-column row of each panel and broadcasts one
// activation per row. A single row works on four panels at once (NP = 4), for 8 independent FMA
// chains instead of 2: with 2, FMA latency, not memory, would bound the M = 1 stream.
//   F32 weights: [K][16], FMA.   F16: [K][16], vcvtph2ps + FMA.
//   BF16: [K/2][16][2]; each pair register is widened (shift / mask) to its two float32 k rows.
#include "vllm/backends/cpu/gemm.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define VLLM_HAVE_AVX2 1
#include <immintrin.h>
#endif

namespace vllm::cpu::detail {

#ifdef VLLM_HAVE_AVX2
namespace {

#define VLLM_INLINE inline __attribute__((always_inline))

// Only internal-linkage code here (see gemm_avx512.cpp): no shared inline / template functions.
VLLM_INLINE int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
VLLM_INLINE int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

constexpr int kNR = 16;
constexpr int kNV = 2;
constexpr int kNP1 = 4;  // panels per tile for a single row

struct PanelMasks {
  __m256i m[kNV];
  bool full;
  explicit PanelMasks(int64_t ncols) {
    full = ncols >= kNR;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int j = 0; j < kNV; ++j) {
      int c = static_cast<int>(imin(imax(ncols - 8 * j, 0), 8));
      m[j] = _mm256_cmpgt_epi32(_mm256_set1_epi32(c), idx);
    }
  }
};

// Where a tile reads and writes: NP panels (consecutive in memory, panel_stride elements apart)
// and their output columns (kNR apart).
template <typename W>
struct TileArgs {
  const float* a;          // activations of the tile's first row, at the block's first k
  int64_t lda;
  const W* b;              // first panel, at the block's first k
  int64_t panel_stride;    // elements
  int64_t kl;              // k in this block
  float* c;                // output of the first row, first panel
  int64_t ldc;
  const PanelMasks* pm;    // one per panel
  bool first;              // first k block: start from zero instead of c
  const float* bias;       // last k block only; else nullptr
};

// Software prefetch of a range of the weight stream into L2, spread evenly over a tile's k steps.
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

template <int MR, int NP, typename W>
VLLM_INLINE void tile_init(__m256 (&acc)[MR][NP * kNV], const TileArgs<W>& t) {
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NP * kNV; ++v) {
      const int q = v / kNV, j = v % kNV;
      const float* c = t.c + m * t.ldc + q * kNR + 8 * j;
      if (t.first)
        acc[m][v] = _mm256_setzero_ps();
      else if (t.pm[q].full)
        acc[m][v] = _mm256_loadu_ps(c);
      else
        acc[m][v] = _mm256_maskload_ps(c, t.pm[q].m[j]);
    }
}

template <int MR, int NP, typename W>
VLLM_INLINE void tile_store(__m256 (&acc)[MR][NP * kNV], const TileArgs<W>& t) {
#pragma GCC unroll 4
  for (int v = 0; v < NP * kNV; ++v) {
    const int q = v / kNV, j = v % kNV;
    const PanelMasks& pm = t.pm[q];
    if (t.bias) {
      const float* bp = t.bias + q * kNR + 8 * j;
      __m256 bv = pm.full ? _mm256_loadu_ps(bp) : _mm256_maskload_ps(bp, pm.m[j]);
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m) acc[m][v] = _mm256_add_ps(acc[m][v], bv);
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      float* c = t.c + m * t.ldc + q * kNR + 8 * j;
      if (pm.full)
        _mm256_storeu_ps(c, acc[m][v]);
      else
        _mm256_maskstore_ps(c, pm.m[j], acc[m][v]);
    }
  }
}

struct F32Kernel {
  static constexpr int kMR = 6;
  static constexpr int64_t kStepBytes = kNR * 4;
  static int64_t steps(int64_t kl) { return kl; }
  using W = float;
  template <int MR, int NP>
  static VLLM_INLINE void tile(const TileArgs<W>& t, Prefetcher& pf) {
    __m256 acc[MR][NP * kNV];
    tile_init<MR, NP>(acc, t);
    for (int64_t k = 0; k < t.kl; ++k) {
      pf.step();
      if constexpr (NP > 1) {  // one row: use each weight vector as it is loaded
        static_assert(MR == 1);
        __m256 av = _mm256_broadcast_ss(t.a + k);
#pragma GCC unroll 8
        for (int v = 0; v < NP * kNV; ++v)
          acc[0][v] = _mm256_fmadd_ps(av, _mm256_loadu_ps(t.b + (v / kNV) * t.panel_stride + k * kNR + 8 * (v % kNV)),
                                      acc[0][v]);
        continue;
      }
      __m256 bv[NP * kNV];
#pragma GCC unroll 4
      for (int v = 0; v < NP * kNV; ++v) bv[v] = _mm256_loadu_ps(t.b + (v / kNV) * t.panel_stride + k * kNR + 8 * (v % kNV));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m256 av = _mm256_broadcast_ss(t.a + r * t.lda + k);
#pragma GCC unroll 4
        for (int v = 0; v < NP * kNV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
      }
    }
    tile_store<MR, NP>(acc, t);
  }
};

struct F16Kernel {
  static constexpr int kMR = 6;
  static constexpr int64_t kStepBytes = kNR * 2;
  static int64_t steps(int64_t kl) { return kl; }
  using W = uint16_t;
  template <int MR, int NP>
  static VLLM_INLINE void tile(const TileArgs<W>& t, Prefetcher& pf) {
    __m256 acc[MR][NP * kNV];
    tile_init<MR, NP>(acc, t);
    for (int64_t k = 0; k < t.kl; ++k) {
      pf.step();
      if constexpr (NP > 1) {
        static_assert(MR == 1);
        __m256 av = _mm256_broadcast_ss(t.a + k);
#pragma GCC unroll 8
        for (int v = 0; v < NP * kNV; ++v)
          acc[0][v] = _mm256_fmadd_ps(av,
                                      _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(
                                          t.b + (v / kNV) * t.panel_stride + k * kNR + 8 * (v % kNV)))),
                                      acc[0][v]);
        continue;
      }
      __m256 bv[NP * kNV];
#pragma GCC unroll 4
      for (int v = 0; v < NP * kNV; ++v)
        bv[v] = _mm256_cvtph_ps(_mm_loadu_si128(
            reinterpret_cast<const __m128i*>(t.b + (v / kNV) * t.panel_stride + k * kNR + 8 * (v % kNV))));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m256 av = _mm256_broadcast_ss(t.a + r * t.lda + k);
#pragma GCC unroll 4
        for (int v = 0; v < NP * kNV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
      }
    }
    tile_store<MR, NP>(acc, t);
  }
};

// 6 rows x 16 columns of the BF16 kernel over `pairs` k pairs: acc[6][16] (row-major floats, 32-byte
// aligned) += rows[r][2i] * even-k weights + rows[r][2i + 1] * odd-k weights of pair i, in that
// order for every element (the order of the one-row path). ymm0-11 hold the accumulators, ymm12-13
// half a pair of weights widened to float32, ymm14 the broadcast activation, ymm15 the mask of the
// odd k's high halves. (In C++, GCC kept two of the 12 accumulators on the stack, and the
// store-to-load chains through them halved the speed.)
#define VLLM_BF16_ROW(p, disp, c0, c1)                     \
  "vbroadcastss " #disp "(%[" #p "],%[off]), %%ymm14\n\t" \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm" #c0 "\n\t"         \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm" #c1 "\n\t"
#define VLLM_BF16_ROWS(disp)                                                                \
  VLLM_BF16_ROW(a0, disp, 0, 1) VLLM_BF16_ROW(a1, disp, 2, 3) VLLM_BF16_ROW(a2, disp, 4, 5) \
  VLLM_BF16_ROW(a3, disp, 6, 7) VLLM_BF16_ROW(a4, disp, 8, 9) VLLM_BF16_ROW(a5, disp, 10, 11)
VLLM_INLINE void tile6_pairs(const float* const (&rows)[6], const uint16_t* b, int64_t pairs, float* acc,
                             __m256i hi_mask) {
  if (pairs <= 0) return;
  int64_t off = 0;  // bytes into the activation rows
  asm volatile(
      "vmovaps 0(%[c]), %%ymm0\n\t"
      "vmovaps 32(%[c]), %%ymm1\n\t"
      "vmovaps 64(%[c]), %%ymm2\n\t"
      "vmovaps 96(%[c]), %%ymm3\n\t"
      "vmovaps 128(%[c]), %%ymm4\n\t"
      "vmovaps 160(%[c]), %%ymm5\n\t"
      "vmovaps 192(%[c]), %%ymm6\n\t"
      "vmovaps 224(%[c]), %%ymm7\n\t"
      "vmovaps 256(%[c]), %%ymm8\n\t"
      "vmovaps 288(%[c]), %%ymm9\n\t"
      "vmovaps 320(%[c]), %%ymm10\n\t"
      "vmovaps 352(%[c]), %%ymm11\n\t"
      "vmovdqu %[mask], %%ymm15\n\t"
      "1:\n\t"
      "vmovdqu (%[b]), %%ymm12\n\t"
      "vpslld $16, %%ymm12, %%ymm12\n\t"
      "vmovdqu 32(%[b]), %%ymm13\n\t"
      "vpslld $16, %%ymm13, %%ymm13\n\t"
      VLLM_BF16_ROWS(0)
      "vpand (%[b]), %%ymm15, %%ymm12\n\t"
      "vpand 32(%[b]), %%ymm15, %%ymm13\n\t"
      VLLM_BF16_ROWS(4)
      "add $64, %[b]\n\t"
      "add $8, %[off]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vmovaps %%ymm0, 0(%[c])\n\t"
      "vmovaps %%ymm1, 32(%[c])\n\t"
      "vmovaps %%ymm2, 64(%[c])\n\t"
      "vmovaps %%ymm3, 96(%[c])\n\t"
      "vmovaps %%ymm4, 128(%[c])\n\t"
      "vmovaps %%ymm5, 160(%[c])\n\t"
      "vmovaps %%ymm6, 192(%[c])\n\t"
      "vmovaps %%ymm7, 224(%[c])\n\t"
      "vmovaps %%ymm8, 256(%[c])\n\t"
      "vmovaps %%ymm9, 288(%[c])\n\t"
      "vmovaps %%ymm10, 320(%[c])\n\t"
      "vmovaps %%ymm11, 352(%[c])\n\t"
      : [b] "+r"(b), [off] "+r"(off), [n] "+r"(pairs)
      : [a0] "r"(rows[0]), [a1] "r"(rows[1]), [a2] "r"(rows[2]), [a3] "r"(rows[3]), [a4] "r"(rows[4]),
        [a5] "r"(rows[5]), [c] "r"(acc), [mask] "m"(hi_mask)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "memory", "cc");
}
#undef VLLM_BF16_ROWS
#undef VLLM_BF16_ROW

struct Bf16WidenKernel {
  static constexpr int kMR = 6;
  static constexpr int64_t kStepBytes = kNR * 4;  // a pair of k
  static int64_t steps(int64_t kl) { return kl / 2; }
  using W = uint16_t;
  template <int MR, int NP>
  static VLLM_INLINE void tile(const TileArgs<W>& t, Prefetcher& pf) {
    __m256 acc[MR][NP * kNV];
    tile_init<MR, NP>(acc, t);
    const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    const int64_t pairs = t.kl / 2;
    // Five or six rows go to the assembly loop; a five-row tile repeats its last row and drops it.
    constexpr bool in_asm = MR >= 5 && NP == 1;
    if constexpr (in_asm) {
      alignas(32) float buf[6][kNR] = {};  // row 5 of a five-row tile: zeros, not stack garbage
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        _mm256_store_ps(buf[r], acc[r][0]);
        _mm256_store_ps(buf[r] + 8, acc[r][1]);
      }
      const float* rows[6];
      for (int r = 0; r < 6; ++r) rows[r] = t.a + (r < MR ? r : MR - 1) * t.lda;
      for (int64_t l = 0; l < pf.lines; ++l) _mm_prefetch(pf.next + 64 * l, _MM_HINT_T1);
      tile6_pairs(rows, t.b, pairs, &buf[0][0], hi_mask);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        acc[r][0] = _mm256_load_ps(buf[r]);
        acc[r][1] = _mm256_load_ps(buf[r] + 8);
      }
    }
    for (int64_t i = 0; i < (in_asm ? 0 : pairs); ++i) {
      pf.step();
      if constexpr (NP > 1) {
        static_assert(MR == 1);
        __m256 a0 = _mm256_broadcast_ss(t.a + 2 * i), a1 = _mm256_broadcast_ss(t.a + 2 * i + 1);
#pragma GCC unroll 8
        for (int v = 0; v < NP * kNV; ++v) {
          __m256i raw = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(t.b + (v / kNV) * t.panel_stride + i * 2 * kNR + 16 * (v % kNV)));
          acc[0][v] = _mm256_fmadd_ps(a0, _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16)), acc[0][v]);
          acc[0][v] = _mm256_fmadd_ps(a1, _mm256_castsi256_ps(_mm256_and_si256(raw, hi_mask)), acc[0][v]);
        }
        continue;
      }
      __m256 lo[NP * kNV], hi[NP * kNV];
#pragma GCC unroll 4
      for (int v = 0; v < NP * kNV; ++v) {
        __m256i raw = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(t.b + (v / kNV) * t.panel_stride + i * 2 * kNR + 16 * (v % kNV)));
        lo[v] = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
        hi[v] = _mm256_castsi256_ps(_mm256_and_si256(raw, hi_mask));
      }
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        __m256 a0 = _mm256_broadcast_ss(t.a + r * t.lda + 2 * i);
        __m256 a1 = _mm256_broadcast_ss(t.a + r * t.lda + 2 * i + 1);
#pragma GCC unroll 4
        for (int v = 0; v < NP * kNV; ++v) acc[r][v] = _mm256_fmadd_ps(a0, lo[v], acc[r][v]);
#pragma GCC unroll 4
        for (int v = 0; v < NP * kNV; ++v) acc[r][v] = _mm256_fmadd_ps(a1, hi[v], acc[r][v]);
      }
    }
    if (t.kl & 1) {  // the last, unpaired k (only at the very end of K)
#pragma GCC unroll 4
      for (int v = 0; v < NP * kNV; ++v) {
        __m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.b + (v / kNV) * t.panel_stride + pairs * 2 * kNR +
                                                                 16 * (v % kNV))),
            16));
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          acc[r][v] = _mm256_fmadd_ps(_mm256_broadcast_ss(t.a + r * t.lda + 2 * pairs), lo, acc[r][v]);
      }
    }
    tile_store<MR, NP>(acc, t);
  }
};

template <class Kern, int R>
VLLM_INLINE void tile_rows(int rows, const TileArgs<typename Kern::W>& t, Prefetcher& pf) {
  if constexpr (R >= 1) {
    if (rows == R) return Kern::template tile<R, 1>(t, pf);
    tile_rows<Kern, R - 1>(rows, t, pf);
  }
}

// Rows [m0, m1) x panels [p0, p1), as in gemm_avx512.cpp: per panel (or pair of panels for a
// single row), per k block, row tiles of near-equal height; with several tiles, each prefetches
// its share of the next block of the (contiguous) weight stream.
template <class Kern>
void run(const GemmArgs& g, int64_t p0, int64_t p1, int64_t m0, int64_t m1) {
  using W = typename Kern::W;
  constexpr int MR = Kern::kMR;
  const W* w = static_cast<const W*>(g.w);
  const int64_t panel_elems = g.kp * kNR;
  const int64_t kc = imax(2, imin(g.kc, g.K));
  const int64_t rows = m1 - m0;
  const int64_t tiles = (rows + MR - 1) / MR;
  const int64_t base = rows / tiles, extra = rows % tiles;
  for (int64_t p = p0; p < p1;) {
    const int np = (rows == 1 && p + kNP1 <= p1) ? kNP1 : 1;
    const int64_t n0 = p * kNR;
    const PanelMasks pm[kNP1] = {PanelMasks(g.N - n0), PanelMasks(g.N - n0 - kNR), PanelMasks(g.N - n0 - 2 * kNR),
                                 PanelMasks(g.N - n0 - 3 * kNR)};
    const W* panel = w + p * panel_elems;
    for (int64_t kb = 0; kb < g.K; kb += kc) {
      const int64_t kl = imin(kc, g.K - kb);
      TileArgs<W> t{nullptr, g.ldx, panel + kb * kNR, panel_elems, kl, nullptr, g.ldy, pm, kb == 0,
                    (kb + kl >= g.K && g.bias) ? g.bias + n0 : nullptr};
      if (np == kNP1) {
        t.a = g.x + m0 * g.ldx + kb;
        t.c = g.y + m0 * g.ldy + n0;
        Prefetcher none;
        Kern::template tile<1, kNP1>(t, none);
        continue;
      }
      const int64_t steps = Kern::steps(kl), block_bytes = steps * Kern::kStepBytes, block_lines = block_bytes / 64;
      int64_t m = m0;
      for (int64_t i = 0; i < tiles; ++i) {
        const int h = static_cast<int>(base + (i < extra ? 1 : 0));
        Prefetcher pf;
        pf.steps = imax(steps, 1);
        if (tiles > 1) {
          const int64_t l0 = block_lines * i / tiles, l1 = block_lines * (i + 1) / tiles;
          pf.next = reinterpret_cast<const char*>(t.b) + block_bytes + 64 * l0;
          pf.lines = l1 - l0;
        }
        t.a = g.x + m * g.ldx + kb;
        t.c = g.y + m * g.ldy + n0;
        tile_rows<Kern, MR>(h, t, pf);
        m += h;
      }
    }
    p += np;
  }
}

}  // namespace

GemmKernel avx2_kernel(DType dtype) {
  switch (dtype) {
    case DType::F32: return &run<F32Kernel>;
    case DType::F16: return &run<F16Kernel>;
    case DType::BF16: return &run<Bf16WidenKernel>;
    default: return nullptr;
  }
}

#else

GemmKernel avx2_kernel(DType) { return nullptr; }

#endif

}  // namespace vllm::cpu::detail
