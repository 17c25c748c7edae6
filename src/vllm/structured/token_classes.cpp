#include "vllm/structured/token_classes.h"

#include <cstdint>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>

#include "vllm/core/error.h"
#include "vllm/structured/node_equivalence.h"

#include "vllm/structured/stack_engine.h"

namespace vllm::structured::detail {

TokenSet TokenSet::from_unsorted(std::vector<int32_t> ids, int32_t vocab_size) {
  TokenSet t;
  t.count_ = ids.size();
  const size_t words = (static_cast<size_t>(vocab_size) + 31) / 32;
  if (ids.size() > words) {  // a list would take more than the bitset's `words` words
    t.bits_.assign(words, 0);
    for (int32_t id : ids) t.bits_[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
  } else {
    std::sort(ids.begin(), ids.end());
    t.ids_ = std::move(ids);
  }
  return t;
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

// Classes as trie-order index lists (ascending), for one token-length window.
struct RawClasses {
  std::vector<uint32_t> acc, unc;
  std::vector<std::vector<uint32_t>> site_acc, site_unc;  // per return site; empty if unc is
};

// Adds `part` (another window of the same node's rule) to `into`.
void merge_into(RawClasses& into, const RawClasses& part) {
  auto add = [](std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
    if (b.empty()) return;
    const size_t mid = a.size();
    a.insert(a.end(), b.begin(), b.end());
    std::inplace_merge(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(mid), a.end());
  };
  add(into.acc, part.acc);
  add(into.unc, part.unc);
  if (part.site_acc.empty()) return;
  if (into.site_acc.empty()) {
    into.site_acc.resize(part.site_acc.size());
    into.site_unc.resize(part.site_unc.size());
  }
  for (size_t j = 0; j < part.site_acc.size(); ++j) {
    add(into.site_acc[j], part.site_acc[j]);
    add(into.site_unc[j], part.site_unc[j]);
  }
}

TokenSet make_set(const TokenTrie& t, const std::vector<uint32_t>& ks, int32_t vocab_size) {
  std::vector<int32_t> ids;
  ids.reserve(ks.size());
  for (uint32_t k : ks) ids.push_back(t.order[k]);
  return TokenSet::from_unsorted(std::move(ids), vocab_size);
}

UncertainList make_list(const TokenVocabulary& v, const std::vector<uint32_t>& ks) {
  UncertainList l;
  l.index = ks;
  l.lcp.reserve(ks.size());
  std::string_view prev;
  for (uint32_t k : ks) {
    const std::string_view s = v.token_bytes(v.trie().order[k]);
    size_t n = 0;
    while (n < s.size() && n < prev.size() && s[n] == prev[n]) ++n;
    l.lcp.push_back(static_cast<uint16_t>(std::min<size_t>(n, 65535)));
    prev = s;
  }
  return l;
}

// The classes of a node from the parts computed for its token-length windows (disjoint).
NodeClasses finish_classes(const TokenVocabulary& v, const std::vector<uint32_t>& sites,
                           const std::vector<const RawClasses*>& parts) {
  const TokenTrie& t = v.trie();
  // Accepted ids straight into the set (a bitset needs no order); the small lists are merged.
  std::vector<int32_t> ids;
  size_t n = 0;
  for (const RawClasses* p : parts) n += p->acc.size();
  ids.reserve(n);
  for (const RawClasses* p : parts) {
    for (uint32_t k : p->acc) ids.push_back(t.order[k]);
  }
  NodeClasses out;
  out.accepted = TokenSet::from_unsorted(std::move(ids), v.size());
  RawClasses rest;  // the uncertain tokens and their site outcomes
  for (const RawClasses* p : parts) {
    RawClasses u;
    u.unc = p->unc;
    u.site_acc = p->site_acc;
    u.site_unc = p->site_unc;
    merge_into(rest, u);
  }
  out.uncertain = make_list(v, rest.unc);
  if (rest.unc.empty()) return out;
  for (size_t j = 0; j < sites.size(); ++j) {
    SiteClasses sc;
    sc.site = sites[j];
    sc.accepted = make_set(t, rest.site_acc[j], v.size());
    sc.uncertain = make_list(v, rest.site_unc[j]);
    out.sites.push_back(std::move(sc));
  }
  return out;
}

// Outcomes of tokens, sparse: (trie-order index, kUnc or kAcc), ascending; absent is kRej. Most
// tokens are rejected at most places, so the work follows what a walk reaches, not how many
// tokens lie below an escape point.
using Outcomes = std::vector<std::pair<uint32_t, uint8_t>>;

// a = max(a, b) token by token ("some path accepts").
void merge_max(Outcomes& a, const Outcomes& b) {
  if (b.empty()) return;
  if (a.empty()) {
    a = b;
    return;
  }
  Outcomes out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].first < a[i].first) {
      out.push_back(b[j++]);
    } else {
      out.push_back({a[i].first, std::max(a[i].second, b[j].second)});
      ++i;
      ++j;
    }
  }
  a.swap(out);
}

