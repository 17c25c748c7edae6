#include "vllm/structured/token_classes.h"

#include <cstdint>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
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

// Tokens as runs of consecutive trie-order indices with one outcome. The tokens below a trie
// node are one index range and a walk reports them in order, so what a walk accepts is a few
// long runs: inside a JSON string every token is accepted but those with a quote, a backslash or
// a control byte. Runs keep the work and memory of classification proportional to where the
// outcome changes, not to the size of the vocabulary.
struct Run {
  uint32_t begin, end;  // [begin, end)
  uint8_t value;        // kUnc or kAcc; absent tokens are rejected
};
using Runs = std::vector<Run>;
using SharedRuns = std::shared_ptr<const Runs>;

// Appends [begin, end) with `value`, extending the last run when this continues it.
void append_run(Runs& r, uint32_t begin, uint32_t end, uint8_t value) {
  if (begin >= end) return;
  if (!r.empty() && r.back().end == begin && r.back().value == value) {
    r.back().end = end;
    return;
  }
  r.push_back({begin, end, value});
}

void expand(const Runs& r, std::vector<uint32_t>& out) {
  for (const Run& x : r) {
    for (uint32_t k = x.begin; k < x.end; ++k) out.push_back(k);
  }
}

// Sweeps sorted, disjoint run lists together: calls f(begin, end, values) for each maximal
// segment on which every list's value is constant and some list's value is not kRej
// (values[j] is list j's value there).
template <typename F>
void sweep(const std::vector<const Runs*>& lists, F&& f) {
  const size_t k = lists.size();
  if (k <= 8) {  // a few lists (the usual case): merge them in one pass, no sort
    size_t at[8] = {};
    uint8_t values[8];
    uint32_t pos = UINT32_MAX;
    for (size_t j = 0; j < k; ++j) {
      if (!lists[j]->empty()) pos = std::min(pos, lists[j]->front().begin);
    }
    while (pos != UINT32_MAX) {
      uint32_t next = UINT32_MAX;
      size_t live = 0;
      for (size_t j = 0; j < k; ++j) {
        values[j] = kRej;
        if (at[j] == lists[j]->size()) continue;
        const Run& r = (*lists[j])[at[j]];
        if (r.begin <= pos) {
          values[j] = r.value;
          next = std::min(next, r.end);
          ++live;
        } else {
          next = std::min(next, r.begin);
        }
      }
      if (live > 0) f(pos, next, values);
      pos = next;
      for (size_t j = 0; j < k; ++j) {
        if (at[j] < lists[j]->size() && (*lists[j])[at[j]].end <= pos) ++at[j];
      }
    }
    return;
  }
  struct Edge {
    uint32_t pos;
    uint32_t list;
    uint8_t value;  // the list's value from pos on
    bool operator<(const Edge& o) const {
      // At one position a run's end comes before the next run's start.
      return pos != o.pos ? pos < o.pos : value < o.value;
    }
  };
  std::vector<Edge> edges;
  for (uint32_t j = 0; j < lists.size(); ++j) {
    for (const Run& x : *lists[j]) {
      edges.push_back({x.begin, j, x.value});
      edges.push_back({x.end, j, kRej});
    }
  }
  std::sort(edges.begin(), edges.end());
  std::vector<uint8_t> values(lists.size(), kRej);
  size_t live = 0;
  for (size_t i = 0; i < edges.size();) {
    const uint32_t pos = edges[i].pos;
    for (; i < edges.size() && edges[i].pos == pos; ++i) {
      uint8_t& v = values[edges[i].list];
      live -= v != kRej;
      v = edges[i].value;
      live += v != kRej;
    }
    if (live > 0 && i < edges.size()) f(pos, edges[i].pos, values.data());
  }
}

// Joins run lists with max per token ("some path accepts"). Lists below escape points come in
// trie preorder, so they are mostly disjoint and ascending and are just appended; nested escape
// points (a rule that can end after "a" and after "ab") need a sweep. (Merging each list into a
// growing result instead is quadratic in the escape points: a `char` rule escapes after every
// character of the vocabulary.)
class RunJoin {
 public:
  void add(const Runs& r) {
    for (const Run& x : r) add(x);
  }
  void add(const Run& x) {
    if (!v_.empty() && x.begin < v_.back().end) sorted_ = false;
    if (sorted_) {
      append_run(v_, x.begin, x.end, x.value);
    } else {
      v_.push_back(x);
    }
  }
  Runs take() {
    if (sorted_) return std::move(v_);
    // Sweep over the run boundaries, counting the runs of each value that cover a segment.
    struct Edge {
      uint32_t pos;
      int8_t delta;
      uint8_t value;
    };
    std::vector<Edge> edges;
    edges.reserve(v_.size() * 2);
    for (const Run& x : v_) {
      edges.push_back({x.begin, 1, x.value});
      edges.push_back({x.end, -1, x.value});
    }
    std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) { return a.pos < b.pos; });
    int count[3] = {0, 0, 0};
    Runs out;
    for (size_t i = 0; i < edges.size();) {
      const uint32_t pos = edges[i].pos;
      for (; i < edges.size() && edges[i].pos == pos; ++i) count[edges[i].value] += edges[i].delta;
      if (i == edges.size()) break;
      const uint8_t m = count[kAcc] > 0 ? kAcc : count[kUnc] > 0 ? kUnc : kRej;
      if (m != kRej) append_run(out, pos, edges[i].pos, m);
    }
    v_.clear();
    sorted_ = true;
    return out;
  }

 private:
  Runs v_;
  bool sorted_ = true;
};

