// The bytes every token contributes to decoded text, and a byte trie over them, built once per
// tokenizer and shared by every grammar compiled for it.
//
// Grammars match bytes; a token is allowed when its bytes can be read next. The bytes are the
// ones the token adds in the middle of a sequence (Tokenizer::token_bytes: byte-level BPE through
// GPT-2's byte map, SentencePiece's "▁" as a space and <0xNN> as that byte). Special tokens,
// tokens with no bytes and ids without a token are *unmatchable*: a grammar never allows them.
// The stop (EOS) ids are handled apart from the grammar: allowed exactly when it can terminate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vllm {
class Tokenizer;
}

namespace vllm::structured {

// A byte trie in depth-first preorder, in contiguous arrays: node 0 is the root (the empty
// string); node i's subtree is [i, next[i]); its first child, when it has one, is i + 1. Tokens
// are listed in trie order (`order`, which is byte-lexicographic order): node i's own tokens are
// order[first_token[i] .. first_token[i + 1]) and its subtree's tokens order[first_token[i] ..
// first_token[next[i]]). A walk over a subtree is a loop over an index range, skipping a dead
// branch is one jump.
struct TokenTrie {
  std::vector<uint8_t> byte;          // the byte leading into node i (unused for the root)
  std::vector<uint16_t> depth;        // length of node i's string
  std::vector<uint32_t> next;         // one past node i's subtree
  std::vector<uint16_t> max_below;    // the deepest node in node i's subtree (its longest token)
  std::vector<uint32_t> first_token;  // num_nodes() + 1 entries
  std::vector<int32_t> order;         // matchable token ids in trie order
  uint32_t num_nodes() const { return static_cast<uint32_t>(byte.size()); }
  bool has_children(uint32_t i) const { return i + 1 < next[i]; }
};

class TokenVocabulary {
 public:
  // From a tokenizer: bytes from Tokenizer::token_bytes, special tokens unmatchable, stop ids
  // the tokenizer's EOS token.
  static std::shared_ptr<const TokenVocabulary> from_tokenizer(const Tokenizer& tokenizer);
  // From a list of byte strings (token id = index), for tests and for callers with their own
  // vocabulary. `unmatchable` ids are never allowed by a grammar; `stop_ids` are the default
  // stop tokens.
  static std::shared_ptr<const TokenVocabulary> from_token_bytes(std::vector<std::string> token_bytes,
                                                                 const std::vector<int32_t>& unmatchable = {},
                                                                 std::vector<int32_t> stop_ids = {});

  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }
  // Mask words for this vocabulary: ceil(size / 32).
  size_t mask_words() const { return (static_cast<size_t>(size()) + 31) / 32; }
  std::string_view token_bytes(int32_t id) const {
    if (id < 0 || id >= size()) return {};
    return std::string_view(blob_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  bool matchable(int32_t id) const { return id >= 0 && id < size() && matchable_[id]; }
  const std::vector<int32_t>& stop_token_ids() const { return stop_ids_; }
  const TokenTrie& trie() const { return trie_; }
  // Distinct for every vocabulary built in this process: the grammar cache's key.
  uint64_t uid() const { return uid_; }
  size_t memory_bytes() const;
  // The longest matchable token, in bytes.
  size_t max_token_bytes() const { return max_token_bytes_; }

  TokenVocabulary(std::vector<std::string> token_bytes, const std::vector<int32_t>& unmatchable,
                  std::vector<int32_t> stop_ids);

 private:
  void build_trie();

  std::string blob_;               // every token's bytes, concatenated
  std::vector<uint32_t> offsets_;  // size() + 1 entries into blob_
  std::vector<uint8_t> matchable_;
  std::vector<int32_t> stop_ids_;
  TokenTrie trie_;
  uint64_t uid_ = 0;
  size_t max_token_bytes_ = 0;
};

}  // namespace vllm::structured
