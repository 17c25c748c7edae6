// Qwen2ForCausalLM: Llama's network with biases on the q/k/v projections (always, whatever
// attention_bias says, as in transformers).
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

std::vector<Architecture> qwen2_architectures() {
  static const LlamaLikeOptions kQwen2 = [] {
    LlamaLikeOptions o;
    o.qkv_bias = true;
    return o;
  }();
  return {{"Qwen2ForCausalLM", [](const ModelConfig& c) { return llama_like_parameters(c, kQwen2); },
           [](const ModelConfig& c, const WeightStore& s, Backend& b) { return create_llama_like(c, s, b, kQwen2); }}};
}

}  // namespace vllm
