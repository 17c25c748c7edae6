#include "vllm/structured/node_equivalence.h"

#include <cstdint>
#include <algorithm>
#include <map>

#include "vllm/structured/graph.h"

namespace vllm::structured::detail {

namespace {

uint64_t hash_words(const uint32_t* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  return h;
}

// Numbers distinct keys (word strings) 0, 1, 2, ... in order of first appearance. The keys live
// in one arena and the table is open addressing, so a level of refinement allocates nothing
// once the first has sized them (clear() keeps the capacity).
class Interner {
 public:
  Interner() { table_.assign(64, 0); }
  uint32_t operator()(const std::vector<uint32_t>& key) {
    if ((begin_.size() + 1) * 2 > table_.size()) grow();
    const uint64_t h = hash_words(key.data(), key.size());
    const size_t mask = table_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const uint32_t slot = table_[i];
      if (slot == 0) {
        table_[i] = static_cast<uint32_t>(begin_.size() + 1);
        begin_.push_back(static_cast<uint32_t>(arena_.size()));
        hashes_.push_back(h);
        arena_.insert(arena_.end(), key.begin(), key.end());
        end_.push_back(static_cast<uint32_t>(arena_.size()));
        return static_cast<uint32_t>(begin_.size() - 1);
      }
      const uint32_t id = slot - 1;
      if (hashes_[id] == h && end_[id] - begin_[id] == key.size() &&
          std::equal(key.begin(), key.end(), arena_.begin() + begin_[id])) {
        return id;
      }
    }
  }
  size_t size() const { return begin_.size(); }
  void clear() {
    std::fill(table_.begin(), table_.end(), 0);
    arena_.clear();
    begin_.clear();
    end_.clear();
    hashes_.clear();
  }

 private:
  void grow() {
    std::vector<uint32_t> table(table_.size() * 2, 0);
    const size_t mask = table.size() - 1;
    for (size_t id = 0; id < begin_.size(); ++id) {
      size_t i = hashes_[id] & mask;
      while (table[i] != 0) i = (i + 1) & mask;
      table[i] = static_cast<uint32_t>(id + 1);
    }
    table_ = std::move(table);
  }

  std::vector<uint32_t> table_;  // key id + 1, 0 = empty
  std::vector<uint32_t> arena_, begin_, end_;
  std::vector<uint64_t> hashes_;
};

// Byte sets as small ids: the automaton's own sets keep theirs, unions get new ones.
class SetIds {
 public:
  explicit SetIds(const Automaton& a) {
    for (size_t i = 0; i < a.sets.size(); ++i) ids_.emplace(a.sets[i], static_cast<uint32_t>(i));
    next_ = static_cast<uint32_t>(a.sets.size());
  }
  uint32_t operator()(const ByteSet& s) {
    auto [it, inserted] = ids_.emplace(s, next_);
    if (inserted) ++next_;
    return it->second;
  }

 private:
  std::map<ByteSet, uint32_t> ids_;
  uint32_t next_ = 0;
};

constexpr uint32_t kInf = 0x3FFFFFFF;

// Shortest match of each real rule, in bytes.
std::vector<uint32_t> min_lengths(const Automaton& a) {
  const size_t nr = a.rule_start.size();
  std::vector<uint32_t> rule_min(nr, kInf), dist(a.nodes.size(), kInf);
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t n = a.nodes.size(); n-- > 0;) {
      const Node& node = a.nodes[n];
      uint32_t d = node.final ? 0 : kInf;
      for (uint32_t k = node.bytes_begin; k < node.bytes_end; ++k) d = std::min(d, 1 + dist[a.byte_edges[k].target]);
      for (uint32_t k = node.refs_begin; k < node.refs_end; ++k) {
        const RefEdge& e = a.ref_edges[k];
        d = std::min(d, std::min(kInf, rule_min[e.rule] + dist[e.ret]));
      }
      if (d < dist[n]) {
        dist[n] = d;
        changed = true;
      }
    }
    for (size_t r = 0; r < nr; ++r) {
      if (dist[a.rule_start[r]] < rule_min[r]) {
        rule_min[r] = dist[a.rule_start[r]];
        changed = true;
      }
    }
  }
  return rule_min;
}

