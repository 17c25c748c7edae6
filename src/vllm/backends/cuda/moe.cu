// Mixture of experts: routing, grouping by expert, the experts' products and the weighted sum
// back into token order, all on the device.
//
//   router logits (float32)  ->  route + group  ->  gate/up product with SiLU-and-mul  ->  down
//   product  ->  combine
//
// GPT-OSS's experts add a float32 bias to each product and clamp the SwiGLU (MoeProduct): both
// happen in the products' epilogues, on float32 sums, as the CPU computes them.
//
// The grouping is moe_layout.h's: assignment a = t * top_k + k sorted by expert, tokens ascending
// within an expert. Kernels that work per expert find theirs in the layout (an active-expert slot
// or a row tile per grid row), so grids are sized for the worst routing and the host never needs
// to know the routing. Sums are in float32 in a fixed order (no atomics on values), so results do
// not change from run to run.
#include <mma.h>

#include "vllm/backends/cuda/common.cuh"
#include "vllm/backends/moe_layout.h"

namespace vllm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

// The gated activation: silu(g) * u, or with limit > 0 GPT-OSS's clamped SwiGLU, (clamp(u) + 1)
// * g * sigmoid(alpha * g) with g clamped above only (ExpertOptions). limit is uniform.
__device__ __forceinline__ float gated_act(float g, float u, float limit, float alpha) {
  if (limit > 0.0f) {
    g = fminf(g, limit);
    u = fminf(fmaxf(u, -limit), limit);
    return (u + 1.0f) * (g / (1.0f + expf(-alpha * g)));
  }
  return silu(g) * u;
}

// acc += w · x over one 16-byte pack of each.
template <typename T>
__device__ __forceinline__ void dot_pack(const uint4& w, const uint4& x, float& acc) {
  const Pack<T>& wp = *reinterpret_cast<const Pack<T>*>(&w);
  const Pack<T>& xp = *reinterpret_cast<const Pack<T>*>(&x);
#pragma unroll
  for (int e = 0; e < Pack<T>::N; ++e) acc = fmaf(to_float(wp.v[e]), to_float(xp.v[e]), acc);
}

