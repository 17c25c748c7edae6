// Gemma2ForCausalLM: Llama's network with Gemma's (1 + w) RMSNorms, "sandwich" norms around both
// sublayers, embeddings scaled by sqrt(hidden_size), a GELU-tanh gated MLP, attention scaled by
// query_pre_attn_scalar^-0.5, tanh soft-capping of attention scores and final logits, and a
// sliding window on every other layer (layer_types, else layers 0, 2, 4, ...). Tied embeddings.
#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/gemma_options.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {
LlamaLikeOptions gemma2_options(const ModelConfig& c) {
  LlamaLikeOptions o = gemma_options(c);
  o.sliding_layers = sliding_layer_pattern(c, 2);
  o.sliding_window = sliding_window_size(c);
  return o;
}
}  // namespace

std::vector<Architecture> gemma2_architectures() {
  return {llama_like_architecture("Gemma2ForCausalLM", gemma2_options)};
}

}  // namespace vllm
