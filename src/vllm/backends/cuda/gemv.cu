// Skinny matrix products for decode (1 to 4 rows of activations), with the step after the
// product fused in (bias, then nothing, tanh GELU, or a two-term residual add).
//
// Weight bytes dominate, so the goal is the chip's memory bandwidth for every shape a decode step
// meets, the small ones too (a 2048 x 2048 projection is 8 MB: a few microseconds). Four things
// get there:
//   - enough bytes in flight: each lane keeps kLoads 16-byte weight loads outstanding, and when
//     the matrix has few rows, W warps share a row (each a strided part of K, summed through
//     shared memory);
//   - one wave: the grid never has more blocks than the chip holds at once. A matrix with more
//     rows than the resident warps is walked in rounds, two tiles of loads in flight per warp, so
//     the weight stream never drains between rows (a second wave of blocks ramps up from an
//     idle memory pipe: seen as 11.6 us for a 33 MB matrix, 2.9 TB/s, where the LM head's
//     210 MB streams at 4.5 TB/s);
//   - no ramp between kernels: the first weight loads are issued before pdl_begin(), that is
//     while the previous kernel of the step is still finishing (weights never depend on it);
//   - no extra kernels: the epilogue rounds acc + bias to T exactly as the unfused linear does,
//     then applies GELU or the residual add the way those separate kernels would, so fused and
//     unfused results are bit-identical;
//   - fewer kernels still (Phi's parallel block, `GemvNormPair`): one launch normalises the input
//     row itself (LayerNorm, in shared memory, as norm.cu's register kernel computes it) and
//     multiplies it with two matrices, the QKV projection and fc1 + GELU, as one row space: one
//     ramp and one tail instead of three kernels' (the norm, and two GEMVs).
//
// FP8 weights (gemv_fp8_kernel) take the same walk with half the bytes: a 16-byte load holds 16
// e4m3 weights, converted in registers and scaled per row or per block.
#include <cuda_fp8.h>

#include <cstdlib>
#include <string>

#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kLoads = 8;
// Four blocks (32 warps) an SM caps registers at 64: enough for one or two activation rows; three
// and four rows need more (they spilled at 64) and get three blocks an SM.
constexpr int min_blocks_per_sm(int M) { return M <= 2 ? 4 : 3; }

// The second matrix and the norm of the fused form (NP): rows [N, N + n2) of the row space are
// out2 = gelu_new(x · w2ᵀ + bias2), and x is layer_norm(x) with norm_w / norm_b (float32).
template <typename T>
struct NormPairArgs {
  T* out2 = nullptr;
  const T* w2 = nullptr;
  const T* bias2 = nullptr;
  int64_t n2 = 0;
  const float* norm_w = nullptr;
  const float* norm_b = nullptr;
  float eps = 0.0f;
};

// xs[K] = layer_norm(x[K]) rounded to T, by the whole block: the formulas and the order of every
// sum of norm.cu's layer_norm_regs_kernel, which for K <= 256 packs runs one pack a thread in
// 256 threads as this does, so that the two agree bit for bit there.
template <typename T>
__device__ void block_layer_norm(T* xs, const T* x, const float* __restrict__ w, const float* __restrict__ b, int K,
                                 float eps, float* scratch) {
  constexpr int E = Pack<T>::N;
  const int packs = K / E;
  float s = 0.0f;
  for (int p = threadIdx.x; p < packs; p += kThreads) {
    const Pack<T> r = load_pack(x + p * E);
    store_pack(xs + p * E, r);
#pragma unroll
    for (int e = 0; e < E; ++e) s += to_float(r.v[e]);
  }
  const float mean = block_sum(s, scratch) / static_cast<float>(K);
  float q = 0.0f;
  for (int p = threadIdx.x; p < packs; p += kThreads) {
    const Pack<T> r = load_pack(xs + p * E);
#pragma unroll
    for (int e = 0; e < E; ++e) q += (to_float(r.v[e]) - mean) * (to_float(r.v[e]) - mean);
  }
  const float inv = 1.0f / sqrtf(block_sum(q, scratch) / static_cast<float>(K) + eps);
  for (int p = threadIdx.x; p < packs; p += kThreads) {
    Pack<T> r = load_pack(xs + p * E);
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int i = p * E + e;
      r.v[e] = from_float<T>((to_float(r.v[e]) - mean) * inv * w[i] + b[i]);
    }
    store_pack(xs + p * E, r);
  }
}