// ---------------------------------------------------------------------------------------------
// Router logits for a few tokens: one warp per expert row, every token at once.

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) router_logits_kernel(float* __restrict__ logits, const T* __restrict__ x,
                                                                 const T* __restrict__ w, const T* __restrict__ bias,
                                                                 int nt, int E, int H) {
  pdl_begin();
  constexpr int MT = static_cast<int>(kMoeRouterMaxTokens);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int e = blockIdx.x * kWarps + warp;
  if (e >= E) return;
  const T* wr = w + static_cast<int64_t>(e) * H;
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
  if constexpr (VEC) {
    const int kp = H / Pack<T>::N;
    const uint4* w4 = reinterpret_cast<const uint4*>(wr);
    for (int p = lane; p < kp; p += 32) {
      const uint4 wv = __ldg(w4 + p);
#pragma unroll
      for (int m = 0; m < MT; ++m)
        if (m < nt) dot_pack<T>(wv, __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * H) + p), acc[m]);
    }
  } else {
    for (int i = lane; i < H; i += 32) {
      const float wv = to_float(wr[i]);
#pragma unroll
      for (int m = 0; m < MT; ++m)
        if (m < nt) acc[m] = fmaf(wv, to_float(x[static_cast<int64_t>(m) * H + i]), acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (m < nt) {  // nt is the same for the whole warp
      const float v = warp_sum(acc[m]) + (bias ? to_float(bias[e]) : 0.0f);
      if (lane == 0) logits[static_cast<int64_t>(m) * E + e] = v;
    }
  }
}

// logits[t, e] += bias[e] (a router's bias after a cuBLASLt product with a float32 output).
template <typename T>
__global__ void router_bias_kernel(float* __restrict__ logits, const T* __restrict__ bias, int64_t rows, int E) {
  pdl_begin();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * E;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    logits[i] += to_float(bias[i % E]);
}

// ---------------------------------------------------------------------------------------------
// Routing: one warp per token.

// PL: probabilities a lane holds (E <= 32 * PL), a compile-time count so that they stay in registers.
// Softmax of the token's E logits in float32, then top_k rounds of a warp arg-max (the larger
// probability, ties to the lower expert), then optional renormalisation by the sum of the picks
// (summed in pick order). A NaN probability counts as 0, so top_k distinct experts are always
// picked and every id stays in range whatever the logits hold.
template <int PL>
__device__ void route_token(const float* __restrict__ l, int E, int K, bool renormalize, int32_t* __restrict__ ids,
                            float* __restrict__ weights) {
  const int lane = threadIdx.x & 31;
  float p[PL];
  float mx = -INFINITY;
#pragma unroll
  for (int j = 0; j < PL; ++j) {
    const int e = j * 32 + lane;
    p[j] = e < E ? l[e] : -INFINITY;
    mx = fmaxf(mx, p[j]);
  }
  mx = warp_max(mx);
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < PL; ++j) {
    const int e = j * 32 + lane;
    p[j] = e < E ? expf(p[j] - mx) : 0.0f;
    sum += p[j];
  }
  sum = warp_sum(sum);
#pragma unroll
  for (int j = 0; j < PL; ++j) {
    const int e = j * 32 + lane;
    const float v = p[j] / sum;
    // Past E: -1, below any probability, so never picked. NaN: 0.
    p[j] = e < E ? (v == v ? v : 0.0f) : -1.0f;
  }
  float chosen = 0.0f, my_w = 0.0f;
  int my_id = 0;
  for (int k = 0; k < K; ++k) {
    // This lane's best (j ascending, strict >: the lower expert on a tie), then the warp's.
    float bv = -1.0f;
    int bi = E;
#pragma unroll
    for (int j = 0; j < PL; ++j)
      if (p[j] > bv) bv = p[j], bi = j * 32 + lane;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
    }
    // Every lane now holds the same (bv, bi); the owner takes it out of the running.
#pragma unroll
    for (int j = 0; j < PL; ++j)
      if (bi == j * 32 + lane) p[j] = -1.0f;
    if (lane == k) my_w = bv, my_id = bi;
    chosen += bv;
  }
  if (lane < K) {
    ids[lane] = my_id;
    weights[lane] = renormalize ? my_w / chosen : my_w;
  }
}

template <int PL>
__global__ void __launch_bounds__(kThreads) route_kernel(const float* __restrict__ logits, int32_t* __restrict__ ids,
                                                         float* __restrict__ weights, int T, int E, int K,
                                                         bool renormalize) {
  pdl_begin();
  const int t = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (t >= T) return;
  route_token<PL>(logits + static_cast<int64_t>(t) * E, E, K, renormalize, ids + static_cast<int64_t>(t) * K,
              weights + static_cast<int64_t>(t) * K);
}

// ---------------------------------------------------------------------------------------------
// Grouping: one block of 1024 threads builds the whole layout (moe::group_by_expert's).
//
//   1. (ROUTE: the block routes the tokens itself, a warp per token.)
//   2. The n = T * top_k assignments are cut into S contiguous segments, one per warp; each warp
//      counts its segment's assignments per expert into seg[w][e] (shared atomics on counts:
//      the totals do not depend on their order).
//   3. Thread e sums its expert over the segments and turns seg[.][e] into each segment's first
//      row; block-wide exclusive scans give offsets, tile_starts and the active list.
//   4. Each warp walks its segment in order, 32 assignments at a time: an assignment's row is its
//      segment's next row for its expert plus its rank among the lanes with the same expert
//      (__match_any_sync), so ties keep assignment order: a stable counting sort.

constexpr int kGroupThreads = 1024;
constexpr int kGroupWarps = kGroupThreads / 32;
constexpr int kSegSlots = 8192;  // shared ints for seg[S][E]
constexpr int kRouteInBlockMaxTokens = 64;

struct GroupArgs {
  const float* logits;
  int32_t* ids;
  float* weights;
  int32_t *counts, *offsets, *tile_starts, *active, *num_active, *order, *pos;
  int T, E, K, S;
  bool renormalize;
};

