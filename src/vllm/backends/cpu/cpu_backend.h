// The CPU backend: float32 activations, weights in the compute dtype (packed for the matrix
// kernels), KV cache in float32 for float32 compute and bfloat16 otherwise.
#pragma once

#include <map>
#include <mutex>

#include "vllm/backends/backend.h"
#include "vllm/core/thread_pool.h"

namespace vllm {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(DType compute_dtype, ThreadPool& pool = ThreadPool::global());
  // With a pool of its own of `num_threads` threads (a tensor-parallel rank's or a data-parallel
  // replica's share of the cores).
  CpuBackend(DType compute_dtype, int num_threads);

  std::string name() const override { return "cpu"; }
  Device device() const override { return Device::kCPU; }
  DType activation_dtype() const override { return DType::F32; }
  DType kv_cache_dtype() const override { return compute_dtype_ == DType::F32 ? DType::F32 : DType::BF16; }
  DType compute_dtype() const { return compute_dtype_; }

  Tensor empty(const Shape& shape, DType dtype) override { return Tensor::empty(shape, dtype); }
  Tensor upload(const Tensor& host, DType dtype) override { return host.to_dtype(dtype); }
  Tensor download_f32(const Tensor& t) override;
  void fill_zero(Tensor& t) override;

  std::shared_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor& bias) override;
  // GGUF weights: Q8_0, Q4_0, Q4_K, Q5_K and Q6_K stay quantized (int8 dot products, quant_gemm.h);
  // other types are dequantized and packed like prepare_linear's.
  std::shared_ptr<LinearWeight> prepare_quantized_linear(const std::vector<gguf::QuantizedMatrix>& parts,
                                                         const Tensor& bias) override;
  Tensor prepare_embedding(const Tensor& table) override;
  // GGUF block types stay in their blocks (a U8 tensor [vocab, row bytes], a view of the file);
  // embedding() dequantizes the gathered rows, rounded to the compute dtype as a table prepared
  // by prepare_embedding would hold them. Float GGUF types go through prepare_embedding.
  Tensor prepare_quantized_embedding(const gguf::QuantizedMatrix& table) override;
  Tensor prepare_vector(const Tensor& v) override { return v.to_dtype(DType::F32); }

  void embedding(Tensor& out, const Tensor& ids, const Tensor& table) override;
  void vocab_parallel_embedding(Tensor& out, const Tensor& ids, const Tensor& table, int64_t first_id) override;
  void linear(Tensor& out, const Tensor& x, const LinearWeight& w) override;
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
  void attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                 const AttentionShape& shape, float scale) override;
  void gather_rows(Tensor& out, const Tensor& x, const Tensor& rows) override;
  // Mixture of experts (cpu_moe.cpp): tokens grouped by expert, one matrix product per active
  // expert over its packed rows, weighted outputs summed per token.
  std::shared_ptr<ExpertWeights> prepare_experts(const Tensor& gate_up, const Tensor& down,
                                                 const ExpertOptions& options) override;
  void moe(Tensor& out, const Tensor& x, const LinearWeight& router, const ExpertWeights& experts,
           const MoeRouting& routing) override;
  void copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) override;

 private:
  // embedding() and vocab_parallel_embedding(): rows of ids - first_id; outside the table, zeros or an error.
  void embed(Tensor& out, const Tensor& ids, const Tensor& table, int64_t first_id, bool zeros_outside);
  DType compute_dtype_;
  std::unique_ptr<ThreadPool> own_pool_;  // set by the num_threads constructor; pool_ is then it
  ThreadPool& pool_;
  // The GGUF type of each quantized embedding table handed out (by its data address): a U8 table
  // given to embedding() is looked up here. Written at load, read per forward pass.
  std::mutex quantized_tables_mutex_;
  std::map<const void*, gguf::GgmlType> quantized_tables_;
};

}  // namespace vllm
