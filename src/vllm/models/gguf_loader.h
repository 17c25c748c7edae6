// Loading a GGUF file as a model: its metadata gives the ModelConfig (gguf/gguf_model.h), its
// tensors are found under transformers' names (the llama architecture's q/k rows put back in
// transformers' order), float tensors are views of the mapped file, and matrices of quantized
// types stay in their GGUF blocks for the backend's quantized products.
#pragma once

#include <memory>
#include <string>

#include "vllm/gguf/gguf_file.h"
#include "vllm/models/model.h"

namespace vllm {

// Whether `path` is a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

// The weights of a GGUF file under transformers' parameter names for the model `c` (from
// gguf::model_config(f)). A missing tensor, a shape the config does not expect or a type this
// build cannot read is a vllm::Error (kModelLoad) naming the file and the GGUF tensor.
WeightStore gguf_weight_store(const gguf::GgufFile& f, const ModelConfig& c);

// The model of a GGUF file on the backend.
std::unique_ptr<CausalLM> load_gguf_model(const gguf::GgufFile& f, const ModelConfig& c, Backend& backend);

}  // namespace vllm
