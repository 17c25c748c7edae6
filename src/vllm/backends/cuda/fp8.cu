// FP8 linear layers around the products: weights dequantized to the compute dtype (the W8A16 path of
// block-scaled weights at prefill, and of shapes the FP8 products cannot take), and activations
// quantized per token to e4m3 for cuBLASLt's FP8 products.
#include <cuda_fp8.h>

#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float e4m3_to_float(uint8_t b) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3)));
}

// The scale of weight (n, k).
__device__ __forceinline__ float weight_scale(const Fp8Weight& fw, int64_t n, int64_t k) {
  if (fw.block_cols == 0) return __ldg(fw.scales + n);
  return __ldg(fw.scales + static_cast<int64_t>(__ldg(fw.row_map + n)) * fw.grid_cols + k / fw.block_cols);
}

// One thread per 8 consecutive weights of a row: with `packed` (K % 8 == 0, 16-byte aligned output)
// one 8-byte load and one 16-byte store, else element by element.
template <typename T>
__global__ void dequantize_fp8_kernel(T* __restrict__ out, Fp8Weight fw, int64_t N, int64_t K, bool packed) {
  pdl_begin();
  const int64_t groups = (K + 7) / 8, total = N * groups;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = g / groups, k0 = g % groups * 8;
    const uint8_t* w = fw.w + n * K + k0;
    T* o = out + n * K + k0;
    if (packed) {
      const uint2 raw = __ldg(reinterpret_cast<const uint2*>(w));
      const uint8_t* b = reinterpret_cast<const uint8_t*>(&raw);
      Pack<T> r;
#pragma unroll
      for (int e = 0; e < 8; ++e) r.v[e] = from_float<T>(e4m3_to_float(b[e]) * weight_scale(fw, n, k0 + e));
      store_pack(o, r);
    } else {
      for (int64_t e = 0; e < 8 && k0 + e < K; ++e) o[e] = from_float<T>(e4m3_to_float(w[e]) * weight_scale(fw, n, k0 + e));
    }
  }
}

// Max over the block (blockDim.x a multiple of 32); every thread gets the result.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < nwarps ? scratch[lane] : 0.0f;
    t = warp_max(t);
    if (lane == 0) scratch[32] = t;
  }
  __syncthreads();
  return scratch[32];
}

// One block a row: its amax, then each value times 1 / scale to e4m3 (round to nearest even,
// saturating: what clamping to +-448 and rounding gives). The formulas and their float32 order are
// quantize_fp8's (loader/fp8_weights.cpp), so the host reproduces these bytes exactly.
template <typename T>
__global__ void quantize_rows_e4m3_kernel(uint8_t* __restrict__ xq, float* __restrict__ scales, const T* __restrict__ x,
                                          int64_t K) {
  __shared__ float scratch[33];
  pdl_begin();
  constexpr int E = Pack<T>::N;
  const int64_t m = blockIdx.x;
  const T* row = x + m * K;
  const int packs = static_cast<int>(K / E);
  float amax = 0.0f;
  for (int p = threadIdx.x; p < packs; p += blockDim.x) {
    const Pack<T> r = load_pack(row + p * E);
#pragma unroll
    for (int e = 0; e < E; ++e) amax = fmaxf(amax, fabsf(to_float(r.v[e])));
  }
  amax = block_max(amax, scratch);
  const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
  const float inverse = 1.0f / scale;
  if (threadIdx.x == 0) scales[m] = scale;
  uint8_t* qrow = xq + m * K;
  for (int p = threadIdx.x; p < packs; p += blockDim.x) {
    const Pack<T> r = load_pack(row + p * E);
    uint8_t q[E];
#pragma unroll
    for (int e = 0; e < E; ++e)
      q[e] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(to_float(r.v[e]) * inverse, __NV_SATFINITE, __NV_E4M3));
    if constexpr (E == 8) {
      *reinterpret_cast<uint2*>(qrow + p * E) = *reinterpret_cast<const uint2*>(q);
    } else {
#pragma unroll
      for (int e = 0; e < E; ++e) qrow[p * E + e] = q[e];
    }
  }
}

}  // namespace

void dequantize_fp8(DType t, void* out, const Fp8Weight& w, int64_t N, int64_t K, cudaStream_t stream) {
  if (N == 0 || K == 0) return;
  const bool packed = K % 8 == 0 && aligned16(out) && (reinterpret_cast<uintptr_t>(w.w) & 7u) == 0;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(N * ((K + 7) / 8), kThreads), 65536));
  if (t == DType::F16)
    launch_k(dequantize_fp8_kernel<__half>, blocks, kThreads, 0, stream, static_cast<__half*>(out), w, N, K, packed);
  else if (t == DType::BF16)
    launch_k(dequantize_fp8_kernel<__nv_bfloat16>, blocks, kThreads, 0, stream, static_cast<__nv_bfloat16*>(out), w, N,
             K, packed);
  else
    fail("dequantize_fp8: 16-bit compute dtypes only");
  check_launch("dequantize_fp8");
}

void quantize_rows_e4m3(DType t, uint8_t* xq, float* scales, const void* x, int64_t M, int64_t K, cudaStream_t stream) {
  if (M == 0) return;
  if (K % 16 != 0 || !aligned16(x) || !aligned16(xq)) fail("quantize_rows_e4m3: K % 16 == 0 and 16-byte aligned rows");
  if (t == DType::F16)
    launch_k(quantize_rows_e4m3_kernel<__half>, static_cast<unsigned>(M), kThreads, 0, stream, xq, scales,
             static_cast<const __half*>(x), K);
  else if (t == DType::BF16)
    launch_k(quantize_rows_e4m3_kernel<__nv_bfloat16>, static_cast<unsigned>(M), kThreads, 0, stream, xq, scales,
             static_cast<const __nv_bfloat16*>(x), K);
  else
    fail("quantize_rows_e4m3: 16-bit compute dtypes only");
  check_launch("quantize_rows_e4m3");
}

}  // namespace vllm::cuda
