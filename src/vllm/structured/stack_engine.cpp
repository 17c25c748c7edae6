#include "vllm/structured/stack_engine.h"

#include "vllm/core/error.h"
#include "vllm/structured/limits.h"

#include <cstdint>

namespace vllm::structured::detail {

void FramePool::grow() {
  std::vector<uint32_t> table(table_.size() * 2, 0);
  const size_t mask = table.size() - 1;
  for (size_t f = 0; f < frames_.size(); ++f) {
    size_t i = mix(frames_[f]) & mask;
    while (table[i] != 0) i = (i + 1) & mask;
    table[i] = static_cast<uint32_t>(f + 1);
  }
  table_ = std::move(table);
}

size_t FramePool::set_hash(const uint32_t* p, size_t n) const {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  for (size_t i = 0; i < n; ++i) h = mix(h ^ p[i]);
  return static_cast<size_t>(h);
}

uint32_t FramePool::intern_set(const std::vector<uint32_t>& members) {
  const size_t nsets = set_begin_.size() - 1;
  if (nsets * 2 >= set_table_.size()) {
    std::vector<uint32_t> table(set_table_.size() * 2, 0);
    const size_t mask = table.size() - 1;
    for (size_t s = 0; s < nsets; ++s) {
      size_t i = set_hash(set_data_.data() + set_begin_[s], set_begin_[s + 1] - set_begin_[s]) & mask;
      while (table[i] != 0) i = (i + 1) & mask;
      table[i] = static_cast<uint32_t>(s + 1);
    }
    set_table_ = std::move(table);
  }
  const size_t mask = set_table_.size() - 1;
  for (size_t i = set_hash(members.data(), members.size()) & mask;; i = (i + 1) & mask) {
    const uint32_t slot = set_table_[i];
    if (slot == 0) {
      if (nsets >= kUnknownFrame - kSetBit - 1) {
        throw Error("structured output: too many parser stacks", ErrorKind::kInternal);
      }
      set_data_.insert(set_data_.end(), members.begin(), members.end());
      set_begin_.push_back(static_cast<uint32_t>(set_data_.size()));
      set_table_[i] = static_cast<uint32_t>(nsets + 1);
      return kSetBit | static_cast<uint32_t>(nsets);
    }
    const uint32_t s = slot - 1;
    const size_t n = set_begin_[s + 1] - set_begin_[s];
    if (n == members.size() && std::equal(members.begin(), members.end(), set_data_.begin() + set_begin_[s])) {
      return kSetBit | s;
    }
  }
}

void FramePool::clear() {
  frames_.clear();
  std::fill(table_.begin(), table_.end(), 0);
  set_data_.clear();
  set_begin_.assign(1, 0);
  std::fill(set_table_.begin(), set_table_.end(), 0);
}

std::vector<uint32_t> FramePool::compact(const std::vector<uint32_t>& roots) {
  std::vector<uint32_t> map(frames_.size(), UINT32_MAX);
  std::vector<bool> keep(frames_.size(), false);
  std::vector<uint32_t> work(roots.begin(), roots.end());
  while (!work.empty()) {
    const uint32_t f = work.back();
    work.pop_back();
    if (f >= frames_.size() || keep[f]) continue;
    keep[f] = true;
    for_each_member(parent(f), [&](uint32_t m) { work.push_back(m); });
  }
  const std::vector<uint64_t> old = std::move(frames_);
  const std::vector<uint32_t> old_set_data = std::move(set_data_);
  const std::vector<uint32_t> old_set_begin = std::move(set_begin_);
  size_t live = 0;
  for (bool k : keep) live += k;
  size_t cap = 64;
  while (cap < live * 2 + 2) cap *= 2;
  frames_.clear();
  table_.assign(cap, 0);
  set_data_.clear();
  set_begin_.assign(1, 0);
  std::fill(set_table_.begin(), set_table_.end(), 0);
  std::vector<uint32_t> members_buf;
  for (size_t f = 0; f < old.size(); ++f) {
    if (!keep[f]) continue;
    const uint32_t node = static_cast<uint32_t>(old[f] >> 32);
    uint32_t par = static_cast<uint32_t>(old[f]);
    if (is_frame_set(par)) {
      // Parents are older: their new ids are known.
      const uint32_t s = par & ~kSetBit;
      members_buf.clear();
      for (uint32_t k = old_set_begin[s]; k < old_set_begin[s + 1]; ++k) {
        const uint32_t m = old_set_data[k];
        members_buf.push_back(m < old.size() ? map[m] : m);
      }
      std::sort(members_buf.begin(), members_buf.end());
      par = intern_set(members_buf);
    } else if (par < old.size()) {
      par = map[par];
    }
    map[f] = intern(node, par);
  }
  return map;
}

void Stepper::too_ambiguous() {
  throw Error("structured output: the grammar is too ambiguous (more than " +
                  std::to_string(limits::kMaxExpansionsPerByte) +
                  " parser moves for one byte, limits::kMaxExpansionsPerByte)",
              ErrorKind::kInvalidArgument);
}

void Stepper::begin() {
  ++gen_;
  visited_count_ = 0;
  step_work_ = 0;
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
      size_t j = FramePool::mix(keys[i]) & mask;
      while (visited_gen_[j] == gen_) j = (j + 1) & mask;
      visited_keys_[j] = keys[i];
      visited_gen_[j] = gen_;
    }
  }
  const uint64_t key = (uint64_t{node} << 32) | parent;
  const size_t mask = visited_keys_.size() - 1;
  for (size_t j = FramePool::mix(key) & mask;; j = (j + 1) & mask) {
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
    // Work counts every item, a repeat too: popping a merged frame pushes each of its parents.
    ++moves_;
    if (++step_work_ > limits::kMaxExpansionsPerByte) {
      too_ambiguous();
    }
    if (!visit(node, parent)) continue;
    const Node& n = a.nodes[node];
    if (n.has_bytes()) out.tops.push_back(pool.intern(node, parent));
    for (uint32_t k = n.refs_begin; k < n.refs_end; ++k) {
      const RefEdge& e = a.ref_edges[k];
      const uint32_t ret = e.tail ? parent : pool.intern(e.ret, parent);
      work_.push_back((uint64_t{a.rule_start[e.rule]} << 32) | ret);
    }
    if (n.final) {
      // The rule ends: continue at each return frame's node, below it.
      pool.for_each_member(parent, [&](uint32_t m) {
        if (m == kRootFrame) {
          out.accepting = true;
        } else if (m == kUnknownFrame) {
          out.escaped = true;
        } else {
          work_.push_back((uint64_t{pool.node(m)} << 32) | pool.parent(m));
        }
      });
    }
  }
  merge_tops(pool, out);
}

