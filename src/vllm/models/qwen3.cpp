// Qwen3ForCausalLM: Llama's network with an RMSNorm on every query and key head before rotary,
// and an explicit head_dim that need not equal hidden_size / num_attention_heads.
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {
LlamaLikeOptions qwen3_options(const ModelConfig& c) {
  LlamaLikeOptions o;
  o.qkv_bias = o.o_bias = c.attention_bias;
  o.qk_norm = true;
  return o;
}
}  // namespace

std::vector<Architecture> qwen3_architectures() {
  return {llama_like_architecture("Qwen3ForCausalLM", qwen3_options)};
}

}  // namespace vllm
