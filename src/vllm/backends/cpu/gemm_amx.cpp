// AMX kernel for BF16 weights (this file alone is compiled with the AVX-512 flags plus -mamx-tile
// -mamx-bf16; nothing here may be called unless cpu_features says the CPU and the OS allow AMX).
//
// AMX multiplies tiles held in eight tile registers of 16 rows x 64 bytes: tdpbf16ps adds
// A[16 x 32 bf16] · B[16 pairs x 16 columns x 2 bf16] into C[16 x 16 float32], 16 x 16 x 32
// multiply-adds in one instruction (16 times what one vdpbf16ps does).
//
// The weight layout is the AVX-512 one (gemm.h: panels of 64 columns, [K/2][64][2], pairs of k per
// column), with K padded to a multiple of 32 so that every k step is a whole tile: a B tile of
// 16 columns and 16 k pairs is 16 rows of 64 bytes at a stride of one pair row (256 bytes), so
// the kernels read the panels where they lie, and the four B tiles of one k step are 4 KiB of
// contiguous stream. A tiles are up to 16 rows of the bf16 activations (gemm.cpp rounds them), and
// the A and C tiles are configured with as many rows as the tile has (TileShape).
//
// Tile registers: tmm0-3 accumulators, tmm4-5 activations, tmm6-7 weights. A micro-tile is
//   one row tile  (M <= 16 left): C[1 x 4 column tiles], A in tmm4, B alternating in tmm6/tmm7;
//   two row tiles (more rows left): C[2 x 2 column tiles] for each half of the panel, so that
//                                   every A and B tile loaded feeds two tdpbf16ps.
// Each C tile sums all of K, k steps in ascending order, in the tile unit's fixed order: a row's
// result depends on that row's activations alone, never on M, the row split or the threads.
// (AMX treats bf16 denormals as zero and flushes float32 denormal results, unlike vdpbf16ps: the
// two ISAs agree within rounding, not bit for bit, and one process uses one of them throughout.)
#include "vllm/backends/cpu/gemm.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512F__)
#define VLLM_HAVE_AMX 1
#include <immintrin.h>
#endif

namespace vllm::cpu::detail {

#ifdef VLLM_HAVE_AMX
namespace {

#define VLLM_INLINE inline __attribute__((always_inline))

constexpr int kNR = 64;            // panel width (as the AVX-512 kernels)
constexpr int kTileRows = 16;      // rows of A and C per tile, k pairs of B per tile
constexpr int kStepK = 32;         // k per tile step (16 pairs of bf16)
constexpr int64_t kPairRowBytes = kNR * 2 * 2;  // one k pair of a panel: 64 columns x 2 bf16

VLLM_INLINE int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// The tile configuration of palette 1 (Intel SDM, LDTILECFG): eight tiles of 64-byte rows.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// The shape of the A and C tiles: one row tile (two = false; one_row_tile: C tmm0-3 and A tmm4 of
// h rows) or two (two_row_tiles: C tmm0-1 and A tmm4 of 16 rows, C tmm2-3 and A tmm5 of h rows).
// B tiles are always 16 k pairs x 64 bytes. Tiles of as many rows as the batch has (one in a
// decode step) need no zero rows of activations padded in.
struct TileShape {
  bool two = false;
  int h = 0;
  bool operator==(const TileShape&) const = default;
};

VLLM_INLINE void configure_tiles(TileShape shape) {
  TileConfig cfg;
  const int first = shape.two ? kTileRows : shape.h;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64;
  cfg.rows[0] = cfg.rows[1] = static_cast<uint8_t>(first);
  cfg.rows[2] = cfg.rows[3] = static_cast<uint8_t>(shape.h);
  cfg.rows[4] = static_cast<uint8_t>(first);
  cfg.rows[5] = static_cast<uint8_t>(shape.h);
  cfg.rows[6] = cfg.rows[7] = kTileRows;
  _tile_loadconfig(&cfg);
}

// The four accumulator tiles to memory, 16 x 16 floats each (the tile intrinsics take the register
// number as a literal).
VLLM_INLINE void store_accumulators(float (&buf)[4][kTileRows * 16]) {
  _tile_stored(0, buf[0], 64);
  _tile_stored(1, buf[1], 64);
  _tile_stored(2, buf[2], 64);
  _tile_stored(3, buf[3], 64);
}

// Writes an accumulator tile, already stored to `buf` (16 x 16 floats), to y rows m.., columns
// n.., keeping rows < h and columns < ncols, and adds the bias (every k has been summed by then).
VLLM_INLINE void write_tile(const float* buf, const GemmArgs& g, int64_t m, int h, int64_t n, int64_t ncols,
                            const float* bias) {
  if (ncols <= 0 || h <= 0) return;
  float* y = g.y + m * g.ldy + n;
  const __mmask16 mask = static_cast<__mmask16>(ncols >= 16 ? 0xffffu : (1u << ncols) - 1u);
  const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
  for (int r = 0; r < h; ++r)
    _mm512_mask_storeu_ps(y + r * g.ldy, mask, _mm512_add_ps(_mm512_load_ps(buf + 16 * r), bv));
}

// Rows [m, m + h) (h <= 16) x the 64 columns of one panel.
VLLM_INLINE void one_row_tile(const GemmArgs& g, const char* panel, int64_t steps, int64_t m, int h, int64_t n0,
                              int64_t ncols, const float* bias) {
  const char* a = reinterpret_cast<const char*>(g.xb + m * g.ldxb);
  const int64_t lda = g.ldxb * 2;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < steps; ++s) {
    const char* b = panel + s * kTileRows * kPairRowBytes;
    _tile_loadd(4, a + s * kStepK * 2, lda);
    _tile_loadd(6, b, kPairRowBytes);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b + 64, kPairRowBytes);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(6, b + 128, kPairRowBytes);
    _tile_dpbf16ps(2, 4, 6);
    _tile_loadd(7, b + 192, kPairRowBytes);
    _tile_dpbf16ps(3, 4, 7);
  }
  alignas(64) float buf[4][kTileRows * 16];
  store_accumulators(buf);
  for (int j = 0; j < 4; ++j) write_tile(buf[j], g, m, h, n0 + 16 * j, ncols - 16 * j, bias ? bias + 16 * j : nullptr);
}

