// Normalisations over rows: RMSNorm, RMSNorm fused with the residual add, LayerNorm, and the
// per-head q/k RMSNorm of Qwen3. One block per row (one warp per head for q/k), float32 math.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

int row_threads(int64_t H) {
  int64_t t = (H + 7) / 8;
  t = (t + 31) / 32 * 32;
  return static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(32, t)));
}

template <typename T>
__global__ void rms_norm_kernel(T* out, const T* x, const float* __restrict__ w, int64_t H, float eps) {
  pdl_begin();
  __shared__ float scratch[33];
  const T* xr = x + blockIdx.x * H;
  T* o = out + blockIdx.x * H;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    float v = to_float(xr[i]);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(H) + eps);
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) o[i] = from_float<T>(to_float(xr[i]) * inv * w[i]);
}

template <typename T>
__global__ void add_rms_norm_kernel(T* out, T* residual, const T* x, const float* __restrict__ w, int64_t H, float eps) {
  pdl_begin();
  __shared__ float scratch[33];
  const T* xr = x + blockIdx.x * H;
  T* res = residual + blockIdx.x * H;
  T* o = out + blockIdx.x * H;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    T s = from_float<T>(to_float(res[i]) + to_float(xr[i]));
    res[i] = s;
    float v = to_float(s);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(H) + eps);
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) o[i] = from_float<T>(to_float(res[i]) * inv * w[i]);
}

template <typename T>
__global__ void layer_norm_kernel(T* out, const T* x, const float* __restrict__ w, const float* __restrict__ b, int64_t H,
                                  float eps) {
  pdl_begin();
  __shared__ float scratch[33];
  const T* xr = x + blockIdx.x * H;
  T* o = out + blockIdx.x * H;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) s += to_float(xr[i]);
  const float mean = block_sum(s, scratch) / static_cast<float>(H);
  float v = 0.0f;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    float d = to_float(xr[i]) - mean;
    v += d * d;
  }
  const float var = block_sum(v, scratch) / static_cast<float>(H);
  const float inv = 1.0f / sqrtf(var + eps);
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) o[i] = from_float<T>((to_float(xr[i]) - mean) * inv * w[i] + b[i]);
}

// One warp per (token, head) of the query and key heads.
template <typename T>
__global__ void qk_rms_norm_kernel(T* qkv, const float* __restrict__ qw, const float* __restrict__ kw, int64_t n_rows,
                                   int64_t heads, int64_t nh, int64_t width, int64_t hd, float eps) {
  pdl_begin();
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  if (r >= n_rows) return;
  const int lane = threadIdx.x & 31;
  const int64_t t = r / heads, h = r % heads;
  T* x = qkv + t * width + h * hd;
  const float* w = h < nh ? qw : kw;
  float ss = 0.0f;
  for (int64_t i = lane; i < hd; i += 32) {
    float v = to_float(x[i]);
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(hd) + eps);
  for (int64_t i = lane; i < hd; i += 32) x[i] = from_float<T>(to_float(x[i]) * inv * w[i]);
}

}  // namespace

void rms_norm(DType t, void* out, const void* x, const float* w, int64_t rows, int64_t H, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_k(rms_norm_kernel<T>, static_cast<unsigned>(rows), row_threads(H), 0, stream, 
                                static_cast<T*>(out), static_cast<const T*>(x), w, H, eps));
  check_launch("rms_norm");
}

void add_rms_norm(DType t, void* out, void* residual, const void* x, const float* w, int64_t rows, int64_t H, float eps,
                  cudaStream_t stream) {
  if (rows == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_k(add_rms_norm_kernel<T>, static_cast<unsigned>(rows), row_threads(H), 0, stream, 
                                static_cast<T*>(out), static_cast<T*>(residual), static_cast<const T*>(x), w, H, eps));
  check_launch("add_rms_norm");
}

void layer_norm(DType t, void* out, const void* x, const float* w, const float* b, int64_t rows, int64_t H, float eps,
                cudaStream_t stream) {
  if (rows == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_k(layer_norm_kernel<T>, static_cast<unsigned>(rows), row_threads(H), 0, stream, 
                                static_cast<T*>(out), static_cast<const T*>(x), w, b, H, eps));
  check_launch("layer_norm");
}

void qk_rms_norm(DType t, void* qkv, const float* q_w, const float* k_w, int64_t T_, int64_t nh, int64_t nkv, int64_t hd,
                 float eps, cudaStream_t stream) {
  const int64_t heads = nh + nkv, n_rows = T_ * heads;
  if (n_rows == 0) return;
  const int64_t width = (nh + 2 * nkv) * hd;
  VLLM_DISPATCH_FLOAT(t, T, launch_k(qk_rms_norm_kernel<T>, ceil_div(n_rows, 4), 128, 0, stream, 
                                static_cast<T*>(qkv), q_w, k_w, n_rows, heads, nh, width, hd, eps));
  check_launch("qk_rms_norm");
}

}  // namespace vllm::cuda
