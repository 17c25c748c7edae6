#include "vllm/structured/token_classes.h"

#include <cstdint>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

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

// Classes as trie-order index lists (ascending), for one token-length window. Return sites
// whose outcomes agree share a group (a grammar's `char` or `ws` rule can have hundreds of
// sites, most of them alike).
struct RawClasses {
  std::vector<uint32_t> acc, unc;
  std::vector<uint32_t> site_group;  // per return site: index into group_acc / group_unc; empty if unc is
  std::vector<std::vector<uint32_t>> group_acc, group_unc;
};

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

// The union of sorted index lists whose ranges are disjoint (token-length windows), sorted.
std::vector<uint32_t> join_sorted(const std::vector<const std::vector<uint32_t>*>& lists) {
  std::vector<uint32_t> out;
  size_t n = 0;
  for (const auto* l : lists) n += l->size();
  out.reserve(n);
  for (const auto* l : lists) out.insert(out.end(), l->begin(), l->end());
  std::sort(out.begin(), out.end());
  return out;
}

// The classes of a node from the parts computed for its token-length windows (disjoint).
NodeClasses finish_classes(const TokenVocabulary& v, const std::vector<uint32_t>& sites,
                           const std::vector<const RawClasses*>& parts) {
  const TokenTrie& t = v.trie();
  // Accepted ids straight into the set (a bitset needs no order).
  std::vector<int32_t> ids;
  size_t n = 0;
  for (const RawClasses* p : parts) n += p->acc.size();
  ids.reserve(n);
  for (const RawClasses* p : parts) {
    for (uint32_t k : p->acc) ids.push_back(t.order[k]);
  }
  NodeClasses out;
  out.accepted = TokenSet::from_unsorted(std::move(ids), v.size());
  std::vector<const std::vector<uint32_t>*> lists;
  for (const RawClasses* p : parts) lists.push_back(&p->unc);
  out.uncertain = make_list(v, join_sorted(lists));
  if (out.uncertain.empty()) return out;
  // A site's classes join its group of each part; sites with the same groups in every part get
  // equal classes, built once.
  std::map<std::vector<uint32_t>, size_t> built;  // groups per part -> index into out.sites
  for (size_t j = 0; j < sites.size(); ++j) {
    std::vector<uint32_t> key;
    for (const RawClasses* p : parts) key.push_back(p->site_group.empty() ? UINT32_MAX : p->site_group[j]);
    SiteClasses sc;
    auto it = built.find(key);
    if (it != built.end()) {
      sc = out.sites[it->second];
    } else {
      std::vector<const std::vector<uint32_t>*> acc, unc;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (key[i] == UINT32_MAX) continue;
        acc.push_back(&parts[i]->group_acc[key[i]]);
        unc.push_back(&parts[i]->group_unc[key[i]]);
      }
      sc.accepted = make_set(t, join_sorted(acc), v.size());
      sc.uncertain = make_list(v, join_sorted(unc));
      built.emplace(std::move(key), j);
    }
    sc.site = sites[j];
    out.sites.push_back(std::move(sc));
  }
  return out;
}

// Outcomes of tokens, sparse: (trie-order index, kUnc or kAcc), ascending; absent is kRej. Most
// tokens are rejected at most places, so the work follows what a walk reaches, not how many
// tokens lie below an escape point.
using Outcomes = std::vector<std::pair<uint32_t, uint8_t>>;
using SharedOutcomes = std::shared_ptr<const Outcomes>;

// Collects outcome lists and joins them with max per token ("some path accepts"). Lists below
// escape points come in trie preorder, so they are mostly disjoint and ascending: appending
// is then the whole join, and only nested escape points (a rule that can end after "a" and
// after "ab") need a sort. (Merging each list into a growing result instead is quadratic in the
// number of escape points: a `char` rule escapes after every character of the vocabulary.)
class OutcomeJoin {
 public:
  void add(const Outcomes& o) {
    if (o.empty()) return;
    if (!v_.empty() && o.front().first <= v_.back().first) sorted_ = false;
    v_.insert(v_.end(), o.begin(), o.end());
  }
  void add(uint32_t k, uint8_t value) {
    if (!v_.empty() && k <= v_.back().first) sorted_ = false;
    v_.push_back({k, value});
  }
  Outcomes take() {
    if (!sorted_) {
      std::sort(v_.begin(), v_.end());
      size_t w = 0;
      for (size_t i = 0; i < v_.size(); ++i) {
        if (w > 0 && v_[w - 1].first == v_[i].first) {
          v_[w - 1].second = std::max(v_[w - 1].second, v_[i].second);
        } else {
          v_[w++] = v_[i];
        }
      }
      v_.resize(w);
    }
    sorted_ = true;
    return std::move(v_);
  }

