// Element-wise ops: gelu_new (tanh GELU), silu_and_mul and gelu_tanh_and_mul (the gated MLPs),
// add, scale and softcap (Gemma's embedding normalizer and final logit soft-cap), and the bias add
// used when a matrix product runs without cuBLASLt's bias epilogue. Math in float32.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

enum MapOp { kGeluOp, kAddOp, kScaleOp, kSoftcapOp };

// One element of a map: gelu(x), x + y, x * c, or tanh(x / c) * c.
template <int OP>
__device__ __forceinline__ float map_one(float x, float y, float c) {
  if constexpr (OP == kGeluOp) return gelu_tanh(x);
  else if constexpr (OP == kAddOp) return x + y;
  else if constexpr (OP == kScaleOp) return x * c;
  else return tanhf(x / c) * c;
}

// Vectorised unary/binary maps over n elements (n a multiple of the pack size, 16-byte aligned).
template <typename T, int OP>
__global__ void map_vec_kernel(T* __restrict__ out, const T* a, const T* b, float c, int64_t npacks) {
  pdl_begin();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < npacks;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Pack<T> x = load_pack(a + i * Pack<T>::N), r;
    if constexpr (OP == kAddOp) {
      Pack<T> y = load_pack(b + i * Pack<T>::N);
#pragma unroll
      for (int j = 0; j < Pack<T>::N; ++j) r.v[j] = from_float<T>(to_float(x.v[j]) + to_float(y.v[j]));
    } else {
#pragma unroll
      for (int j = 0; j < Pack<T>::N; ++j) r.v[j] = from_float<T>(map_one<OP>(to_float(x.v[j]), 0.0f, c));
    }
    store_pack(out + i * Pack<T>::N, r);
  }
}

template <typename T, int OP>
__global__ void map_kernel(T* out, const T* a, const T* b, float c, int64_t n) {
  pdl_begin();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float x = to_float(a[i]);
    out[i] = from_float<T>(map_one<OP>(x, OP == kAddOp ? to_float(b[i]) : 0.0f, c));
  }
}

template <typename T, int OP>
void launch_map(void* out, const void* a, const void* b, float c, int64_t n, cudaStream_t stream) {
  constexpr int N = Pack<T>::N;
  if (n % N == 0 && aligned16(out) && aligned16(a) && (b == nullptr || aligned16(b))) {
    const int64_t packs = n / N;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(packs, 256), 8192));
    launch_k(map_vec_kernel<T, OP>, blocks, 256, 0, stream, static_cast<T*>(out), static_cast<const T*>(a),
                                                       static_cast<const T*>(b), c, packs);
  } else {
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(n, 256), 8192));
    launch_k(map_kernel<T, OP>, blocks, 256, 0, stream, static_cast<T*>(out), static_cast<const T*>(a),
             static_cast<const T*>(b), c, n);
  }
}

// The gated MLP's activation: act(gate) * up, act SiLU (GELU false) or tanh GELU (Gemma).
template <bool GELU>
__device__ __forceinline__ float gate_act(float g) {
  if constexpr (GELU) return gelu_tanh(g);
  else return silu(g);
}

template <typename T, bool GELU>
__global__ void act_and_mul_kernel(T* __restrict__ out, const T* __restrict__ gu, int64_t rows, int64_t I) {
  pdl_begin();
  constexpr int N = Pack<T>::N;
  const bool vec = I % N == 0 && aligned16(gu) && aligned16(out);
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
  const T* g = gu + r * 2 * I;
  const T* u = g + I;
  T* o = out + r * I;
  if (vec) {
    for (int64_t i = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) * N; i < I;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x * N) {
      Pack<T> a = load_pack(g + i), b = load_pack(u + i), c;
#pragma unroll
      for (int j = 0; j < N; ++j) c.v[j] = from_float<T>(gate_act<GELU>(to_float(a.v[j])) * to_float(b.v[j]));
      store_pack(o + i, c);
    }
  } else {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < I;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
      o[i] = from_float<T>(gate_act<GELU>(to_float(g[i])) * to_float(u[i]));
  }
  }
}

template <typename T>
__global__ void add_bias_kernel(T* __restrict__ out, const T* __restrict__ bias, int64_t rows, int64_t N) {
  pdl_begin();
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < N;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
      out[r * N + i] = from_float<T>(to_float(out[r * N + i]) + to_float(bias[i]));
}

}  // namespace

void gelu_new(DType t, void* out, const void* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_map<T, kGeluOp>(out, x, nullptr, 0.0f, n, stream));
  check_launch("gelu_new");
}

void add(DType t, void* out, const void* a, const void* b, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_map<T, kAddOp>(out, a, b, 0.0f, n, stream));
  check_launch("add");
}

void scale(DType t, void* x, float s, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_map<T, kScaleOp>(x, x, nullptr, s, n, stream));
  check_launch("scale");
}

void softcap(DType t, void* x, float cap, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_map<T, kSoftcapOp>(x, x, nullptr, cap, n, stream));
  check_launch("softcap");
}

namespace {
template <bool GELU>
void launch_act_and_mul(DType t, void* out, const void* gate_up, int64_t rows, int64_t I, cudaStream_t stream) {
  const unsigned bx = std::min<unsigned>(ceil_div(I, 256 * 8), 64);
  dim3 grid(bx, static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  VLLM_DISPATCH_FLOAT(t, T, launch_k(act_and_mul_kernel<T, GELU>, grid, 256, 0, stream, static_cast<T*>(out),
                                     static_cast<const T*>(gate_up), rows, I));
}
}  // namespace

void silu_and_mul(DType t, void* out, const void* gate_up, int64_t rows, int64_t I, cudaStream_t stream) {
  if (rows == 0 || I == 0) return;
  launch_act_and_mul<false>(t, out, gate_up, rows, I, stream);
  check_launch("silu_and_mul");
}

void gelu_tanh_and_mul(DType t, void* out, const void* gate_up, int64_t rows, int64_t I, cudaStream_t stream) {
  if (rows == 0 || I == 0) return;
  launch_act_and_mul<true>(t, out, gate_up, rows, I, stream);
  check_launch("gelu_tanh_and_mul");
}

void add_bias(DType t, void* out, const void* bias, int64_t rows, int64_t N, cudaStream_t stream) {
  if (rows == 0 || N == 0) return;
  dim3 grid(std::min<unsigned>(ceil_div(N, 256), 64), static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  VLLM_DISPATCH_FLOAT(t, T, launch_k(add_bias_kernel<T>, grid, 256, 0, stream, static_cast<T*>(out), static_cast<const T*>(bias),
                                                                        rows, N));
  check_launch("add_bias");
}

}  // namespace vllm::cuda