// Rows [m, m + 16 + h2) (0 < h2 <= 16) x the 64 columns of one panel, in two halves of 32.
VLLM_INLINE void two_row_tiles(const GemmArgs& g, const char* panel, int64_t steps, int64_t m, int h2, int64_t n0,
                               int64_t ncols, const float* bias) {
  const char* a0 = reinterpret_cast<const char*>(g.xb + m * g.ldxb);
  const char* a1 = reinterpret_cast<const char*>(g.xb + (m + kTileRows) * g.ldxb);
  const int64_t lda = g.ldxb * 2;
  for (int half = 0; half < 2; ++half) {
    const int64_t c0 = 32 * half;
    if (ncols - c0 <= 0) break;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t s = 0; s < steps; ++s) {
      const char* b = panel + s * kTileRows * kPairRowBytes + c0 * 4;
      _tile_loadd(4, a0 + s * kStepK * 2, lda);
      _tile_loadd(6, b, kPairRowBytes);
      _tile_dpbf16ps(0, 4, 6);
      _tile_loadd(7, b + 64, kPairRowBytes);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, a1 + s * kStepK * 2, lda);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    const float* bb = bias ? bias + c0 : nullptr;
    alignas(64) float buf[4][kTileRows * 16];
    store_accumulators(buf);
    write_tile(buf[0], g, m, kTileRows, n0 + c0, ncols - c0, bb);
    write_tile(buf[1], g, m, kTileRows, n0 + c0 + 16, ncols - c0 - 16, bb ? bb + 16 : nullptr);
    write_tile(buf[2], g, m + kTileRows, h2, n0 + c0, ncols - c0, bb);
    write_tile(buf[3], g, m + kTileRows, h2, n0 + c0 + 16, ncols - c0 - 16, bb ? bb + 16 : nullptr);
  }
}

// Rows [m0, m1) x panels [p0, p1), in tiles of 16 rows and a last one of what is left (TileShape:
// the tiles are reconfigured only when that shape changes).
void run_amx(const GemmArgs& g, int64_t p0, int64_t p1, int64_t m0, int64_t m1) {
  const char* w = static_cast<const char*>(g.w);
  const int64_t panel_bytes = g.kp * kNR * 2;
  const int64_t steps = g.kp / kStepK;  // kp is a multiple of 32 for AMX-packed weights
  TileShape current;                    // h = 0: nothing configured yet
  auto shape = [&](TileShape s) {
    if (!(s == current)) configure_tiles(s);
    current = s;
  };
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * kNR;
    const int64_t ncols = imin(kNR, g.N - n0);
    const char* panel = w + p * panel_bytes;
    const float* bias = g.bias ? g.bias + n0 : nullptr;
    for (int64_t m = m0; m < m1;) {
      const int64_t left = m1 - m;
      if (left > kTileRows) {
        const int h2 = static_cast<int>(imin(left - kTileRows, kTileRows));
        shape({true, h2});
        two_row_tiles(g, panel, steps, m, h2, n0, ncols, bias);
        m += kTileRows + h2;
      } else {
        const int h = static_cast<int>(left);
        shape({false, h});
        one_row_tile(g, panel, steps, m, h, n0, ncols, bias);
        m += left;
      }
    }
  }
  if (current.h > 0) _tile_release();
}

}  // namespace

GemmKernel amx_bf16_kernel() { return &run_amx; }

#else  // !VLLM_HAVE_AMX

GemmKernel amx_bf16_kernel() { return nullptr; }

#endif

}  // namespace vllm::cpu::detail
