#include "vllm/structured/matcher.h"

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <deque>

#include "vllm/core/error.h"
#include "vllm/structured/stack_engine.h"
#include "vllm/structured/token_classes.h"

namespace vllm::structured {

using detail::FramePool;
using detail::kRootFrame;
using detail::StateBuf;
using detail::Stepper;

namespace {

struct State {
  std::vector<uint32_t> tops;
  bool accepting = false;
  bool terminated = false;
};

uint64_t hash_state(const std::vector<uint32_t>& tops, bool accepting) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (accepting ? 1 : 0);
  for (uint32_t t : tops) {
    h ^= t;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return h;
}

// Frames are collected once the pool holds this many and at least 4x the frames last kept.
constexpr size_t kMinCollect = 1 << 14;

}  // namespace

struct GrammarMatcher::Impl {
  std::shared_ptr<const CompiledGrammar> g;
  const detail::Automaton* a = nullptr;
  const TokenVocabulary* v = nullptr;
  std::vector<int32_t> stop_ids;  // sorted
  int max_rollback = 16;
  int cache_entries = 8;
  FramePool pool;
  Stepper stepper;
  State state;
  std::deque<State> history;
  StateBuf cur, next;
  std::vector<StateBuf> levels;  // uncertain-token checks: the state after each byte
  struct CacheEntry {
    uint64_t hash = 0;
    std::vector<uint32_t> tops;
    bool accepting = false;
    std::vector<uint32_t> words;
    uint64_t used = 0;
  };
  std::vector<CacheEntry> cache;
  uint64_t tick = 0;
  size_t collect_at = kMinCollect;
  MatcherStats stats;

  Impl(std::shared_ptr<const CompiledGrammar> grammar, MatcherOptions options)
      : g(std::move(grammar)), a(&g->automaton()), stepper(g->automaton()) {
    v = g->vocabulary().get();
    if (options.stop_token_ids) {
      stop_ids = *options.stop_token_ids;
    } else if (v != nullptr) {
      stop_ids = v->stop_token_ids();
    }
    std::sort(stop_ids.begin(), stop_ids.end());
    max_rollback = std::max(0, options.max_rollback_tokens);
    cache_entries = std::max(0, options.mask_cache_entries);
    if (v != nullptr) levels.resize(v->max_token_bytes() + 1);
    start();
  }

  void start() {
    pool.clear();
    StateBuf s;
    stepper.expand(pool, a->rule_start[a->root], kRootFrame, s);
    state.tops = s.tops;
    state.accepting = s.accepting;
    state.terminated = false;
    history.clear();
    cache.clear();
  }

  bool is_stop(int32_t id) const { return std::binary_search(stop_ids.begin(), stop_ids.end(), id); }

  void remember() {
    if (max_rollback == 0) return;
    history.push_back(state);
    while (history.size() > static_cast<size_t>(max_rollback)) history.pop_front();
  }

  // Reads `bytes` from the current state into `next`; false when some byte cannot be read.
  bool advance(std::string_view bytes) {
    cur.tops = state.tops;
    cur.accepting = state.accepting;
    if (bytes.empty()) {
      next = cur;
      return true;
    }
    for (char c : bytes) {
      stepper.step(pool, cur.tops.data(), cur.tops.size(), static_cast<uint8_t>(c), next);
      if (next.dead()) return false;
      std::swap(cur, next);
    }
    std::swap(cur, next);
    return true;
  }

  bool accept(std::string_view bytes) {
    if (state.terminated) return false;
    if (!advance(bytes)) return false;
    remember();
    state.tops = next.tops;
    state.accepting = next.accepting;
    maybe_collect();
    return true;
  }

  // Drops the frames no state refers to any more.
  void maybe_collect() {
    if (pool.size() < collect_at) return;
    std::vector<uint32_t> roots = state.tops;
    for (const State& s : history) roots.insert(roots.end(), s.tops.begin(), s.tops.end());
    const std::vector<uint32_t> map = pool.compact(roots);
    auto remap = [&](std::vector<uint32_t>& tops) {
      for (uint32_t& t : tops) t = map[t];
      std::sort(tops.begin(), tops.end());
    };
    remap(state.tops);
    for (State& s : history) remap(s.tops);
    cache.clear();
    collect_at = std::max(kMinCollect, pool.size() * 4);
    ++stats.collections;
  }