// Block b, round j: its kWarps / W row groups take rows (j * gridDim.x + b) * R + r.
template <typename T, int M, GemvEpilogue EPI, bool NP>
__global__ void __launch_bounds__(kThreads, min_blocks_per_sm(M))
    gemv_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                const T* __restrict__ other, int64_t N, int64_t K, int W, int rounds, NormPairArgs<T> np) {
  constexpr int E = Pack<T>::N;
  // NP: the normalised input rows, M x K (dynamic shared memory).
  extern __shared__ uint4 normed_rows[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % W, R = kWarps / W;
  // 32-bit indices (kp and N are below 2^31): 64-bit ones cost registers that then spilled.
  const int kp = static_cast<int>(K / E), stride = W * 32, offset = part * 32 + lane;
  // A warp's work is a sequence of tiles: round j's row, kTile loads a lane at a time. Two tiles
  // are in flight: a tile's loads go out as soon as the tile two before it is consumed, so the
  // memory pipe stays full across row ends (one tile at a time drained it at every round).
  constexpr int kTile = kLoads / 2;
  const int chunk = kTile * stride, per_row = (kp + chunk - 1) / chunk, tiles = rounds * per_row;
  const int n1 = static_cast<int>(N), rows = n1 + (NP ? static_cast<int>(np.n2) : 0);
  auto row_of = [&](int t) { return (t / per_row * static_cast<int>(gridDim.x) + static_cast<int>(blockIdx.x)) * R + warp / W; };

  auto load = [&](uint4 (&wv)[kTile], int t) {
    const int n = row_of(t), base = t % per_row * chunk;
    const int r = n < rows ? n : 0;
    const uint4* wr = NP && r >= n1 ? reinterpret_cast<const uint4*>(np.w2) + static_cast<int64_t>(r - n1) * kp
                                    : reinterpret_cast<const uint4*>(w) + static_cast<int64_t>(r) * kp;
#pragma unroll
    for (int u = 0; u < kTile; ++u) {
      const int i = base + offset + u * stride;
      wv[u] = n < rows && i < kp ? __ldcs(wr + i) : make_uint4(0, 0, 0, 0);
    }
  };
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  auto consume = [&](const uint4 (&wv)[kTile], int t) {
    if (row_of(t) >= rows) return;
    const int base = t % per_row * chunk;
#pragma unroll
    for (int u = 0; u < kTile; ++u) {
      const int i = base + offset + u * stride;
      if (i < kp) {
        const Pack<T>& wp = *reinterpret_cast<const Pack<T>*>(&wv[u]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4 xr = NP ? normed_rows[m * kp + i] : __ldg(reinterpret_cast<const uint4*>(x + m * K) + i);
          const Pack<T>& xp = *reinterpret_cast<const Pack<T>*>(&xr);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[m] = fmaf(to_float(wp.v[e]), to_float(xp.v[e]), acc[m]);
        }
      }
    }
  };
  __shared__ float partial[2][kWarps][M];
  // At a row's last tile: sum the row over its W warps and write it, with the epilogue.
  auto finish = [&](int t) {
    if (t % per_row != per_row - 1) return;
    const int buf = (t / per_row) & 1;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) partial[buf][warp][m] = v;
      acc[m] = 0.0f;
    }
    // Two partial buffers: a warp can only reuse one after every warp passed the next barrier,
    // that is after the reads below of the row that used it.
    if (W > 1) __syncthreads();
    else __syncwarp();
    const int row = row_of(t);
    // Lane m of a row's first warp finishes row m of the product.
    if (row < rows && part == 0 && lane < M) {
      const int m = lane;
      float s = 0.0f;
      for (int q = 0; q < W; ++q) s += partial[buf][warp + q][m];
      if (NP && row >= n1) {  // the second matrix: fc1, with GELU
        const int r2 = row - n1;
        const T r = from_float<T>(s + (np.bias2 ? to_float(np.bias2[r2]) : 0.0f));
        np.out2[m * np.n2 + r2] = from_float<T>(gelu_tanh(to_float(r)));
        return;
      }
      const T r = from_float<T>(s + (bias ? to_float(bias[row]) : 0.0f));
      T* o = out + m * N + row;
      if constexpr (EPI == GemvEpilogue::kNone) {
        *o = r;
      } else if constexpr (EPI == GemvEpilogue::kGelu) {
        *o = from_float<T>(gelu_tanh(to_float(r)));
      } else {
        const T h = from_float<T>(to_float(*o) + to_float(other[m * N + row]));
        *o = from_float<T>(to_float(h) + to_float(r));
      }
    }
  };

  uint4 wa[kTile], wb[kTile];
  load(wa, 0);
  if (tiles > 1) load(wb, 1);
  pdl_begin();  // x (and `other`, `out` for the residual) come from earlier kernels
  if constexpr (NP) {
    __shared__ float scratch[33];
    T* xs = reinterpret_cast<T*>(normed_rows);
#pragma unroll
    for (int m = 0; m < M; ++m) block_layer_norm(xs + m * K, x + m * K, np.norm_w, np.norm_b, static_cast<int>(K), np.eps, scratch);
    __syncthreads();
  }
  // Every warp of the block walks the same tiles (t and per_row are uniform), so the barrier in
  // finish() is reached by all of them.
  for (int t = 0; t < tiles; t += 2) {
    consume(wa, t);
    if (t + 2 < tiles) load(wa, t + 2);
    finish(t);
    if (t + 1 < tiles) {
      consume(wb, t + 1);
      if (t + 3 < tiles) load(wb, t + 3);
      finish(t + 1);
    }
  }
}

