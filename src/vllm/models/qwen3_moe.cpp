// Qwen3MoeForCausalLM: Qwen3's attention (q/k RMSNorm per head) with a mixture of SwiGLU experts
// (num_experts, num_experts_per_tok, moe_intermediate_size; top-k weights renormalised when
// norm_topk_prob) in every decoder_sparse_step-th layer not listed in mlp_only_layers; the others
// keep a dense MLP of intermediate_size. Experts in transformers 5's fused layout or the Hub's
// per-expert one (mlp.experts.<e>.{gate_proj, up_proj, down_proj}).
#include <algorithm>

#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {

int64_t integer(const ModelConfig& c, const char* key, int64_t dflt) {
  if (!c.raw.contains(key) || c.raw.at(key).is_null()) return dflt;
  if (!c.raw.at(key).is_number_integer() || c.raw.at(key).get<int64_t>() < 0)
    throw Error("config.json: key '" + std::string(key) + "' must be a non-negative integer", ErrorKind::kModelLoad);
  return c.raw.at(key).get<int64_t>();
}

LlamaLikeOptions qwen3_moe_options(const ModelConfig& c) {
  LlamaLikeOptions o;
  o.qkv_bias = o.o_bias = c.attention_bias;
  o.qk_norm = true;
  o.moe.num_experts = integer(c, "num_experts", 128);
  o.moe.top_k = integer(c, "num_experts_per_tok", 8);
  o.moe.intermediate_size = integer(c, "moe_intermediate_size", 768);
  o.moe.renormalize = c.raw.value("norm_topk_prob", false);
  const int64_t step = integer(c, "decoder_sparse_step", 1);
  std::vector<int64_t> mlp_only;
  if (c.raw.contains("mlp_only_layers") && c.raw.at("mlp_only_layers").is_array())
    for (const auto& v : c.raw.at("mlp_only_layers")) mlp_only.push_back(v.get<int64_t>());
  // transformers: a layer is sparse if not in mlp_only_layers and (layer + 1) % step == 0.
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    if (std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end() || step <= 0 || (i + 1) % step != 0)
      o.moe.dense_layers.push_back(i);
  if (o.moe.num_experts > 0 && (o.moe.top_k < 1 || o.moe.top_k > o.moe.num_experts || o.moe.intermediate_size < 1))
    throw Error("config.json: num_experts_per_tok must be in [1, num_experts] and moe_intermediate_size positive",
                ErrorKind::kModelLoad);
  return o;
}

}  // namespace

std::vector<Architecture> qwen3_moe_architectures() {
  return {llama_like_architecture("Qwen3MoeForCausalLM", qwen3_moe_options)};
}

}  // namespace vllm
