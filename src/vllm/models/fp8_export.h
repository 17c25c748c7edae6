// Writing FP8 checkpoints from the recipe weights, as llm-compressor (compressed-tensors) and the
// native fp8 method (DeepSeek / Qwen3-FP8) lay them out. Used by vllm-make-model --quantize fp8*
// to make test models, and by the FP8 tests.
#pragma once

#include <optional>
#include <string>

#include "vllm/core/dtype.h"

namespace vllm {

// Schemes (--quantize):
//   fp8          compressed-tensors float-quantized, per-tensor weight scales, dynamic per-token
//                activations (llm-compressor's FP8_DYNAMIC, with strategy "tensor" weights);
//   fp8-channel  the same with per-channel (per output row) weight scales (FP8_DYNAMIC proper);
//   fp8-block    the native fp8 method with 128x128 block scales (<module>.weight_scale_inv).
// Every linear layer's weight is quantized except the LM head and MoE routers
// (fp8_leaves_unquantized), which the config's ignore list names; embeddings, norms and biases
// stay float. Fused MoE expert tensors are written per expert (<layer>.mlp.experts.<e>.gate_proj
// etc., Mixtral's block_sparse_moe.experts.<e>.w1/w3/w2), as the Hub's FP8 MoE checkpoints are.
struct Fp8ExportOptions {
  std::string quantize = "fp8";
  // Precision of the recipe values before quantizing and of the tensors left float; default:
  // the config's torch_dtype, else bfloat16.
  std::optional<DType> dtype;
  uint64_t seed = 0;
  // If set, also writes there a plain float32 folder (same config, no quantization_config) holding
  // exactly the dequantized weights: what the engine computes with when it loads the FP8 folder.
  std::string dequantized_out;
};

// The schemes, for messages: "fp8, fp8-channel, fp8-block".
std::string fp8_export_schemes();
bool is_fp8_export_scheme(const std::string& scheme);

// Writes config.json (config_path's, plus its quantization_config) and model.safetensors into out_dir.
void write_recipe_fp8(const std::string& config_path, const std::string& out_dir, const Fp8ExportOptions& options);

}  // namespace vllm
