// The CUDA backend: activations, KV cache and weights in the compute dtype (float32, float16 or
// bfloat16) on one GPU, except FP8 linear weights (e4m3, fp8_ops.cpp), quantized GGUF ones
// (their blocks, gguf_ops.cpp) and an FP8 KV cache (--kv-cache-dtype fp8: e4m3 bytes with
// per-layer scales); norm vectors in float32;
// matrix products through cuBLASLt (float32 accumulation) and the skinny decode kernels,
// everything else in the kernels of this folder. All work goes to one stream; the
// only synchronisation in a step is the copy of the logits back to the host.
//
// This header needs no CUDA headers, so engine code can include it.
#pragma once

#include <memory>
#include <vector>

#include "vllm/backends/backend.h"
#include "vllm/backends/moe_layout.h"

namespace vllm {

// Number of CUDA devices visible to this process (0 without a driver or GPU).
int cuda_device_count();

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(DType compute_dtype, int device = 0);
  ~CudaBackend() override;

  std::string name() const override { return "cuda"; }
  Device device() const override { return Device::kCUDA; }
  DType activation_dtype() const override { return compute_dtype_; }
  // The compute dtype, or U8 (e4m3 bytes) after use_fp8_kv_cache().
  DType kv_cache_dtype() const override { return fp8_kv_ ? DType::U8 : compute_dtype_; }
  // --kv-cache-dtype fp8: K/V written as e4m3(x / scale) with the layer's scales (saturating at
  // +-448) and read back as e4m3 * scale by every attention kernel (attention_ops.cpp).
  void use_fp8_kv_cache() override { fp8_kv_ = true; }
  DType compute_dtype() const { return compute_dtype_; }

  Tensor empty(const Shape& shape, DType dtype) override;
  Tensor upload(const Tensor& host, DType dtype) override;
  Tensor download_f32(const Tensor& t) override;
  void fill_zero(Tensor& t) override;
  void synchronize() override;
  size_t available_kv_bytes(double gpu_memory_utilization) override;