// The grid and split for an N x K matrix: warps per row W (each lane still has at least one
// 16-byte load of the row) and rounds, chosen by a cost model of one lane's time: rounds times
// (its loads per row + a fixed cost per row of about 4 loads' latency), blocks never more than
// `resident` (what the chip holds at once).
struct Split {
  int W, rounds;
  unsigned blocks;
};
// VLLM_GEMV_W (1, 2, 4 or 8) forces W, and VLLM_GEMV_WAVES=1 lifts the one-wave cap (a block per
// row group, in as many waves as that takes), for gpu_bench's experiments.
int forced_warps_per_row() {
  static const int w = [] {
    const char* e = std::getenv("VLLM_GEMV_W");
    const int v = e ? std::atoi(e) : 0;
    return v == 1 || v == 2 || v == 4 || v == 8 ? v : 0;
  }();
  return w;
}

Split choose_split(int64_t N, int64_t kp, int64_t resident) {
  Split best{1, 0, 0};
  int64_t best_cost = -1;
  const int forced = forced_warps_per_row() * 32 <= kp ? forced_warps_per_row() : 0;
  static const bool waves = std::getenv("VLLM_GEMV_WAVES") && std::string(std::getenv("VLLM_GEMV_WAVES")) == "1";
  if (waves) resident = int64_t{1} << 30;
  for (int W = 1; W <= kWarps; W *= 2) {
    if (W > 1 && static_cast<int64_t>(W) * 32 > kp) break;
    if (forced && W != forced) continue;
    const int64_t R = kWarps / W, groups = (N + R - 1) / R;
    const int64_t rounds = (groups + resident - 1) / resident;
    const int64_t per_row = (kp + W * 32 - 1) / (W * 32);
    const int64_t cost = rounds * (per_row + 4);
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      // As few blocks as keep the rounds full.
      best = {W, static_cast<int>(rounds), static_cast<unsigned>((groups + rounds - 1) / rounds)};
    }
  }
  return best;
}

// The blocks of `Kernel` the whole GPU holds at once, asked once per kernel: a template on the
// kernel itself, since its variants (rows, epilogue) share one function type and a static per
// type would keep whichever variant ran first.
template <auto Kernel>
int64_t resident_blocks() {
  static const int64_t blocks = [] {
    int dev = 0, sms = 0, per_sm = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, kThreads, 0), "occupancy");
    return static_cast<int64_t>(std::max(1, per_sm)) * sms;
  }();
  return blocks;
}

