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

Architecture llama_architecture(const std::string& name) {
  return {name, [](const ModelConfig& c) { return llama_like_parameters(c, llama_options(c)); },
          [](const ModelConfig& c, const WeightStore& s, Backend& b) {
            return create_llama_like(c, s, b, llama_options(c));
          }};
}

}  // namespace

std::vector<Architecture> llama_architectures() {
  return {llama_architecture("LlamaForCausalLM"), llama_architecture("MistralForCausalLM")};
}

}  // namespace vllm
