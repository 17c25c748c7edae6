// Normalisations over rows: RMSNorm, RMSNorm fused with the residual add, LayerNorm, and the
// per-head q/k RMSNorm of Qwen3. One block per row (one warp per head for q/k), float32 math.
//
// Rows whose length is a multiple of 16 bytes take the register path: each thread loads its
// 16-byte packs of the row once, keeps them in registers through both reductions, and writes the
// result; in a decode step a norm is one row, so what counts is round trips to memory, not bytes.
// The other rows take the plain strided loops. Both compute the same formulas.
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

// ---- the register path -------------------------------------------------------------------------

template <typename T, int V>
__device__ __forceinline__ void load_row(float (&v)[V][Pack<T>::N], const T* row, int64_t packs) {
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t p = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
    if (p < packs) {
      const Pack<T> r = load_pack(row + p * Pack<T>::N);
#pragma unroll
      for (int e = 0; e < Pack<T>::N; ++e) v[j][e] = to_float(r.v[e]);
    } else {
#pragma unroll
      for (int e = 0; e < Pack<T>::N; ++e) v[j][e] = 0.0f;
    }
  }
}

// row[i] = f(v, i) for every feature i this thread holds.
template <typename T, int V, typename F>
__device__ __forceinline__ void store_row(T* row, const float (&v)[V][Pack<T>::N], int64_t packs, F f) {
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t p = threadIdx.x + static_cast<int64_t>(j) * blockDim.x;
    if (p < packs) {
      Pack<T> r;
#pragma unroll
      for (int e = 0; e < Pack<T>::N; ++e) r.v[e] = from_float<T>(f(v[j][e], p * Pack<T>::N + e));
      store_pack(row + p * Pack<T>::N, r);
    }
  }
}

template <typename T, int V>
__device__ __forceinline__ float sum_squares(const float (&v)[V][Pack<T>::N]) {
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < V; ++j)
#pragma unroll
    for (int e = 0; e < Pack<T>::N; ++e) ss += v[j][e] * v[j][e];
  return ss;
}

template <typename T, int V>
__global__ void __launch_bounds__(1024) rms_norm_regs_kernel(T* out, const T* x, const float* __restrict__ w, int64_t H, float eps) {
  pdl_begin();
  __shared__ float scratch[33];
  const int64_t packs = H / Pack<T>::N;
  float v[V][Pack<T>::N];
  load_row<T, V>(v, x + blockIdx.x * H, packs);
  const float inv = 1.0f / sqrtf(block_sum(sum_squares<T, V>(v), scratch) / static_cast<float>(H) + eps);
  store_row<T, V>(out + blockIdx.x * H, v, packs, [&](float a, int64_t i) { return a * inv * w[i]; });
}

template <typename T, int V>
__global__ void __launch_bounds__(1024) add_rms_norm_regs_kernel(T* out, T* residual, const T* x, const float* __restrict__ w, int64_t H,
                                         float eps) {
  pdl_begin();
  __shared__ float scratch[33];
  constexpr int E = Pack<T>::N;
  const int64_t packs = H / E;
  float v[V][E], u[V][E];
  load_row<T, V>(v, residual + blockIdx.x * H, packs);
  load_row<T, V>(u, x + blockIdx.x * H, packs);
  // The new residual, rounded to T as the plain kernel stores and re-reads it.
#pragma unroll
  for (int j = 0; j < V; ++j)
#pragma unroll
    for (int e = 0; e < E; ++e) v[j][e] = to_float(from_float<T>(v[j][e] + u[j][e]));
  store_row<T, V>(residual + blockIdx.x * H, v, packs, [](float a, int64_t) { return a; });
  const float inv = 1.0f / sqrtf(block_sum(sum_squares<T, V>(v), scratch) / static_cast<float>(H) + eps);
  store_row<T, V>(out + blockIdx.x * H, v, packs, [&](float a, int64_t i) { return a * inv * w[i]; });
}

template <typename T, int V>
__global__ void __launch_bounds__(1024) layer_norm_regs_kernel(T* out, const T* x, const float* __restrict__ w, const float* __restrict__ b,
                                       int64_t H, float eps) {
  pdl_begin();
  __shared__ float scratch[33];
  constexpr int E = Pack<T>::N;
  const int64_t packs = H / E;
  float v[V][E];
  load_row<T, V>(v, x + blockIdx.x * H, packs);
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < V; ++j)
#pragma unroll
    for (int e = 0; e < E; ++e) s += v[j][e];
  const float mean = block_sum(s, scratch) / static_cast<float>(H);
  float q = 0.0f;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    if (threadIdx.x + static_cast<int64_t>(j) * blockDim.x >= packs) continue;  // padding, not features