 private:
  Outcomes v_;
  bool sorted_ = true;
};

class Classifier {
 public:
  Classifier(const Automaton& a, const TokenVocabulary& v, const TierPlan& plan, int follow_depth, uint64_t max_moves)
      : a_(a), t_(v.trie()), plan_(plan), stepper_(a), depth_(std::max(0, follow_depth)), max_moves_(max_moves) {
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
    // (the real stack has exactly one of them below p's frame). Each site's outcome is one
    // shared list per escape point; sites with the same lists form a group, combined once.
    const std::vector<uint32_t>& sites = a_.return_sites[a_.nodes[p].rule];
    const std::vector<uint32_t> escapes(events);  // events_[0] is reused below
    std::vector<SharedOutcomes> held;
    std::map<std::vector<const Outcomes*>, uint32_t> group_of;
    std::vector<std::vector<const Outcomes*>> group_parts;
    out.site_group.resize(sites.size());
    for (size_t j = 0; j < sites.size(); ++j) {
      std::vector<const Outcomes*> parts;
      for (uint32_t e : escapes) {
        SharedOutcomes o = site_results(0, sites[j], e, depth_);
        if (o->empty()) continue;
        parts.push_back(o.get());
        held.push_back(std::move(o));
      }
      auto [it, inserted] = group_of.emplace(parts, static_cast<uint32_t>(group_parts.size()));
      if (inserted) group_parts.push_back(std::move(parts));
      out.site_group[j] = it->second;
    }
    const size_t n = group_parts.size();
    std::vector<Outcomes> per(n);
    for (size_t g = 0; g < n; ++g) {
      OutcomeJoin join;
      for (const Outcomes* o : group_parts[g]) join.add(*o);
      per[g] = join.take();
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
    out.group_acc.resize(n);
    out.group_unc.resize(n);
    for (uint32_t k : candidates) {
      while (m < main.size() && main[m].first < k) ++m;
      if (m < main.size() && main[m].first == k) continue;
      size_t accepted = 0;
      for (size_t g = 0; g < n; ++g) {
        while (at[g] < per[g].size() && per[g][at[g]].first < k) ++at[g];
        value[g] = at[g] < per[g].size() && per[g][at[g]].first == k ? per[g][at[g]].second : kRej;
        accepted += value[g] == kAcc;
      }
      if (accepted == n) {
        out.acc.push_back(k);
        continue;
      }
      out.unc.push_back(k);
      for (size_t g = 0; g < n; ++g) {
        if (value[g] == kAcc) out.group_acc[g].push_back(k);
        if (value[g] == kUnc) out.group_unc[g].push_back(k);
      }
    }
    std::sort(out.acc.begin(), out.acc.end());
    if (out.unc.empty()) {
      out.site_group.clear();
      out.group_acc.clear();
      out.group_unc.clear();
    }
    return out;
  }

  uint64_t moves() const { return stepper_.moves(); }
  uint64_t site_walks() const { return site_walks_; }

 private:
  struct MemoKey {
    uint32_t lo, hi;
    uint64_t site;
    uint32_t e;
    int budget;
    bool operator==(const MemoKey&) const = default;
  };
  struct MemoHash {
    size_t operator()(const MemoKey& k) const {
      return FramePool::mix(k.site ^ FramePool::mix((uint64_t{k.e} << 32) ^ (uint64_t{k.lo} << 20) ^
                                                    (uint64_t{k.hi} << 8) ^ static_cast<uint64_t>(k.budget)));
    }
  };
  struct WalkResult {
    Outcomes accepted;
    std::vector<uint32_t> events;
  };
  void remember_walk(const MemoKey& key, std::shared_ptr<const WalkResult> w) {
    memo_entries_ += w->accepted.size() + w->events.size() / 2 + 8;
    if (memo_entries_ > kMemoEntries) clear_memos();
    walk_memo_.emplace(key, std::move(w));
  }
  void clear_memos() {
    memo_.clear();
    walk_memo_.clear();
    memo_entries_ = 0;
  }

  // Trie-order indices of the tokens strictly below trie node e.
  std::pair<uint32_t, uint32_t> below(uint32_t e) const {
    return {t_.first_token[e + 1], t_.first_token[t_.next[e]]};
  }
  bool in_window(uint32_t k) const { return token_len_[k] > lo_ && token_len_[k] <= hi_; }

  // Reads every token below trie node c from `start` (the state after c's bytes). Appends
  // (token, kAcc) to `accepted` for each token whose bytes are all read with the stack intact,
  // or with the rule ended exactly at its end, and lists in `events` the trie nodes after which
  // the rule ended (escaped) with tokens below them still to read.
  //
  // Near the top of the walk, a state that is one frame of the walk's own rule (nothing pushed)
  // at a node X gives the same results below trie node i as at any node with X's future: those
  // results are memoised. Most walks pass through such states after a byte or two (a key's
  // prefix in a trie of property names, left for the string loop after any other character;
  // a value's start node, left for the rest of a number), so a vocabulary-wide subtree is read
  // once per class of such nodes instead of once per node.
  void walk(int level, const StateBuf& start, uint32_t c, Outcomes& accepted, std::vector<uint32_t>& events) {
    std::vector<StateBuf>& L = states_[static_cast<size_t>(level)];
    L[0].tops = start.tops;
    const uint32_t d0 = t_.depth[c];
    struct Pending {
      MemoKey key;
      uint32_t end;  // one past the subtree
      size_t acc_from, events_from;
    };
    Pending pending[kWalkMemoDepth];
    int npending = 0;
    auto finish = [&](uint32_t i) {
      while (npending > 0 && i >= pending[npending - 1].end) {
        const Pending& p = pending[--npending];
        auto w = std::make_shared<WalkResult>();
        w->accepted.assign(accepted.begin() + static_cast<std::ptrdiff_t>(p.acc_from), accepted.end());
        w->events.assign(events.begin() + static_cast<std::ptrdiff_t>(p.events_from), events.end());
        remember_walk(p.key, std::move(w));
      }
    };
    for (uint32_t i = c + 1; i < t_.next[c];) {
      finish(i);
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
      if (s.tops.empty()) {
        i = t_.next[i];
        continue;
      }
      if (d <= kWalkMemoDepth && s.tops.size() == 1 && pool_.parent(s.tops[0]) == kUnknownFrame &&
          t_.next[i] - i > kWalkMemoMinSubtree) {
        const MemoKey key{lo_, hi_, future_key(pool_.node(s.tops[0]), i), i, kWalkMarker};
        auto found = walk_memo_.find(key);
        if (found != walk_memo_.end()) {
          accepted.insert(accepted.end(), found->second->accepted.begin(), found->second->accepted.end());
          events.insert(events.end(), found->second->events.begin(), found->second->events.end());
          i = t_.next[i];
          continue;
        }
        pending[npending++] = {key, t_.next[i], accepted.size(), events.size()};
      }
      ++i;
    }
    finish(UINT32_MAX);
  }

  // Which nodes give the same outcomes below trie node e: those whose futures agree over the
  // bytes left to read there (node_equivalence.h: same rule, so the same return sites too).
  // The key is (tier, class) of the first tier whose level covers those bytes.
  uint64_t future_key(uint32_t site, uint32_t e) const {
    const uint32_t longest = std::min<uint32_t>(hi_, t_.max_below[e]);
    const uint32_t need = longest > t_.depth[e] ? longest - t_.depth[e] : 0;
    size_t t = 0;
    while (t + 1 < plan_.bounds.size() && plan_.bounds[t] - 1 < need) ++t;
    return (uint64_t{t} << 32) | plan_.future[t][site];
  }

  // Outcomes of the tokens strictly below trie node e when the rule being classified ended
  // right after e's bytes and `site` is the node it returned to (with an unknown stack below).
  // Memoised by (window, the site's class, e, budget): every node of a rule escapes at the same
  // trie nodes into the same sites (each node of `ws`, each of a `char` rule's callers).
  SharedOutcomes site_results(int level, uint32_t site, uint32_t e, int budget) {
    const auto [lo, hi] = below(e);
    if (lo == hi || site == kAcceptSite) return empty_;  // nothing may follow the end of the input
    const MemoKey key{lo_, hi_, future_key(site, e), e, budget};
    auto found = memo_.find(key);
    if (found != memo_.end()) return found->second;
    ++site_walks_;
    const size_t next = static_cast<size_t>(level) + 1;
    StateBuf& s0 = starts_[next];
    stepper_.expand(pool_, site, kUnknownFrame, s0);
    std::vector<uint32_t>& events = events_[next];
    events.clear();
    Outcomes out;
    walk(level + 1, s0, e, out, events);
    if (s0.escaped) events.push_back(e);  // the site's rule can end at once, too
    const Outcomes rest = resolve_forall(level + 1, a_.nodes[site].rule, events, budget - 1);
    OutcomeJoin join;
    join.add(out);
    join.add(rest);
    auto result = std::make_shared<const Outcomes>(join.take());
    memo_entries_ += result->size() + 8;
    if (memo_entries_ > kMemoEntries) clear_memos();  // bounded memory: start over
    memo_.emplace(key, result);
    return result;
  }

  // For tokens below each escape point: the outcome after `rule` ended there, combined over
  // all of its return sites (the stack below is unknown, so only agreement decides). Sites
  // with equal futures there are one site.
  Outcomes resolve_forall(int level, uint32_t rule, const std::vector<uint32_t>& events, int budget) {
    OutcomeJoin total;
    const std::vector<uint32_t>& sites = a_.return_sites[rule];
    std::vector<std::pair<uint64_t, uint32_t>> reps;  // (key, site)
    std::vector<std::pair<uint32_t, uint8_t>> all;
    for (uint32_t e : events) {
      const auto [lo, hi] = below(e);
      if (lo == hi) continue;
      if (budget <= 0) {  // no deeper: whatever is left to read is uncertain
        for (uint32_t k = lo; k < hi; ++k) {
          if (in_window(k)) total.add(k, kUnc);
        }
        continue;
      }
      reps.clear();
      for (uint32_t q : sites) reps.push_back({q == kAcceptSite ? UINT64_MAX : future_key(q, e), q});
      std::sort(reps.begin(), reps.end());
      reps.erase(std::unique(reps.begin(), reps.end(), [](const auto& x, const auto& y) { return x.first == y.first; }),
                 reps.end());
      // ACC where every site accepts, REJ where every site rejects (absent), else UNC.
      all.clear();
      for (const auto& [k, q] : reps) {
        const SharedOutcomes o = site_results(level, q, e, budget);
        all.insert(all.end(), o->begin(), o->end());
      }
      std::sort(all.begin(), all.end());
      for (size_t i = 0; i < all.size();) {
        size_t j = i, accepted = 0;
        for (; j < all.size() && all[j].first == all[i].first; ++j) accepted += all[j].second == kAcc;
        total.add(all[i].first, accepted == reps.size() ? kAcc : kUnc);
        i = j;
      }
    }
    return total.take();
  }

  // Memoised outcome entries kept at most (8 bytes each, plus the lists' overhead).
  static constexpr size_t kMemoEntries = size_t{1} << 22;
  // Walk results are memoised for states this many bytes below the walk's start, over subtrees
  // of more than this many trie nodes (smaller ones cost less to walk than to store).
  static constexpr int kWalkMemoDepth = 2;
  static constexpr uint32_t kWalkMemoMinSubtree = 32;
  static constexpr int kWalkMarker = -1000;  // MemoKey::budget of a walk entry

  const Automaton& a_;
  const TokenTrie& t_;
  const TierPlan& plan_;
  FramePool pool_;
  Stepper stepper_;
  int depth_;
  uint64_t max_moves_;
  std::vector<std::vector<StateBuf>> states_;  // [level][depth below the walk's start]
  std::vector<StateBuf> starts_;               // [level]
  std::vector<std::vector<uint32_t>> events_;  // [level]
  std::vector<uint16_t> token_len_;            // trie-order index -> token length
  uint32_t lo_ = 0, hi_ = UINT32_MAX;  // the token-length window of the current classify()
  uint64_t site_walks_ = 0;
  std::unordered_map<MemoKey, SharedOutcomes, MemoHash> memo_;
  std::unordered_map<MemoKey, std::shared_ptr<const WalkResult>, MemoHash> walk_memo_;
  size_t memo_entries_ = 0;
  const SharedOutcomes empty_ = std::make_shared<const Outcomes>();
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
  if (options.profile != nullptr) options.profile->assign(jobs.size(), {});
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> moves{0};
  auto work = [&](int, int64_t, int64_t) {
    Classifier c(a, vocab, plan, options.follow_depth, options.max_moves);
    for (size_t i = next.fetch_add(1); i < jobs.size(); i = next.fetch_add(1)) {
      const uint64_t m0 = c.moves(), s0 = c.site_walks();
      const auto t0 = std::chrono::steady_clock::now();
      auto record = [&] {
        if (options.profile == nullptr) return;
        (*options.profile)[i] = {jobs[i].node, jobs[i].lo, jobs[i].hi, c.moves() - m0, c.site_walks() - s0,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
      };
      try {
        jobs[i].result = c.classify(jobs[i].node, jobs[i].lo, jobs[i].hi);
      } catch (...) {
        record();  // the walk that ran out of budget is the one a profile most wants to see
        throw;
      }
      record();
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