class Classifier {
 public:
  Classifier(const Automaton& a, const TokenVocabulary& v, int follow_depth, uint64_t max_moves)
      : a_(a), v_(v), t_(v.trie()), stepper_(a), depth_(std::max(0, follow_depth)), max_moves_(max_moves) {
    const size_t levels = static_cast<size_t>(depth_) + 2;
    states_.resize(levels);
    for (auto& st : states_) st.resize(v.max_token_bytes() + 2);
    starts_.resize(levels);
    events_.resize(levels);
    token_len_.resize(t_.order.size());
    for (uint32_t i = 0; i < t_.num_nodes(); ++i) {
      for (uint32_t k = t_.first_token[i]; k < t_.first_token[i + 1]; ++k) token_len_[k] = t_.depth[i];
    }
  }

  // Classifies the tokens whose length is in (lo, hi] for a frame at node p.
  RawClasses classify(uint32_t p, uint32_t lo, uint32_t hi) {
    lo_ = lo;
    hi_ = hi;
    pool_.clear();
    StateBuf start;
    start.tops.push_back(pool_.intern(p, kUnknownFrame));
    std::vector<uint32_t>& events = events_[0];
    events.clear();
    Outcomes main;
    walk(0, start, 0, main, events);
    RawClasses out;
    // A token read without ending p's rule (or ending it exactly at its last byte) is accepted
    // whatever the stack.
    out.acc.reserve(main.size());
    for (const auto& [k, v] : main) out.acc.push_back(k);
    if (events.empty()) return out;

    // Tokens that end p's rule with bytes left: their outcome at each return site of the rule
    // (the real stack has exactly one of them below p's frame).
    const std::vector<uint32_t>& sites = a_.return_sites[a_.nodes[p].rule];
    const size_t n = sites.size();
    std::vector<Outcomes> per(n);
    for (size_t j = 0; j < n; ++j) {
      for (uint32_t e : events) merge_max(per[j], site_results(0, sites[j], e, depth_));
    }
    std::vector<uint32_t> candidates;
    for (const Outcomes& o : per) {
      for (const auto& [k, v] : o) candidates.push_back(k);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::vector<size_t> at(n, 0);
    std::vector<uint8_t> value(n);
    size_t m = 0;  // position in main (sorted), to skip tokens already accepted
    out.site_acc.resize(n);
    out.site_unc.resize(n);
    for (uint32_t k : candidates) {
      while (m < main.size() && main[m].first < k) ++m;
      if (m < main.size() && main[m].first == k) continue;
      size_t accepted = 0;
      for (size_t j = 0; j < n; ++j) {
        while (at[j] < per[j].size() && per[j][at[j]].first < k) ++at[j];
        value[j] = at[j] < per[j].size() && per[j][at[j]].first == k ? per[j][at[j]].second : kRej;
        accepted += value[j] == kAcc;
      }
      if (accepted == n) {
        out.acc.push_back(k);
        continue;
      }
      out.unc.push_back(k);
      for (size_t j = 0; j < n; ++j) {
        if (value[j] == kAcc) out.site_acc[j].push_back(k);
        if (value[j] == kUnc) out.site_unc[j].push_back(k);
      }
    }
    std::sort(out.acc.begin(), out.acc.end());
    if (out.unc.empty()) {
      out.site_acc.clear();
      out.site_unc.clear();
    }
    return out;
  }

  uint64_t moves() const { return stepper_.moves(); }

 private:
  // Trie-order indices of the tokens strictly below trie node e.
  std::pair<uint32_t, uint32_t> below(uint32_t e) const {
    return {t_.first_token[e + 1], t_.first_token[t_.next[e]]};
  }
  bool in_window(uint32_t k) const { return token_len_[k] > lo_ && token_len_[k] <= hi_; }

  // Reads every token below trie node c from `start` (the state after c's bytes). Appends
  // (token, kAcc) to `accepted` for each token whose bytes are all read with the stack intact,
  // or with the rule ended exactly at its end, and lists in `events` the trie nodes after which
  // the rule ended (escaped) with tokens below them still to read.
  void walk(int level, const StateBuf& start, uint32_t c, Outcomes& accepted, std::vector<uint32_t>& events) {
    std::vector<StateBuf>& L = states_[static_cast<size_t>(level)];
    L[0].tops = start.tops;
    const uint32_t d0 = t_.depth[c];
    for (uint32_t i = c + 1; i < t_.next[c];) {
      // Only tokens with lengths in the window (lo_, hi_]: skip subtrees that have none.
      if (t_.depth[i] > hi_ || t_.max_below[i] <= lo_) {
        i = t_.next[i];
        continue;
      }
      const uint32_t d = t_.depth[i] - d0;
      StateBuf& s = L[d];
      const StateBuf& prev = L[d - 1];
      stepper_.step(pool_, prev.tops.data(), prev.tops.size(), t_.byte[i], s);
      if (stepper_.moves() > max_moves_) {
        throw Error("grammar too complex to compile: more than " + std::to_string(max_moves_) +
                        " parser moves to classify the vocabulary (limits::kMaxCompileMoves)",
                    ErrorKind::kInvalidArgument);
      }
      if (s.dead()) {
        i = t_.next[i];
        continue;
      }
      if (t_.depth[i] > lo_) {
        for (uint32_t k = t_.first_token[i]; k < t_.first_token[i + 1]; ++k) accepted.push_back({k, kAcc});
      }
      if (s.escaped && t_.has_children(i)) events.push_back(i);
      i = s.tops.empty() ? t_.next[i] : i + 1;
    }
  }

  // Outcomes of the tokens strictly below trie node e when the rule being classified ended
  // right after e's bytes and `site` is the node it returned to (with an unknown stack below).
  Outcomes site_results(int level, uint32_t site, uint32_t e, int budget) {
    const auto [lo, hi] = below(e);
    if (lo == hi || site == kAcceptSite) return {};  // nothing may follow the end of the input
    const size_t next = static_cast<size_t>(level) + 1;
    StateBuf& s0 = starts_[next];
    stepper_.expand(pool_, site, kUnknownFrame, s0);
    std::vector<uint32_t>& events = events_[next];
    events.clear();
    Outcomes out;
    walk(level + 1, s0, e, out, events);
    if (s0.escaped) events.push_back(e);  // the site's rule can end at once, too
    merge_max(out, resolve_forall(level + 1, a_.nodes[site].rule, events, budget - 1));
    return out;
  }

  // For tokens below each escape point: the outcome after `rule` ended there, combined over
  // all of its return sites (the stack below is unknown, so only agreement decides).
  Outcomes resolve_forall(int level, uint32_t rule, const std::vector<uint32_t>& events, int budget) {
    Outcomes total;
    const std::vector<uint32_t>& sites = a_.return_sites[rule];
    for (uint32_t e : events) {
      const auto [lo, hi] = below(e);
      if (lo == hi) continue;
      if (budget <= 0) {  // no deeper: whatever is left to read is uncertain
        Outcomes u;
        for (uint32_t k = lo; k < hi; ++k) {
          if (in_window(k)) u.push_back({k, kUnc});
        }
        merge_max(total, u);
        continue;
      }
      // ACC where every site accepts, REJ where every site rejects (absent), else UNC.
      std::vector<std::pair<uint32_t, uint8_t>> all;
      for (uint32_t q : sites) {
        const Outcomes o = site_results(level, q, e, budget);
        all.insert(all.end(), o.begin(), o.end());
      }
      std::sort(all.begin(), all.end());
      Outcomes comb;
      for (size_t i = 0; i < all.size();) {
        size_t j = i, accepted = 0;
        for (; j < all.size() && all[j].first == all[i].first; ++j) accepted += all[j].second == kAcc;
        comb.push_back({all[i].first, accepted == sites.size() ? kAcc : kUnc});
        i = j;
      }
      merge_max(total, comb);
    }
    return total;
  }

  const Automaton& a_;
  const TokenVocabulary& v_;
  const TokenTrie& t_;
  FramePool pool_;
  Stepper stepper_;
  int depth_;
  uint64_t max_moves_;
  std::vector<std::vector<StateBuf>> states_;  // [level][depth below the walk's start]
  std::vector<StateBuf> starts_;               // [level]
  std::vector<std::vector<uint32_t>> events_;  // [level]
  std::vector<uint16_t> token_len_;            // trie-order index -> token length
  uint32_t lo_ = 0, hi_ = UINT32_MAX;  // the token-length window of the current classify()
};

}  // namespace

