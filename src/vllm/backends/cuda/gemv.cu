// Skinny matrix products for decode (1 to 4 rows of activations): one warp per output feature,
// 16-byte streaming loads of the weight row, several in flight per lane, float32 accumulation.
// Weight bytes dominate, so the kernel runs at memory bandwidth when the grid fills the chip.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

template <typename T, int M>
__global__ void __launch_bounds__(256) gemv_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                                   const T* __restrict__ bias, int64_t N, int64_t K) {
  pdl_begin();
  constexpr int E = Pack<T>::N;
  const int lane = threadIdx.x & 31;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  const int64_t kp = K / E;
  for (int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; n < N; n += nwarps) {
    const uint4* wr = reinterpret_cast<const uint4*>(w + n * K);
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = 0.0f;
    int64_t p = lane;
    for (; p + 96 < kp; p += 128) {
      uint4 wv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) wv[u] = __ldcs(wr + p + 32 * u);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const Pack<T>& wp = *reinterpret_cast<const Pack<T>*>(&wv[u]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          uint4 xr = __ldg(reinterpret_cast<const uint4*>(x + m * K) + p + 32 * u);
          const Pack<T>& xp = *reinterpret_cast<const Pack<T>*>(&xr);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[m] = fmaf(to_float(wp.v[e]), to_float(xp.v[e]), acc[m]);
        }
      }
    }
    for (; p < kp; p += 32) {
      uint4 wv = __ldcs(wr + p);
      const Pack<T>& wp = *reinterpret_cast<const Pack<T>*>(&wv);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        uint4 xr = __ldg(reinterpret_cast<const uint4*>(x + m * K) + p);
        const Pack<T>& xp = *reinterpret_cast<const Pack<T>*>(&xr);
#pragma unroll
        for (int e = 0; e < E; ++e) acc[m] = fmaf(to_float(wp.v[e]), to_float(xp.v[e]), acc[m]);
      }
    }
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = warp_sum(acc[m]);
    if (lane == 0) {
      const float b = bias ? to_float(bias[n]) : 0.0f;
#pragma unroll
      for (int m = 0; m < M; ++m) out[m * N + n] = from_float<T>(acc[m] + b);
    }
  }
}

template <typename T>
void launch(void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K, cudaStream_t s) {
  const unsigned blocks = ceil_div(N, 8);
  auto o = static_cast<T*>(out);
  auto xx = static_cast<const T*>(x);
  auto ww = static_cast<const T*>(w);
  auto bb = static_cast<const T*>(bias);
  switch (M) {
    case 1: launch_k(gemv_kernel<T, 1>, blocks, 256, 0, s, o, xx, ww, bb, N, K); break;
    case 2: launch_k(gemv_kernel<T, 2>, blocks, 256, 0, s, o, xx, ww, bb, N, K); break;
    case 3: launch_k(gemv_kernel<T, 3>, blocks, 256, 0, s, o, xx, ww, bb, N, K); break;
    default: launch_k(gemv_kernel<T, 4>, blocks, 256, 0, s, o, xx, ww, bb, N, K); break;
  }
}

}  // namespace

bool gemv_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x, const void* w) {
  return (t == DType::F16 || t == DType::BF16) && M >= 1 && M <= 4 && K % 8 == 0 && aligned16(x) && aligned16(w) &&
         N < (int64_t{1} << 31);
}

void gemv(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream) {
  if (t == DType::F16) launch<__half>(out, x, w, bias, M, N, K, stream);
  else if (t == DType::BF16) launch<__nv_bfloat16>(out, x, w, bias, M, N, K, stream);
  else fail("gemv: 16-bit types only");
  check_launch("gemv");
}

}  // namespace vllm::cuda
