// The pre-norm decoder shared by Llama, Mistral, Qwen2 and Qwen3: RMSNorm, rotary attention with
// grouped KV heads, SwiGLU MLP. The family files differ only in the options below.
#pragma once

#include "vllm/models/layers.h"

namespace vllm {

struct LlamaLikeOptions {
  bool qkv_bias = false;  // Qwen2: q/k/v projections carry biases
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;   // Qwen3: RMSNorm on each query and key head before rotary
};

std::vector<ParamSpec> llama_like_parameters(const ModelConfig& c, const LlamaLikeOptions& o);
std::unique_ptr<CausalLM> create_llama_like(const ModelConfig& c, const WeightStore& store, Backend& backend,
                                            const LlamaLikeOptions& o);

}  // namespace vllm