template <typename T, int M, GemvEpilogue EPI, bool NP>
void launch_m(T* o, const T* x, const T* w, const T* b, const T* other, int64_t N, int64_t K, const NormPairArgs<T>& np,
              cudaStream_t s) {
  const auto kernel = gemv_kernel<T, M, EPI, NP>;
  // The normalised rows' shared memory (at most 48 KiB, gemv_norm_pair_supported) never limits
  // the blocks an SM holds below what the registers allow, so the occupancy query leaves it out.
  const size_t smem = NP ? static_cast<size_t>(M * K) * sizeof(T) : 0;
  const Split sp = choose_split(N + (NP ? np.n2 : 0), K / Pack<T>::N, resident_blocks<gemv_kernel<T, M, EPI, NP>>());
  launch_k(kernel, sp.blocks, kThreads, smem, s, o, x, w, b, other, N, K, sp.W, sp.rounds, np);
}

template <typename T, GemvEpilogue EPI, bool NP>
void launch(void* out, const void* x, const void* w, const void* bias, const void* other, int64_t M, int64_t N, int64_t K,
            const NormPairArgs<T>& np, cudaStream_t s) {
  auto o = static_cast<T*>(out);
  auto xx = static_cast<const T*>(x);
  auto ww = static_cast<const T*>(w);
  auto bb = static_cast<const T*>(bias);
  auto ot = static_cast<const T*>(other);
  switch (M) {
    case 1: launch_m<T, 1, EPI, NP>(o, xx, ww, bb, ot, N, K, np, s); break;
    case 2: launch_m<T, 2, EPI, NP>(o, xx, ww, bb, ot, N, K, np, s); break;
    case 3: launch_m<T, 3, EPI, NP>(o, xx, ww, bb, ot, N, K, np, s); break;
    default: launch_m<T, 4, EPI, NP>(o, xx, ww, bb, ot, N, K, np, s); break;
  }
}

template <typename T>
void launch_epilogue(GemvEpilogue epi, void* out, const void* x, const void* w, const void* bias, const void* other,
                     int64_t M, int64_t N, int64_t K, cudaStream_t s) {
  const NormPairArgs<T> none;
  switch (epi) {
    case GemvEpilogue::kNone: launch<T, GemvEpilogue::kNone, false>(out, x, w, bias, other, M, N, K, none, s); break;
    case GemvEpilogue::kGelu: launch<T, GemvEpilogue::kGelu, false>(out, x, w, bias, other, M, N, K, none, s); break;
    case GemvEpilogue::kResidual:
      launch<T, GemvEpilogue::kResidual, false>(out, x, w, bias, other, M, N, K, none, s);
      break;
  }
}

template <typename T>
void launch_norm_pair(const GemvNormPair& a, int64_t M, int64_t K, cudaStream_t s) {
  NormPairArgs<T> np;
  np.out2 = static_cast<T*>(a.out2);
  np.w2 = static_cast<const T*>(a.w2);
  np.bias2 = static_cast<const T*>(a.bias2);
  np.n2 = a.n2;
  np.norm_w = a.norm_w;
  np.norm_b = a.norm_b;
  np.eps = a.eps;
  launch<T, GemvEpilogue::kNone, true>(a.out1, a.x, a.w1, a.bias1, nullptr, M, a.n1, K, np, s);
}

// ---------------------------------------------------------------------------------------------
// FP8 weights (Fp8Weight): gemv_kernel's walk (tiles of 16-byte weight loads, two in flight per
// warp, W warps a row, one wave of blocks, loads issued before pdl_begin) over rows of K / 16 loads,
// each holding 16 e4m3 weights: half the bytes of a 16-bit row, which is the whole point at decode.
// A load's weights become float32 in registers (e4m3 -> half pairs, exact, one cvt a pair on
// Hopper, then half -> float) and meet the activations in float32 FMAs. A per-row scale multiplies
// the row's sum once; a block scale multiplies each 16-weight chunk's sum (a chunk never straddles
// two blocks: block_cols is a multiple of 16, and blocks hold a power of two chunks so that the
// chunk's block is a shift). M is the kernel's bound on the activation rows (1, 2, 4 or 8); `rows_m`
// of them are read and written.

