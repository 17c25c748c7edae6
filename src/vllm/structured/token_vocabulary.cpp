#include "vllm/structured/token_vocabulary.h"

#include <cstdint>
#include <algorithm>
#include <atomic>

#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::structured {

namespace {
std::atomic<uint64_t> g_next_uid{1};
// Trie depths are 16-bit; longer tokens (none in real vocabularies) are left unmatchable.
constexpr size_t kMaxTokenBytes = 65535;
}  // namespace

std::shared_ptr<const TokenVocabulary> TokenVocabulary::from_tokenizer(const Tokenizer& tokenizer) {
  const int32_t n = tokenizer.vocab_size();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<int32_t> unmatchable;
  for (int32_t id = 0; id < n; ++id) {
    if (tokenizer.is_special(id)) {
      unmatchable.push_back(id);
      continue;
    }
    bytes[static_cast<size_t>(id)] = tokenizer.token_bytes(id);
  }
  std::vector<int32_t> stop;
  if (auto eos = tokenizer.eos_token_id()) stop.push_back(*eos);
  return std::make_shared<const TokenVocabulary>(std::move(bytes), unmatchable, std::move(stop));
}

std::shared_ptr<const TokenVocabulary> TokenVocabulary::from_token_bytes(std::vector<std::string> token_bytes,
                                                                         const std::vector<int32_t>& unmatchable,
                                                                         std::vector<int32_t> stop_ids) {
  return std::make_shared<const TokenVocabulary>(std::move(token_bytes), unmatchable, std::move(stop_ids));
}

TokenVocabulary::TokenVocabulary(std::vector<std::string> token_bytes, const std::vector<int32_t>& unmatchable,
                                 std::vector<int32_t> stop_ids)
    : stop_ids_(std::move(stop_ids)), uid_(g_next_uid.fetch_add(1)) {
  const size_t n = token_bytes.size();
  if (n > static_cast<size_t>(INT32_MAX) - 1) throw Error("vocabulary too large", ErrorKind::kInvalidArgument);
  size_t total = 0;
  for (const std::string& t : token_bytes) total += t.size();
  blob_.reserve(total);
  offsets_.reserve(n + 1);
  offsets_.push_back(0);
  matchable_.assign(n, 1);
  for (size_t i = 0; i < n; ++i) {
    blob_ += token_bytes[i];
    offsets_.push_back(static_cast<uint32_t>(blob_.size()));
    if (token_bytes[i].empty() || token_bytes[i].size() > kMaxTokenBytes) matchable_[i] = 0;
  }
  for (int32_t id : unmatchable) {
    if (id >= 0 && static_cast<size_t>(id) < n) matchable_[static_cast<size_t>(id)] = 0;
  }
  // Stop tokens are decided by can_terminate(), never by their bytes.
  for (int32_t id : stop_ids_) {
    if (id >= 0 && static_cast<size_t>(id) < n) matchable_[static_cast<size_t>(id)] = 0;
  }
  build_trie();
}

void TokenVocabulary::build_trie() {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < size(); ++id) {
    if (matchable_[id]) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    const std::string_view x = token_bytes(a), y = token_bytes(b);
    return x != y ? x < y : a < b;
  });
  TokenTrie& t = trie_;
  auto add_node = [&](uint8_t byte, uint16_t depth) {
    t.byte.push_back(byte);
    t.depth.push_back(depth);
    t.next.push_back(0);
    t.first_token.push_back(static_cast<uint32_t>(t.order.size()));
    return static_cast<uint32_t>(t.byte.size() - 1);
  };
  std::vector<uint32_t> path{add_node(0, 0)};  // nodes from the root to the current one
  std::string_view prev;
  for (int32_t id : ids) {
    const std::string_view s = token_bytes(id);
    max_token_bytes_ = std::max(max_token_bytes_, s.size());
    size_t lcp = 0;
    while (lcp < s.size() && lcp < prev.size() && s[lcp] == prev[lcp]) ++lcp;
    while (path.size() - 1 > lcp) {  // close the nodes below the common prefix
      t.next[path.back()] = t.num_nodes();
      path.pop_back();
    }
    for (size_t k = lcp; k < s.size(); ++k) {
      path.push_back(add_node(static_cast<uint8_t>(s[k]), static_cast<uint16_t>(k + 1)));
    }
    t.order.push_back(id);
    prev = s;
  }
  while (!path.empty()) {
    t.next[path.back()] = t.num_nodes();
    path.pop_back();
  }
  t.first_token.push_back(static_cast<uint32_t>(t.order.size()));
  // Deepest node below each node: children are i + 1, then each child's `next`.
  t.max_below.assign(t.num_nodes(), 0);
  for (uint32_t i = t.num_nodes(); i-- > 0;) {
    uint16_t m = t.depth[i];
    for (uint32_t c = i + 1; c < t.next[i]; c = t.next[c]) m = std::max(m, t.max_below[c]);
    t.max_below[i] = m;
  }
}

size_t TokenVocabulary::memory_bytes() const {
  return blob_.capacity() + offsets_.capacity() * 4 + matchable_.capacity() + trie_.byte.capacity() +
         trie_.depth.capacity() * 2 + trie_.max_below.capacity() * 2 + trie_.next.capacity() * 4 + trie_.first_token.capacity() * 4 +
         trie_.order.capacity() * 4;
}

}  // namespace vllm::structured
