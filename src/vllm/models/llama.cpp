// LlamaForCausalLM and MistralForCausalLM (the same network; Mistral's sliding window is not
// used by its released configs for contexts this engine serves).
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {
namespace {

LlamaLikeOptions llama_options(const ModelConfig& c) {
  LlamaLikeOptions o;
  o.qkv_bias = o.o_bias = c.attention_bias;
  o.mlp_bias = c.mlp_bias;
  return o;
}

}  // namespace

std::vector<Architecture> llama_architectures() {
  return {llama_like_architecture("LlamaForCausalLM", llama_options),
          llama_like_architecture("MistralForCausalLM", llama_options)};
}

}  // namespace vllm