// The body partition (TierPlan::body): level d splits body nodes by the level d-1 classes their
// body edges lead to and the bytes of their exits (an exit's target does not count: that is the
// context, walked per copy).
std::vector<std::vector<uint32_t>> plan_bodies(const Automaton& a, const std::vector<uint32_t>& bounds) {
  const size_t n = a.nodes.size();
  std::vector<uint32_t> body_nodes;
  for (uint32_t i = 0; i < n; ++i) {
    if (is_body_node(a.nodes[i])) body_nodes.push_back(i);
  }
  std::vector<std::vector<uint32_t>> out(bounds.size());
  std::vector<uint32_t> prev(n, UINT32_MAX);
  for (uint32_t i : body_nodes) prev[i] = 0;  // level 0: one class
  for (size_t t = 0; t < bounds.size(); ++t) {
    if (bounds[t] == 1) out[t] = prev;
  }
  std::vector<std::pair<uint32_t, ByteSet>> edges;
  std::vector<uint32_t> key;
  SetIds set_id(a);
  Interner intern;
  size_t last_count = 1;
  for (uint32_t d = 1; d < bounds.back(); ++d) {
    std::vector<uint32_t> level(n, UINT32_MAX);
    intern.clear();
    for (uint32_t i : body_nodes) {
      const Node& node = a.nodes[i];
      edges.clear();
      for (uint32_t k = node.bytes_begin; k < node.bytes_end; ++k) {
        const ByteEdge& e = a.byte_edges[k];
        const uint32_t c = is_body_edge(a, e) ? prev[e.target] : UINT32_MAX;  // UINT32_MAX: an exit
        auto it = std::find_if(edges.begin(), edges.end(), [&](const auto& x) { return x.first == c; });
        if (it == edges.end()) {
          edges.push_back({c, a.sets[e.set]});
        } else {
          it->second |= a.sets[e.set];
        }
      }
      std::sort(edges.begin(), edges.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      key.assign({prev[i], static_cast<uint32_t>(edges.size())});
      for (const auto& [c, set] : edges) {
        key.push_back(c);
        key.push_back(set_id(set));
      }
      level[i] = intern(key);
    }
    prev = std::move(level);
    for (size_t t = 0; t < bounds.size(); ++t) {
      if (bounds[t] - 1 == d) out[t] = prev;
    }
    // Refinement only splits: an unchanged count is the fixpoint, valid for every later level.
    if (intern.size() == last_count) break;
    last_count = intern.size();
  }
  for (auto& level : out) {
    if (level.empty()) level = prev;
  }
  return out;
}

}  // namespace