// Exclusive prefix sum over the block's threads (kGroupThreads) of v; *total gets the sum.
__device__ int block_exclusive_scan(int v, int* scratch, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int s = scratch[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    scratch[lane] = s;  // inclusive over warps
  }
  __syncthreads();
  const int before = warp > 0 ? scratch[warp - 1] : 0;
  *total = scratch[kGroupWarps - 1];
  __syncthreads();  // scratch is reused by the next call
  return before + x - v;
}

template <bool ROUTE, int PL>
__global__ void __launch_bounds__(kGroupThreads) group_kernel(GroupArgs a) {
  pdl_begin();
  __shared__ int seg[kSegSlots];
  __shared__ int scratch[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int n = a.T * a.K, E = a.E, S = a.S;
  if constexpr (ROUTE) {
    for (int t = warp; t < a.T; t += kGroupWarps)
      route_token<PL>(a.logits + static_cast<int64_t>(t) * E, E, a.K, a.renormalize, a.ids + static_cast<int64_t>(t) * a.K,
                  a.weights + static_cast<int64_t>(t) * a.K);
  }
  for (int i = tid; i < S * E; i += kGroupThreads) seg[i] = 0;
  __syncthreads();  // the ids written above and the zeroed counts are seen by the whole block

  const int seg_len = (n + S - 1) / S;
  const int begin = warp * seg_len, end = min(n, begin + seg_len);
  if (warp < S)
    for (int i = begin + lane; i < end; i += 32) atomicAdd(&seg[warp * E + a.ids[i]], 1);
  __syncthreads();

  // Thread e: its expert's count, and each segment's first row relative to the expert's.
  int count = 0;
  if (tid < E) {
    for (int w = 0; w < S; ++w) {
      const int c = seg[w * E + tid];
      seg[w * E + tid] = count;
      count += c;
    }
  }
  const int tiles = moe::tiles_of(count, kMoeTileRows), is_active = count > 0 ? 1 : 0;
  int total_rows, total_tiles, total_active;
  const int row0 = block_exclusive_scan(count, scratch, &total_rows);
  const int tile0 = block_exclusive_scan(tiles, scratch, &total_tiles);
  const int slot = block_exclusive_scan(is_active, scratch, &total_active);
  if (tid < E) {
    a.counts[tid] = count;
    a.offsets[tid] = row0;
    a.tile_starts[tid] = tile0;
    if (is_active) a.active[slot] = tid;
    for (int w = 0; w < S; ++w) seg[w * E + tid] += row0;
  }
  if (tid == 0) {
    a.offsets[E] = total_rows;
    a.tile_starts[E] = total_tiles;
    *a.num_active = total_active;
  }
  __syncthreads();

  if (warp < S) {
    const unsigned lower = (1u << lane) - 1u;
    for (int c = begin; c < end; c += 32) {
      const int i = c + lane;
      const bool valid = i < end;
      const int e = valid ? a.ids[i] : -1;
      const unsigned same = __match_any_sync(0xffffffffu, e);
      const int rank = __popc(same & lower);
      int r = 0;
      if (valid) r = seg[warp * E + e] + rank;
      __syncwarp();
      if (valid) {
        a.order[r] = i;
        a.pos[i] = r;
        if (rank == 0) seg[warp * E + e] += __popc(same);  // the group's lowest lane moves the segment on
      }
      __syncwarp();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Grouped skinny products (decode): grid (column blocks, active-expert slots), a warp per output
// column. The warp streams its weight row(s) once per chunk of up to MT of the expert's rows. An
// expert has at most T rows (a token picks an expert once), so the launcher takes the smallest MT
// in {1, 2, 4, 8} that covers T: batch-1 decode runs MT = 1, with few registers and many warps.

constexpr int kGemvUnroll = 4;  // 16-byte weight loads in flight per lane and matrix

struct GemvArgs {
  void* out;
  const void* in;
  const void* w;
  const int32_t *offsets, *active, *num_active, *order;
  int K, N, Kd;
  bool gather;
  const float* bias;  // MoeProduct::bias
  float limit, alpha;
};

template <typename T, bool GATED, bool VEC, int MT>
__global__ void __launch_bounds__(kThreads, 2) expert_gemv_kernel(GemvArgs a) {
  pdl_begin();
  const int slot = blockIdx.y;
  if (slot >= *a.num_active) return;
  const int e = a.active[slot];
  const int r0 = a.offsets[e], cnt = a.offsets[e + 1] - r0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n = blockIdx.x * kWarps + warp;
  if (n >= a.N) return;
  const int64_t Kd = a.Kd, N = a.N;
  const T* wg = static_cast<const T*>(a.w) + (static_cast<int64_t>(e) * (GATED ? 2 * N : N) + n) * Kd;
  const T* wu = wg + N * Kd;  // GATED: the up row of column n
  const T* in = static_cast<const T*>(a.in);
  T* out = static_cast<T*>(a.out);

  for (int c0 = 0; c0 < cnt; c0 += MT) {
    const int nt = min(MT, cnt - c0);  // the same for the whole warp
    const T* xr[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const int r = r0 + c0 + min(m, nt - 1);
      xr[m] = in + static_cast<int64_t>(a.gather ? a.order[r] / a.K : r) * Kd;
    }
    float ag[MT], au[MT];
#pragma unroll
    for (int m = 0; m < MT; ++m) ag[m] = au[m] = 0.0f;
    if constexpr (VEC) {
      const int kp = static_cast<int>(Kd / Pack<T>::N);
      const uint4* wg4 = reinterpret_cast<const uint4*>(wg);
      const uint4* wu4 = reinterpret_cast<const uint4*>(wu);
      for (int p0 = 0; p0 < kp; p0 += 32 * kGemvUnroll) {
        uint4 gv[kGemvUnroll], uv[kGemvUnroll];
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) {
          const int p = p0 + u * 32 + lane;
          gv[u] = p < kp ? __ldcs(wg4 + p) : make_uint4(0, 0, 0, 0);
          if constexpr (GATED) uv[u] = p < kp ? __ldcs(wu4 + p) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) {
          const int p = p0 + u * 32 + lane;
          if (p < kp) {
#pragma unroll
            for (int m = 0; m < MT; ++m) {
              if (m < nt) {
                const uint4 xv = __ldg(reinterpret_cast<const uint4*>(xr[m]) + p);
                dot_pack<T>(gv[u], xv, ag[m]);
                if constexpr (GATED) dot_pack<T>(uv[u], xv, au[m]);
              }
            }
          }
        }
      }
    } else {
      for (int i = lane; i < Kd; i += 32) {
        const float g = to_float(wg[i]);
        const float u = GATED ? to_float(wu[i]) : 0.0f;
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          if (m < nt) {
            const float xv = to_float(xr[m][i]);
            ag[m] = fmaf(g, xv, ag[m]);
            if constexpr (GATED) au[m] = fmaf(u, xv, au[m]);
          }
        }
      }
    }
    const float* bias = a.bias ? a.bias + static_cast<int64_t>(e) * (GATED ? 2 * N : N) : nullptr;
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m < nt) {
        float g = warp_sum(ag[m]);
        if (bias) g += bias[n];
        float v = g;
        if constexpr (GATED) {
          float u = warp_sum(au[m]);
          if (bias) u += bias[N + n];
          v = gated_act(g, u, a.limit, a.alpha);
        }
        if (lane == 0) out[static_cast<int64_t>(r0 + c0 + m) * N + n] = from_float<T>(v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Grouped products on tensor cores (prefill): a block computes a tile of kMoeTileRows sorted rows
// of one expert by 128 output columns (gated: 64 gate columns and the same 64 up columns, so the
// SiLU-and-mul happens in the epilogue). 8 warps of 64 x 32; WMMA 16x16x16 fragments with float32
// accumulators; operands staged through a 4-deep cp.async ring of 32-wide K slices.

constexpr int kBM = kMoeTileRows, kBN = 128, kBK = 32, kLd = kBK + 8, kStages = 4;
constexpr size_t gemm_smem_bytes(size_t elem) { return static_cast<size_t>(kStages) * (kBM + kBN) * kLd * elem; }

struct GemmArgs {
  void* out;
  const void* in;
  const void* w;
  const int32_t *offsets, *tile_starts, *order;
  int K, N, Kd, E;
  bool gather;
  const float* bias;  // MoeProduct::bias
  float limit, alpha;
};

__device__ __forceinline__ void cp_async16(void* smem, const void* src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <typename T, bool GATED>
__global__ void __launch_bounds__(kThreads) expert_gemm_kernel(GemmArgs a) {
  using namespace nvcuda;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* As = reinterpret_cast<T*>(smem_raw);  // [kStages][kBM][kLd]
  T* Bs = As + kStages * kBM * kLd;        // [kStages][kBN][kLd]
  pdl_begin();
  const int tile = blockIdx.y;
  if (tile >= a.tile_starts[a.E]) return;
  const int e = moe::expert_of_tile(tile, a.tile_starts, a.E);
  const int m0 = (tile - a.tile_starts[e]) * kBM;  // the tile's first row within the expert's run
  const int r0 = a.offsets[e], cnt = a.offsets[e + 1] - r0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp >> 2, wn = warp & 3;
  const int64_t Kd = a.Kd, N = a.N;
  const T* in = static_cast<const T*>(a.in);
  const T* w = static_cast<const T*>(a.w) + static_cast<int64_t>(e) * (GATED ? 2 * N : N) * Kd;

  // Each thread copies 2 of the 512 16-byte chunks of each operand's K slice: chunk c is row
  // c / 4, elements (c % 4) * 8 .. +8 of the slice.
  const T* a_src[2];
  const T* b_src[2];
  bool a_ok[2], b_ok[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int c = tid + i * kThreads, row = c >> 2, kc = (c & 3) * 8;
    a_ok[i] = m0 + row < cnt;
    const int r = r0 + m0 + row;
    const int64_t src_row = a_ok[i] ? (a.gather ? a.order[r] / a.K : r) : 0;
    a_src[i] = in + src_row * Kd + kc;
    int64_t wrow;
    if constexpr (GATED) {
      const int col = blockIdx.x * (kBN / 2) + (row >> 5) * 16 + (row & 15);  // act column
      b_ok[i] = col < N;
      wrow = ((row >> 4) & 1 ? N : 0) + col;  // rows 16..31 of each warp's 32: the up rows
    } else {
      const int col = blockIdx.x * kBN + row;
      b_ok[i] = col < N;
      wrow = col;
    }
    b_src[i] = w + (b_ok[i] ? wrow : 0) * Kd + kc;
  }
  auto load_slice = [&](int stage, int k0) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int c = tid + i * kThreads, row = c >> 2, kc = (c & 3) * 8;
      const bool kin = k0 + kc < Kd;  // Kd is a multiple of 8: a chunk is all in or all out
      cp_async16(As + (stage * kBM + row) * kLd + kc, a_ok[i] && kin ? a_src[i] + k0 : in, a_ok[i] && kin);
      cp_async16(Bs + (stage * kBN + row) * kLd + kc, b_ok[i] && kin ? b_src[i] + k0 : w, b_ok[i] && kin);
    }
  };

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  const int nk = static_cast<int>((Kd + kBK - 1) / kBK);
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nk) load_slice(s, s * kBK);
    cp_async_commit();
  }
  for (int kt = 0; kt < nk; ++kt) {
    cp_async_wait<kStages - 2>();  // this thread's copies of slice kt have landed
    __syncthreads();               // everyone's have, and everyone is done with slice kt - 1
    const int next = kt + kStages - 1;
    if (next < nk) load_slice(next % kStages, next * kBK);  // into slice kt - 1's stage
    cp_async_commit();
    const T* as = As + (kt % kStages) * kBM * kLd;
    const T* bs = Bs + (kt % kStages) * kBN * kLd;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> af[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bf[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(af[i], as + (wm * 64 + i * 16) * kLd + kk, kLd);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(bf[j], bs + (wn * 32 + j * 16) * kLd + kk, kLd);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the staging memory becomes the epilogue's scratch

  // Epilogue: a warp's 2 KB of scratch holds one row of fragments (16 x 32 floats) at a time;
  // lane l writes 8 consecutive columns of row l / 2.
  float* sc = reinterpret_cast<float*>(smem_raw) + warp * 512;
  T* out = static_cast<T*>(a.out);
  const int rr = lane >> 1, cc0 = (lane & 1) * 8;
  const float* bias = a.bias ? a.bias + static_cast<int64_t>(e) * (GATED ? 2 * N : N) : nullptr;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    wmma::store_matrix_sync(sc, acc[i][0], 16, wmma::mem_row_major);
    wmma::store_matrix_sync(sc + 256, acc[i][1], 16, wmma::mem_row_major);
    __syncwarp();
    const int row = m0 + wm * 64 + i * 16 + rr;  // within the expert's run
    if (row < cnt) {
      T* orow = out + static_cast<int64_t>(r0 + row) * N;
#pragma unroll
      for (int j = 0; j < (GATED ? 1 : 2); ++j) {
        const int col0 = GATED ? blockIdx.x * (kBN / 2) + wn * 16 + cc0 : blockIdx.x * kBN + wn * 32 + j * 16 + cc0;
        if (col0 + 8 > N) continue;  // N is a multiple of 8: these 8 columns are all in or all out
        Pack<T> v;
#pragma unroll
        for (int q = 0; q < 8; ++q) {
          float g = sc[j * 256 + rr * 16 + cc0 + q];
          if (bias) g += bias[col0 + q];
          if constexpr (GATED) {
            float u = sc[256 + rr * 16 + cc0 + q];
            if (bias) u += bias[N + col0 + q];
            g = gated_act(g, u, a.limit, a.alpha);
          }
          v.v[q] = from_float<T>(g);
        }
        store_pack(orow + col0, v);
      }
    }
    __syncwarp();
  }
}

// ---------------------------------------------------------------------------------------------
// Combine: a block per token.

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) combine_kernel(T* __restrict__ out, const T* __restrict__ y,
                                                           const int32_t* __restrict__ ids, const float* __restrict__ w,
                                                           const int32_t* __restrict__ pos, int K, int H) {
  pdl_begin();
  __shared__ int s_row[kMoeMaxTopK];
  __shared__ float s_w[kMoeMaxTopK];
  const int64_t t = blockIdx.x;
  if (threadIdx.x == 0) {
    // The token's picks in ascending expert order (they are distinct): selection.
    int prev = -1;
    for (int k = 0; k < K; ++k) {
      int best = -1;
      for (int q = 0; q < K; ++q) {
        const int id = ids[t * K + q];
        if (id > prev && (best < 0 || id < ids[t * K + best])) best = q;
      }
      prev = ids[t * K + best];
      s_row[k] = pos[t * K + best];
      s_w[k] = w[t * K + best];
    }
  }
  __syncthreads();
  T* o = out + t * H;
  if constexpr (VEC) {
    constexpr int PN = Pack<T>::N;
    for (int p = threadIdx.x; p < H / PN; p += kThreads) {
      float acc[PN];
#pragma unroll
      for (int q = 0; q < PN; ++q) acc[q] = 0.0f;
      for (int k = 0; k < K; ++k) {
        const Pack<T> v = load_pack(y + static_cast<int64_t>(s_row[k]) * H + p * PN);
#pragma unroll
        for (int q = 0; q < PN; ++q) acc[q] = fmaf(s_w[k], to_float(v.v[q]), acc[q]);
      }
      Pack<T> r;
#pragma unroll
      for (int q = 0; q < PN; ++q) r.v[q] = from_float<T>(acc[q]);
      store_pack(o + p * PN, r);
    }
  } else {
    for (int h = threadIdx.x; h < H; h += kThreads) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) acc = fmaf(s_w[k], to_float(y[static_cast<int64_t>(s_row[k]) * H + h]), acc);
      o[h] = from_float<T>(acc);
    }
  }
}

int max_slots(int64_t T, int64_t E, int64_t K) { return static_cast<int>(std::min<int64_t>(E, T * K)); }

}  // namespace

