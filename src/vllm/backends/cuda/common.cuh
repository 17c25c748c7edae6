// Device-side helpers shared by the CUDA kernels: element conversion to and from float32,
// 16-byte packs, warp and block reductions, and the dtype dispatch used by the launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "vllm/backends/cuda/kernels.h"

namespace vllm::cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// 16 bytes of T: 4 floats or 8 halves.
template <typename T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

template <typename T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  Pack<T> r;
  *reinterpret_cast<uint4*>(&r) = *reinterpret_cast<const uint4*>(p);
  return r;
}
template <typename T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& r) {
  *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(&r);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 33 floats of shared memory; callers may reuse it after the call returns.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < nwarps ? scratch[lane] : 0.0f;
    t = warp_sum(t);
    if (lane == 0) scratch[32] = t;
  }
  __syncthreads();
  float r = scratch[32];
  __syncthreads();
  return r;
}

// transformers' gelu_new (tanh approximation); shared by the element-wise map and the gemv epilogue.
__device__ __forceinline__ float gelu_tanh(float v) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
}

// Attention sinks: the factor that normalises an output accumulated with weights 2^(s - m)
// (base-2 scores, m their max, `sum` the weights' sum) when a sink logit sk (base 2) joins the
// denominator: 1 / (sum + 2^(sk - m)), computed relative to max(m, sk) so that no exponential
// overflows. m must be finite (at least one key).
__device__ __forceinline__ float sink_scale(float m, float sum, float sk) {
  const float mm = fmaxf(m, sk);
  const float f = exp2f(m - mm);
  return f / (sum * f + exp2f(sk - mm));
}

__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

__host__ __device__ inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// Programmatic dependent launch (Hopper): every kernel starts with pdl_begin(), which waits until
// the kernels before it have finished and their writes are visible, then lets the next kernel's
// blocks be scheduled; launch_k marks launches as allowed to overlap that way when g_pdl is set,
// hiding most of the gap between dependent kernels (in graphs too).
__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 900)
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

template <typename... KArgs, typename... Args>
void launch_k(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = g_pdl ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), "cudaLaunchKernelEx");
}

}  // namespace vllm::cuda

// VLLM_DISPATCH_FLOAT(dtype, T, body): runs body with T = float, __half or __nv_bfloat16.
#define VLLM_DISPATCH_FLOAT(dtype, T, ...)                                  \
  do {                                                                      \
    switch (dtype) {                                                        \
      case ::vllm::DType::F32: {                                            \
        using T = float;                                                    \
        __VA_ARGS__;                                                        \
        break;                                                              \
      }                                                                     \
      case ::vllm::DType::F16: {                                            \
        using T = __half;                                                   \
        __VA_ARGS__;                                                        \
        break;                                                              \
      }                                                                     \
      case ::vllm::DType::BF16: {                                           \
        using T = __nv_bfloat16;                                            \
        __VA_ARGS__;                                                        \
        break;                                                              \
      }                                                                     \
      default:                                                              \
        ::vllm::cuda::fail("unsupported dtype for a CUDA kernel");          \
    }                                                                       \
  } while (0)
