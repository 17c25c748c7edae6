// Matrix products through cuBLASLt: out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]), row-major, x and W
// in one dtype, out in that dtype or float32 (the router logits of a mixture-of-experts layer),
// float32 accumulation (no TF32 for float32). Plans (layouts, the chosen algorithm, whether the
// bias rides in the epilogue) are cached per shape and alignment.
//
// FP8 products (run_fp8): x and W in e4m3, each row of x with its float32 scale and each row of W
// with its own, out[m, n] = x_scale[m] * w_scale[n] * (x[m, :] · W[n, :]) + bias[n] in the 16-bit
// compute dtype, on Hopper's FP8 tensor cores with float32 accumulation (fast accumulation off: its
// partial sums are not promoted to float32 and lose accuracy over long K). The two scale vectors
// are cuBLASLt's outer-vector scaling (cuBLAS 12.9 and later, sm_90), so scales and bias are
// applied in the product's own epilogue; with an older cuBLAS, fp8_supported is always false.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "vllm/core/dtype.h"

namespace vllm::cuda {

class LtGemm {
 public:
  explicit LtGemm(cudaStream_t stream);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // out_t: the output's dtype, t (the default) or float32; a bias needs out_t == t.
  void run(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
           DType out_t);
  void run(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K) {
    run(t, out, x, w, bias, M, N, K, t);
  }

  // Whether cuBLASLt has an FP8 plan for this product (t: float16 or bfloat16 output), given its
  // pointers' alignments: found once per shape and alignment and cached, as a refusal is. FP8
  // products need K % 16 == 0 and 16-byte aligned operands; where there is no plan the caller
  // takes another path.
  bool fp8_supported(DType t, const void* out, const void* xq, const float* x_scales, const void* wq,
                     const float* w_scales, const void* bias, int64_t M, int64_t N, int64_t K);
  // Runs the FP8 product (fp8_supported said yes): xq [M, K] and wq [N, K] e4m3, x_scales [M] and
  // w_scales [N] float32, bias [N] of t or null. Returns false, leaving `out` unwritten, where
  // cuBLASLt refuses it when run (the plan is then dropped and fp8_supported says no from then on).
  bool run_fp8(DType t, void* out, const void* xq, const float* x_scales, const void* wq, const float* w_scales,
               const void* bias, int64_t M, int64_t N, int64_t K);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vllm::cuda