  // Sets the bits of the tokens in `list` that can be read from top frame `top`, walking them
  // in trie order: levels[d] is the state after the current token's first d bytes, valid up to
  // `valid`, and a token reuses the prefix it shares with the last one walked.
  void check(uint32_t top, const detail::UncertainList& list, uint32_t* words) {
    const TokenTrie& t = v->trie();
    levels[0].tops.assign(1, top);
    levels[0].accepting = levels[0].escaped = false;
    size_t valid = 0;
    size_t shared = 0;  // prefix length shared with the last walked token
    for (size_t i = 0; i < list.size(); ++i) {
      shared = i == 0 ? 0 : std::min<size_t>(shared, list.lcp[i]);
      const int32_t id = t.order[list.index[i]];
      if ((words[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1) continue;  // another top allows it
      const std::string_view bytes = v->token_bytes(id);
      size_t d = std::min(valid, shared);
      bool ok = true;
      ++stats.checked_tokens;
      while (d < bytes.size()) {
        const StateBuf& from = levels[d];
        if (from.tops.empty()) {
          ok = false;
          break;
        }
        stepper.step(pool, from.tops.data(), from.tops.size(), static_cast<uint8_t>(bytes[d]), levels[d + 1]);
        ++d;
        if (levels[d].dead()) {
          ok = false;
          break;
        }
      }
      if (ok) ok = !levels[d].dead();
      valid = d;
      shared = SIZE_MAX;
      if (ok) words[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
    }
  }

  void compute_mask(uint32_t* words, size_t n) {
    const auto& classes = g->classes();
    if (state.tops.size() == 1) {
      classes.of(pool.node(state.tops[0])).accepted.copy_to(words, n);
    } else {
      std::memset(words, 0, n * 4);
      for (uint32_t top : state.tops) classes.of(pool.node(top)).accepted.or_into(words);
    }
    for (uint32_t top : state.tops) {
      const detail::NodeClasses& c = classes.of(pool.node(top));
      if (c.uncertain.empty()) continue;
      // Refine by the return site below the top; a merged top has several (one per parent).
      bool all_found = true;
      pool.for_each_member(pool.parent(top), [&](uint32_t parent) {
        const uint32_t site = parent == kRootFrame ? detail::kAcceptSite : pool.node(parent);
        const detail::SiteClasses* s = c.find_site(site);
        if (s == nullptr) {
          all_found = false;
          return;
        }
        s->accepted.or_into(words);
        check(top, s->uncertain, words);
      });
      if (!all_found) check(top, c.uncertain, words);
    }
  }

  void fill(uint32_t* words, size_t num_words) {
    if (v == nullptr) {
      throw Error("fill_next_token_bitmask: the grammar was compiled without a vocabulary",
                  ErrorKind::kInvalidArgument);
    }
    const size_t n = v->mask_words();
    if (num_words < n) {
      throw Error("fill_next_token_bitmask: " + std::to_string(num_words) + " words for a vocabulary of " +
                      std::to_string(v->size()) + " tokens",
                  ErrorKind::kInvalidArgument);
    }
    ++stats.masks;
    std::memset(words + n, 0, (num_words - n) * 4);
    if (state.terminated) {
      std::memset(words, 0, n * 4);
      set_stops(words);
      return;
    }
    const uint64_t h = hash_state(state.tops, state.accepting);
    for (CacheEntry& e : cache) {
      if (e.hash == h && e.accepting == state.accepting && e.tops == state.tops) {
        std::memcpy(words, e.words.data(), n * 4);
        e.used = ++tick;
        ++stats.mask_cache_hits;
        return;
      }
    }
    compute_mask(words, n);
    if (state.accepting) set_stops(words);
    maybe_collect_keep(words, n, h);
  }

  // Stores the mask in the cache (replacing the least recently used entry), after collecting
  // frames if the checks made many (the cache is keyed by frame ids, so it is emptied first).
  void maybe_collect_keep(const uint32_t* words, size_t n, uint64_t h) {
    if (pool.size() >= collect_at) {
      maybe_collect();
      h = hash_state(state.tops, state.accepting);
    }
    if (cache_entries == 0) return;
    CacheEntry* slot = nullptr;
    if (cache.size() < static_cast<size_t>(cache_entries)) {
      slot = &cache.emplace_back();
    } else {
      slot = &*std::min_element(cache.begin(), cache.end(),
                                [](const CacheEntry& x, const CacheEntry& y) { return x.used < y.used; });
    }
    slot->hash = h;
    slot->tops = state.tops;
    slot->accepting = state.accepting;
    slot->words.assign(words, words + n);
    slot->used = ++tick;
  }

  void set_stops(uint32_t* words) const {
    for (int32_t id : stop_ids) {
      if (id >= 0 && id < v->size()) words[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
    }
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, MatcherOptions options)
    : impl_(std::make_unique<Impl>(std::move(grammar), std::move(options))) {}
GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(const GrammarMatcher& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
GrammarMatcher& GrammarMatcher::operator=(const GrammarMatcher& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
GrammarMatcher::GrammarMatcher(GrammarMatcher&& other) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&& other) noexcept = default;

bool GrammarMatcher::accept_token(int32_t id) {
  Impl& m = *impl_;
  if (m.state.terminated) return false;
  if (m.is_stop(id) && m.state.accepting) {
    m.remember();
    m.state.terminated = true;
    return true;
  }
  if (m.v == nullptr || !m.v->matchable(id)) return false;
  return m.accept(m.v->token_bytes(id));
}

bool GrammarMatcher::is_stop_token(int32_t id) const { return impl_->is_stop(id); }

bool GrammarMatcher::accept_bytes(std::string_view bytes) { return impl_->accept(bytes); }

void GrammarMatcher::fill_next_token_bitmask(uint32_t* words) { impl_->fill(words, mask_words()); }

void GrammarMatcher::fill_next_token_bitmask(uint32_t* words, size_t num_words) { impl_->fill(words, num_words); }

size_t GrammarMatcher::mask_words() const { return impl_->v ? impl_->v->mask_words() : 0; }

bool GrammarMatcher::can_terminate() const { return impl_->state.accepting; }

bool GrammarMatcher::is_terminated() const { return impl_->state.terminated; }

void GrammarMatcher::rollback(int num_tokens) {
  Impl& m = *impl_;
  if (num_tokens < 0 || static_cast<size_t>(num_tokens) > m.history.size()) {
    throw Error("rollback of " + std::to_string(num_tokens) + " tokens: only " +
                    std::to_string(m.history.size()) + " can be undone",
                ErrorKind::kInvalidArgument);
  }
  if (num_tokens == 0) return;
  m.state = m.history[m.history.size() - static_cast<size_t>(num_tokens)];
  m.history.resize(m.history.size() - static_cast<size_t>(num_tokens));
}

int GrammarMatcher::num_rollback_available() const { return static_cast<int>(impl_->history.size()); }

void GrammarMatcher::reset() { impl_->start(); }

const std::shared_ptr<const CompiledGrammar>& GrammarMatcher::grammar() const { return impl_->g; }

const MatcherStats& GrammarMatcher::stats() const { return impl_->stats; }

}  // namespace vllm::structured
