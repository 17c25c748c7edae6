// The BPE model, as the `tokenizers` library runs it: a word is split into characters (with the
// continuing-subword prefix / end-of-word suffix), unknown characters fall back to <0xNN> byte
// tokens or the unk token, then the adjacent pair with the lowest merge rank is merged until no
// merge applies (ties: the leftmost pair). Results per word are cached, since natural text
// repeats words constantly.
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/unicode.h"
#include "vllm/tokenizer/vocab.h"

namespace vllm::tok {

namespace {

// A bounded, thread-safe word -> ids cache. Sharded so that concurrent encoders rarely contend;
// a full shard is simply cleared (cheap, and the hot words come back immediately).
class WordCache {
 public:
  bool lookup(std::string_view word, std::vector<int32_t>& out) const {
    Shard& s = shard(word);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(std::string_view word, const int32_t* ids, size_t n) const {
    Shard& s = shard(word);
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= kEntriesPerShard) s.map.clear();
    s.map.try_emplace(std::string(word), ids, ids + n);
  }

 private:
  // 10,240 words in all, about 1 MiB, like the `tokenizers` library's 10,000-word BPE cache: the
  // frequent words stay, and a server whose prompts bring new words all the time (numbers, ids,
  // names) reaches its bound within minutes. It was 131,072 words (~14 MiB), which a 30-minute
  // soak with a random number in every prompt was still filling: a slow RSS climb of ~110 bytes
  // per request (docs/benchmarks.md, issue 20).
  static constexpr size_t kShards = 16;
  static constexpr size_t kEntriesPerShard = 640;
  struct Shard {
    std::mutex mu;
    StringMap<std::vector<int32_t>> map;
  };
  Shard& shard(std::string_view word) const { return shards_[StringHash{}(word) % kShards]; }
  mutable std::array<Shard, kShards> shards_;
};

struct MergeInfo {
  int32_t rank;
  int32_t new_id;
};

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Merge ranks keyed by the (left id, right id) pair: an open-addressing table with linear
// probing, so that a lookup - the innermost operation of BPE - is one cache line.
class MergeTable {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n + n / 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, MergeInfo{0, 0}});
    mask_ = cap - 1;
  }
  // A repeated pair keeps its last rank, as a Rust HashMap built from the list does.
  void insert_or_assign(uint64_t key, MergeInfo info) {
    size_t i = hash(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    slots_[i] = Slot{key, info};
  }
  const MergeInfo* find(uint64_t key) const {
    size_t i = hash(key) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.info;
      if (s.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;  // never a key: ids are non-negative int32
  struct Slot {
    uint64_t key;
    MergeInfo info;
  };
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

struct BpeConfig {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel final : public Model {
 public:
  BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeConfig config, const JsonPath& merges_where)
      : vocab_(std::move(vocab)), cfg_(std::move(config)) {
    if (cfg_.unk_token) unk_id_ = vocab_.find(*cfg_.unk_token);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      byte_ids_[static_cast<size_t>(b)] = vocab_.find(name).value_or(-1);
    }
    // Single characters of the Basic Multilingual Plane resolve through a table: every word
    // starts as one lookup per character.
    char_ids_.assign(0x10000, -1);
    for (int32_t id = 0; id <= vocab_.max_id(); ++id) {
      const std::string* t = vocab_.token(id);
      if (t == nullptr || t->empty()) continue;
      size_t k = 0;
      const char32_t c = utf8_next(*t, k);
      if (k == t->size() && c < 0x10000 && vocab_.find(*t) == id) char_ids_[c] = id;
    }
    merges_.reserve(merges.size());
    const size_t prefix_len = cfg_.continuing_subword_prefix.size();
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [a, b] = merges[i];
      auto id_of = [&](const std::string& token) {
        auto id = vocab_.find(token);
        if (!id) merges_where[i].fail("refers to token '" + token + "', which is not in the vocabulary");
        return *id;
      };
      const int32_t a_id = id_of(a);
      const int32_t b_id = id_of(b);
      const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : std::string());
      const int32_t new_id = id_of(merged);
      // A repeated pair keeps its last rank, as a Rust HashMap built from the list does.
      merges_.insert_or_assign(pair_key(a_id, b_id), MergeInfo{static_cast<int32_t>(i), new_id});
    }
  }

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override {
    if (word.empty()) return;
    if (cfg_.ignore_merges) {
      // Llama-3 style: a word that is itself a token is never broken up.
      if (auto id = vocab_.find(word)) {
        out.push_back(*id);
        return;
      }
    }
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable && cache_.lookup(word, out)) return;
    const size_t before = out.size();
    merge_word(word, out);
    if (cacheable) cache_.insert(word, out.data() + before, out.size() - before);
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  int32_t max_id() const override { return vocab_.max_id(); }

 private:
  static constexpr size_t kMaxCachedWordBytes = 256;

  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // std::push_heap builds a max-heap: "greater" puts the lowest (rank, pos) on top.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  const MergeInfo* find_merge(int32_t a, int32_t b) const { return merges_.find(pair_key(a, b)); }

  void merge_word(std::string_view word, std::vector<int32_t>& out) const {
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Candidate> heap;
    thread_local std::string key;
    symbols.clear();
    heap.clear();
    auto push_symbol = [&](int32_t id) {
      const auto n = static_cast<int32_t>(symbols.size());
      symbols.push_back(Symbol{id, n - 1, -1, true});
      if (n > 0) symbols[static_cast<size_t>(n - 1)].next = n;
    };
    bool pending_unk = false;
    auto flush_unk = [&]() {
      if (pending_unk) push_symbol(*unk_id_);
      pending_unk = false;
    };

    size_t i = 0;
    while (i < word.size()) {
      const size_t start = i;
      i += utf8_len(static_cast<unsigned char>(word[i]));
      if (i > word.size()) i = word.size();
      const bool first = start == 0, last = i == word.size();
      std::string_view piece = word.substr(start, i - start);
      if ((!first && !cfg_.continuing_subword_prefix.empty()) || (last && !cfg_.end_of_word_suffix.empty())) {
        key.clear();
        if (!first) key += cfg_.continuing_subword_prefix;
        key += piece;
        if (last) key += cfg_.end_of_word_suffix;
        piece = key;
      } else if (piece.size() <= 3) {
        size_t k = 0;
        const int32_t id = char_ids_[utf8_next(piece, k)];
        if (id >= 0) {
          flush_unk();
          push_symbol(id);
          continue;
        }
      }
      if (auto id = vocab_.find(piece)) {
        flush_unk();
        push_symbol(*id);
        continue;
      }
      if (cfg_.byte_fallback) {
        bool all = true;
        for (char ch : piece) all = all && byte_ids_[static_cast<unsigned char>(ch)] >= 0;
        if (all) {
          flush_unk();
          for (char ch : piece) push_symbol(byte_ids_[static_cast<unsigned char>(ch)]);
          continue;
        }
      }
      if (unk_id_) {
        // Consecutive unknown characters share one unk token when fuse_unk is set.
        if (!(pending_unk && cfg_.fuse_unk)) {
          flush_unk();
          pending_unk = true;
        }
      }
      // Without an unk token in the vocabulary the character is dropped, as in `tokenizers`.
    }
    flush_unk();

    const auto n = static_cast<int32_t>(symbols.size());
    for (int32_t k = 0; k + 1 < n; ++k) {
      if (const MergeInfo* m = find_merge(symbols[static_cast<size_t>(k)].id, symbols[static_cast<size_t>(k + 1)].id)) {
        heap.push_back(Candidate{m->rank, k, m->new_id});
      }
    }
    std::make_heap(heap.begin(), heap.end());
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      const Candidate top = heap.back();
      heap.pop_back();
      Symbol& left = symbols[static_cast<size_t>(top.pos)];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[static_cast<size_t>(left.next)];
      // Skip stale candidates: the pair at this position changed since it was queued.
      const MergeInfo* m = find_merge(left.id, right.id);
      if (m == nullptr || m->new_id != top.new_id) continue;
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
      if (left.prev >= 0) {
        if (const MergeInfo* pm = find_merge(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
          heap.push_back(Candidate{pm->rank, left.prev, pm->new_id});
          std::push_heap(heap.begin(), heap.end());
        }
      }
      if (left.next >= 0) {
        if (const MergeInfo* nm = find_merge(left.id, symbols[static_cast<size_t>(left.next)].id)) {
          heap.push_back(Candidate{nm->rank, top.pos, nm->new_id});
          std::push_heap(heap.begin(), heap.end());
        }
      }
    }
    for (int32_t k = n > 0 ? 0 : -1; k >= 0; k = symbols[static_cast<size_t>(k)].next) {
      out.push_back(symbols[static_cast<size_t>(k)].id);
    }
  }

  Vocab vocab_;
  BpeConfig cfg_;
  std::optional<int32_t> unk_id_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<int32_t> char_ids_;  // BMP code point -> id of the one-character token, or -1
  MergeTable merges_;
  WordCache cache_;
};

