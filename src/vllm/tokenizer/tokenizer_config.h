// tokenizer_config.json / special_tokens_map.json (internal header).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vllm/tokenizer/added_tokens.h"
#include "vllm/tokenizer/json_util.h"

namespace vllm::tok {

struct TokenizerConfig {
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::optional<bool> add_prefix_space;
  // Special tokens, as transformers adds them: plain strings become special tokens that are
  // neither normalized nor stripped.
  std::optional<AddedToken> bos, eos, unk, pad;
  std::vector<AddedToken> additional_special_tokens;
  std::vector<AddedToken> added_tokens_decoder;  // with their declared ids
  std::map<std::string, std::string> chat_templates;  // name -> template ("default")
  std::optional<int64_t> model_max_length;
  bool clean_up_tokenization_spaces = false;  // transformers' default since 4.45
  std::string tokenizer_class;
};

TokenizerConfig parse_tokenizer_config(const Json& j, const JsonPath& where);
// special_tokens_map.json: its entries override the ones of tokenizer_config.json, as in
// transformers' from_pretrained.
void apply_special_tokens_map(TokenizerConfig& config, const Json& j, const JsonPath& where);

}  // namespace vllm::tok
