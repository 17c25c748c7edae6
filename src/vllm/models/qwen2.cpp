// Qwen2ForCausalLM: Llama's network with biases on the q/k/v projections (always, whatever
// attention_bias says, as in transformers).
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {
LlamaLikeOptions qwen2_options(const ModelConfig&) {
  LlamaLikeOptions o;
  o.qkv_bias = true;
  return o;
}
}  // namespace

std::vector<Architecture> qwen2_architectures() { return {llama_like_architecture("Qwen2ForCausalLM", qwen2_options)}; }

}  // namespace vllm
