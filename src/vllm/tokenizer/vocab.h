// A model vocabulary: token string <-> id (internal header).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vllm/tokenizer/json_util.h"

namespace vllm::tok {

// Transparent hashing so that lookups take a string_view without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    // FNV-1a over 8-byte words: cheap for the short strings tokenizers look up.
    uint64_t h = 0xcbf29ce484222325ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0x100000001b3ull;
      h ^= h >> 29;
    }
    for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class Vocab {
 public:
  // Parses a {"token": id, ...} object.
  static Vocab from_json(const Json& obj, const JsonPath& where);
  void add(std::string token, int32_t id);

  std::optional<int32_t> find(std::string_view token) const {
    auto it = map_.find(token);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !present_[static_cast<size_t>(id)]) {
      return nullptr;
    }
    return &tokens_[static_cast<size_t>(id)];
  }
  int32_t max_id() const { return static_cast<int32_t>(tokens_.size()) - 1; }
  size_t size() const { return map_.size(); }

 private:
  StringMap<int32_t> map_;
  std::vector<std::string> tokens_;
  std::vector<uint8_t> present_;
};

}  // namespace vllm::tok
