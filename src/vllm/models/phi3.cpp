// Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4 mini): Llama's network with fused checkpoint tensors
// (self_attn.qkv_proj, mlp.gate_up_proj) and, in the long-context models, longrope scaling
// (layers.cpp; its attention factor scales the softmax, llama_like.cpp).
#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {
LlamaLikeOptions phi3_options(const ModelConfig& c) {
  if (c.partial_rotary_factor != 1.0)
    throw Error("config.json: partial_rotary_factor != 1 is not supported for Phi3ForCausalLM", ErrorKind::kUnsupported);
  if (c.raw.contains("sliding_window") && !c.raw.at("sliding_window").is_null() &&
      c.raw.at("sliding_window").get<int64_t>() < c.max_position_embeddings)
    throw Error("config.json: sliding_window is not supported yet for Phi3ForCausalLM", ErrorKind::kUnsupported);
  LlamaLikeOptions o;
  o.fused_qkv = o.fused_gate_up = true;
  return o;
}
}  // namespace

std::vector<Architecture> phi3_architectures() {
  return {llama_like_architecture("Phi3ForCausalLM", phi3_options)};
}

}  // namespace vllm