void moe_router_logits(DType t, float* logits, const void* x, const void* router, const void* bias, int64_t T,
                       int64_t E, int64_t H, cudaStream_t stream) {
  if (T == 0) return;
  if (T > kMoeRouterMaxTokens) fail("moe_router_logits: too many tokens");
  const unsigned blocks = ceil_div(E, kWarps);
  VLLM_DISPATCH_FLOAT(t, T_, {
    const bool vec = H % Pack<T_>::N == 0 && aligned16(x) && aligned16(router);
    if (vec)
      launch_k(router_logits_kernel<T_, true>, blocks, kThreads, 0, stream, logits, static_cast<const T_*>(x),
               static_cast<const T_*>(router), static_cast<const T_*>(bias), static_cast<int>(T), static_cast<int>(E),
               static_cast<int>(H));
    else
      launch_k(router_logits_kernel<T_, false>, blocks, kThreads, 0, stream, logits, static_cast<const T_*>(x),
               static_cast<const T_*>(router), static_cast<const T_*>(bias), static_cast<int>(T), static_cast<int>(E),
               static_cast<int>(H));
  });
  check_launch("moe_router_logits");
}

void moe_router_bias(DType t, float* logits, const void* bias, int64_t T, int64_t E, cudaStream_t stream) {
  if (T == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(T * E, 256), 4096));
  VLLM_DISPATCH_FLOAT(t, T_, launch_k(router_bias_kernel<T_>, blocks, 256, 0, stream, logits,
                                      static_cast<const T_*>(bias), T, static_cast<int>(E)));
  check_launch("moe_router_bias");
}

