// Gemma3ForCausalLM (the text model, model_type gemma3_text): Gemma 2's network (gemma_options.h)
// with (1 + w) RMSNorms on each query and key head, and interleaved local and global layers: the
// local ones (every layer but each sliding_window_pattern-th, or as layer_types says) attend
// through a sliding window with their own rope (rope_local_base_freq, no scaling), the global ones
// see everything with rope_theta and rope_scaling. Soft-capping only if the config asks for it.
#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/gemma_options.h"
#include "vllm/models/llama_like.h"

namespace vllm {

namespace {
LlamaLikeOptions gemma3_options(const ModelConfig& c) {
  if (auto it = c.raw.find("use_bidirectional_attention"); it != c.raw.end() && !it->is_null()) {
    if (!it->is_boolean())
      throw Error("config.json: key 'use_bidirectional_attention' must be true or false, not " + it->dump(),
                  ErrorKind::kModelLoad);
    if (it->get<bool>())
      throw Error("config.json: use_bidirectional_attention is not supported for Gemma3ForCausalLM",
                  ErrorKind::kUnsupported);
  }
  LlamaLikeOptions o = gemma_options(c);
  o.qk_norm = true;
  o.sliding_layers = sliding_layer_pattern(c, gemma_integer(c, "sliding_window_pattern", 6));
  o.sliding_window = sliding_window_size(c);
  // transformers v5 configs key rope_parameters by layer type; v4 ones give the local base alone.
  if (auto it = c.layer_type_rope.find("sliding_attention"); it != c.layer_type_rope.end()) {
    o.sliding_rope = it->second;
  } else {
    RopeConfig local;
    local.theta = gemma_number(c, "rope_local_base_freq", 10000.0);
    o.sliding_rope = local;
  }
  return o;
}
}  // namespace

std::vector<Architecture> gemma3_architectures() {
  return {llama_like_architecture("Gemma3ForCausalLM", gemma3_options)};
}

}  // namespace vllm