TierPlan plan_tiers(const Automaton& a, size_t max_token_bytes) {
  TierPlan plan;
  const uint32_t max_len = static_cast<uint32_t>(std::max<size_t>(1, max_token_bytes));
  for (uint32_t b = 4; b < max_len; b *= 2) plan.bounds.push_back(b);
  plan.bounds.push_back(max_len);

  const size_t n = a.nodes.size();
  const std::vector<uint32_t> rule_min = min_lengths(a);
  // A node that calls a rule matching the empty string (`ws`) can reach the return node without
  // reading anything, so its future over d bytes includes the return node's future over the
  // same d bytes: level d is computed for return nodes first (the "nullable call" graph in
  // topological order). Only nodes on a cycle of such calls (a loop whose body can be empty
  // through a call) are never shared. JSON grammars call a nullable `ws` nearly everywhere, so
  // treating every caller as unique would leave almost nothing to share.
  std::vector<std::vector<uint32_t>> nullable_ret(n);
  uint32_t max_gap = 1;  // the largest back-reference between levels
  for (size_t i = 0; i < n; ++i) {
    const Node& node = a.nodes[i];
    for (uint32_t k = node.refs_begin; k < node.refs_end; ++k) {
      const uint32_t m = rule_min[a.ref_edges[k].rule];
      if (m == 0) nullable_ret[i].push_back(a.ref_edges[k].ret);
      if (m < kInf) max_gap = std::max(max_gap, std::min(m, max_len));
    }
  }
  const std::vector<int> comp = strongly_connected_components(nullable_ret);
  std::vector<bool> unique(n, false);
  {
    std::vector<int> size(n, 0);
    for (size_t i = 0; i < n; ++i) ++size[static_cast<size_t>(comp[i])];
    for (size_t i = 0; i < n; ++i) {
      for (uint32_t r : nullable_ret[i]) {
        if (comp[r] == comp[i]) unique[i] = true;  // a self-loop or a larger cycle
      }
      if (size[static_cast<size_t>(comp[i])] > 1) unique[i] = true;
    }
  }
  // Components complete callees first (reverse topological), so sorting by component puts each
  // return node before the nodes that reach it through a nullable call.
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) { return comp[x] < comp[y]; });

  // The byte edges of a node as (class of the target, set of bytes) with one entry per class,
  // so that nodes whose edges are split differently between equivalent targets still agree.
  std::vector<std::pair<uint32_t, ByteSet>> edges;
  SetIds set_id(a);
  auto append_edges = [&](const Node& node, const std::vector<uint32_t>& f, std::vector<uint32_t>& key) {
    edges.clear();
    for (uint32_t k = node.bytes_begin; k < node.bytes_end; ++k) {
      const uint32_t c = f[a.byte_edges[k].target];
      auto it = std::find_if(edges.begin(), edges.end(), [&](const auto& e) { return e.first == c; });
      if (it == edges.end()) {
        edges.push_back({c, a.sets[a.byte_edges[k].set]});
      } else {
        it->second |= a.sets[a.byte_edges[k].set];
      }
    }
    std::sort(edges.begin(), edges.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    key.push_back(static_cast<uint32_t>(edges.size()));
    for (const auto& [c, set] : edges) {
      key.push_back(c);
      key.push_back(set_id(set));
    }
  };

  // Level d classes the nodes by their future over d bytes; level 0 is one class. Level d reads
  // levels d-1 .. d-max_gap, kept in a ring; the levels the tiers need are copied out.
  const uint32_t ring_size = max_gap + 1;
  std::vector<std::vector<uint32_t>> ring(ring_size, std::vector<uint32_t>(n, 0));
  std::vector<std::vector<uint32_t>> tier_level(plan.bounds.size());
  auto save_tiers = [&](uint32_t d, const std::vector<uint32_t>& level) {
    for (size_t t = 0; t < plan.bounds.size(); ++t) {
      if (plan.bounds[t] - 1 == d) tier_level[t] = level;
    }
  };
  save_tiers(0, ring[0]);
  size_t stable_for = 0, last_count = 1;
  uint32_t last = 0;
  std::vector<uint32_t> key;
  std::vector<std::pair<uint32_t, uint32_t>> refs;
  Interner intern;
  for (uint32_t d = 1; d < max_len; ++d) {
    const std::vector<uint32_t>& prev = ring[(d - 1) % ring_size];
    std::vector<uint32_t> level(n);
    intern.clear();
    for (uint32_t i : order) {
      const Node& node = a.nodes[i];
      key.clear();
      if (unique[i]) {
        key = {0xFFFFFFFFu, static_cast<uint32_t>(i)};
        level[i] = intern(key);
        continue;
      }
      key.push_back(prev[i]);
      key.push_back(node.rule);
      key.push_back(node.final ? 1 : 0);
      append_edges(node, prev, key);
      refs.clear();
      for (uint32_t k = node.refs_begin; k < node.refs_end; ++k) {
        const RefEdge& e = a.ref_edges[k];
        const uint32_t m = std::min(rule_min[e.rule], d);
        // m == 0: the return node's class at this same level, computed before (see `order`).
        refs.push_back({e.rule, m == 0 ? level[e.ret] : ring[(d - m) % ring_size][e.ret]});
      }
      std::sort(refs.begin(), refs.end());
      for (const auto& [r, c] : refs) {
        key.push_back(r);
        key.push_back(c);
      }
      level[i] = intern(key);
    }
    save_tiers(d, level);
    ring[d % ring_size] = std::move(level);
    last = d;
    // Refinement only splits classes: an unchanged count is an unchanged partition. Once it has
    // held for as many levels as a reference looks back, no later level can split anything.
    const size_t count = intern.size();
    stable_for = count == last_count ? stable_for + 1 : 0;
    last_count = count;
    if (stable_for > max_gap) break;
  }
  for (size_t t = 0; t < plan.bounds.size(); ++t) {
    if (tier_level[t].empty()) tier_level[t] = ring[last % ring_size];  // past the stable point
  }

  plan.class_of.resize(plan.bounds.size());
  for (size_t t = 0; t < plan.bounds.size(); ++t) {
    Interner intern;
    std::vector<uint32_t>& cls = plan.class_of[t];
    cls.assign(n, UINT32_MAX);
    for (size_t i = 0; i < n; ++i) {
      const Node& node = a.nodes[i];
      if (!node.has_bytes()) continue;
      // The first byte is read through the node's byte edges, the rest of a tier-t token (at
      // most bounds[t] - 1 bytes) from their targets; a rule end escapes to the rule's sites.
      key.assign({node.rule});
      append_edges(node, tier_level[t], key);
      cls[i] = intern(key);
    }
  }
  plan.future = std::move(tier_level);
  plan.body = plan_bodies(a, plan.bounds);
  plan.body_shared.resize(plan.bounds.size());
  for (size_t t = 0; t < plan.bounds.size(); ++t) {
    std::vector<uint32_t> count;
    for (uint32_t c : plan.body[t]) {
      if (c == UINT32_MAX) continue;
      if (c >= count.size()) count.resize(c + 1, 0);
      ++count[c];
    }
    for (uint32_t k : count) plan.body_shared[t].push_back(k >= 2);
  }
  return plan;
}

}  // namespace vllm::structured::detail