// Sorts the tops and merges those at the same node into one frame over the union of parents.
void Stepper::merge_tops(FramePool& pool, StateBuf& out) {
  std::vector<uint32_t>& tops = out.tops;
  if (tops.size() <= 1) return;
  by_node_.clear();
  for (uint32_t f : tops) by_node_.push_back((uint64_t{pool.node(f)} << 32) | f);
  std::sort(by_node_.begin(), by_node_.end());
  tops.clear();
  for (size_t i = 0; i < by_node_.size();) {
    size_t j = i + 1;
    const uint32_t node = static_cast<uint32_t>(by_node_[i] >> 32);
    while (j < by_node_.size() && static_cast<uint32_t>(by_node_[j] >> 32) == node) ++j;
    if (j - i == 1 || (j - i == 2 && by_node_[i] == by_node_[i + 1])) {
      tops.push_back(static_cast<uint32_t>(by_node_[i]));
    } else {
      parents_.clear();
      for (size_t k = i; k < j; ++k) {
        pool.for_each_member(pool.parent(static_cast<uint32_t>(by_node_[k])), [&](uint32_t m) { parents_.push_back(m); });
      }
      moves_ += parents_.size();
      step_work_ += parents_.size();
      if (step_work_ > limits::kMaxExpansionsPerByte) too_ambiguous();
      std::sort(parents_.begin(), parents_.end());
      parents_.erase(std::unique(parents_.begin(), parents_.end()), parents_.end());
      const uint32_t parent = parents_.size() == 1 ? parents_[0] : pool.intern_set(parents_);
      tops.push_back(pool.intern(node, parent));
    }
    i = j;
  }
  std::sort(tops.begin(), tops.end());
  tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
}

void Stepper::expand(FramePool& pool, uint32_t node, uint32_t parent, StateBuf& out) {
  out.clear();
  begin();
  work_.push_back((uint64_t{node} << 32) | parent);
  run(pool, out);
}

void Stepper::expand(FramePool& pool, const std::vector<uint32_t>& nodes, uint32_t parent, StateBuf& out) {
  out.clear();
  begin();
  for (uint32_t node : nodes) work_.push_back((uint64_t{node} << 32) | parent);
  run(pool, out);
}

void Stepper::step(FramePool& pool, const uint32_t* tops, size_t n, uint8_t b, StateBuf& out) {
  out.clear();
  const Automaton& a = *a_;
  if (n == 1) {
    // Fast path (inside a string, a number, a literal): one top, one edge for the byte, and a
    // target that neither calls a rule nor ends one: the new state is that target's frame.
    const uint32_t f = tops[0];
    const Node& nd = a.nodes[pool.node(f)];
    if (!nd.first.test(b)) return;
    uint32_t target = UINT32_MAX;
    int matched = 0;
    for (uint32_t k = nd.bytes_begin; k < nd.bytes_end; ++k) {
      const ByteEdge& e = a.byte_edges[k];
      if (a.sets[e.set].test(b)) {
        target = e.target;
        ++matched;
      }
    }
    const Node& t = a.nodes[target];
    if (matched == 1 && !t.final && t.refs_begin == t.refs_end) {
      ++moves_;
      out.tops.push_back(pool.intern(target, pool.parent(f)));
      return;
    }
  }
  begin();
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