namespace {
// A few tokens: the grouping block routes them itself (one launch); more: a routing kernel first.
template <int PL>
void launch_route_group(const GroupArgs& a, const MoeBuffers& b, int64_t T, cudaStream_t stream) {
  if (T <= kRouteInBlockMaxTokens) {
    launch_k(group_kernel<true, PL>, 1, kGroupThreads, 0, stream, a);
  } else {
    launch_k(route_kernel<PL>, ceil_div(T, kWarps), kThreads, 0, stream, static_cast<const float*>(b.logits), b.ids,
             b.weights, a.T, a.E, a.K, a.renormalize);
    check_launch("moe route");
    launch_k(group_kernel<false, 1>, 1, kGroupThreads, 0, stream, a);  // PL unused without ROUTE
  }
}
}  // namespace

void moe_route_and_group(const MoeBuffers& b, int64_t T, int64_t E, int64_t K, bool renormalize, cudaStream_t stream) {
  if (T == 0) return;
  if (E < 1 || E > kMoeMaxExperts || K < 1 || K > kMoeMaxTopK || K > E) fail("moe: unsupported expert count or top_k");
  GroupArgs a{b.logits, b.ids, b.weights, b.counts, b.offsets, b.tile_starts, b.active, b.num_active, b.order, b.pos,
              static_cast<int>(T), static_cast<int>(E), static_cast<int>(K),
              static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(kGroupWarps, kSegSlots / E))), renormalize};
  if (E <= 32) launch_route_group<1>(a, b, T, stream);
  else if (E <= 64) launch_route_group<2>(a, b, T, stream);
  else if (E <= 128) launch_route_group<4>(a, b, T, stream);
  else if (E <= 256) launch_route_group<8>(a, b, T, stream);
  else launch_route_group<32>(a, b, T, stream);
  check_launch("moe group");
}