// Four blocks an SM (64 registers) hold one activation row without spilling; two rows spilled at
// 64 and take three blocks (85), as four rows do; eight rows need about 100 (two blocks).
constexpr int fp8_min_blocks_per_sm(int M) { return M == 1 ? 4 : (M <= 4 ? 3 : 2); }

// The 16 weights of a 16-byte load as float32 (every e4m3 value is exactly a half); byte j of the
// load is weight j.
__device__ __forceinline__ void e4m3x16_to_float(const uint4& v, float (&f)[16]) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int q = 0; q < 4; ++q) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const auto pair = static_cast<__nv_fp8x2_storage_t>(words[q] >> (16 * h));
      const float2 fv = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
      f[q * 4 + h * 2] = fv.x;
      f[q * 4 + h * 2 + 1] = fv.y;
    }
  }
}

// Block b, round j: its kWarps / W row groups take rows (j * gridDim.x + b) * R + r, as gemv_kernel.
template <typename T, int M, GemvEpilogue EPI, bool BLOCKS>
__global__ void __launch_bounds__(kThreads, fp8_min_blocks_per_sm(M))
    gemv_fp8_kernel(T* __restrict__ out, const T* __restrict__ x, Fp8Weight fw, int chunk_shift,
                    const T* __restrict__ bias, const T* __restrict__ other, int rows_m, int64_t N, int64_t K, int W,
                    int rounds) {
  static_assert(Pack<T>::N == 8, "16-bit activations: a load of 16 weights meets two packs of x");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % W, R = kWarps / W;
  // 32-bit indices, as gemv_kernel (kp and N are below 2^31).
  const int kp = static_cast<int>(K / 16), stride = W * 32, offset = part * 32 + lane;
  constexpr int kTile = kLoads / 2;
  const int chunk = kTile * stride, per_row = (kp + chunk - 1) / chunk, tiles = rounds * per_row;
  const int rows = static_cast<int>(N);
  auto row_of = [&](int t) { return (t / per_row * static_cast<int>(gridDim.x) + static_cast<int>(blockIdx.x)) * R + warp / W; };
  const uint4* weights = reinterpret_cast<const uint4*>(fw.w);

  auto load = [&](uint4 (&wv)[kTile], int t) {
    const int n = row_of(t), base = t % per_row * chunk;
    const uint4* wr = weights + static_cast<int64_t>(n < rows ? n : 0) * kp;
#pragma unroll
    for (int u = 0; u < kTile; ++u) {
      const int i = base + offset + u * stride;
      wv[u] = n < rows && i < kp ? __ldcs(wr + i) : make_uint4(0, 0, 0, 0);
    }
  };
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  auto consume = [&](const uint4 (&wv)[kTile], int t) {
    const int n = row_of(t);
    if (n >= rows) return;
    const int base = t % per_row * chunk;
    const float* block_scales = BLOCKS ? fw.scales + static_cast<int64_t>(__ldg(fw.row_map + n)) * fw.grid_cols : nullptr;
#pragma unroll
    for (int u = 0; u < kTile; ++u) {
      const int i = base + offset + u * stride;
      if (i < kp) {
        float wf[16];
        e4m3x16_to_float(wv[u], wf);
        const float s = BLOCKS ? __ldg(block_scales + (i >> chunk_shift)) : 1.0f;
#pragma unroll
        for (int m = 0; m < M; ++m) {
          if (m < rows_m) {
            const uint4* xr = reinterpret_cast<const uint4*>(x + m * K) + 2 * i;
            const uint4 xa = __ldg(xr), xb = __ldg(xr + 1);
            const Pack<T>& pa = *reinterpret_cast<const Pack<T>*>(&xa);
            const Pack<T>& pb = *reinterpret_cast<const Pack<T>*>(&xb);
            float d = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; ++e) d = fmaf(wf[e], to_float(pa.v[e]), d);
#pragma unroll
            for (int e = 0; e < 8; ++e) d = fmaf(wf[8 + e], to_float(pb.v[e]), d);
            acc[m] = BLOCKS ? fmaf(d, s, acc[m]) : acc[m] + d;
          }
        }
      }
    }
  };
  __shared__ float partial[2][kWarps][M];
  // At a row's last tile: sum the row over its W warps, scale it (per-row scales) and write it with
  // the epilogue, exactly as gemv_kernel's finish.
  auto finish = [&](int t) {
    if (t % per_row != per_row - 1) return;
    const int buf = (t / per_row) & 1;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float v = warp_sum(acc[m]);
      if (lane == 0) partial[buf][warp][m] = v;
      acc[m] = 0.0f;
    }
    if (W > 1) __syncthreads();
    else __syncwarp();
    const int row = row_of(t);
    if (row < rows && part == 0 && lane < rows_m) {
      const int m = lane;
      float s = 0.0f;
      for (int q = 0; q < W; ++q) s += partial[buf][warp + q][m];
      if (!BLOCKS) s *= __ldg(fw.scales + row);
      const T r = from_float<T>(s + (bias ? to_float(bias[row]) : 0.0f));
      T* o = out + m * N + row;
      if constexpr (EPI == GemvEpilogue::kNone) {
        *o = r;
      } else if constexpr (EPI == GemvEpilogue::kGelu) {
        *o = from_float<T>(gelu_tanh(to_float(r)));
      } else {
        const T h = from_float<T>(to_float(*o) + to_float(other[m * N + row]));
        *o = from_float<T>(to_float(h) + to_float(r));
      }
    }
  };

  uint4 wa[kTile], wb[kTile];
  load(wa, 0);
  if (tiles > 1) load(wb, 1);
  pdl_begin();  // x (and `other`, `out` for the residual) come from earlier kernels
  // Every warp of the block walks the same tiles, so the barrier in finish() is reached by all.
  for (int t = 0; t < tiles; t += 2) {
    consume(wa, t);
    if (t + 2 < tiles) load(wa, t + 2);
    finish(t);
    if (t + 1 < tiles) {
      consume(wb, t + 1);
      if (t + 3 < tiles) load(wb, t + 3);
      finish(t + 1);
    }
  }
}

