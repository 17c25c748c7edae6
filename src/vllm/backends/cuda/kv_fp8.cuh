// The FP8 KV cache's element (--kv-cache-dtype fp8): e4m3 bytes holding x / scale, with the
// layer's per-tensor scale (vLLM's k_scale / v_scale). The attention kernels are templated on
// the cache element type C: C = T (the compute dtype) is the plain cache, C = KvFp8 this one.
#pragma once

#include <cuda_fp8.h>

#include <type_traits>

#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

using KvFp8 = __nv_fp8_e4m3;  // one byte
template <typename C>
inline constexpr bool kIsKvFp8 = std::is_same_v<C, KvFp8>;

// Exact: every e4m3 value is a float16, bfloat16 and float32 value.
__device__ __forceinline__ float kv_fp8_to_float(uint8_t b) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3)));
}

__device__ __forceinline__ float to_float(KvFp8 x) { return kv_fp8_to_float(x.__x); }

// e4m3(x / scale), round to nearest even, saturated to +-448 (NaN stays NaN), as vLLM's
// scaled_convert; the division is IEEE (as the host reference's).
__device__ __forceinline__ uint8_t kv_float_to_fp8(float x, float scale) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3));
}

// 8 consecutive elements of T quantized to 8 e4m3 bytes (one 8-byte word).
template <typename T>
__device__ __forceinline__ uint2 kv_quantize8(const T* p, float scale) {
  uint2 r;
  uint8_t* b = reinterpret_cast<uint8_t*>(&r);
#pragma unroll
  for (int e = 0; e < 8; ++e) b[e] = kv_float_to_fp8(to_float(p[e]), scale);
  return r;
}

// 8 e4m3 bytes to 8 elements of T (exact, unscaled), as one 16-byte pack.
template <typename T>
__device__ __forceinline__ Pack<T> kv_dequantize8(uint2 raw) {
  static_assert(Pack<T>::N == 8, "16-bit element types only");
  const uint8_t* b = reinterpret_cast<const uint8_t*>(&raw);
  Pack<T> r;
#pragma unroll
  for (int e = 0; e < 8; ++e) r.v[e] = from_float<T>(kv_fp8_to_float(b[e]));
  return r;
}

}  // namespace vllm::cuda
