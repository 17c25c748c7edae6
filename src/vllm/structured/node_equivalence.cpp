#include "vllm/structured/node_equivalence.h"

#include <cstdint>
#include <algorithm>
#include <unordered_map>

#include "vllm/structured/graph.h"

namespace vllm::structured::detail {

namespace {

struct KeyHash {
  size_t operator()(const std::vector<uint32_t>& v) const {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ v.size();
    for (uint32_t x : v) {
      h ^= x;
      h *= 0xff51afd7ed558ccdull;
      h ^= h >> 29;
    }
    return static_cast<size_t>(h);
  }
};

class Interner {
 public:
  uint32_t operator()(const std::vector<uint32_t>& key) {
    auto [it, inserted] = map_.emplace(key, static_cast<uint32_t>(map_.size()));
    return it->second;
  }
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<std::vector<uint32_t>, uint32_t, KeyHash> map_;
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
      for (uint64_t w : set.words()) {
        key.push_back(static_cast<uint32_t>(w));
        key.push_back(static_cast<uint32_t>(w >> 32));
      }
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
  for (uint32_t d = 1; d < max_len; ++d) {
    const std::vector<uint32_t>& prev = ring[(d - 1) % ring_size];
    std::vector<uint32_t> level(n);
    Interner intern;
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
  return plan;
}

}  // namespace vllm::structured::detail
