// The pre-norm decoder shared by Llama, Mistral, Qwen2, Qwen3, Phi-3, Mixtral and Qwen3-MoE:
// RMSNorm, rotary attention with grouped KV heads, a SwiGLU MLP or a mixture of SwiGLU experts.
// The family files differ only in the options below; the checkpoint names of every tensor come
// from one table (llama_like_layer), read by the loader and by the weight tool alike.
#pragma once

#include "vllm/models/layers.h"

namespace vllm {

// Mixture-of-experts MLPs (Mixtral, Qwen3-MoE).
struct MoeOptions {
  int64_t num_experts = 0;        // 0: a dense MLP in every layer
  int64_t top_k = 0;              // experts per token
  int64_t intermediate_size = 0;  // of each expert
  bool renormalize = true;        // top-k weights divided by their sum (Qwen3-MoE: norm_topk_prob)
  std::vector<int64_t> dense_layers;  // layers with a dense MLP instead (Qwen3-MoE's mlp_only_layers / sparse step)
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
};

// The checkpoint tensors of one layer, grouped by the backend weight they load into (a group of
// several is concatenated along rows: q, k, v into one QKV matrix). Empty groups are absent.
struct LlamaLikeLayerTensors {
  std::vector<ParamSpec> input_norm, post_norm;
  std::vector<ParamSpec> qkv, qkv_bias, o, o_bias, q_norm, k_norm;
  std::vector<ParamSpec> gate_up, gate_up_bias, down, down_bias;  // dense MLP
  std::vector<ParamSpec> router, experts_gate_up, experts_down;   // MoE: [E, H], [E, 2I, H], [E, H, I]
  // The same experts in the per-expert layout: gate_0, up_0, gate_1, up_1, ... ([I, H] each) and
  // down_0, down_1, ... ([H, I] each). Not part of the parameter list (the weight tool writes fused).
  std::vector<ParamSpec> per_expert_router, per_expert_gate_up, per_expert_down;
};
LlamaLikeLayerTensors llama_like_layer(const ModelConfig& c, const LlamaLikeOptions& o, int64_t layer);

std::vector<ParamSpec> llama_like_parameters(const ModelConfig& c, const LlamaLikeOptions& o);
// The registry entry of a llama-like family: its parameters and its model, both from the options
// that `options` reads from config.json.
using LlamaLikeOptionsFn = LlamaLikeOptions (*)(const ModelConfig&);
Architecture llama_like_architecture(const std::string& name, LlamaLikeOptionsFn options);
std::unique_ptr<CausalLM> create_llama_like(const ModelConfig& c, const WeightStore& store, Backend& backend,
                                            const LlamaLikeOptions& o);

}  // namespace vllm
