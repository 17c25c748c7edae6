// Matrix products for the CPU backend: y = x · Wᵀ (+ bias), with W an nn.Linear weight.
//
// Weights are repacked once, at model load, into panels of `panel_width()` output columns laid
// out for the kernels of one ISA (cpu_features.h); linear() then runs the kernels of that ISA,
// spread over a thread pool. Activations and outputs are float32; accumulation is float32.
//
// Results depend only on the inputs and the weight's ISA/dtype: not on the number of threads, nor
// on how many other rows are in the batch (every output element is summed in the same order).
//
// Plain C++ header (no vector intrinsics): safe to include from code built for baseline x86-64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "vllm/backends/cpu/cpu_features.h"
#include "vllm/core/dtype.h"
#include "vllm/core/tensor.h"
#include "vllm/core/thread_pool.h"

namespace vllm::cpu {

// A weight matrix W [N, K] (N outputs, K inputs) stored in the compute dtype (F32, F16 or BF16)
// in the layout of one ISA's kernels:
//   panel p holds output columns [p·NR, p·NR + NR) (NR = panel_width(): 64 for the AVX-512 and
//   AMX kernels, 16 for AVX2 and scalar; columns >= N are zero);
//   BF16: [K/2][NR][2], pairs of consecutive k per column (the vdpbf16ps operand order), K
//         padded with zero to even (to a multiple of 32, a whole tile step, for AMX);
//   F16 / F32: [K][NR].
// Panels are contiguous, one after the other, so that a range of panels is one stream. Weights of
// 4 MiB and more are 2 MiB aligned and marked for transparent huge pages.
// Cheap to copy (the storage is shared, immutable).
class PackedWeight {
 public:
  PackedWeight() = default;

  // w: host tensor, 2-D [N, K], F32 / F16 / BF16. compute_dtype: F32 / F16 / BF16; values are
  // converted (round to nearest even) if w has another dtype. Throws vllm::Error for other dtypes
  // or shapes, or for an ISA this machine cannot run. Uses ThreadPool::global() for large weights.
  static PackedWeight pack(const Tensor& w, DType compute_dtype, Isa isa = detect_isa());

  bool empty() const { return storage_ == nullptr; }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  DType dtype() const { return dtype_; }
  Isa isa() const { return isa_; }
  size_t bytes() const { return bytes_; }  // packed size, padding included

  int64_t panel_width() const { return nr_; }
  int64_t num_panels() const { return panels_; }
  int64_t k_padded() const { return kp_; }        // K rounded up to the layout's k step
  size_t panel_elements() const { return static_cast<size_t>(kp_ * nr_); }
  const void* data() const { return data_; }

  // The stored weight as a float32 [N, K] tensor (after rounding to the compute dtype).
  Tensor unpack() const;

 private:
  std::shared_ptr<void> storage_;
  const void* data_ = nullptr;
  size_t bytes_ = 0;
  int64_t n_ = 0, k_ = 0, kp_ = 0, nr_ = 0, panels_ = 0;
  DType dtype_ = DType::F32;
  Isa isa_ = Isa::kScalar;
};

// y[M, N] = x[M, K] · Wᵀ (+ bias[N] if bias is non-null).
// x and y are float32, row-major, with leading dimensions ldx >= K and ldy >= N (elements); only
// y[m][0..N) is written. x and y must not overlap. Runs on `pool` (the calling thread takes part).
// BF16 weights on avx512_bf16 / amx_bf16: x is rounded to bf16 (nearest even) and multiplied with
// vdpbf16ps / tdpbf16ps;
// on other ISAs bf16/f16 weights are widened to float32 and multiplied with FMA. (The bf16 copy of
// x lives in a scratch buffer of the calling thread, grown as needed and kept.)
// Throws vllm::Error for bad shapes or a weight packed for an ISA this CPU cannot run.
void linear(const float* x, int64_t M, int64_t ldx, const PackedWeight& w, const float* bias, float* y, int64_t ldy,
            ThreadPool& pool = ThreadPool::global());

// The panel width (output columns per panel) of the kernels of an ISA.
int64_t panel_width_for(Isa isa);

namespace detail {

// One call's view of the problem, shared by the ISA kernels (internal; no intrinsics here).
struct GemmArgs {
  const float* x = nullptr;      // float32 activations [M, ldx]
  int64_t ldx = 0;
  const uint16_t* xb = nullptr;  // bf16 activations [M, ldxb], K padded with zero to k_padded (bf16 dot path)
  int64_t ldxb = 0;
  int64_t M = 0, N = 0, K = 0;
  const void* w = nullptr;       // first panel
  int64_t nr = 0;                // panel width
  int64_t kp = 0;                // padded K of the packed layout
  const float* bias = nullptr;
  float* y = nullptr;
  int64_t ldy = 0;
  int64_t kc = 0;                // k-block length (a multiple of 2); kc >= K means no blocking
};

// Computes rows [m0, m1) of the output columns of panels [p0, p1).
using GemmKernel = void (*)(const GemmArgs& args, int64_t p0, int64_t p1, int64_t m0, int64_t m1);

// Per ISA and weight dtype (F32, F16, BF16); nullptr where that ISA's code was not compiled in.
GemmKernel gemm_kernel(Isa isa, DType dtype);

// Per-ISA entry points (gemm_<isa>.cpp). A file built without its ISA returns nullptr.
GemmKernel scalar_kernel(DType dtype);
GemmKernel avx2_kernel(DType dtype);
GemmKernel avx512_kernel(DType dtype);
GemmKernel avx512_bf16_kernel(DType dtype);
GemmKernel amx_bf16_kernel();  // BF16 weights only (other dtypes use the AVX-512 kernels)
// Rounds rows [m0, m1) of x [.., ldx] (K columns) to bf16 into out [.., ldo], zero-padding columns
// [K, kpad). avx512_bf16 only (AMX uses it too); returns false if not compiled in.
bool avx512_bf16_convert_rows(const float* x, int64_t ldx, int64_t K, int64_t m0, int64_t m1, uint16_t* out,
                              int64_t ldo, int64_t kpad);

// Rows per micro-tile of the kernel used for (isa, dtype): the unit in which linear() splits M.
int64_t kernel_rows(Isa isa, DType dtype);

}  // namespace detail

}  // namespace vllm::cpu
