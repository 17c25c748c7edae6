// A checkpoint's `quantization_config` (config.json) and vLLM's --quantization, resolved into what
// the weight loader must do: nothing, dequantize an FP8 checkpoint, or quantize online to FP8.
//
// Supported checkpoints (docs/quantization.md):
//   quant_method "compressed-tensors", format "float-quantized" (or "naive-quantized" with float8
//     weights): config_groups of 8-bit float, symmetric, static weights with strategy "tensor",
//     "channel" or "block"; input_activations null, dynamic ("token", "tensor", or "group" for
//     block weights) or static per-tensor (<module>.input_scale); an `ignore` list of exact
//     module names and "re:" regular expressions (Python's re.match: anchored at the start).
//   quant_method "fp8" (vLLM's native method): fmt "e4m3", activation_scheme "dynamic" or
//     "static", optional weight_block_size [rows, cols] (<module>.weight_scale_inv, which
//     multiplies), else per-tensor <module>.weight_scale; ignored_layers / modules_to_not_convert.
// Anything else is a vllm::Error naming the field and its value.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vllm/loader/fp8_weights.h"

namespace vllm {

namespace tok {
class Regex;
}

// How a quantized layer's activations are scaled (the GPU's FP8 GEMMs need it; the CPU, which
// multiplies by the dequantized weights, does not).
enum class Fp8ActivationScheme {
  kNone,                  // weight-only
  kDynamicPerToken,       // compressed-tensors strategy "token"
  kDynamicPerTensor,      // compressed-tensors dynamic "tensor"; native fp8 "dynamic" without blocks
  kDynamicPerTokenGroup,  // block weights: one scale per token per block_cols inputs
  kStaticPerTensor,       // <module>.input_scale
};

// One config group: the layers it targets and their scheme.
struct Fp8Scheme {
  std::vector<std::string> targets;  // "Linear", exact module names, "re:" patterns
  Fp8WeightLayout weights;
  Fp8ActivationScheme activations = Fp8ActivationScheme::kNone;
};

class Fp8CheckpointConfig {
 public:
  std::string method;  // "compressed-tensors" or "fp8"
  std::vector<Fp8Scheme> schemes;
  // The tensor that scales <module>.weight: "weight_scale", or "weight_scale_inv" for native block fp8.
  std::string weight_scale_suffix = "weight_scale";
  bool has_kv_cache_scheme = false;  // compressed-tensors kv_cache_scheme (k_scale / v_scale tensors)

  // Whether `module` (e.g. "model.layers.0.self_attn.q_proj") is left unquantized.
  bool ignored(const std::string& module) const;
  // The scheme that covers `module`, or null when no group targets it.
  const Fp8Scheme* scheme_for(const std::string& module) const;

  void add_ignore(const std::string& entry, const std::string& field);

 private:
  std::vector<std::string> ignore_exact_;
  std::vector<std::shared_ptr<const tok::Regex>> ignore_patterns_;
};

// Whether a pattern list entry ("re:..." or an exact name) matches `name`. Regular expressions are
// matched as Python's re.match: anchored at the start, not at the end.
bool quantization_target_matches(const std::string& entry, const std::string& name);

// The FP8 checkpoint config.json describes, or nullopt when it has no quantization_config.
// `source` names the file in errors; unsupported methods and values are ErrorKind::kUnsupported,
// malformed entries ErrorKind::kModelLoad.
std::optional<Fp8CheckpointConfig> parse_quantization_config(const nlohmann::json& config, const std::string& source);

// Whether vLLM's FP8 methods leave the layer of weight `name` in float: the LM head (and an
// embedding table used as one), and mixture-of-experts routers (modules named "gate" or "router",
// which vLLM's MoE models build without a quantization config). Online --quantization fp8 and
// vllm-make-model --quantize fp8* follow it.
bool fp8_leaves_unquantized(const std::string& weight_name);

// The quantization methods --quantization accepts, for messages: "fp8, compressed-tensors".
std::string supported_quantization_methods();

// vLLM's check of --quantization against the checkpoint: the checkpoint's quant_method when the
// flag is empty; the flag's method when the checkpoint has none ("fp8" only: online
// quantization); an error when both are given and differ, or the method is not supported.
// Returns "" for an unquantized model.
std::string resolve_quantization(const nlohmann::json& config, const std::string& requested, const std::string& source);

}  // namespace vllm
