// A tokenizer in GGUF metadata (tokenizer.ggml.*), as llama.cpp's converter writes it for byte-level
// BPE tokenizers (model "gpt2"): the token strings by id, their types, the merges, the special
// token ids and the chat template.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "vllm/config/model_config.h"
#include "vllm/gguf/gguf_file.h"
#include "vllm/gguf/gguf_writer.h"

namespace vllm::gguf {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct TokenizerSource {
  std::string dir;               // tokenizer.json, or vocab.json + merges.txt (GPT-2 style)
  std::string config_path;       // tokenizer_config.json; empty: DIR/tokenizer_config.json if present
  std::string pre;               // tokenizer.ggml.pre; empty: recognised from the pre-tokenizer
};

// Writes tokenizer.ggml.* and tokenizer.chat_template for the model config `c` (its vocab_size:
// ids the tokenizer does not use become "[PAD<id>]" tokens of type UNUSED, as the converter
// writes them; its bos/eos ids when the tokenizer config names none). Only byte-level BPE
// tokenizers are supported; others are a vllm::Error (kUnsupported) saying so.
void write_tokenizer_metadata(GgufWriter& w, const TokenizerSource& src, const ModelConfig& c);

// Whether the file carries a tokenizer (tokenizer.ggml.model).
bool has_tokenizer(const GgufFile& f);
// The tokenizer.json document equivalent to a GGUF's tokenizer metadata (model "gpt2" with a
// pre-tokenizer llama.cpp names llama-bpe, qwen2, gpt-2 or phi-2): byte-level BPE over the tokens
// and merges, CONTROL and USER_DEFINED tokens as added tokens (special and not), a BOS added in
// front when tokenizer.ggml.add_bos_token says so. Other tokenizer models are a vllm::Error
// (kUnsupported) that says to pass --tokenizer.
nlohmann::json tokenizer_json(const GgufFile& f);
// The matching tokenizer_config.json: bos/eos tokens, add_bos_token, chat template.
nlohmann::json tokenizer_config_json(const GgufFile& f);

}  // namespace vllm::gguf
