// A causal language model written against Backend ops, and the registry of architectures.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vllm/backends/backend.h"
#include "vllm/config/model_config.h"
#include "vllm/distributed/tensor_shard.h"
#include "vllm/loader/safetensors.h"

namespace vllm {

// One attention layer's FP8 KV cache scales (KVCacheLayer::k_scale / v_scale).
struct KVScales {
  float k = 1.0f;
  float v = 1.0f;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  // Runs one flattened step and returns the logits [R, vocab] of in.logits_indices where the
  // backend computed them, in its activation dtype (Backend::download_f32 brings them to the
  // host; a backend with a sampler of its own samples them where they are).
  virtual Tensor forward(const ForwardInputs& in, std::vector<KVCacheLayer>& kv_cache) = 0;

  // The whole model's config (what the engine sees: the vocabulary of the logits, the layers).
  const ModelConfig& config() const { return config_; }
  // This tensor-parallel rank's share of it (distributed/tensor_shard.h: heads, KV heads, the
  // MLP's width, the vocabulary); the config itself when the model is not split.
  const ModelConfig& shard_config() const { return shard_; }
  // The heads of every layer on this rank (a family with per-layer windows, soft-caps or sinks sets those).
  AttentionShape attention_shape() const {
    AttentionShape s;
    s.num_heads = shard_.num_attention_heads;
    s.num_kv_heads = shard_.num_key_value_heads;
    s.head_dim = shard_.head_dim;
    return s;
  }
  // Per layer: the FP8 KV cache's scales (read_kv_scales), or empty: 1 everywhere.
  const std::vector<KVScales>& kv_scales() const { return kv_scales_; }
  void set_kv_scales(std::vector<KVScales> scales) { kv_scales_ = std::move(scales); }
  size_t weight_bytes() const { return weight_bytes_; }
  // The weight bytes one token reads in a batch-1 decode step, for bandwidth bounds: everything
  // but the embedding table (one row of it) and, in mixture-of-experts layers, only top_k of the
  // experts' bytes.
  size_t weight_bytes_per_token() const { return weight_bytes_per_token_; }

 protected:
  CausalLM(const ModelConfig& config, Backend& backend)
      : config_(config),
        shard_(::vllm::shard_config(config, backend.tp_rank(), backend.tp_size())),
        vocab_begin_(shard_vocab_begin(config, backend.tp_rank(), backend.tp_size())),
        backend_(backend) {}
  // The step's token embeddings from this rank's rows of the table (all of them without tensor
  // parallelism; with it, each rank its share of the vocabulary, summed over the ranks).
  void embed_tokens(Tensor& out, const Tensor& ids, const Tensor& table);
  // The logits [R, vocab] from this rank's `local` [R, vocab share] (the LM head's rows of this
  // rank): `local` itself when the model is not split, else rank 0 gathers every rank's columns
  // into `full` (other ranks return their `local`, which no one samples).
  Tensor gather_logits(const Tensor& local, Tensor full);
  // Records the loaded bytes; `embedding` is the token embedding table, `unread_expert_bytes` what
  // a token leaves unread in the experts it is not routed to.
  void set_weight_bytes(size_t total, const Tensor& embedding, size_t unread_expert_bytes = 0) {
    weight_bytes_ = total;
    const size_t row = embedding.nbytes() / static_cast<size_t>(embedding.size(0));
    weight_bytes_per_token_ = total - embedding.nbytes() + row - unread_expert_bytes;
  }
  ModelConfig config_;
  ModelConfig shard_;
  int64_t vocab_begin_ = 0;  // this rank's first vocabulary row
  Backend& backend_;

 private:
  size_t weight_bytes_ = 0;
  size_t weight_bytes_per_token_ = 0;
  std::vector<KVScales> kv_scales_;
};

// One parameter tensor as Hugging Face names it.
struct ParamSpec {
  std::string name;
  Shape shape;
};

struct Architecture {
  std::string name;  // e.g. "LlamaForCausalLM"
  // Every parameter the transformers class has for this config (names and shapes).
  std::function<std::vector<ParamSpec>(const ModelConfig&)> parameters;
  std::function<std::unique_ptr<CausalLM>(const ModelConfig&, const WeightStore&, Backend&)> create;
  // Per layer: its attention's sliding window in tokens (0 = full attention), from the config
  // alone. Unset: every layer attends to the whole sequence. Read through layer_sliding_windows().
  std::function<std::vector<int64_t>(const ModelConfig&)> layer_sliding_windows;
  // How every checkpoint tensor splits over tensor-parallel ranks, by name (tensors not named are
  // whole on every rank). Unset: the family does not run with --tensor-parallel-size > 1.
  std::function<std::map<std::string, ShardRule>(const ModelConfig&)> shard_rules;
};

// The architecture named by config.architecture; an unsupported one is an error listing the supported.
const Architecture& find_architecture(const std::string& name);
std::vector<std::string> supported_architectures();
// Per layer of the model `config` describes: its sliding window in tokens, 0 for full attention.
// The KV cache groups layers by it (kv_cache/kv_cache_layout.h).
std::vector<int64_t> layer_sliding_windows(const ModelConfig& config);

// Loads the model of a folder (config.json + safetensors) onto the backend.
std::unique_ptr<CausalLM> load_model(const std::string& dir, const ModelConfig& config, Backend& backend);
// The model of `config` from any store of its tensors (a folder's, or recipe_weight_store()'s).
// With an FP8 KV cache (backend.fp8_kv_cache()), the model also gets the checkpoint's KV scales.
std::unique_ptr<CausalLM> load_model(const WeightStore& store, const ModelConfig& config, Backend& backend);

// Per layer, the scales of an FP8 KV cache as vLLM reads them from a checkpoint, under
// model.layers.<i>.self_attn.: k_scale / v_scale (also under attn.), ModelOpt's k_proj.k_scale /
// v_proj.v_scale, compressed-tensors' k_proj.output_scale / v_proj.output_scale, or the older
// kv_scale (both). One of the two alone serves for both (vLLM's rule); none: 1, vLLM's default.
// Each is a single positive finite number (shape [] or [1]); anything else is an error naming it.
std::vector<KVScales> read_kv_scales(const WeightStore& store, const ModelConfig& config);

}  // namespace vllm