template <typename T, int M, GemvEpilogue EPI, bool BLOCKS>
void launch_fp8_m(T* o, const T* x, const Fp8Weight& fw, int chunk_shift, const T* b, const T* other, int rows_m,
                  int64_t N, int64_t K, cudaStream_t s) {
  const auto kernel = gemv_fp8_kernel<T, M, EPI, BLOCKS>;
  // One count per instantiation (the bound M sets the registers, hence the blocks an SM holds).
  static const int64_t resident = [&] {
    int dev = 0, sms = 0, per_sm = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0), "occupancy");
    return static_cast<int64_t>(std::max(1, per_sm)) * sms;
  }();
  const Split sp = choose_split(N, K / 16, resident);
  launch_k(kernel, sp.blocks, kThreads, 0, s, o, x, fw, chunk_shift, b, other, rows_m, N, K, sp.W, sp.rounds);
}

template <typename T, GemvEpilogue EPI, bool BLOCKS>
void launch_fp8(void* out, const void* x, const Fp8Weight& fw, int chunk_shift, const void* bias, const void* other,
                int64_t M, int64_t N, int64_t K, cudaStream_t s) {
  auto o = static_cast<T*>(out);
  auto xx = static_cast<const T*>(x);
  auto bb = static_cast<const T*>(bias);
  auto ot = static_cast<const T*>(other);
  const int rows_m = static_cast<int>(M);
  if (M <= 1) launch_fp8_m<T, 1, EPI, BLOCKS>(o, xx, fw, chunk_shift, bb, ot, rows_m, N, K, s);
  else if (M <= 2) launch_fp8_m<T, 2, EPI, BLOCKS>(o, xx, fw, chunk_shift, bb, ot, rows_m, N, K, s);
  else if (M <= 4) launch_fp8_m<T, 4, EPI, BLOCKS>(o, xx, fw, chunk_shift, bb, ot, rows_m, N, K, s);
  else launch_fp8_m<T, 8, EPI, BLOCKS>(o, xx, fw, chunk_shift, bb, ot, rows_m, N, K, s);
}

