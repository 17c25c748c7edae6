// What Gemma 2 and Gemma 3 share, as llama_like options (gemma2.cpp, gemma3.cpp).
#pragma once

#include <string>

#include "vllm/models/llama_like.h"

namespace vllm {

// (1 + w) RMSNorms, sandwich norms, embeddings scaled by sqrt(hidden_size), attention scale
// query_pre_attn_scalar^-0.5 (default 256, as transformers), attn_logit_softcapping and
// final_logit_softcapping where set, biases as attention_bias says.
LlamaLikeOptions gemma_options(const ModelConfig& c);

// config.json's positive number or integer `key`, or `dflt` when absent or null; anything else is
// an error naming the key.
double gemma_number(const ModelConfig& c, const std::string& key, double dflt);
int64_t gemma_integer(const ModelConfig& c, const std::string& key, int64_t dflt);

}  // namespace vllm
