#include "routing_margin.h"

#include <algorithm>
#include <functional>
#include <limits>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/models/model.h"

namespace vllm::test {

namespace {

// The CPU backend, with moe() first noting the router logits' margin for the batch's last row.
class RoutingProbe final : public Backend {
 public:
  std::string name() const override { return cpu_.name(); }
  Device device() const override { return cpu_.device(); }
  DType activation_dtype() const override { return cpu_.activation_dtype(); }
  DType kv_cache_dtype() const override { return cpu_.kv_cache_dtype(); }
  Tensor empty(const Shape& shape, DType dtype) override { return cpu_.empty(shape, dtype); }
  Tensor upload(const Tensor& host, DType dtype) override { return cpu_.upload(host, dtype); }
  Tensor download_f32(const Tensor& t) override { return cpu_.download_f32(t); }
  void fill_zero(Tensor& t) override { cpu_.fill_zero(t); }
  std::shared_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor& bias) override {
    return cpu_.prepare_linear(w, bias);
  }
  Tensor prepare_embedding(const Tensor& table) override { return cpu_.prepare_embedding(table); }
  Tensor prepare_vector(const Tensor& v) override { return cpu_.prepare_vector(v); }
  void embedding(Tensor& out, const Tensor& ids, const Tensor& table) override { cpu_.embedding(out, ids, table); }
  void linear(Tensor& out, const Tensor& x, const LinearWeight& w) override { cpu_.linear(out, x, w); }
  void layer_norm(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) override {
    cpu_.layer_norm(out, x, weight, bias, eps);
  }
  void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) override {
    cpu_.rms_norm(out, x, weight, eps);
  }
  void add_rms_norm(Tensor& out, Tensor& residual, const Tensor& x, const Tensor& weight, float eps) override {
    cpu_.add_rms_norm(out, residual, x, weight, eps);
  }
  void add(Tensor& out, const Tensor& a, const Tensor& b) override { cpu_.add(out, a, b); }
  void rotary(Tensor& qkv, const Tensor& positions, const RotaryEmbedding& rope, const AttentionShape& shape) override {
    cpu_.rotary(qkv, positions, rope, shape);
  }
  void qk_rms_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, const AttentionShape& shape,
                   float eps) override {
    cpu_.qk_rms_norm(qkv, q_weight, k_weight, shape, eps);
  }
  void gelu_new(Tensor& out, const Tensor& x) override { cpu_.gelu_new(out, x); }
  void silu_and_mul(Tensor& out, const Tensor& gate_up) override { cpu_.silu_and_mul(out, gate_up); }
  void gelu_tanh_and_mul(Tensor& out, const Tensor& gate_up) override { cpu_.gelu_tanh_and_mul(out, gate_up); }
  void scale(Tensor& x, float s) override { cpu_.scale(x, s); }
  void softcap(Tensor& x, float cap) override { cpu_.softcap(x, cap); }
  void attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                 const AttentionShape& shape, float scale) override {
    cpu_.attention(out, qkv, cache, in, shape, scale);
  }
  void gather_rows(Tensor& out, const Tensor& x, const Tensor& rows) override { cpu_.gather_rows(out, x, rows); }
  std::shared_ptr<ExpertWeights> prepare_experts(const Tensor& gate_up, const Tensor& down,
                                                 const ExpertOptions& options) override {
    return cpu_.prepare_experts(gate_up, down, options);
  }
  void copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) override {
    cpu_.copy_blocks(cache, src_dst);
  }

  void moe(Tensor& out, const Tensor& x, const LinearWeight& router, const ExpertWeights& experts,
           const MoeRouting& routing) override {
    const int64_t T = x.size(0), E = router.out_features(), K = routing.top_k;
    Tensor logits = Tensor::empty({T, E}, DType::F32);
    cpu_.linear(logits, x, router);
    std::vector<float> last(logits.data<float>() + (T - 1) * E, logits.data<float>() + T * E);
    std::sort(last.begin(), last.end(), std::greater<float>());
    if (K < E) margin_ = std::min(margin_, static_cast<double>(last[K - 1]) - last[K]);
    cpu_.moe(out, x, router, experts, routing);
  }

  double margin() const { return margin_; }

 private:
  CpuBackend cpu_{DType::F32};
  double margin_ = std::numeric_limits<double>::infinity();
};

Tensor ints(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

}  // namespace

double last_token_routing_margin(const std::string& model_dir, const std::vector<int32_t>& ids) {
  const ModelConfig config = ModelConfig::from_folder(model_dir);
  RoutingProbe probe;
  auto model = load_model(model_dir, config, probe);
  // One sequence, one prefill step, blocks 0, 1, 2, ... in order.
  const int64_t T = static_cast<int64_t>(ids.size()), bs = 16, blocks = (T + bs - 1) / bs;
  ForwardInputs in;
  in.num_tokens = T;
  in.num_seqs = 1;
  in.max_query_len = in.max_seq_len = T;
  in.max_blocks_per_seq = blocks;
  in.block_size = bs;
  std::vector<int32_t> positions(static_cast<size_t>(T)), table(static_cast<size_t>(blocks));
  for (int64_t i = 0; i < T; ++i) positions[i] = static_cast<int32_t>(i);
  for (int64_t b = 0; b < blocks; ++b) table[b] = static_cast<int32_t>(b);
  in.token_ids = ints(ids);
  in.positions = ints(positions);
  in.slot_mapping = Tensor::empty({T}, DType::I64);
  for (int64_t i = 0; i < T; ++i) in.slot_mapping.data<int64_t>()[i] = i;
  in.host_query_start_loc = {0, static_cast<int32_t>(T)};
  in.host_seq_lens = {static_cast<int32_t>(T)};
  in.query_start_loc = ints(in.host_query_start_loc);
  in.seq_lens = ints(in.host_seq_lens);
  in.block_tables = ints(table).view({1, blocks});
  in.logits_indices = ints({static_cast<int32_t>(T - 1)});
  std::vector<KVCacheLayer> kv;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    kv.push_back({Tensor::zeros({blocks, config.num_key_value_heads, bs, config.head_dim}, DType::F32),
                  Tensor::zeros({blocks, config.num_key_value_heads, bs, config.head_dim}, DType::F32)});
  model->forward(in, kv);
  return probe.margin();
}

}  // namespace vllm::test