template <typename T, bool BLOCKS>
void launch_fp8_epilogue(GemvEpilogue epi, void* out, const void* x, const Fp8Weight& fw, int chunk_shift,
                         const void* bias, const void* other, int64_t M, int64_t N, int64_t K, cudaStream_t s) {
  switch (epi) {
    case GemvEpilogue::kNone: launch_fp8<T, GemvEpilogue::kNone, BLOCKS>(out, x, fw, chunk_shift, bias, other, M, N, K, s); break;
    case GemvEpilogue::kGelu: launch_fp8<T, GemvEpilogue::kGelu, BLOCKS>(out, x, fw, chunk_shift, bias, other, M, N, K, s); break;
    case GemvEpilogue::kResidual:
      launch_fp8<T, GemvEpilogue::kResidual, BLOCKS>(out, x, fw, chunk_shift, bias, other, M, N, K, s);
      break;
  }
}

// log2(block_cols / 16), or -1 where a block is not a power of two chunks of 16 weights.
int fp8_chunk_shift(int64_t block_cols) {
  if (block_cols <= 0 || block_cols % 16 != 0) return -1;
  const int64_t chunks = block_cols / 16;
  if ((chunks & (chunks - 1)) != 0) return -1;
  int shift = 0;
  while ((int64_t{1} << shift) < chunks) ++shift;
  return shift;
}

}  // namespace

bool gemv_fp8_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x, const Fp8Weight& w) {
  return (t == DType::F16 || t == DType::BF16) && M >= 1 && M <= kFp8GemvMaxRows && K % 16 == 0 && aligned16(x) &&
         aligned16(w.w) && w.scales != nullptr && N < (int64_t{1} << 30) && K / 16 < (int64_t{1} << 30) &&
         (w.block_cols == 0 || (w.row_map != nullptr && fp8_chunk_shift(w.block_cols) >= 0));
}

void gemv_fp8(DType t, void* out, const void* x, const Fp8Weight& w, const void* bias, int64_t M, int64_t N, int64_t K,
              cudaStream_t stream, GemvEpilogue epi, const void* other) {
  if (!gemv_fp8_supported(t, M, N, K, x, w)) fail("gemv_fp8: unsupported shape, dtype or alignment");
  const bool blocks = w.block_cols > 0;
  const int shift = blocks ? fp8_chunk_shift(w.block_cols) : 0;
  if (t == DType::F16) {
    if (blocks) launch_fp8_epilogue<__half, true>(epi, out, x, w, shift, bias, other, M, N, K, stream);
    else launch_fp8_epilogue<__half, false>(epi, out, x, w, shift, bias, other, M, N, K, stream);
  } else {
    if (blocks) launch_fp8_epilogue<__nv_bfloat16, true>(epi, out, x, w, shift, bias, other, M, N, K, stream);
    else launch_fp8_epilogue<__nv_bfloat16, false>(epi, out, x, w, shift, bias, other, M, N, K, stream);
  }
  check_launch("gemv_fp8");
}

bool gemv_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x, const void* w) {
  return (t == DType::F16 || t == DType::BF16) && M >= 1 && M <= 4 && K % 8 == 0 && aligned16(x) && aligned16(w) &&
         N < (int64_t{1} << 30);  // the kernel's 32-bit row indices
}

void gemv(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream, GemvEpilogue epi, const void* other) {
  if (t == DType::F16) launch_epilogue<__half>(epi, out, x, w, bias, other, M, N, K, stream);
  else if (t == DType::BF16) launch_epilogue<__nv_bfloat16>(epi, out, x, w, bias, other, M, N, K, stream);
  else fail("gemv: 16-bit types only");
  check_launch("gemv");
}

bool gemv_norm_pair_supported(DType t, int64_t M, int64_t K, const GemvNormPair& a) {
  return gemv_supported(t, M, a.n1 + a.n2, K, a.x, a.w1) && aligned16(a.w2) &&
         M * K * static_cast<int64_t>(dtype_size(t)) <= 48 * 1024;
}

void gemv_norm_pair(DType t, const GemvNormPair& a, int64_t M, int64_t K, cudaStream_t stream) {
  if (t == DType::F16) launch_norm_pair<__half>(a, M, K, stream);
  else if (t == DType::BF16) launch_norm_pair<__nv_bfloat16>(a, M, K, stream);
  else fail("gemv_norm_pair: 16-bit types only");
  check_launch("gemv_norm_pair");
}

}  // namespace vllm::cuda