namespace {
template <typename T_, int MT>
void launch_gemv(const GemvArgs& a, bool gated, bool vec, dim3 grid, cudaStream_t stream) {
  if (gated) {
    if (vec) launch_k(expert_gemv_kernel<T_, true, true, MT>, grid, kThreads, 0, stream, a);
    else launch_k(expert_gemv_kernel<T_, true, false, MT>, grid, kThreads, 0, stream, a);
  } else {
    if (vec) launch_k(expert_gemv_kernel<T_, false, true, MT>, grid, kThreads, 0, stream, a);
    else launch_k(expert_gemv_kernel<T_, false, false, MT>, grid, kThreads, 0, stream, a);
  }
}
}  // namespace

void moe_expert_gemv(DType t, const MoeProduct& p, const MoeBuffers& b, int64_t T, int64_t E, int64_t K,
                     cudaStream_t stream) {
  if (T == 0) return;
  GemvArgs a{p.out, p.in, p.w, b.offsets, b.active, b.num_active, b.order, static_cast<int>(K), static_cast<int>(p.N),
             static_cast<int>(p.Kd), p.gather, p.bias, p.swiglu_limit, p.swiglu_alpha};
  const dim3 grid(ceil_div(p.N, kWarps), static_cast<unsigned>(max_slots(T, E, K)));
  VLLM_DISPATCH_FLOAT(t, T_, {
    const bool vec = p.Kd % Pack<T_>::N == 0 && aligned16(p.in) && aligned16(p.w);
    if (T == 1) launch_gemv<T_, 1>(a, p.gated, vec, grid, stream);
    else if (T == 2) launch_gemv<T_, 2>(a, p.gated, vec, grid, stream);
    else if (T <= 4) launch_gemv<T_, 4>(a, p.gated, vec, grid, stream);
    else launch_gemv<T_, 8>(a, p.gated, vec, grid, stream);
  });
  check_launch("moe_expert_gemv");
}