// "a b" -> {a, b}; exactly one space, as `tokenizers` requires.
bool split_merge_line(std::string_view line, std::pair<std::string, std::string>* out) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos) return false;
  out->first = std::string(line.substr(0, sp));
  out->second = std::string(line.substr(sp + 1));
  return true;
}

}  // namespace

std::unique_ptr<Model> make_bpe_model(const Json& j, const JsonPath& where) {
  Vocab vocab = Vocab::from_json(json_require(j, "vocab", where), where / "vocab");
  const JsonPath merges_where = where / "merges";
  std::vector<std::pair<std::string, std::string>> merges;
  if (const Json* m = json_find(j, "merges")) {
    json_array(*m, merges_where);
    merges.reserve(m->size());
    for (size_t i = 0; i < m->size(); ++i) {
      const Json& e = (*m)[i];
      std::pair<std::string, std::string> pair;
      if (e.is_string()) {
        if (!split_merge_line(e.get_ref<const std::string&>(), &pair)) {
          merges_where[i].fail("must be two tokens separated by one space, got \"" +
                               e.get<std::string>() + "\"");
        }
      } else if (e.is_array() && e.size() == 2) {
        pair.first = json_string(e[0], merges_where[i][0]);
        pair.second = json_string(e[1], merges_where[i][1]);
      } else {
        merges_where[i].fail(std::string("must be \"a b\" or [\"a\", \"b\"], got ") + json_type_name(e));
      }
      merges.push_back(std::move(pair));
    }
  } else {
    merges_where.fail("is missing");
  }
  BpeConfig cfg;
  cfg.unk_token = json_opt_string(j, "unk_token", where);
  cfg.continuing_subword_prefix = json_opt_string(j, "continuing_subword_prefix", where).value_or("");
  cfg.end_of_word_suffix = json_opt_string(j, "end_of_word_suffix", where).value_or("");
  cfg.fuse_unk = json_get_bool(j, "fuse_unk", false, where);
  cfg.byte_fallback = json_get_bool(j, "byte_fallback", false, where);
  cfg.ignore_merges = json_get_bool(j, "ignore_merges", false, where);
  // "dropout" is a training-time regularizer; inference runs without it.
  return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(cfg), merges_where);
}

std::unique_ptr<Model> make_bpe_from_files(const std::string& vocab_path,
                                           const std::string& merges_path) {
  const Json vocab_json = json_parse_file(vocab_path, vocab_path);
  Vocab vocab = Vocab::from_json(vocab_json, JsonPath(vocab_path));
  std::istringstream in(read_regular_file(merges_path));
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    std::pair<std::string, std::string> pair;
    if (!split_merge_line(line, &pair)) {
      throw Error(merges_path + ": line " + std::to_string(line_no) +
                      " must be two tokens separated by one space, got \"" + line + "\"",
                  ErrorKind::kModelLoad);
    }
    merges.push_back(std::move(pair));
  }
  // GPT2TokenizerFast: byte-level BPE, no unk fallback needed (every byte is in the alphabet).
  return std::make_unique<BpeModel>(std::move(vocab), merges, BpeConfig{},
                                    JsonPath(merges_path, "merges"));
}

}  // namespace vllm::tok
