// Skinny matrix products for decode (1 to 4 rows of activations), with the step after the
// product fused in (bias, then nothing, tanh GELU, or a two-term residual add).
//
// Weight bytes dominate, so the goal is the chip's memory bandwidth for every shape a decode step
// meets, the small ones too (a 2048 x 2048 projection is 8 MB: a few microseconds). Three things
// get there:
//   - enough bytes in flight: each lane keeps kLoads 16-byte weight loads outstanding, and when
//     the matrix has few rows, W warps share a row (each a strided part of K, summed through
//     shared memory), so that N·W warps fill the chip;
//   - no ramp between kernels: the first weight loads are issued before pdl_begin(), that is
//     while the previous kernel of the step is still finishing (weights never depend on it);
//   - no extra kernels: the epilogue rounds acc + bias to T exactly as the unfused linear does,
//     then applies GELU or the residual add the way those separate kernels would, so fused and
//     unfused results are bit-identical.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kLoads = 8;
// Warps wanted over the whole chip (132 multiprocessors, up to 64 warps each).
constexpr int64_t kTargetWarps = 8192;

template <typename T, int M, GemvEpilogue EPI>
__global__ void __launch_bounds__(kThreads)
    gemv_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                const T* __restrict__ other, int64_t N, int64_t K, int W) {
  constexpr int E = Pack<T>::N;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % W;
  const int64_t n = blockIdx.x * static_cast<int64_t>(kWarps / W) + warp / W;
  const bool live = n < N;
  const int64_t kp = K / E, stride = static_cast<int64_t>(W) * 32;
  const uint4* wr = reinterpret_cast<const uint4*>(w + (live ? n : 0) * K);

  int64_t p = part * 32 + lane;
  uint4 wv[kLoads];
#pragma unroll
  for (int u = 0; u < kLoads; ++u) {
    const int64_t i = p + u * stride;
    wv[u] = live && i < kp ? __ldcs(wr + i) : make_uint4(0, 0, 0, 0);
  }
  pdl_begin();  // x (and `other`, `out` for the residual) come from earlier kernels

  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  while (live && p < kp) {
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int64_t i = p + u * stride;
      if (i < kp) {
        const Pack<T>& wp = *reinterpret_cast<const Pack<T>*>(&wv[u]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4 xr = __ldg(reinterpret_cast<const uint4*>(x + m * K) + i);
          const Pack<T>& xp = *reinterpret_cast<const Pack<T>*>(&xr);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[m] = fmaf(to_float(wp.v[e]), to_float(xp.v[e]), acc[m]);
        }
      }
    }
    p += kLoads * stride;
    if (p >= kp) break;
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int64_t i = p + u * stride;
      wv[u] = i < kp ? __ldcs(wr + i) : make_uint4(0, 0, 0, 0);
    }
  }

  __shared__ float partial[kWarps][M];
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = warp_sum(acc[m]);
    if (lane == 0) partial[warp][m] = v;
  }
  __syncthreads();
  // Lane m of a row's first warp finishes row m of the product.
  if (!live || part != 0 || lane >= M) return;
  const int m = lane;
  float s = 0.0f;
  for (int j = 0; j < W; ++j) s += partial[warp + j][m];
  const T r = from_float<T>(s + (bias ? to_float(bias[n]) : 0.0f));
  T* o = out + m * N + n;
  if constexpr (EPI == GemvEpilogue::kNone) {
    *o = r;
  } else if constexpr (EPI == GemvEpilogue::kGelu) {
    *o = from_float<T>(gelu_tanh(to_float(r)));
  } else {
    const T h = from_float<T>(to_float(*o) + to_float(other[m * N + n]));
    *o = from_float<T>(to_float(h) + to_float(r));
  }
}

// Warps per row: as many as it takes for N·W warps to fill the chip, while each lane still has at
// least one 16-byte load of the row.
int warps_per_row(int64_t N, int64_t kp) {
  int W = 1;
  while (W < kWarps && N * W < kTargetWarps && static_cast<int64_t>(W) * 2 * 32 <= kp) W *= 2;
  return W;
}

template <typename T, GemvEpilogue EPI>
void launch(void* out, const void* x, const void* w, const void* bias, const void* other, int64_t M, int64_t N, int64_t K,
            cudaStream_t s) {
  const int W = warps_per_row(N, K / Pack<T>::N);
  const unsigned blocks = ceil_div(N, kWarps / W);
  auto o = static_cast<T*>(out);
  auto xx = static_cast<const T*>(x);
  auto ww = static_cast<const T*>(w);
  auto bb = static_cast<const T*>(bias);
  auto ot = static_cast<const T*>(other);
  switch (M) {
    case 1: launch_k(gemv_kernel<T, 1, EPI>, blocks, kThreads, 0, s, o, xx, ww, bb, ot, N, K, W); break;
    case 2: launch_k(gemv_kernel<T, 2, EPI>, blocks, kThreads, 0, s, o, xx, ww, bb, ot, N, K, W); break;
    case 3: launch_k(gemv_kernel<T, 3, EPI>, blocks, kThreads, 0, s, o, xx, ww, bb, ot, N, K, W); break;
    default: launch_k(gemv_kernel<T, 4, EPI>, blocks, kThreads, 0, s, o, xx, ww, bb, ot, N, K, W); break;
  }
}

template <typename T>
void launch_epilogue(GemvEpilogue epi, void* out, const void* x, const void* w, const void* bias, const void* other,
                     int64_t M, int64_t N, int64_t K, cudaStream_t s) {
  switch (epi) {
    case GemvEpilogue::kNone: launch<T, GemvEpilogue::kNone>(out, x, w, bias, other, M, N, K, s); break;
    case GemvEpilogue::kGelu: launch<T, GemvEpilogue::kGelu>(out, x, w, bias, other, M, N, K, s); break;
    case GemvEpilogue::kResidual: launch<T, GemvEpilogue::kResidual>(out, x, w, bias, other, M, N, K, s); break;
  }
}

}  // namespace

bool gemv_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x, const void* w) {
  return (t == DType::F16 || t == DType::BF16) && M >= 1 && M <= 4 && K % 8 == 0 && aligned16(x) && aligned16(w) &&
         N < (int64_t{1} << 31);
}

void gemv(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream, GemvEpilogue epi, const void* other) {
  if (t == DType::F16) launch_epilogue<__half>(epi, out, x, w, bias, other, M, N, K, stream);
  else if (t == DType::BF16) launch_epilogue<__nv_bfloat16>(epi, out, x, w, bias, other, M, N, K, stream);
  else fail("gemv: 16-bit types only");
  check_launch("gemv");
}

}  // namespace vllm::cuda
