#include "vllm/structured/token_classes.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "vllm/structured/stack_engine.h"

namespace vllm::structured::detail {

TokenSet::TokenSet(const std::vector<int32_t>& sorted_ids, int32_t vocab_size) : count_(sorted_ids.size()) {
  const size_t words = (static_cast<size_t>(vocab_size) + 31) / 32;
  if (sorted_ids.size() > words) {  // a list would take more than the bitset's `words` words
    bits_.assign(words, 0);
    for (int32_t id : sorted_ids) bits_[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
  } else {
    ids_ = sorted_ids;
  }
}

void TokenSet::or_into(uint32_t* words) const {
  if (!bits_.empty()) {
    const uint32_t* b = bits_.data();
    for (size_t i = 0, n = bits_.size(); i < n; ++i) words[i] |= b[i];
    return;
  }
  for (int32_t id : ids_) words[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
}

void TokenSet::copy_to(uint32_t* words, size_t num_words) const {
  if (!bits_.empty()) {
    std::memcpy(words, bits_.data(), std::min(num_words, bits_.size()) * 4);
    if (num_words > bits_.size()) std::memset(words + bits_.size(), 0, (num_words - bits_.size()) * 4);
    return;
  }
  std::memset(words, 0, num_words * 4);
  or_into(words);
}

const SiteClasses* NodeClasses::find_site(uint32_t site) const {
  auto it = std::lower_bound(sites.begin(), sites.end(), site,
                             [](const SiteClasses& s, uint32_t x) { return s.site < x; });
  return it != sites.end() && it->site == site ? &*it : nullptr;
}

size_t NodeClasses::memory_bytes() const {
  size_t n = sizeof(NodeClasses) + accepted.memory_bytes() + uncertain.index.capacity() * 6;
  for (const SiteClasses& s : sites) {
    n += sizeof(SiteClasses) + s.accepted.memory_bytes() + s.uncertain.index.capacity() * 6;
  }
  return n;
}

namespace {

// Per-token outcomes while classifying. Ordered so that "some path accepts" is a max.
constexpr uint8_t kRej = 0, kUnc = 1, kAcc = 2;
// Combining the outcomes at two possible return sites, one of which is the real one.
inline uint8_t forall(uint8_t a, uint8_t b) { return a == b ? a : kUnc; }

class Classifier {
 public:
  Classifier(const Automaton& a, const TokenVocabulary& v, int follow_depth)
      : a_(a), v_(v), t_(v.trie()), stepper_(a), depth_(std::max(0, follow_depth)) {
    ntok_ = t_.order.size();
    const size_t levels = static_cast<size_t>(depth_) + 2;
    states_.resize(levels);
    for (auto& s : states_) s.resize(v.max_token_bytes() + 2);
    starts_.resize(levels);
    events_.resize(levels);
    tmp_.resize(levels);
    comb_.resize(levels);
    for (size_t l = 0; l < levels; ++l) {
      tmp_[l].resize(ntok_);
      comb_[l].resize(ntok_);
    }
    main_.resize(ntok_);
  }

  NodeClasses classify(uint32_t p) {
    pool_.clear();
    std::fill(main_.begin(), main_.end(), kRej);
    StateBuf start;
    start.tops.push_back(pool_.intern(p, kUnknownFrame));
    std::vector<uint32_t>& events = events_[0];
    events.clear();
    walk(0, start, 0, main_.data(), 0, &events);

    NodeClasses out;
    const int32_t vsize = v_.size();
    if (events.empty()) {
      std::vector<int32_t> acc;
      for (size_t k = 0; k < ntok_; ++k) {
        if (main_[k] == kAcc) acc.push_back(t_.order[k]);
      }
      std::sort(acc.begin(), acc.end());
      out.accepted = TokenSet(acc, vsize);
      return out;
    }

    // Token ranges below the escape points, merged into disjoint intervals.
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    for (uint32_t e : events) ranges.push_back(below(e));
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : ranges) {
      if (r.first == r.second) continue;
      if (!merged.empty() && r.first <= merged.back().second) {
        merged.back().second = std::max(merged.back().second, r.second);
      } else {
        merged.push_back(r);
      }
    }
    // One outcome array per return site of p's rule: the real stack has exactly one of them
    // below p's frame.
    const std::vector<uint32_t>& sites = a_.return_sites[a_.nodes[p].rule];
    if (site_res_.size() < sites.size()) site_res_.resize(sites.size());
    for (size_t j = 0; j < sites.size(); ++j) {
      std::vector<uint8_t>& buf = site_res_[j];
      buf.resize(ntok_);
      for (const auto& [lo, hi] : merged) std::copy(main_.begin() + lo, main_.begin() + hi, buf.begin() + lo);
      for (uint32_t e : events) {
        const auto [lo, hi] = below(e);
        if (lo == hi) continue;
        uint8_t* tmp = tmp_[0].data();
        site_results(0, sites[j], e, depth_, tmp, lo);
        for (uint32_t k = lo; k < hi; ++k) buf[k] = std::max(buf[k], tmp[k - lo]);
      }
    }
    for (const auto& [lo, hi] : merged) {
      for (uint32_t k = lo; k < hi; ++k) {
        uint8_t b = site_res_[0][k];
        for (size_t j = 1; j < sites.size(); ++j) b = forall(b, site_res_[j][k]);
        main_[k] = b;
      }
    }

    std::vector<int32_t> acc;
    std::vector<uint32_t> unc;
    for (size_t k = 0; k < ntok_; ++k) {
      if (main_[k] == kAcc) {
        acc.push_back(t_.order[k]);
      } else if (main_[k] == kUnc) {
        unc.push_back(static_cast<uint32_t>(k));
      }
    }
    std::sort(acc.begin(), acc.end());
    out.accepted = TokenSet(acc, vsize);
    out.uncertain = make_list(unc);
    if (unc.empty()) return out;
    for (size_t j = 0; j < sites.size(); ++j) {
      SiteClasses sc;
      sc.site = sites[j];
      std::vector<int32_t> sacc;
      std::vector<uint32_t> sunc;
      for (uint32_t k : unc) {
        if (site_res_[j][k] == kAcc) {
          sacc.push_back(t_.order[k]);
        } else if (site_res_[j][k] == kUnc) {
          sunc.push_back(k);
        }
      }
      std::sort(sacc.begin(), sacc.end());
      sc.accepted = TokenSet(sacc, vsize);
      sc.uncertain = make_list(sunc);
      out.sites.push_back(std::move(sc));
    }
    return out;
  }

 private:
  // Trie-order indices of the tokens strictly below trie node e.
  std::pair<uint32_t, uint32_t> below(uint32_t e) const {
    return {t_.first_token[e + 1], t_.first_token[t_.next[e]]};
  }

  UncertainList make_list(const std::vector<uint32_t>& ks) const {
    UncertainList l;
    l.index = ks;
    l.lcp.reserve(ks.size());
    std::string_view prev;
    for (uint32_t k : ks) {
      const std::string_view s = v_.token_bytes(t_.order[k]);
      size_t n = 0;
      while (n < s.size() && n < prev.size() && s[n] == prev[n]) ++n;
      l.lcp.push_back(static_cast<uint16_t>(std::min<size_t>(n, 65535)));
      prev = s;
    }
    return l;
  }

  // Reads every token below trie node c from `start` (the state after c's bytes). Marks
  // res[k - base] = kAcc for each token whose bytes are all read with the stack intact or with
  // the rule ended exactly at its end, and lists in `events` the trie nodes after which the rule
  // ended (escaped) with the tokens below them still to read.
  void walk(int level, const StateBuf& start, uint32_t c, uint8_t* res, uint32_t base, std::vector<uint32_t>* events) {
    std::vector<StateBuf>& L = states_[static_cast<size_t>(level)];
    L[0].tops = start.tops;
    const uint32_t d0 = t_.depth[c];
    for (uint32_t i = c + 1; i < t_.next[c];) {
      const uint32_t d = t_.depth[i] - d0;
      StateBuf& s = L[d];
      const StateBuf& prev = L[d - 1];
      stepper_.step(pool_, prev.tops.data(), prev.tops.size(), t_.byte[i], s);
      if (s.dead()) {
        i = t_.next[i];
        continue;
      }
      for (uint32_t k = t_.first_token[i]; k < t_.first_token[i + 1]; ++k) res[k - base] = kAcc;
      if (s.escaped && t_.has_children(i)) events->push_back(i);
      i = s.tops.empty() ? t_.next[i] : i + 1;
    }
  }

  // Outcomes of the tokens strictly below trie node e when the rule being classified ended
  // right after e's bytes and `site` is the node it returned to (with an unknown stack below).
  void site_results(int level, uint32_t site, uint32_t e, int budget, uint8_t* out, uint32_t base) {
    const auto [lo, hi] = below(e);
    std::fill(out + (lo - base), out + (hi - base), kRej);
    if (lo == hi || site == kAcceptSite) return;  // nothing may follow the end of the input
    const size_t next = static_cast<size_t>(level) + 1;
    StateBuf& s0 = starts_[next];
    stepper_.expand(pool_, site, kUnknownFrame, s0);
    std::vector<uint32_t>& events = events_[next];
    events.clear();
    walk(level + 1, s0, e, out, base, &events);
    if (s0.escaped) events.push_back(e);  // the site's rule can end at once, too
    resolve_forall(level + 1, a_.nodes[site].rule, events, out, base, budget - 1);
  }

  // For tokens below each escape point: the outcome after `rule` ended there, combined over
  // all of its return sites (the stack below is unknown, so only agreement decides).
  void resolve_forall(int level, uint32_t rule, const std::vector<uint32_t>& events, uint8_t* res, uint32_t base,
                      int budget) {
    for (uint32_t e : events) {
      const auto [lo, hi] = below(e);
      if (lo == hi) continue;
      if (budget <= 0) {
        for (uint32_t k = lo; k < hi; ++k) res[k - base] = std::max<uint8_t>(res[k - base], kUnc);
        continue;
      }
      uint8_t* comb = comb_[static_cast<size_t>(level)].data();
      uint8_t* tmp = tmp_[static_cast<size_t>(level)].data();
      bool first = true;
      for (uint32_t q : a_.return_sites[rule]) {
        site_results(level, q, e, budget, first ? comb : tmp, lo);
        if (!first) {
          bool all_unc = true;
          for (uint32_t k = 0; k < hi - lo; ++k) {
            comb[k] = forall(comb[k], tmp[k]);
            all_unc = all_unc && comb[k] == kUnc;
          }
          if (all_unc) break;  // no further site can change it
        }
        first = false;
      }
      for (uint32_t k = lo; k < hi; ++k) res[k - base] = std::max(res[k - base], comb[k - lo]);
    }
  }

  const Automaton& a_;
  const TokenVocabulary& v_;
  const TokenTrie& t_;
  FramePool pool_;
  Stepper stepper_;
  int depth_;
  size_t ntok_ = 0;
  std::vector<std::vector<StateBuf>> states_;  // [level][depth below the walk's start]
  std::vector<StateBuf> starts_;               // [level]
  std::vector<std::vector<uint32_t>> events_;  // [level]
  std::vector<std::vector<uint8_t>> tmp_, comb_;  // [level], indexed by token - range start
  std::vector<uint8_t> main_;
  std::vector<std::vector<uint8_t>> site_res_;
};

}  // namespace

std::vector<NodeClasses> classify_tokens(const Automaton& a, const TokenVocabulary& vocab,
                                         const ClassifyOptions& options) {
  std::vector<NodeClasses> classes(a.nodes.size());
  std::vector<uint32_t> todo;
  for (uint32_t n = 0; n < a.nodes.size(); ++n) {
    if (a.nodes[n].has_bytes()) todo.push_back(n);
  }
  if (vocab.trie().order.empty() || todo.empty()) return classes;
  std::atomic<size_t> next{0};
  auto work = [&](int, int64_t, int64_t) {
    Classifier c(a, vocab, options.follow_depth);
    for (size_t i = next.fetch_add(1); i < todo.size(); i = next.fetch_add(1)) {
      classes[todo[i]] = c.classify(todo[i]);
    }
  };
  if (options.pool != nullptr && options.pool->num_threads() > 1 && todo.size() > 1) {
    // One chunk per thread; each takes nodes from the shared counter (their costs differ a lot).
    options.pool->parallel_for(options.pool->num_threads(), work, 1);
  } else {
    work(0, 0, 1);
  }
  return classes;
}

}  // namespace vllm::structured::detail
