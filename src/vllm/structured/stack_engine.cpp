#include "vllm/structured/stack_engine.h"

namespace vllm::structured::detail {

void FramePool::grow() {
  std::vector<uint32_t> table(table_.size() * 2, 0);
  const size_t mask = table.size() - 1;
  for (size_t f = 0; f < frames_.size(); ++f) {
    size_t i = hash(frames_[f]) & mask;
    while (table[i] != 0) i = (i + 1) & mask;
    table[i] = static_cast<uint32_t>(f + 1);
  }
  table_ = std::move(table);
}

std::vector<uint32_t> FramePool::compact(const std::vector<uint32_t>& roots) {
  std::vector<uint32_t> map(frames_.size(), UINT32_MAX);
  std::vector<bool> keep(frames_.size(), false);
  for (uint32_t r : roots) {
    for (uint32_t f = r; f < frames_.size() && !keep[f]; f = parent(f)) keep[f] = true;
  }
  std::vector<uint64_t> old = std::move(frames_);
  frames_.clear();
  size_t cap = 64;
  size_t live = 0;
  for (bool k : keep) live += k;
  while (cap < live * 2 + 2) cap *= 2;
  table_.assign(cap, 0);
  for (size_t f = 0; f < old.size(); ++f) {
    if (!keep[f]) continue;
    const uint32_t node = static_cast<uint32_t>(old[f] >> 32);
    uint32_t par = static_cast<uint32_t>(old[f]);
    if (par < old.size()) par = map[par];  // parents are older: already renumbered
    map[f] = intern(node, par);
  }
  return map;
}

void Stepper::begin() {
  ++gen_;
  visited_count_ = 0;
  if (gen_ == 0) {  // wrapped: clear the stamps
    std::fill(visited_gen_.begin(), visited_gen_.end(), 0);
    gen_ = 1;
  }
  work_.clear();
}

bool Stepper::visit(uint32_t node, uint32_t parent) {
  if ((visited_count_ + 1) * 2 > visited_keys_.size()) {
    // Grow, re-inserting this generation's keys.
    std::vector<uint64_t> keys = std::move(visited_keys_);
    std::vector<uint32_t> gens = std::move(visited_gen_);
    visited_keys_.assign(keys.size() * 2, 0);
    visited_gen_.assign(keys.size() * 2, 0);
    const size_t mask = visited_keys_.size() - 1;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (gens[i] != gen_) continue;
      size_t j = (keys[i] * 0x9E3779B97F4A7C15ull >> 20) & mask;
      while (visited_gen_[j] == gen_) j = (j + 1) & mask;
      visited_keys_[j] = keys[i];
      visited_gen_[j] = gen_;
    }
  }
  const uint64_t key = (uint64_t{node} << 32) | parent;
  const size_t mask = visited_keys_.size() - 1;
  for (size_t j = (key * 0x9E3779B97F4A7C15ull >> 20) & mask;; j = (j + 1) & mask) {
    if (visited_gen_[j] != gen_) {
      visited_gen_[j] = gen_;
      visited_keys_[j] = key;
      ++visited_count_;
      return true;
    }
    if (visited_keys_[j] == key) return false;
  }
}

void Stepper::run(FramePool& pool, StateBuf& out) {
  const Automaton& a = *a_;
  while (!work_.empty()) {
    const uint64_t item = work_.back();
    work_.pop_back();
    const uint32_t node = static_cast<uint32_t>(item >> 32);
    const uint32_t parent = static_cast<uint32_t>(item);
    if (!visit(node, parent)) continue;
    const Node& n = a.nodes[node];
    if (n.has_bytes()) out.tops.push_back(pool.intern(node, parent));
    for (uint32_t k = n.refs_begin; k < n.refs_end; ++k) {
      const RefEdge& e = a.ref_edges[k];
      const uint32_t ret = e.tail ? parent : pool.intern(e.ret, parent);
      work_.push_back((uint64_t{a.rule_start[e.rule]} << 32) | ret);
    }
    if (n.final) {
      if (parent == kRootFrame) {
        out.accepting = true;
      } else if (parent == kUnknownFrame) {
        out.escaped = true;
      } else {
        // The rule ends: continue at the return frame's node, below it.
        work_.push_back((uint64_t{pool.node(parent)} << 32) | pool.parent(parent));
      }
    }
  }
  out.finish();
}

void Stepper::expand(FramePool& pool, uint32_t node, uint32_t parent, StateBuf& out) {
  out.clear();
  begin();
  work_.push_back((uint64_t{node} << 32) | parent);
  run(pool, out);
}

void Stepper::step(FramePool& pool, const uint32_t* tops, size_t n, uint8_t b, StateBuf& out) {
  out.clear();
  begin();
  const Automaton& a = *a_;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t f = tops[i];
    const uint32_t node = pool.node(f);
    const Node& nd = a.nodes[node];
    if (!nd.first.test(b)) continue;
    const uint32_t parent = pool.parent(f);
    for (uint32_t k = nd.bytes_begin; k < nd.bytes_end; ++k) {
      const ByteEdge& e = a.byte_edges[k];
      if (a.sets[e.set].test(b)) work_.push_back((uint64_t{e.target} << 32) | parent);
    }
  }
  run(pool, out);
}

}  // namespace vllm::structured::detail