ClassifiedNodes classify_tokens(const Automaton& a, const TokenVocabulary& vocab, const ClassifyOptions& options) {
  ClassifiedNodes out;
  out.node_class.assign(a.nodes.size(), UINT32_MAX);
  std::vector<uint32_t> todo;
  for (uint32_t n = 0; n < a.nodes.size(); ++n) {
    if (a.nodes[n].has_bytes()) todo.push_back(n);
  }
  if (vocab.trie().order.empty() || todo.empty()) return out;

  // Nodes whose classes for every tier agree share one result ("signature"); a tier class
  // that several signatures have is classified once and shared (see node_equivalence.h).
  const TierPlan plan = plan_tiers(a, vocab.max_token_bytes());
  const size_t tiers = plan.bounds.size();
  std::map<std::vector<uint32_t>, uint32_t> sig_index;
  std::vector<uint32_t> sig_rep;  // signature -> a node that has it
  std::vector<std::vector<uint32_t>> sig_classes;
  for (uint32_t n : todo) {
    std::vector<uint32_t> sig(tiers);
    for (size_t t = 0; t < tiers; ++t) sig[t] = plan.class_of[t][n];
    auto [it, inserted] = sig_index.emplace(sig, static_cast<uint32_t>(sig_rep.size()));
    if (inserted) {
      sig_rep.push_back(n);
      sig_classes.push_back(sig);
    }
    out.node_class[n] = it->second;
  }
  // Work: one job per shared (tier, class), one per run of consecutive unshared tiers.
  struct Job {
    uint32_t node, lo, hi;
    RawClasses result;
  };
  std::vector<Job> jobs;
  std::vector<std::map<uint32_t, uint32_t>> uses(tiers), shared_job(tiers);  // tier class -> count / job
  for (const auto& sig : sig_classes) {
    for (size_t t = 0; t < tiers; ++t) ++uses[t][sig[t]];
  }
  std::vector<std::vector<uint32_t>> sig_jobs(sig_rep.size());
  for (uint32_t s = 0; s < sig_rep.size(); ++s) {
    size_t t = 0;
    while (t < tiers) {
      const uint32_t lo = t == 0 ? 0 : plan.bounds[t - 1];
      if (uses[t][sig_classes[s][t]] > 1) {
        auto [it, inserted] = shared_job[t].emplace(sig_classes[s][t], static_cast<uint32_t>(jobs.size()));
        if (inserted) jobs.push_back({sig_rep[s], lo, plan.bounds[t], {}});
        sig_jobs[s].push_back(it->second);
        ++t;
        continue;
      }
      size_t end = t;
      while (end + 1 < tiers && uses[end + 1][sig_classes[s][end + 1]] == 1) ++end;
      sig_jobs[s].push_back(static_cast<uint32_t>(jobs.size()));
      jobs.push_back({sig_rep[s], lo, plan.bounds[end], {}});
      t = end + 1;
    }
  }
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> moves{0};
  auto work = [&](int, int64_t, int64_t) {
    Classifier c(a, vocab, options.follow_depth, options.max_moves);
    for (size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) {
      jobs[i].result = c.classify(jobs[i].node, jobs[i].lo, jobs[i].hi);
    }
    moves += c.moves();
  };
  if (options.pool != nullptr && options.pool->num_threads() > 1 && jobs.size() > 1) {
    // One chunk per thread; each takes jobs from the shared counter (their costs differ a lot).
    options.pool->parallel_for(options.pool->num_threads(), work, 1);
  } else {
    work(0, 0, 1);
  }
  out.classes.reserve(sig_rep.size());
  for (uint32_t s = 0; s < sig_rep.size(); ++s) {
    std::vector<const RawClasses*> parts;
    for (uint32_t j : sig_jobs[s]) parts.push_back(&jobs[j].result);
    out.classes.push_back(finish_classes(vocab, a.return_sites[a.nodes[sig_rep[s]].rule], parts));
  }
  out.walks = jobs.size();
  out.moves = moves.load();
  return out;
}

}  // namespace vllm::structured::detail
