// Element-wise ops: gelu_new (tanh GELU), silu_and_mul, add, and the bias add used when a
// matrix product runs without cuBLASLt's bias epilogue. Math in float32.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

// Vectorised unary/binary maps over n elements (n a multiple of the pack size, 16-byte aligned).
template <typename T, int OP>  // OP 0: gelu(a), 1: a + b
__global__ void map_vec_kernel(T* __restrict__ out, const T* a, const T* b, int64_t npacks) {
  pdl_begin();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < npacks;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Pack<T> x = load_pack(a + i * Pack<T>::N), r;
    if constexpr (OP == 0) {
#pragma unroll
      for (int j = 0; j < Pack<T>::N; ++j) r.v[j] = from_float<T>(gelu_tanh(to_float(x.v[j])));
    } else {
      Pack<T> y = load_pack(b + i * Pack<T>::N);
#pragma unroll
      for (int j = 0; j < Pack<T>::N; ++j) r.v[j] = from_float<T>(to_float(x.v[j]) + to_float(y.v[j]));
    }
    store_pack(out + i * Pack<T>::N, r);
  }
}

template <typename T, int OP>
__global__ void map_kernel(T* out, const T* a, const T* b, int64_t n) {
  pdl_begin();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x = to_float(a[i]);
    out[i] = from_float<T>(OP == 0 ? gelu_tanh(x) : x + to_float(b[i]));
  }
}

template <typename T, int OP>
void launch_map(void* out, const void* a, const void* b, int64_t n, cudaStream_t stream) {
  constexpr int N = Pack<T>::N;
  if (n % N == 0 && aligned16(out) && aligned16(a) && (b == nullptr || aligned16(b))) {
    const int64_t packs = n / N;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(packs, 256), 8192));
    launch_k(map_vec_kernel<T, OP>, blocks, 256, 0, stream, static_cast<T*>(out), static_cast<const T*>(a),
                                                       static_cast<const T*>(b), packs);
  } else {
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(n, 256), 8192));
    launch_k(map_kernel<T, OP>, blocks, 256, 0, stream, static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b), n);
  }
}

template <typename T>
__global__ void silu_and_mul_kernel(T* __restrict__ out, const T* __restrict__ gu, int64_t rows, int64_t I) {
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
      for (int j = 0; j < N; ++j) c.v[j] = from_float<T>(silu(to_float(a.v[j])) * to_float(b.v[j]));
      store_pack(o + i, c);
    }
  } else {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < I;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
      o[i] = from_float<T>(silu(to_float(g[i])) * to_float(u[i]));
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
  VLLM_DISPATCH_FLOAT(t, T, launch_map<T, 0>(out, x, nullptr, n, stream));
  check_launch("gelu_new");
}

void add(DType t, void* out, const void* a, const void* b, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, launch_map<T, 1>(out, a, b, n, stream));
  check_launch("add");
}

void silu_and_mul(DType t, void* out, const void* gate_up, int64_t rows, int64_t I, cudaStream_t stream) {
  if (rows == 0 || I == 0) return;
  const unsigned bx = std::min<unsigned>(ceil_div(I, 256 * 8), 64);
  dim3 grid(bx, static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  VLLM_DISPATCH_FLOAT(t, T, launch_k(silu_and_mul_kernel<T>, grid, 256, 0, stream, static_cast<T*>(out),
                                                                            static_cast<const T*>(gate_up), rows, I));
  check_launch("silu_and_mul");
}

void add_bias(DType t, void* out, const void* bias, int64_t rows, int64_t N, cudaStream_t stream) {
  if (rows == 0 || N == 0) return;
  dim3 grid(std::min<unsigned>(ceil_div(N, 256), 64), static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  VLLM_DISPATCH_FLOAT(t, T, launch_k(add_bias_kernel<T>, grid, 256, 0, stream, static_cast<T*>(out), static_cast<const T*>(bias),
                                                                        rows, N));
  check_launch("add_bias");
}

}  // namespace vllm::cuda
