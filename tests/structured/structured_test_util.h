// Shared helpers for the structured-output tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "brute_mask.h"
#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/grammar.h"
#include "vllm/structured/matcher.h"
#include "vllm/structured/token_vocabulary.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::structured::test {

// Whether `gbnf` matches all of `s` (bytes only).
inline bool matches(const std::string& gbnf, std::string_view s) {
  GrammarMatcher m(CompiledGrammar::from_gbnf(gbnf, nullptr));
  return m.accept_bytes(s) && m.can_terminate();
}

// Whether `s` is a prefix of something `gbnf` matches.
inline bool viable(const std::string& gbnf, std::string_view s) {
  GrammarMatcher m(CompiledGrammar::from_gbnf(gbnf, nullptr));
  return m.accept_bytes(s);
}

// The GrammarError that parsing `gbnf` throws ("" reason and line 0 when it parses).
struct ParseFailure {
  int line = 0, column = 0;
  std::string reason, what;
};
inline ParseFailure parse_failure(const std::string& gbnf) {
  try {
    CompiledGrammar::from_gbnf(gbnf, nullptr);
  } catch (const GrammarError& e) {
    return {e.line(), e.column(), e.reason(), e.what()};
  }
  return {};
}

inline std::string data_dir() {
  if (const char* env = std::getenv("VLLM_TEST_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return VLLM_TEST_DATA_DIR;
}

inline const std::vector<std::string>& reference_tokenizers() {
  static const std::vector<std::string> names = {"tiny-phi", "tiny-llama2", "tiny-llama3", "tiny-qwen3", "tiny-qwen2"};
  return names;
}

// The tokenizer and its vocabulary, loaded once per process.
struct LoadedTokenizer {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const TokenVocabulary> vocab;
};
inline const LoadedTokenizer& load_tokenizer(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, LoadedTokenizer> cache;
  std::lock_guard<std::mutex> lock(mu);
  LoadedTokenizer& slot = cache[name];
  if (!slot.tokenizer) {
    // Tokenizer files from tests/data/tokenizers, tokenizer_config.json (EOS, specials) from
    // tests/data/models, as the tokenizer tests load them.
    slot.tokenizer = Tokenizer::from_folders(data_dir() + "/tokenizers/" + name, data_dir() + "/models/" + name);
    slot.vocab = TokenVocabulary::from_tokenizer(*slot.tokenizer);
  }
  return slot;
}

inline bool bit(const std::vector<uint32_t>& mask, int32_t id) {
  return (mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
}

}  // namespace vllm::structured::test
