// MixtralForCausalLM: Mistral's network with a mixture of SwiGLU experts in every layer
// (num_local_experts, num_experts_per_tok, softmax over the experts then the top-k renormalised).
// Experts in transformers 5's layout (mlp.gate, mlp.experts.{gate_up_proj, down_proj}) or the Hub's
// (block_sparse_moe.gate, block_sparse_moe.experts.<e>.{w1, w3, w2}: gate, up, down).
#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {

int64_t positive(const ModelConfig& c, const char* key) {
  if (!c.raw.contains(key) || !c.raw.at(key).is_number_integer() || c.raw.at(key).get<int64_t>() <= 0)
    throw Error("config.json: key '" + std::string(key) + "' must be a positive integer for " + c.architecture,
                ErrorKind::kModelLoad);
  return c.raw.at(key).get<int64_t>();
}

LlamaLikeOptions mixtral_options(const ModelConfig& c) {
  LlamaLikeOptions o;
  o.qkv_bias = o.o_bias = c.attention_bias;
  o.moe.num_experts = positive(c, "num_local_experts");
  o.moe.top_k = positive(c, "num_experts_per_tok");
  o.moe.intermediate_size = c.intermediate_size;
  o.moe.renormalize = true;
  o.moe.per_expert = {"block_sparse_moe.gate.weight", "block_sparse_moe.experts.", "w1", "w3", "w2"};
  if (o.moe.top_k > o.moe.num_experts)
    throw Error("config.json: num_experts_per_tok exceeds num_local_experts", ErrorKind::kModelLoad);
  return o;
}

}  // namespace

std::vector<Architecture> mixtral_architectures() {
  return {llama_like_architecture("MixtralForCausalLM", mixtral_options)};
}

}  // namespace vllm
