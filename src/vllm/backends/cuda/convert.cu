// Element conversion between float32, float16 and bfloat16 (uploads of weights in another dtype,
// downloads as float32).
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

template <typename D, typename S>
__global__ void convert_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n) {
  pdl_begin();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = from_float<D>(to_float(src[i]));
}

}  // namespace

void convert(void* dst, DType dst_t, const void* src, DType src_t, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(n, 256), 65536));
  VLLM_DISPATCH_FLOAT(dst_t, D, VLLM_DISPATCH_FLOAT(src_t, S, {
    launch_k(convert_kernel<D, S>, blocks, 256, 0, stream, static_cast<D*>(dst), static_cast<const S*>(src), n);
  }));
  check_launch("convert");
}

}  // namespace vllm::cuda
