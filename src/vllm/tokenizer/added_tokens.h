// Added tokens (special and normal) and how they are cut out of the input before normalization
// and pre-tokenization (internal header).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/vocab.h"

namespace vllm::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;       // absorb the whitespace on its left
  bool rstrip = false;       // absorb the whitespace on its right
  bool normalized = true;    // match against the normalized text (else against the raw input)
  bool single_word = false;  // only match when not inside a word
};

class AddedVocabulary {
 public:
  // Adds a token, or replaces the one with the same content (keeping its id when t.id < 0).
  void add(AddedToken t);
  // Builds the matchers; normalized tokens are matched in their normalized form.
  void build(const Normalizer* normalizer);

  const AddedToken* by_id(int32_t id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &tokens_[it->second];
  }
  const AddedToken* by_content(std::string_view content) const {
    auto it = by_content_.find(content);
    return it == by_content_.end() ? nullptr : &tokens_[it->second];
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  int32_t max_id() const;
  bool has_raw() const { return !raw_.nodes.empty() && raw_.any; }
  bool has_normalized() const { return !norm_.nodes.empty() && norm_.any; }

  struct Span {
    size_t begin, end;
    int32_t id;  // -1: text between added tokens
  };
  // Splits `text` into added tokens and the (non-empty) text between them, like the
  // `tokenizers` AddedVocabulary: leftmost-longest matching, then single_word / lstrip / rstrip.
  // `normalized` selects the set of tokens matched against normalized text.
  void split(std::string_view text, bool normalized, std::vector<Span>& out) const;

 private:
  // A byte trie over token contents; leftmost-longest search starts only where a token can begin.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> next;
      int32_t token = -1;  // index into tokens_
    };
    std::vector<Node> nodes;
    std::array<bool, 256> first{};
    bool any = false;
    void insert(std::string_view key, int32_t token);
    // Longest token starting at text[pos]: its end and index, or token -1.
    int32_t longest_at(std::string_view text, size_t pos, size_t* end) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  StringMap<size_t> by_content_;
  Trie raw_, norm_;
};

}  // namespace vllm::tok