// Appends to `out` the join (max per token) of two sorted, disjoint run lists, in one pass
// (both start past the end of `out`).
void merge_runs(const Runs& a, const Runs& b, Runs& out) {
  size_t i = 0, j = 0;
  uint32_t pos = 0;  // everything before pos is written
  while (i < a.size() || j < b.size()) {
    // The next boundary: the start or end of the current run of each list.
    const Run* x = i < a.size() ? &a[i] : nullptr;
    const Run* y = j < b.size() ? &b[j] : nullptr;
    uint32_t start = UINT32_MAX;
    if (x) start = std::min(start, std::max(pos, x->begin));
    if (y) start = std::min(start, std::max(pos, y->begin));
    const uint8_t vx = x && x->begin <= start ? x->value : kRej;
    const uint8_t vy = y && y->begin <= start ? y->value : kRej;
    uint32_t end = UINT32_MAX;
    if (x) end = std::min(end, x->begin > start ? x->begin : x->end);
    if (y) end = std::min(end, y->begin > start ? y->begin : y->end);
    append_run(out, start, end, std::max(vx, vy));
    pos = end;
    if (x && x->end <= pos) ++i;
    if (y && y->end <= pos) ++j;
  }
}

// Classes for one token-length window, as runs (values unused). Return sites whose outcomes
// agree share a group (a grammar's `char` or `ws` rule can have hundreds of sites, most alike).
struct RawClasses {
  Runs acc, unc;
  std::vector<uint32_t> site_group;  // per return site: index into group_acc / group_unc; empty if unc is
  std::vector<Runs> group_acc, group_unc;
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

// The indices in run lists of disjoint ranges (token-length windows), ascending.
std::vector<uint32_t> join_sorted(const std::vector<const Runs*>& lists) {
  std::vector<uint32_t> out;
  for (const Runs* l : lists) expand(*l, out);
  std::sort(out.begin(), out.end());
  return out;
}

// The classes of a node from the parts computed for its token-length windows (disjoint).
NodeClasses finish_classes(const TokenVocabulary& v, const std::vector<uint32_t>& sites,
                           const std::vector<const RawClasses*>& parts) {
  const TokenTrie& t = v.trie();
  // Accepted ids straight into the set (a bitset needs no order).
  std::vector<int32_t> ids;
  for (const RawClasses* p : parts) {
    for (const Run& x : p->acc) {
      for (uint32_t k = x.begin; k < x.end; ++k) ids.push_back(t.order[k]);
    }
  }
  NodeClasses out;
  out.accepted = TokenSet::from_unsorted(std::move(ids), v.size());
  std::vector<const Runs*> lists;
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
      std::vector<const Runs*> acc, unc;
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

class Classifier {
 public:
  Classifier(const Automaton& a, const TokenVocabulary& v, const TierPlan& plan, int follow_depth, uint64_t max_moves)
      : a_(a), v_(v), t_(v.trie()), plan_(plan), stepper_(a), depth_(std::max(0, follow_depth)), max_moves_(max_moves),
        max_len_(v.max_token_bytes()) {
    const size_t levels = static_cast<size_t>(depth_) + 2;
    starts_.resize(levels);
    events_.resize(levels);
    body_states_.resize(max_len_ + 2);
    body_edge_.resize(a.byte_edges.size());
    for (size_t k = 0; k < a.byte_edges.size(); ++k) body_edge_[k] = is_body_edge(a, a.byte_edges[k]);
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
    Runs main;
    walk(start, 0, main, events);
    RawClasses out;
    // A token read without ending p's rule (or ending it exactly at its last byte) is accepted
    // whatever the stack.
    if (events.empty()) {
      out.acc = std::move(main);
      return out;
    }

    // Tokens that end p's rule with bytes left: their outcome at each return site of the rule
    // (the real stack has exactly one of them below p's frame). Each site's outcome is one
    // shared list per escape point; sites with the same lists form a group, combined once.
    const std::vector<uint32_t>& sites = a_.return_sites[a_.nodes[p].rule];
    const std::vector<uint32_t> escapes(events);
    // Sites whose futures agree at every tier the escapes need get the same results: first
    // one class per such tuple of future classes, then one group per distinct list of results.
    std::vector<size_t> tiers;
    for (uint32_t e : escapes) tiers.push_back(tier_for(e));
    std::sort(tiers.begin(), tiers.end());
    tiers.erase(std::unique(tiers.begin(), tiers.end()), tiers.end());
    std::map<std::vector<uint32_t>, uint32_t> class_of;
    std::vector<uint32_t> site_class(sites.size()), class_group;
    std::vector<uint32_t> key;
    std::vector<SharedRuns> held;
    std::map<std::vector<const Runs*>, uint32_t> group_of;
    std::vector<std::vector<const Runs*>> group_parts;
    for (size_t j = 0; j < sites.size(); ++j) {
      key.clear();
      for (size_t t : tiers) key.push_back(sites[j] == kAcceptSite ? UINT32_MAX : plan_.future[t][sites[j]]);
      auto [c, new_class] = class_of.emplace(key, static_cast<uint32_t>(class_group.size()));
      site_class[j] = c->second;
      if (!new_class) continue;
      std::vector<const Runs*> parts;
      for (uint32_t e : escapes) {
        SharedRuns o = site_results(0, sites[j], e, depth_);
        if (o->empty()) continue;
        parts.push_back(o.get());
        held.push_back(std::move(o));
      }
      auto [g, new_group] = group_of.emplace(parts, static_cast<uint32_t>(group_parts.size()));
      if (new_group) group_parts.push_back(std::move(parts));
      class_group.push_back(g->second);
    }
    out.site_group.resize(sites.size());
    for (size_t j = 0; j < sites.size(); ++j) out.site_group[j] = class_group[site_class[j]];
    const size_t n = group_parts.size();
    std::vector<Runs> per(n);
    for (size_t g = 0; g < n; ++g) {
      RunJoin join;
      for (const Runs* o : group_parts[g]) join.add(*o);
      per[g] = join.take();
    }
    // Tokens not accepted by the walk: accepted if every group accepts them, else uncertain
    // with each group's outcome kept for the runtime.
    std::vector<const Runs*> lists{&main};
    for (const Runs& r : per) lists.push_back(&r);
    Runs extra;
    out.group_acc.resize(n);
    out.group_unc.resize(n);
    sweep(lists, [&](uint32_t b, uint32_t e, const uint8_t* values) {
      if (values[0] == kAcc) return;
      size_t accepted = 0;
      for (size_t g = 0; g < n; ++g) accepted += values[g + 1] == kAcc;
      if (accepted == n) {
        append_run(extra, b, e, kAcc);
        return;
      }
      append_run(out.unc, b, e, kUnc);
      for (size_t g = 0; g < n; ++g) {
        if (values[g + 1] == kAcc) append_run(out.group_acc[g], b, e, kAcc);
        if (values[g + 1] == kUnc) append_run(out.group_unc[g], b, e, kUnc);
      }
    });
    RunJoin acc;
    acc.add(main);
    acc.add(extra);
    out.acc = acc.take();
    if (out.unc.empty()) {
      out.site_group.clear();
      out.group_acc.clear();
      out.group_unc.clear();
    }
    return out;
  }

  uint64_t moves() const { return stepper_.moves() + body_moves_; }
  uint64_t site_walks() const { return site_walks_; }

 private:
  struct SiteKey {
    uint64_t window;
    uint64_t site;
    uint32_t e;
    int budget;
    bool operator==(const SiteKey&) const = default;
  };
  struct SiteKeyHash {
    size_t operator()(const SiteKey& k) const {
      return FramePool::mix(k.site ^ FramePool::mix((uint64_t{k.e} << 32) ^ (k.window * 0x9E3779B97F4A7C15ull) ^
                                                    static_cast<uint64_t>(k.budget)));
    }
  };
  struct VectorHash {
    size_t operator()(const std::vector<uint64_t>& v) const {
      uint64_t h = v.size();
      for (uint64_t x : v) h = FramePool::mix(h ^ x);
      return static_cast<size_t>(h);
    }
  };
  struct WalkResult {
    Runs accepted;
    std::vector<uint32_t> events;
  };
  // A walk inside a body (see TierPlan::body): the tokens read without leaving it (accepted
  // whatever the context) and the trie nodes whose last byte leaves it (exits), in trie order.
  struct BodyResult {
    Runs accepted;
    std::vector<uint32_t> exits;
  };
  // Scratch of one walk() call. Walks nest (what follows a body exit is walked inside the walk
  // that met the body), so each nesting depth has its own.
  struct WalkScratch {
    std::vector<StateBuf> states;               // [depth below the walk's start]
    std::vector<std::vector<uint32_t>> replay;  // body nodes on the way to the exits
    std::vector<uint32_t> nodes, targets;
    StateBuf exit_state;
  };
  class Nest {
   public:
    explicit Nest(Classifier& c) : c_(c) {
      if (c.scratch_.size() <= c.nest_) {
        WalkScratch& w = c.scratch_.emplace_back();
        w.states.resize(c.max_len_ + 2);
        w.replay.resize(c.max_len_ + 2);
      }
      scratch = &c.scratch_[c.nest_++];
    }
    ~Nest() { --c_.nest_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    WalkScratch* scratch;

   private:
    Classifier& c_;
  };

  void check_moves() const {
    if (moves() > max_moves_) {
      throw Error("grammar too complex to compile: more than " + std::to_string(max_moves_) +
                      " parser moves to classify the vocabulary (limits::kMaxCompileMoves)",
                  ErrorKind::kInvalidArgument);
    }
  }

  // Trie-order indices of the tokens strictly below trie node e.
  std::pair<uint32_t, uint32_t> below(uint32_t e) const {
    return {t_.first_token[e + 1], t_.first_token[t_.next[e]]};
  }

  // Reads every token below trie node c from `start` (the state after c's bytes). Appends to
  // `accepted` each token whose bytes are all read with the stack intact, or with the rule
  // ended exactly at its end, and lists in `events` the trie nodes after which the rule ended
  // (escaped) with tokens below them still to read.
  //
  // Near the top of the walk, what a state reads below trie node i depends only on the futures
  // of its frames' nodes (see walk_key), so it is memoised. Most walks reach such states after a
  // byte or two (a property name's prefix in a trie of names, left for the string loop after any
  // other character; a value's first byte), so a vocabulary-wide subtree is read once per class
  // of states instead of once per node. A state inside a body (a JSON string's content) goes
  // further: its walk is shared by every copy of the body, whatever follows it (walk_body).
  void walk(const StateBuf& start, uint32_t c, Runs& accepted, std::vector<uint32_t>& events) {
    Nest nest(*this);
    WalkScratch& w = *nest.scratch;
    if (t_.next[c] - c > kWalkMemoMinSubtree && body_state(start, c, w.nodes)) {
      walk_body(c, pool_.parent(start.tops[0]), w, accepted, events);
      return;
    }
    std::vector<StateBuf>& L = w.states;
    L[0].tops = start.tops;
    const uint32_t d0 = t_.depth[c];
    struct Pending {
      std::vector<uint64_t> key;
      uint32_t end;          // one past the subtree
      uint32_t first_below;  // its first token
      size_t runs_from, events_from;
    };
    Pending pending[kWalkMemoDepth];
    int npending = 0;
    auto finish = [&](uint32_t i) {
      while (npending > 0 && i >= pending[npending - 1].end) {
        Pending& p = pending[--npending];
        auto r = std::make_shared<WalkResult>();
        // The run before runs_from may have been extended into the subtree.
        for (size_t k = p.runs_from > 0 ? p.runs_from - 1 : 0; k < accepted.size(); ++k) {
          append_run(r->accepted, std::max(accepted[k].begin, p.first_below), accepted[k].end, accepted[k].value);
        }
        r->events.assign(events.begin() + static_cast<std::ptrdiff_t>(p.events_from), events.end());
        memo_entries_ += r->accepted.size() + r->events.size() + 8;
        if (memo_entries_ > kMemoEntries) clear_memos();
        walk_memo_.emplace(std::move(p.key), std::move(r));
      }
    };
    std::vector<uint64_t> key;
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
      check_moves();
      if (s.dead()) {
        i = t_.next[i];
        continue;
      }
      if (t_.depth[i] > lo_) append_run(accepted, t_.first_token[i], t_.first_token[i + 1], kAcc);
      if (s.escaped && t_.has_children(i)) events.push_back(i);
      if (s.tops.empty()) {
        i = t_.next[i];
        continue;
      }
      if (d <= kWalkMemoDepth && t_.next[i] - i > kWalkMemoMinSubtree && body_state(s, i, w.nodes)) {
        walk_body(i, pool_.parent(s.tops[0]), w, accepted, events);
        i = t_.next[i];
        continue;
      }
      if (d <= kWalkMemoDepth && t_.next[i] - i > kWalkMemoMinSubtree && walk_key(s, i, key)) {
        auto found = walk_memo_.find(key);
        if (found != walk_memo_.end()) {
          for (const Run& x : found->second->accepted) append_run(accepted, x.begin, x.end, x.value);
          events.insert(events.end(), found->second->events.begin(), found->second->events.end());
          i = t_.next[i];
          continue;
        }
        pending[npending++] = {key, t_.next[i], t_.first_token[i + 1], accepted.size(), events.size()};
      }
      ++i;
    }
    finish(UINT32_MAX);
  }

  // Whether the state's tops are all body nodes above one parent, each of a body class that
  // other nodes have too (a class of one node, as each copy in a bounded repetition's chain,
  // has nothing to share: the plain walk is cheaper); `nodes` gets those nodes.
  bool body_state(const StateBuf& s, uint32_t i, std::vector<uint32_t>& nodes) const {
    if (s.tops.empty()) return false;
    const uint32_t parent = pool_.parent(s.tops[0]);
    const size_t t = tier_for(i);
    nodes.clear();
    for (uint32_t f : s.tops) {
      const uint32_t n = pool_.node(f);
      if (pool_.parent(f) != parent || !is_body_node(a_.nodes[n]) || plan_.body_shared[t][plan_.body[t][n]] == 0) {
        return false;
      }
      nodes.push_back(n);
    }
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    return true;
  }

  // The tokens below trie node i from body nodes w.nodes above `parent`: the body's own walk
  // (shared, see body()) and, for each of its exits, what follows: this copy's exit targets,
  // found by reading the exit's bytes again from w.nodes (in trie order, so shared prefixes are
  // read once), entered above `parent` and walked below the exit as any state is.
  void walk_body(uint32_t i, uint32_t parent, WalkScratch& w, Runs& accepted, std::vector<uint32_t>& events) {
    const std::shared_ptr<const BodyResult> r = body(i, w.nodes);
    if (r->exits.empty()) {
      for (const Run& x : r->accepted) append_run(accepted, x.begin, x.end, x.value);
      return;
    }
    RunJoin join;  // what follows the exits (in trie order but for exits below exits)
    // R[k]: this copy's body nodes after the first k bytes below i on the way to the current
    // exit, valid up to `valid`; the path is read from a token below the exit, and a path shares
    // the prefix it has in common with the last one.
    std::vector<std::vector<uint32_t>>& R = w.replay;
    R[0] = w.nodes;
    const uint32_t d0 = t_.depth[i];
    std::string_view last;
    size_t valid = 0;
    for (const uint32_t e : r->exits) {
      const std::string_view path = v_.token_bytes(t_.order[t_.first_token[e]]).substr(d0, t_.depth[e] - d0);
      size_t k = 0;
      while (k < valid && k + 1 < path.size() && path[k] == last[k]) ++k;
      bool exit = false;
      for (; k + 1 < path.size(); ++k) body_step(R[k], static_cast<uint8_t>(path[k]), R[k + 1], exit);
      last = path;
      valid = path.size() - 1;
      // The exit: this copy's exit targets for its last byte, entered above `parent`.
      const uint8_t b = static_cast<uint8_t>(path.back());
      w.targets.clear();
      for (uint32_t n : R[valid]) {
        const Node& nd = a_.nodes[n];
        for (uint32_t k2 = nd.bytes_begin; k2 < nd.bytes_end; ++k2) {
          if (!body_edge_[k2] && a_.sets[a_.byte_edges[k2].set].test(b)) w.targets.push_back(a_.byte_edges[k2].target);
        }
      }
      std::sort(w.targets.begin(), w.targets.end());
      w.targets.erase(std::unique(w.targets.begin(), w.targets.end()), w.targets.end());
      StateBuf& s = w.exit_state;
      stepper_.expand(pool_, w.targets, parent, s);
      check_moves();
      if (s.dead()) continue;
      if (t_.depth[e] > lo_) join.add(Run{t_.first_token[e], t_.first_token[e + 1], kAcc});
      if (s.escaped && t_.has_children(e)) events.push_back(e);
      if (!s.tops.empty() && t_.has_children(e)) {
        Runs below;
        walk(s, e, below, events);
        join.add(below);
      }
    }
    merge_runs(r->accepted, join.take(), accepted);
  }

  // The body nodes reached from `from` by byte b through body edges (sorted); `exit` is set
  // when some exit edge reads b.
  void body_step(const std::vector<uint32_t>& from, uint8_t b, std::vector<uint32_t>& to, bool& exit) {
    to.clear();
    for (uint32_t n : from) {
      const Node& nd = a_.nodes[n];
      if (!nd.first.test(b)) continue;
      for (uint32_t k = nd.bytes_begin; k < nd.bytes_end; ++k) {
        if (!a_.sets[a_.byte_edges[k].set].test(b)) continue;
        if (body_edge_[k]) {
          to.push_back(a_.byte_edges[k].target);
        } else {
          exit = true;
        }
      }
    }
    if (to.size() > 1) {
      std::sort(to.begin(), to.end());
      to.erase(std::unique(to.begin(), to.end()), to.end());
    }
    body_moves_ += std::max<size_t>(1, from.size());
  }

  // The memo key of a body walk from `nodes` below trie node j: the window, j, and the nodes'
  // body classes over the bytes left to read there.
  void body_key(uint32_t j, const std::vector<uint32_t>& nodes, std::vector<uint64_t>& key) const {
    const size_t t = tier_for(j);
    key.assign({window_key(j), j, t});
    for (uint32_t n : nodes) key.push_back(plan_.body[t][n]);
    std::sort(key.begin() + 3, key.end());
    key.erase(std::unique(key.begin() + 3, key.end()), key.end());
  }

  // The walk inside the body from `nodes` below trie node i, memoised by body_key (and below
  // it, near i, by the same key of the nodes reached).
  std::shared_ptr<const BodyResult> body(uint32_t i, const std::vector<uint32_t>& nodes) {
    std::vector<uint64_t> key;
    body_key(i, nodes, key);
    if (auto found = body_memo_.find(key); found != body_memo_.end()) return found->second;
    auto result = std::make_shared<BodyResult>();
    Runs& accepted = result->accepted;
    std::vector<uint32_t>& exits = result->exits;
    std::vector<std::vector<uint32_t>>& B = body_states_;
    B[0] = nodes;
    const uint32_t d0 = t_.depth[i];
    struct Pending {
      std::vector<uint64_t> key;
      uint32_t end, first_below;
      size_t runs_from, exits_from;
    };
    Pending pending[kBodyMemoDepth];
    int npending = 0;
    auto finish = [&](uint32_t j) {
      while (npending > 0 && j >= pending[npending - 1].end) {
        Pending& p = pending[--npending];
        auto r = std::make_shared<BodyResult>();
        for (size_t k = p.runs_from > 0 ? p.runs_from - 1 : 0; k < accepted.size(); ++k) {
          append_run(r->accepted, std::max(accepted[k].begin, p.first_below), accepted[k].end, accepted[k].value);
        }
        r->exits.assign(exits.begin() + static_cast<std::ptrdiff_t>(p.exits_from), exits.end());
        remember_body(std::move(p.key), std::move(r));
      }
    };
    std::vector<uint64_t> sub;
    for (uint32_t j = i + 1; j < t_.next[i];) {
      finish(j);
      if (t_.depth[j] > hi_ || t_.max_below[j] <= lo_) {
        j = t_.next[j];
        continue;
      }
      const uint32_t d = t_.depth[j] - d0;
      bool exit = false;
      body_step(B[d - 1], t_.byte[j], B[d], exit);
      check_moves();
      if (exit) exits.push_back(j);
      if (B[d].empty()) {
        j = t_.next[j];
        continue;
      }
      if (t_.depth[j] > lo_) append_run(accepted, t_.first_token[j], t_.first_token[j + 1], kAcc);
      if (d <= kBodyMemoDepth && t_.next[j] - j > kWalkMemoMinSubtree) {
        body_key(j, B[d], sub);
        if (auto found = body_memo_.find(sub); found != body_memo_.end()) {
          for (const Run& x : found->second->accepted) append_run(accepted, x.begin, x.end, x.value);
          exits.insert(exits.end(), found->second->exits.begin(), found->second->exits.end());
          j = t_.next[j];
          continue;
        }
        pending[npending++] = {sub, t_.next[j], t_.first_token[j + 1], accepted.size(), exits.size()};
      }
      ++j;
    }
    finish(UINT32_MAX);
    remember_body(std::move(key), result);
    return result;
  }

  void remember_body(std::vector<uint64_t> key, std::shared_ptr<const BodyResult> r) {
    memo_entries_ += r->accepted.size() + r->exits.size() + 8;
    if (memo_entries_ > kMemoEntries) clear_memos();
    body_memo_.emplace(std::move(key), std::move(r));
  }

  // The token-length window as far as the tokens strictly below trie node e see it: when all of
  // them are inside it (they are longer than e's depth, none longer than the window's end), the
  // window does not matter and results below e are shared by every window (a node classified
  // for lengths (4, 128] meets, past 4 bytes, the states a node classified for (0, 128] met).
  uint64_t window_key(uint32_t e) const {
    const uint32_t lo = t_.depth[e] >= lo_ ? 0 : lo_;
    const uint32_t hi = t_.max_below[e] <= hi_ ? UINT32_MAX : hi_;
    return (uint64_t{lo} << 32) | hi;
  }

  // Which nodes give the same outcomes below trie node e: those whose futures agree over the
  // bytes left to read there (node_equivalence.h: the same rule, so the same return sites too).
  // The key is (tier, class) of the first tier whose level covers those bytes.
  uint64_t future_key(uint32_t node, uint32_t e) const {
    const size_t t = tier_for(e);
    return (uint64_t{t} << 32) | plan_.future[t][node];
  }
  // The first tier whose level covers the bytes left to read below trie node e.
  size_t tier_for(uint32_t e) const {
    const uint32_t longest = std::min<uint32_t>(hi_, t_.max_below[e]);
    const uint32_t need = longest > t_.depth[e] ? longest - t_.depth[e] : 0;
    size_t t = 0;
    while (t + 1 < plan_.bounds.size() && plan_.bounds[t] - 1 < need) ++t;
    return t;
  }

  // The memo key of what state s reads below trie node i: the window, i, and for each top its
  // chain of frames down to the unknown stack, as future classes (the top reads bytes; when its
  // rule ends the frame below continues, and so on). Those classes decide every token below i.
  // False for states too big to key: more than 4 tops, chains deeper than 3, merged parents.
  bool walk_key(const StateBuf& s, uint32_t i, std::vector<uint64_t>& key) {
    if (s.tops.size() > 4) return false;
    chains_.clear();
    for (uint32_t f : s.tops) {
      std::array<uint64_t, 3> chain;
      chain.fill(UINT64_MAX);
      uint32_t frame = f;
      size_t len = 0;
      while (true) {
        if (len == chain.size()) return false;
        chain[len++] = future_key(pool_.node(frame), i);
        const uint32_t parent = pool_.parent(frame);
        if (parent == kUnknownFrame) break;
        if (parent == kRootFrame || is_frame_set(parent)) return false;
        frame = parent;
      }
      chains_.push_back(chain);
    }
    std::sort(chains_.begin(), chains_.end());
    key.assign({window_key(i), i});
    for (const auto& chain : chains_) key.insert(key.end(), chain.begin(), chain.end());
    return true;
  }

  // Outcomes of the tokens strictly below trie node e when the rule being classified ended
  // right after e's bytes and `site` is the node it returned to (with an unknown stack below).
  // Memoised by (window, the site's future class, e, budget): every node of a rule escapes at
  // the same trie nodes into the same sites (each node of `ws`, each of a `char` rule's callers).
  SharedRuns site_results(int level, uint32_t site, uint32_t e, int budget) {
    const auto [lo, hi] = below(e);
    if (lo == hi || site == kAcceptSite) return empty_;  // nothing may follow the end of the input
    const SiteKey key{window_key(e), future_key(site, e), e, budget};
    auto found = site_memo_.find(key);
    if (found != site_memo_.end()) return found->second;
    ++site_walks_;
    const size_t next = static_cast<size_t>(level) + 1;
    StateBuf& s0 = starts_[next];
    stepper_.expand(pool_, site, kUnknownFrame, s0);
    std::vector<uint32_t>& events = events_[next];
    events.clear();
    Runs out;
    walk(s0, e, out, events);
    if (s0.escaped) events.push_back(e);  // the site's rule can end at once, too
    const Runs rest = resolve_forall(level + 1, a_.nodes[site].rule, events, budget - 1);
    RunJoin join;
    join.add(out);
    join.add(rest);
    auto result = std::make_shared<const Runs>(join.take());
    memo_entries_ += result->size() + 8;
    if (memo_entries_ > kMemoEntries) clear_memos();  // bounded memory: start over
    site_memo_.emplace(key, result);
    return result;
  }

  // For tokens below each escape point: the outcome after `rule` ended there, combined over
  // all of its return sites (the stack below is unknown, so only agreement decides). Sites
  // with equal futures there count once.
  Runs resolve_forall(int level, uint32_t rule, const std::vector<uint32_t>& events, int budget) {
    RunJoin total;
    std::vector<SharedRuns> results;
    std::vector<const Runs*> lists;
    for (uint32_t e : events) {
      if (!t_.has_children(e)) continue;
      if (budget <= 0) {  // no deeper: whatever is left to read is uncertain
        window_tokens(e, total);
        continue;
      }
      results.clear();
      lists.clear();
      for (uint32_t q : site_reps(rule, tier_for(e))) {
        results.push_back(site_results(level, q, e, budget));
        lists.push_back(results.back().get());
      }
      if (lists.size() == 1) {  // one site: its outcomes as they are
        total.add(*lists[0]);
        continue;
      }
      // ACC where every site accepts, REJ where every site rejects (absent), else UNC.
      const size_t n = lists.size();
      sweep(lists, [&](uint32_t b, uint32_t end, const uint8_t* values) {
        size_t accepted = 0;
        for (size_t j = 0; j < n; ++j) accepted += values[j] == kAcc;
        total.add(Run{b, end, accepted == n ? kAcc : kUnc});
      });
    }
    return total.take();
  }

  // The return sites of `rule`, one per future class at tier t (the end of the input apart).
  const std::vector<uint32_t>& site_reps(uint32_t rule, size_t t) {
    const size_t slot = rule * plan_.bounds.size() + t;
    if (reps_.empty()) {
      reps_.resize(a_.rule_start.size() * plan_.bounds.size());
      reps_done_.assign(reps_.size(), false);
    }
    if (!reps_done_[slot]) {
      std::vector<std::pair<uint32_t, uint32_t>> by_class;  // (class, site)
      for (uint32_t q : a_.return_sites[rule]) by_class.push_back({q == kAcceptSite ? UINT32_MAX : plan_.future[t][q], q});
      std::sort(by_class.begin(), by_class.end());
      for (size_t k = 0; k < by_class.size(); ++k) {
        if (k == 0 || by_class[k].first != by_class[k - 1].first) reps_[slot].push_back(by_class[k].second);
      }
      reps_done_[slot] = true;
    }
    return reps_[slot];
  }

  // The tokens below trie node e with lengths in the window, as uncertain.
  void window_tokens(uint32_t e, RunJoin& out) const {
    for (uint32_t i = e + 1; i < t_.next[e];) {
      if (t_.depth[i] > hi_ || t_.max_below[i] <= lo_) {
        i = t_.next[i];
        continue;
      }
      if (t_.depth[i] > lo_ && t_.max_below[i] <= hi_) {  // the whole subtree
        out.add(Run{t_.first_token[i], t_.first_token[t_.next[i]], kUnc});
        i = t_.next[i];
        continue;
      }
      if (t_.depth[i] > lo_ && t_.first_token[i] < t_.first_token[i + 1]) {
        out.add(Run{t_.first_token[i], t_.first_token[i + 1], kUnc});
      }
      ++i;
    }
  }

  void clear_memos() {
    site_memo_.clear();
    walk_memo_.clear();
    body_memo_.clear();
    memo_entries_ = 0;
  }

  // Memoised entries (runs and events) kept at most; past it the memos start over.
  static constexpr size_t kMemoEntries = size_t{1} << 22;
  // Walk results are memoised for states this many bytes below the walk's start, over subtrees
  // of more than this many trie nodes (smaller ones cost less to walk than to key and store);
  // a walk goes into a body (walk_body) there too. Deeper, a state's subtree is small, and
  // keeping entries for it costs more than reading it again (8 bytes was measured slower than 2
  // over the 252 benchmark schemas, for about 3% fewer moves).
  static constexpr int kWalkMemoDepth = 2;
  static constexpr uint32_t kWalkMemoMinSubtree = 32;
  // The same for walks inside a body, below their start.
  static constexpr int kBodyMemoDepth = 1;

  const Automaton& a_;
  const TokenVocabulary& v_;
  const TokenTrie& t_;
  const TierPlan& plan_;
  FramePool pool_;
  Stepper stepper_;
  int depth_;
  uint64_t max_moves_;
  size_t max_len_;                             // the longest token
  std::deque<WalkScratch> scratch_;            // [nesting depth of walk()]
  size_t nest_ = 0;
  std::vector<std::vector<uint32_t>> body_states_;  // body(): the nodes at each depth
  std::vector<uint8_t> body_edge_;             // byte edge -> is_body_edge
  std::vector<std::vector<uint32_t>> reps_;    // [rule * tiers + tier]: see site_reps
  std::vector<bool> reps_done_;
  uint64_t body_moves_ = 0;                    // moves inside bodies (one per node and byte)
  std::vector<StateBuf> starts_;               // [level]
  std::vector<std::vector<uint32_t>> events_;  // [level]
  uint32_t lo_ = 0, hi_ = UINT32_MAX;  // the token-length window of the current classify()
  uint64_t site_walks_ = 0;
  std::unordered_map<SiteKey, SharedRuns, SiteKeyHash> site_memo_;
  std::unordered_map<std::vector<uint64_t>, std::shared_ptr<const WalkResult>, VectorHash> walk_memo_;
  std::unordered_map<std::vector<uint64_t>, std::shared_ptr<const BodyResult>, VectorHash> body_memo_;
  std::vector<std::array<uint64_t, 3>> chains_;
  size_t memo_entries_ = 0;
  const SharedRuns empty_ = std::make_shared<const Runs>();
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