#pragma unroll
    for (int e = 0; e < E; ++e) q += (v[j][e] - mean) * (v[j][e] - mean);
  }
  const float inv = 1.0f / sqrtf(block_sum(q, scratch) / static_cast<float>(H) + eps);
  store_row<T, V>(out + blockIdx.x * H, v, packs, [&](float a, int64_t i) { return (a - mean) * inv * w[i] + b[i]; });
}

// Packs per thread of the register path (1, 2 or 4), or 0 where the rows do not fit it. The
// kernels are bounded to 1,024 threads (64 registers a thread), so the widest rows may spill a
// little; a decode step's rows (hidden sizes up to 8,192 in 16 bits) use one pack a thread.
template <typename T>
int regs_per_thread(int64_t H, std::initializer_list<const void*> rows) {
  if (H % Pack<T>::N != 0) return 0;
  for (const void* p : rows)
    if (!aligned16(p)) return 0;
  const int64_t packs = H / Pack<T>::N;
  for (int V : {1, 2, 4})
    if (packs <= int64_t{V} * 1024) return V;
  return 0;
}

int regs_threads(int64_t H, int elems_per_pack, int V) {
  const int64_t t = (H / elems_per_pack + V - 1) / V;
  return static_cast<int>(std::max<int64_t>(32, (t + 31) / 32 * 32));
}

// Calls launch(kernel-of-V) for the register path's V; false when it does not apply.
#define VLLM_REGS_DISPATCH(V, KERNEL, ...)                                   \
  switch (V) {                                                               \
    case 1: launch_k(KERNEL<T, 1>, __VA_ARGS__); break;                      \
    case 2: launch_k(KERNEL<T, 2>, __VA_ARGS__); break;                      \
    default: launch_k(KERNEL<T, 4>, __VA_ARGS__); break;                     \
  }

template <typename T>
void launch_rms_norm(T* out, const T* x, const float* w, int64_t rows, int64_t H, float eps, cudaStream_t s) {
  const unsigned grid = static_cast<unsigned>(rows);
  if (const int V = regs_per_thread<T>(H, {out, x})) {
    const int threads = regs_threads(H, Pack<T>::N, V);
    VLLM_REGS_DISPATCH(V, rms_norm_regs_kernel, grid, threads, 0, s, out, x, w, H, eps);
  } else {
    launch_k(rms_norm_kernel<T>, grid, row_threads(H), 0, s, out, x, w, H, eps);
  }
}

template <typename T>
void launch_add_rms_norm(T* out, T* residual, const T* x, const float* w, int64_t rows, int64_t H, float eps,
                         cudaStream_t s) {
  const unsigned grid = static_cast<unsigned>(rows);
  if (const int V = regs_per_thread<T>(H, {out, residual, x})) {
    const int threads = regs_threads(H, Pack<T>::N, V);
    VLLM_REGS_DISPATCH(V, add_rms_norm_regs_kernel, grid, threads, 0, s, out, residual, x, w, H, eps);
  } else {
    launch_k(add_rms_norm_kernel<T>, grid, row_threads(H), 0, s, out, residual, x, w, H, eps);
  }
}

template <typename T>
void launch_layer_norm(T* out, const T* x, const float* w, const float* b, int64_t rows, int64_t H, float eps,
                       cudaStream_t s) {
  const unsigned grid = static_cast<unsigned>(rows);
  if (const int V = regs_per_thread<T>(H, {out, x})) {
    const int threads = regs_threads(H, Pack<T>::N, V);
    VLLM_REGS_DISPATCH(V, layer_norm_regs_kernel, grid, threads, 0, s, out, x, w, b, H, eps);
  } else {
    launch_k(layer_norm_kernel<T>, grid, row_threads(H), 0, s, out, x, w, b, H, eps);
  }
}

#undef VLLM_REGS_DISPATCH

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
  VLLM_DISPATCH_FLOAT(t, T, launch_rms_norm<T>(static_cast<T*>(out), static_cast<const T*>(x), w, rows, H, eps, stream));
  check_launch("rms_norm");
}

void add_rms_norm(DType t, void* out, void* residual, const void* x, const float* w, int64_t rows, int64_t H, float eps,
                  cudaStream_t stream) {
  if (rows == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_add_rms_norm<T>(static_cast<T*>(out), static_cast<T*>(residual),
                                                   static_cast<const T*>(x), w, rows, H, eps, stream));
  check_launch("add_rms_norm");
}

void layer_norm(DType t, void* out, const void* x, const float* w, const float* b, int64_t rows, int64_t H, float eps,
                cudaStream_t stream) {
  if (rows == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_layer_norm<T>(static_cast<T*>(out), static_cast<const T*>(x), w, b, rows, H, eps, stream));
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
