// How a transformers model maps onto GGUF as llama.cpp's convert_hf_to_gguf.py writes it, both
// ways: architecture names, hyperparameter metadata, tensor names, and the llama architecture's
// row permutation of the query and key projections.
//
// Architectures: LlamaForCausalLM / MistralForCausalLM <-> "llama", Qwen2ForCausalLM <-> "qwen2",
// Qwen3ForCausalLM <-> "qwen3", PhiForCausalLM <-> "phi2".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vllm/config/model_config.h"
#include "vllm/gguf/gguf_file.h"
#include "vllm/gguf/gguf_writer.h"

namespace vllm::gguf {

// "llama" for "LlamaForCausalLM", ...; an architecture without a mapping is a vllm::Error
// (kUnsupported) listing those that have one.
std::string gguf_architecture(const std::string& hf_architecture);
// "LlamaForCausalLM" for "llama", ...; unknown names are a vllm::Error (kUnsupported).
std::string hf_architecture(const std::string& gguf_architecture);

// The GGUF name of a transformers parameter: "model.layers.3.self_attn.q_proj.weight" ->
// "blk.3.attn_q.weight", "model.embed_tokens.weight" -> "token_embd.weight", ... A name without a
// GGUF counterpart is a vllm::Error (kUnsupported) naming it.
std::string gguf_tensor_name(const std::string& hf_name);

// The llama architecture stores q_proj and k_proj (weights and biases) with the rows of each head
// reordered from transformers' "rotate half" arrangement to llama.cpp's interleaved pairs
// (convert_hf_to_gguf's LlamaModel.permute). Returns the head count of that permutation for a
// parameter (num_attention_heads for q_proj, num_key_value_heads for k_proj), or 0 when the
// parameter is stored as is.
int64_t permutation_heads(const std::string& gguf_arch, const std::string& hf_name, const ModelConfig& c);
// Row r of the permuted (GGUF) tensor holds row permuted_source_row(r, ...) of the transformers
// one: within a head of hd = rows / heads rows, GGUF row 2i + s is transformers row s * hd / 2 + i.
int64_t permuted_source_row(int64_t gguf_row, int64_t rows, int64_t heads);

// general.architecture and the <arch>.* hyperparameters of a config.
void write_model_metadata(GgufWriter& w, const ModelConfig& c);
// Tensors convert_hf_to_gguf adds beyond the checkpoint's: rope_freqs.weight (the per-frequency
// divisors of llama3 rope scaling). Float32 values by GGUF name.
std::vector<std::pair<std::string, std::vector<float>>> extra_tensors(const ModelConfig& c);

// The config.json (transformers' keys) that a GGUF file's metadata and tensors describe.
nlohmann::json config_json(const GgufFile& f);
// The ModelConfig of a GGUF file: config_json() read by ModelConfig::from_json, plus the
// rope_freqs factors when the file has them. Errors name the file.
ModelConfig model_config(const GgufFile& f);

}  // namespace vllm::gguf