bool moe_gemm_supported(DType t, const MoeProduct& p) {
  return (t == DType::F16 || t == DType::BF16) && p.Kd % 8 == 0 && p.N % 8 == 0 && aligned16(p.in) &&
         aligned16(p.w) && aligned16(p.out);
}

namespace {
template <typename T_, bool GATED>
void launch_gemm(const GemmArgs& a, dim3 grid, cudaStream_t stream) {
  const auto kernel = expert_gemm_kernel<T_, GATED>;
  const size_t smem = gemm_smem_bytes(sizeof(T_));
  static const bool configured = [&] {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
          "cudaFuncSetAttribute(moe gemm shared memory)");
    return true;
  }();
  (void)configured;
  launch_k(kernel, grid, kThreads, smem, stream, a);
}
}  // namespace

void moe_expert_gemm(DType t, const MoeProduct& p, const MoeBuffers& b, int64_t T, int64_t E, int64_t K,
                     cudaStream_t stream) {
  if (T == 0) return;
  if (!moe_gemm_supported(t, p)) fail("moe_expert_gemm: unsupported operands");
  GemmArgs a{p.out, p.in, p.w, b.offsets, b.tile_starts, b.order, static_cast<int>(K), static_cast<int>(p.N),
             static_cast<int>(p.Kd), static_cast<int>(E), p.gather, p.bias, p.swiglu_limit, p.swiglu_alpha};
  const int64_t tiles = moe::max_row_tiles(T * K, E, kMoeTileRows);
  if (tiles > 65535) fail("moe_expert_gemm: too many row tiles for one launch");
  const dim3 grid(ceil_div(p.N, p.gated ? kBN / 2 : kBN), static_cast<unsigned>(tiles));
  if (t == DType::F16) {
    if (p.gated) launch_gemm<__half, true>(a, grid, stream);
    else launch_gemm<__half, false>(a, grid, stream);
  } else {
    if (p.gated) launch_gemm<__nv_bfloat16, true>(a, grid, stream);
    else launch_gemm<__nv_bfloat16, false>(a, grid, stream);
  }
  check_launch("moe_expert_gemm");
}

void moe_combine(DType t, void* out, const void* y, const MoeBuffers& b, int64_t T, int64_t K, int64_t H,
                 cudaStream_t stream) {
  if (T == 0) return;
  VLLM_DISPATCH_FLOAT(t, T_, {
    const bool vec = H % Pack<T_>::N == 0 && aligned16(out) && aligned16(y);
    if (vec)
      launch_k(combine_kernel<T_, true>, static_cast<unsigned>(T), kThreads, 0, stream, static_cast<T_*>(out),
               static_cast<const T_*>(y), static_cast<const int32_t*>(b.ids), static_cast<const float*>(b.weights),
               static_cast<const int32_t*>(b.pos), static_cast<int>(K), static_cast<int>(H));
    else
      launch_k(combine_kernel<T_, false>, static_cast<unsigned>(T), kThreads, 0, stream, static_cast<T_*>(out),
               static_cast<const T_*>(y), static_cast<const int32_t*>(b.ids), static_cast<const float*>(b.weights),
               static_cast<const int32_t*>(b.pos), static_cast<int>(K), static_cast<int>(H));
  });
  check_launch("moe_combine");
}

}  // namespace vllm::cuda
