// Shared helpers for the tokenizer tests: where the test data lives and loading the seven
// reference tokenizers once per process.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "vllm/tokenizer/tokenizer.h"

namespace vllm::test {

inline const std::vector<std::string>& reference_models() {
  static const std::vector<std::string> models = {"tiny-phi", "tiny-llama2", "tiny-llama3", "tiny-qwen3",
                                                  "tiny-qwen2", "tiny-gemma3", "tiny-gptoss"};
  return models;
}

inline std::string data_dir() {
  if (const char* env = std::getenv("VLLM_TEST_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return VLLM_TEST_DATA_DIR;
}

inline std::string tokenizer_dir(const std::string& model) {
  return data_dir() + "/tokenizers/" + model;
}
inline std::string model_dir(const std::string& model) { return data_dir() + "/models/" + model; }

// Empty when the fetched tokenizer files are there; otherwise the message a test fails with.
inline std::string missing_data_message(const std::string& model) {
  const std::string dir = tokenizer_dir(model);
  std::error_code ec;
  const bool has_json = std::filesystem::is_regular_file(dir + "/tokenizer.json", ec);
  const bool has_gpt2 = std::filesystem::is_regular_file(dir + "/vocab.json", ec) &&
                        std::filesystem::is_regular_file(dir + "/merges.txt", ec);
  if (has_json || has_gpt2) return "";
  return "tokenizer test data for " + model + " is missing at " + dir +
         ": run scripts/fetch_tokenizers.sh";
}

// Loads (once) the tokenizer of a reference model: tokenizer files from tests/data/tokenizers,
// tokenizer_config.json from tests/data/models. Fails the calling test when the data is missing.
inline std::shared_ptr<const Tokenizer> load_reference(const std::string& model) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Tokenizer>> cache;
  const std::string missing = missing_data_message(model);
  if (!missing.empty()) {
    ADD_FAILURE() << missing;
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[model];
  // Gemma's large tokenizer_config.json is fetched with its tokenizer instead (fetch_tokenizers.sh).
  std::error_code ec;
  const bool own_config = std::filesystem::is_regular_file(model_dir(model) + "/tokenizer_config.json", ec);
  if (!slot) slot = Tokenizer::from_folders(tokenizer_dir(model), own_config ? model_dir(model) : tokenizer_dir(model));
  return slot;
}

inline nlohmann::json load_golden(const std::string& model) {
  std::ifstream in(model_dir(model) + "/golden.json");
  std::stringstream buf;
  buf << in.rdbuf();
  return nlohmann::json::parse(buf.str());
}

// Strict UTF-8 validation (no overlongs, surrogates or code points above U+10FFFF).
inline bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 2;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 3;
      cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += n;
  }
  return true;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace vllm::test
