// The pre-norm decoder shared by Llama, Mistral, Qwen2, Qwen3, Phi-3, Mixtral, Qwen3-MoE, Gemma 2,
// Gemma 3 and GPT-OSS: RMSNorm, rotary attention with grouped KV heads, a gated MLP or a mixture
// of gated experts. The family files differ only in the options below; the checkpoint names of
// every tensor come from one table (llama_like_layer), read by the loader and by the weight tool
// alike.
#pragma once

#include <optional>

#include "vllm/models/layers.h"

namespace vllm {

// Mixture-of-experts MLPs (Mixtral, Qwen3-MoE, GPT-OSS).
struct MoeOptions {
  int64_t num_experts = 0;        // 0: a dense MLP in every layer
  int64_t top_k = 0;              // experts per token
  int64_t intermediate_size = 0;  // of each expert
  bool renormalize = true;        // top-k weights divided by their sum (Qwen3-MoE: norm_topk_prob)
  std::vector<int64_t> dense_layers;  // layers with a dense MLP instead (Qwen3-MoE's mlp_only_layers / sparse step)
  // GPT-OSS's checkpoint layout: mlp.router (with a bias), experts.gate_up_proj [E, H, 2I] with gate
  // and up interleaved column by column, down_proj [E, I, H], and a bias for each.
  bool gpt_oss_layout = false;
  float swiglu_limit = 0;  // > 0: GPT-OSS's clamped SwiGLU (ExpertOptions)
  bool sparse(int64_t layer) const;
  // The Hub's checkpoints store each expert as its own three matrices (transformers 4's layout),
  // under these names relative to the layer; transformers 5 and our weight tool write them fused
  // (mlp.experts.gate_up_proj / down_proj). The loader reads whichever the checkpoint has.
  struct PerExpertNames {
    std::string router = "mlp.gate.weight";
    std::string expert_prefix = "mlp.experts.";  // + "<e>." + gate/up/down + ".weight"
    std::string gate = "gate_proj", up = "up_proj", down = "down_proj";
  } per_expert;
};

struct LlamaLikeOptions {
  bool qkv_bias = false;  // Qwen2: q/k/v projections carry biases
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;        // Qwen3: RMSNorm on each query and key head before rotary
  bool fused_qkv = false;      // Phi-3: one self_attn.qkv_proj instead of q/k/v_proj
  bool fused_gate_up = false;  // Phi-3: one mlp.gate_up_proj instead of gate/up_proj
  MoeOptions moe;

  // Gemma: every RMSNorm scales by (1 + w); "sandwich" norms: post_attention_layernorm and
  // post_feedforward_layernorm normalise each branch's output before it joins the residual, and
  // pre_feedforward_layernorm is the MLP's input norm; embeddings are multiplied by
  // sqrt(hidden_size) rounded to the embedding table's dtype.
  bool norm_plus_one = false;
  bool sandwich_norms = false;
  bool scale_embeddings = false;
  // 0: head_dim^-0.5. Gemma: query_pre_attn_scalar^-0.5.
  double attention_scale = 0;
  // Gemma 2: tanh soft-capping of attention scores and of the final logits (0: none).
  float attn_logit_softcap = 0;
  float final_logit_softcap = 0;
  // Per layer: true where the layer attends through a sliding window of `sliding_window` tokens
  // (empty: no layer does). Gemma 3's sliding layers have their own rope (`sliding_rope`).
  std::vector<bool> sliding_layers;
  int64_t sliding_window = 0;
  std::optional<RopeConfig> sliding_rope;
  bool attention_sinks = false;  // GPT-OSS: self_attn.sinks, one learned logit per query head
  bool sliding(int64_t layer) const;
};

// The checkpoint tensors of one layer, grouped by the backend weight they load into (a group of
// several is concatenated along rows: q, k, v into one QKV matrix). Empty groups are absent.
struct LlamaLikeLayerTensors {
  // input_norm: before attention; post_norm: before the MLP (Llama's post_attention_layernorm,
  // Gemma's pre_feedforward_layernorm); attn_out_norm / mlp_out_norm: Gemma's sandwich norms.
  std::vector<ParamSpec> input_norm, post_norm, attn_out_norm, mlp_out_norm;
  std::vector<ParamSpec> qkv, qkv_bias, o, o_bias, q_norm, k_norm, sinks;
  std::vector<ParamSpec> gate_up, gate_up_bias, down, down_bias;  // dense MLP
  // MoE: router [E, H]; experts [E, 2I, H] and [E, H, I], or in GPT-OSS's layout [E, H, 2I]
  // (interleaved) and [E, I, H], with biases [E, 2I] and [E, H].
  std::vector<ParamSpec> router, router_bias, experts_gate_up, experts_down, experts_gate_up_bias, experts_down_bias;
  // The same experts in the per-expert layout: gate_0, up_0, gate_1, up_1, ... ([I, H] each) and
  // down_0, down_1, ... ([H, I] each). Not part of the parameter list (the weight tool writes fused).
  std::vector<ParamSpec> per_expert_router, per_expert_gate_up, per_expert_down;
};
LlamaLikeLayerTensors llama_like_layer(const ModelConfig& c, const LlamaLikeOptions& o, int64_t layer);

// Which layers slide: the config's layer_types ("sliding_attention" / "full_attention") if given,
// else every layer i with (i + 1) % pattern != 0 (transformers' default for Gemma 2 and GPT-OSS,
// pattern 2, and Gemma 3's sliding_window_pattern). Checks the names and the count.
std::vector<bool> sliding_layer_pattern(const ModelConfig& c, int64_t pattern);
// The config's sliding_window, which must be a positive integer.
int64_t sliding_window_size(const ModelConfig& c);

std::vector<ParamSpec> llama_like_parameters(const ModelConfig& c, const LlamaLikeOptions& o);
// How each tensor of the table splits over tensor-parallel ranks (distributed/tensor_shard.h).
std::map<std::string, ShardRule> llama_like_shard_rules(const ModelConfig& c, const LlamaLikeOptions& o);
// The registry entry of a llama-like family: its parameters and its model, both from the options
// that `options` reads from config.json.
using LlamaLikeOptionsFn = LlamaLikeOptions (*)(const ModelConfig&);
Architecture llama_like_architecture(const std::string& name, LlamaLikeOptionsFn options);
std::unique_ptr<CausalLM> create_llama_like(const ModelConfig& c, const WeightStore& store, Backend& backend,
                                            const LlamaLikeOptions& o);

}  // namespace vllm
