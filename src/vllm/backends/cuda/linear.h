// Matrix products through cuBLASLt: out[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]), row-major, x and W
// in one dtype, out in that dtype or float32 (the router logits of a mixture-of-experts layer),
// float32 accumulation (no TF32 for float32). Plans (layouts, the chosen algorithm, whether the
// bias rides in the epilogue) are cached per shape and alignment.
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vllm::cuda
