#include "vllm/tokenizer/added_tokens.h"

#include <algorithm>

#include "vllm/tokenizer/unicode.h"

namespace vllm::tok {

void AddedVocabulary::add(AddedToken t) {
  auto it = by_content_.find(t.content);
  if (it != by_content_.end()) {
    AddedToken& old = tokens_[it->second];
    if (t.id < 0 || t.id == old.id) {
      t.id = old.id;
      old = std::move(t);
      return;
    }
    // Same content under a new id: the id map moves, the old id keeps decoding to the content.
    by_id_.erase(old.id);
    old = std::move(t);
    by_id_[old.id] = it->second;
    return;
  }
  const size_t index = tokens_.size();
  by_content_[t.content] = index;
  by_id_[t.id] = index;
  tokens_.push_back(std::move(t));
}

int32_t AddedVocabulary::max_id() const {
  int32_t m = -1;
  for (const auto& t : tokens_) m = std::max(m, t.id);
  return m;
}

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token) {
  if (key.empty()) return;
  if (nodes.empty()) nodes.emplace_back();
  int32_t cur = 0;
  for (char ch : key) {
    const auto b = static_cast<unsigned char>(ch);
    auto& next = nodes[static_cast<size_t>(cur)].next;
    auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
    if (it != next.end()) {
      cur = it->second;
    } else {
      const auto created = static_cast<int32_t>(nodes.size());
      nodes[static_cast<size_t>(cur)].next.emplace_back(b, created);
      nodes.emplace_back();
      cur = created;
    }
  }
  // With duplicate keys (two contents normalizing alike) the first one added wins.
  if (nodes[static_cast<size_t>(cur)].token < 0) nodes[static_cast<size_t>(cur)].token = token;
  first[static_cast<unsigned char>(key[0])] = true;
  any = true;
}

int32_t AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, size_t* end) const {
  int32_t cur = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    const auto& next = nodes[static_cast<size_t>(cur)].next;
    auto it = std::find_if(next.begin(), next.end(), [b](const auto& e) { return e.first == b; });
    if (it == next.end()) break;
    cur = it->second;
    if (nodes[static_cast<size_t>(cur)].token >= 0) {
      best = nodes[static_cast<size_t>(cur)].token;
      *end = i + 1;
    }
  }
  return best;
}

void AddedVocabulary::build(const Normalizer* normalizer) {
  raw_ = Trie{};
  norm_ = Trie{};
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.normalized && normalizer != nullptr) {
      std::string key = t.content;
      normalizer->normalize(key);
      norm_.insert(key, static_cast<int32_t>(i));
    } else if (t.normalized) {
      norm_.insert(t.content, static_cast<int32_t>(i));
    } else {
      raw_.insert(t.content, static_cast<int32_t>(i));
    }
  }
}

namespace {

// The code point that ends just before byte offset `pos` (pos > 0).
char32_t char_before(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return utf8_next(text, start);
}

}  // namespace

void AddedVocabulary::split(std::string_view text, bool normalized, std::vector<Span>& out) const {
  const Trie& trie = normalized ? norm_ : raw_;
  if (!trie.any) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return;
  }
  size_t start_offset = 0;  // end of the previous emitted token
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t match_end = 0;
    const int32_t index = trie.longest_at(text, pos, &match_end);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(index)];
    size_t start = pos, stop = match_end;
    // The search resumes after this match whether or not it is kept (non-overlapping matches).
    pos = match_end;
    if (tok.single_word) {
      const bool start_ok = start == 0 || !is_word_char(char_before(text, start));
      size_t k = stop;
      const bool stop_ok = stop == text.size() || !is_word_char(utf8_next(text, k));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      while (start > start_offset) {
        const char32_t c = char_before(text, start);
        if (!is_whitespace(c)) break;
        size_t back = start - 1;
        while (back > 0 && (static_cast<unsigned char>(text[back]) & 0xC0) == 0x80) --back;
        start = back;
      }
      start = std::max(start, start_offset);
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t k = stop;
        if (!is_whitespace(utf8_next(text, k))) break;
        stop = k;
      }
      pos = std::max(pos, stop);
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace vllm::tok
