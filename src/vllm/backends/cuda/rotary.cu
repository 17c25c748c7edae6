// Rotary position embedding, rotate-half arrangement, on the first rot_dim features of every
// query and key head. Angles in float32 as float(pos) * inv_freq[i]; cos/sin once per token.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

template <typename T>
__global__ void rotary_kernel(T* qkv, const int32_t* __restrict__ pos, const float* __restrict__ inv_freq, int64_t width,
                              int64_t heads, int64_t hd, int64_t half) {
  pdl_begin();
  extern __shared__ float cs[];  // cos[half], sin[half]
  const int64_t t = blockIdx.x;
  const float p = static_cast<float>(pos[t]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(p * inv_freq[i], &s, &c);
    cs[i] = c;
    cs[half + i] = s;
  }
  __syncthreads();
  T* row = qkv + t * width;
  const int64_t n = heads * half;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const int64_t h = k / half, i = k % half;
    T* x = row + h * hd;
    const float x1 = to_float(x[i]), x2 = to_float(x[i + half]);
    const float c = cs[i], s = cs[half + i];
    x[i] = from_float<T>(x1 * c - x2 * s);
    x[i + half] = from_float<T>(x2 * c + x1 * s);
  }
}

}  // namespace

void rotary(DType t, void* qkv, const int32_t* pos, const float* inv_freq, int64_t T_, int64_t width, int64_t heads,
            int64_t hd, int64_t rot_dim, cudaStream_t stream) {
  const int64_t half = rot_dim / 2;
  if (T_ == 0 || half == 0) return;
  // A thread per rotated pair where the block allows it: the loop's loads then go out in one round
  // trip instead of several (a decode step's rotary is latency, not bandwidth).
  const int threads = static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(32, (heads * half + 31) / 32 * 32)));
  const size_t smem = static_cast<size_t>(2 * half) * sizeof(float);
  VLLM_DISPATCH_FLOAT(t, T, launch_k(rotary_kernel<T>, static_cast<unsigned>(T_), threads, smem, stream, 
                                static_cast<T*>(qkv), pos, inv_freq, width, heads, hd, half));
  check_launch("rotary");
}

}  // namespace vllm::cuda