  std::shared_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor& bias) override;
  // FP8 weights stay e4m3 on the device (half the bytes of float16), scaled per output row or per
  // 128x128 block (fp8_ops.cpp). linear() on them: up to kFp8GemvMaxRows rows (decode), a skinny
  // product that converts the weights in registers; more rows, the activations quantized per token
  // to e4m3 (dynamic scales: a checkpoint's static input_scale is not used) and cuBLASLt's FP8
  // product with both scale vectors and the bias in its epilogue; block-scaled weights at many rows,
  // and shapes the FP8 product cannot take (K not a multiple of 16, no cuBLASLt plan), the weight
  // dequantized to the compute dtype in scratch and the 16-bit product (W8A16). float32 compute
  // keeps dequantized weights (the default prepare_fp8_linear), as does VLLM_CUDA_FP8=0.
  std::shared_ptr<LinearWeight> prepare_fp8_linear(const std::vector<Fp8Matrix>& parts, const Tensor& bias) override;
  bool keeps_fp8_weights() const override;
  // GGUF weights of quantized types (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) stay in their blocks on the
  // device (gguf_ops.cpp), each part's rows with its type; float parts of such a layer are kept in
  // the compute dtype beside them, and a layer of float parts only is an ordinary weight (the
  // default). linear() on them: up to 8 rows (decode), a skinny product per run of one type that
  // dequantizes in registers; more rows, the weight dequantized to the compute dtype in scratch
  // and the cuBLASLt product. VLLM_CUDA_GGUF=0 dequantizes at load instead (the default).
  std::shared_ptr<LinearWeight> prepare_quantized_linear(const std::vector<gguf::QuantizedMatrix>& parts,
                                                         const Tensor& bias) override;
  Tensor prepare_embedding(const Tensor& table) override;
  Tensor prepare_vector(const Tensor& v) override;

  void embedding(Tensor& out, const Tensor& ids, const Tensor& table) override;
  void linear(Tensor& out, const Tensor& x, const LinearWeight& w) override;
  void linear_gelu_new(Tensor& out, const Tensor& x, const LinearWeight& w) override;
  void layer_norm_qkv_mlp_up(Tensor& x, Tensor& qkv, Tensor& up, const Tensor& hidden, const Tensor& norm_w,
                             const Tensor& norm_b, float eps, const LinearWeight& w_qkv, const LinearWeight& w_up) override;
  void linear_add_residual(Tensor& residual, Tensor& scratch, const Tensor& x, const LinearWeight& w,
                           const Tensor& other) override;
  void layer_norm(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) override;
  void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) override;
  void add_rms_norm(Tensor& out, Tensor& residual, const Tensor& x, const Tensor& weight, float eps) override;
  void add(Tensor& out, const Tensor& a, const Tensor& b) override;
  void rotary(Tensor& qkv, const Tensor& positions, const RotaryEmbedding& rope, const AttentionShape& shape) override;
  void qk_rms_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, const AttentionShape& shape,
                   float eps) override;
  void gelu_new(Tensor& out, const Tensor& x) override;
  void silu_and_mul(Tensor& out, const Tensor& gate_up) override;
  void gelu_tanh_and_mul(Tensor& out, const Tensor& gate_up) override;
  void scale(Tensor& x, float s) override;
  void softcap(Tensor& x, float cap) override;
  // Every attention layer runs (sliding windows, soft-capping and sinks included); this checks
  // the shape's values (sinks: float32 [num_heads] on the GPU).
  void check_attention(const AttentionShape& shape) const override;
  void attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                 const AttentionShape& shape, float scale) override;
  void gather_rows(Tensor& out, const Tensor& x, const Tensor& rows) override;
  void copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) override;

  // Mixture of experts (moe.cu): expert weights in the compute dtype as given ([E, 2I, H] and
  // [E, H, I]); routing and grouping on the device, then grouped skinny products for few tokens per
  // expert or grouped tensor-core tiles for many, then the weighted sum in token order.
  std::shared_ptr<ExpertWeights> prepare_experts(const Tensor& gate_up, const Tensor& down,
                                                 const ExpertOptions& options) override;
  void moe(Tensor& out, const Tensor& x, const LinearWeight& router, const ExpertWeights& experts,
           const MoeRouting& routing) override;
  // For the op tests: the routing and grouping that moe() computes on the device for x, copied
  // back. ids and weights are [T, top_k]; the layout is moe::group_by_expert's with row tiles of
  // tile_rows.
  struct MoeRoutingState {
    std::vector<int32_t> ids;
    std::vector<float> weights;
    moe::ExpertLayout layout;
    int32_t tile_rows = 0;
  };
  MoeRoutingState moe_routing_state(const Tensor& x, const LinearWeight& router, int64_t num_experts,
                                    const MoeRouting& routing);

  // For the op tests: the way the last linear() on an FP8 weight went (the FP8 product quantizes the
  // activations, the others do not, so the tests compare each with its own reference).
  enum class Fp8LinearPath { kNone, kGemv, kFp8Gemm, kDequantizedGemm };
  Fp8LinearPath last_fp8_linear_path() const;
  // For the op tests: the way the last linear() on a GGUF weight went.
  enum class GgufLinearPath { kNone, kGemv, kDequantizedGemm };
  GgufLinearPath last_gguf_linear_path() const;

  void configure_graphs(bool enable, int64_t max_model_len, int64_t max_batch) override;
  Tensor forward_step(const ForwardInputs& in, const StepFunction& run) override;
  bool has_sampler() const override { return true; }
  std::vector<int32_t> sample_tokens(const Tensor& logits, std::span<const DeviceSamplingRow> rows,
                                     std::span<const uint32_t> masks, int64_t mask_words = 0) override;
  Tensor empty_host(const Shape& shape, DType dtype) override;

  struct Impl;

 private:
  DType compute_dtype_;
  bool fp8_kv_ = false;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vllm
