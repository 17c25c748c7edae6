// A Hugging Face model's config.json and generation_config.json, read into the fields the
// engine uses. Accepts transformers v4 ("rope_theta", "rope_scaling") and v5 ("rope_parameters").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vllm/core/dtype.h"

namespace vllm {

struct RopeConfig {
  std::string type = "default";  // "default", "linear", "llama3", "longrope", "yarn"
  double theta = 10000.0;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
  // longrope (Phi-3): per-frequency divisors of inv_freq for contexts up to / beyond
  // original_max_position_embeddings (which Phi-3 keeps at the config's top level), and the
  // attention factor that scales cos and sin (from the config, else derived from the ratio
  // max_position_embeddings / original_max_position_embeddings as transformers does).
  std::vector<double> short_factor;
  std::vector<double> long_factor;
  // yarn (GPT-OSS): the band of dimensions blended between interpolation and extrapolation is
  // bounded by beta_fast / beta_slow rotations, rounded outwards when truncate. longrope and yarn
  // scale cos and sin by attention_factor.
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool truncate = true;
  double attention_factor = 1.0;
  // Per-frequency divisors of inv_freq given explicitly (a GGUF file's rope_freqs tensor, which is
  // how llama.cpp stores llama3 scaling); empty for a config.json.
  std::vector<double> freq_factors;
};

struct ModelConfig {
  std::string architecture;  // e.g. "PhiForCausalLM"
  std::string model_type;    // e.g. "phi"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  double partial_rotary_factor = 1.0;
  RopeConfig rope;
  // transformers v5 configs whose rope_parameters are keyed by layer type (Gemma 3:
  // "full_attention", "sliding_attention"); `rope` is then the full-attention layers'.
  std::map<std::string, RopeConfig> layer_type_rope;
  double norm_eps = 1e-5;  // rms_norm_eps or layer_norm_eps
  std::string hidden_act;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  int64_t max_position_embeddings = 2048;
  std::optional<DType> torch_dtype;
  std::vector<int32_t> eos_token_ids;  // from config.json; generation_config may add more
  std::optional<int32_t> bos_token_id;
  // vLLM's `quantization` as the user asked for it (--quantization; "" = the checkpoint's own
  // quantization_config, which stays in `raw`); the loader resolves the two
  // (loader/quantization_config.h).
  std::string quantization;
  nlohmann::json raw;

  int64_t rotary_dim() const { return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor); }

  // Reads DIR/config.json. Errors name the file, the key and the bad value; sizes must be
  // positive (and fit int32), heads must split evenly, rope and norm factors be positive.
  static ModelConfig from_folder(const std::string& dir);
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
};

struct GenerationConfig {
  std::vector<int32_t> eos_token_ids;
  std::optional<int32_t> bos_token_id;
  // Sampling defaults the model ships (temperature, top_p, top_k, repetition_penalty, ...),
  // applied to requests that leave those fields unset (vLLM's --generation-config auto).
  nlohmann::json sampling_defaults = nlohmann::json::object();

  // Reads DIR/generation_config.json if present (an absent file is an empty config).
  static GenerationConfig from_folder(const std::string& dir);
  static GenerationConfig from_json(const nlohmann::json& j, const std::string& source = "generation_config.json");
};

}  // namespace vllm
