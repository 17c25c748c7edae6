// Writing a model as a GGUF file the way llama.cpp's converter and llama-quantize would: GGUF
// metadata and tensor names (gguf/gguf_model.h), the llama architecture's q/k row permutation,
// tokenizer metadata, and per-tensor types by a quantization scheme. Used by vllm-make-model to
// write quantized test models from the recipe weights, and by tests.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "vllm/gguf/ggml_types.h"
#include "vllm/gguf/gguf_tokenizer.h"
#include "vllm/models/model.h"

namespace vllm {

// Quantization schemes (--quantize): f32, f16, bf16 (every matrix in that type), q8_0, q4_0,
// q4_k, q5_k, q6_k, and llama.cpp's mixes q4_k_m and q5_k_m. For every scheme vectors (norms,
// biases) stay float32. Block schemes other than q8_0 store the output matrix (the embedding when
// tied) as Q6_K, as llama-quantize does; the _m mixes also store attn_v and ffn_down as Q6_K in
// llama-quantize's "more bits" layers (the first and last eighth, and every third between).
// A matrix whose rows are not whole blocks of its type falls back to Q8_0 (rows of 32k), else F16
// (llama.cpp falls back to Q5_0 for k-quants, a type this project does not read).
struct GgufExportOptions {
  std::string quantize = "q8_0";
  // Precision of the recipe values before quantizing (what a checkpoint would store); default:
  // the config's torch_dtype, else bfloat16.
  std::optional<DType> dtype;
  uint64_t seed = 0;
  gguf::TokenizerSource tokenizer;  // dir empty: no tokenizer metadata
  std::string name;                 // general.name (optional)
};

// The GGUF type a scheme gives the tensor `gguf_name` of row-major `shape` in a model of `c`.
// An unknown scheme is a vllm::Error listing the schemes.
gguf::GgmlType gguf_tensor_type(const std::string& scheme, const std::string& gguf_name, const Shape& shape,
                                const ModelConfig& c);

// Writes the model `c` whose parameters `source` gives (in any float dtype, transformers' names
// and shapes) to a GGUF file.
using ParameterSource = std::function<Tensor(const ParamSpec&)>;
void write_model_gguf(const ModelConfig& c, const ParameterSource& source, const std::string& out_path,
                      const GgufExportOptions& opts);

// The recipe weights (tests/data/WEIGHTS.md) of the config at config_path, as a GGUF file.
void write_recipe_gguf(const std::string& config_path, const std::string& out_path, const GgufExportOptions& opts);

}  // namespace vllm
