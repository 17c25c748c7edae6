// config.json and generation_config.json as a model folder holds them (read before anything
// else of a model, from wherever it came). A config that is accepted must hold sizes the
// engine can compute with; an accepted quantization_config, at least one scheme with positive
// block sizes and ignore patterns that match without throwing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "vllm/config/model_config.h"
#include "vllm/core/error.h"
#include "vllm/loader/quantization_config.h"

using namespace vllm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  try {
    const ModelConfig c = ModelConfig::from_json(j);
    FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0);
    FUZZ_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.head_dim > 0);
    FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0);
    FUZZ_CHECK(c.max_position_embeddings > 0);
    FUZZ_CHECK(c.rotary_dim() > 0 && c.rotary_dim() <= c.head_dim && c.rotary_dim() % 2 == 0);
    FUZZ_CHECK(c.rope.theta > 0 && c.norm_eps > 0);
  } catch (const Error&) {
  }
  try {
    if (const auto q = parse_quantization_config(j, "config.json")) {
      FUZZ_CHECK(!q->schemes.empty());
      for (const Fp8Scheme& s : q->schemes) FUZZ_CHECK(s.weights.block_rows > 0 && s.weights.block_cols > 0);
      (void)q->ignored("model.layers.0.mlp.gate");
      (void)q->scheme_for("model.layers.0.self_attn.q_proj");
    }
    (void)resolve_quantization(j, "fp8", "config.json");
  } catch (const Error&) {
  }
  try {
    (void)GenerationConfig::from_json(j);
  } catch (const Error&) {
  }
  return 0;
}
