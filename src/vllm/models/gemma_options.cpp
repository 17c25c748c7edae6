#include "vllm/models/gemma_options.h"

#include <cmath>

#include "vllm/core/error.h"

namespace vllm {

double gemma_number(const ModelConfig& c, const std::string& key, double dflt) {
  const auto it = c.raw.find(key);
  if (it == c.raw.end() || it->is_null()) return dflt;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0)
    throw Error("config.json: key '" + key + "' must be a positive number, not " + it->dump(), ErrorKind::kModelLoad);
  return it->get<double>();
}

int64_t gemma_integer(const ModelConfig& c, const std::string& key, int64_t dflt) {
  const auto it = c.raw.find(key);
  if (it == c.raw.end() || it->is_null()) return dflt;
  if (!it->is_number_integer() || it->get<int64_t>() <= 0)
    throw Error("config.json: key '" + key + "' must be a positive integer, not " + it->dump(), ErrorKind::kModelLoad);
  return it->get<int64_t>();
}

LlamaLikeOptions gemma_options(const ModelConfig& c) {
  LlamaLikeOptions o;
  o.qkv_bias = o.o_bias = c.attention_bias;
  o.norm_plus_one = true;
  o.sandwich_norms = true;
  o.scale_embeddings = true;
  o.attention_scale = 1.0 / std::sqrt(gemma_number(c, "query_pre_attn_scalar", 256.0));
  o.attn_logit_softcap = static_cast<float>(gemma_number(c, "attn_logit_softcapping", 0.0));
  o.final_logit_softcap = static_cast<float>(gemma_number(c, "final_logit_softcapping", 0.0));
  return o;
}

}  // namespace vllm
