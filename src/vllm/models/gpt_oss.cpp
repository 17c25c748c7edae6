// GptOssForCausalLM: Llama's network with q/k/v/o biases, attention sinks (one learned logit per
// query head in the softmax's denominator), a sliding window on every other layer (layer_types,
// else layers 0, 2, ...), yarn rope, and a mixture of experts in every layer: a router with a
// bias, the top-k of its logits softmaxed (the same weights as a softmax over all experts
// renormalised over the top k), and experts in GPT-OSS's checkpoint layout with biases and a
// clamped SwiGLU (swiglu_limit; alpha 1.702; (up + 1) * gate * sigmoid(alpha * gate)).
#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {

int64_t positive(const ModelConfig& c, const char* key, const char* alt = nullptr) {
  const char* k = c.raw.contains(key) || !alt ? key : alt;
  if (!c.raw.contains(k) || !c.raw.at(k).is_number_integer() || c.raw.at(k).get<int64_t>() <= 0)
    throw Error("config.json: key '" + std::string(key) + "' must be a positive integer for " + c.architecture,
                ErrorKind::kModelLoad);
  return c.raw.at(k).get<int64_t>();
}

LlamaLikeOptions gpt_oss_options(const ModelConfig& c) {
  LlamaLikeOptions o;
  o.qkv_bias = o.o_bias = c.attention_bias;
  o.attention_sinks = true;
  o.sliding_layers = sliding_layer_pattern(c, 2);
  o.sliding_window = sliding_window_size(c);
  o.moe.num_experts = positive(c, "num_local_experts");
  o.moe.top_k = positive(c, "num_experts_per_tok", "experts_per_token");
  o.moe.intermediate_size = c.intermediate_size;
  o.moe.renormalize = true;
  o.moe.gpt_oss_layout = true;
  double limit = 7.0;  // transformers' default
  if (auto it = c.raw.find("swiglu_limit"); it != c.raw.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0))
      throw Error("config.json: key 'swiglu_limit' must be a positive number, not " + it->dump(), ErrorKind::kModelLoad);
    limit = it->get<double>();
  }
  o.moe.swiglu_limit = static_cast<float>(limit);
  if (o.moe.top_k > o.moe.num_experts)
    throw Error("config.json: num_experts_per_tok exceeds num_local_experts", ErrorKind::kModelLoad);
  return o;
}

}  // namespace

std::vector<Architecture> gpt_oss_architectures() {
  return {llama_like_architecture("GptOssForCausalLM", gpt_oss_options)};
}

}  // namespace vllm
