// The pushdown automaton's moves (internal to the structured library).
//
// A stack is a chain of frames; a frame is (node, parent frame), hash-consed in a FramePool so
// that equal stacks have equal ids and a parser state is a sorted set of ids. The *top* frames of
// a state sit at nodes with byte edges (the next byte is read there); the frames below them are
// return frames (node = where to continue when the rule above ends). Frames are persistent:
// pushing creates a frame whose parent is an existing one, and nothing is ever modified, so a
// state is a handful of ids however deep its stacks are, and forks share everything.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "vllm/structured/automaton.h"

namespace vllm::structured::detail {

// Parent of the root rule's frames: popping to it ends the input (the grammar can terminate).
inline constexpr uint32_t kRootFrame = 0xFFFFFFFFu;
// Compile time: the unknown rest of the stack below the frame being classified. Popping to it
// is an "escape": the rule ended and what follows depends on the real stack.
inline constexpr uint32_t kUnknownFrame = 0xFFFFFFFEu;

class FramePool {
 public:
  FramePool() { table_.assign(64, 0); }
  uint32_t intern(uint32_t node, uint32_t parent) {
    const uint64_t key = (uint64_t{node} << 32) | parent;
    if (frames_.size() * 2 >= table_.size()) grow();
    const size_t mask = table_.size() - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      const uint32_t slot = table_[i];
      if (slot == 0) {
        frames_.push_back(key);
        table_[i] = static_cast<uint32_t>(frames_.size());
        return static_cast<uint32_t>(frames_.size() - 1);
      }
      if (frames_[slot - 1] == key) return slot - 1;
    }
  }
  uint32_t node(uint32_t f) const { return static_cast<uint32_t>(frames_[f] >> 32); }
  uint32_t parent(uint32_t f) const { return static_cast<uint32_t>(frames_[f]); }
  size_t size() const { return frames_.size(); }
  size_t memory_bytes() const { return frames_.capacity() * 8 + table_.capacity() * 4; }
  void clear() {
    frames_.clear();
    std::fill(table_.begin(), table_.end(), 0);
  }
  // Keeps the frames reachable (through parents) from `roots` and renumbers them, keeping their
  // order (a parent is always older than its children, so ids stay parent < child). Returns the
  // old -> new map (UINT32_MAX for dropped frames).
  std::vector<uint32_t> compact(const std::vector<uint32_t>& roots);

 private:
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void grow();

  std::vector<uint64_t> frames_;  // node << 32 | parent
  std::vector<uint32_t> table_;   // open addressing: frame id + 1, 0 = empty
};

// A parser state under construction or done: top frames (sorted, unique after finish()).
struct StateBuf {
  std::vector<uint32_t> tops;
  bool accepting = false;  // some stack emptied: the input may end here
  bool escaped = false;    // compile time: some stack popped into the unknown part
  void clear() {
    tops.clear();
    accepting = escaped = false;
  }
  void finish() {
    std::sort(tops.begin(), tops.end());
    tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
  }
  bool dead() const { return tops.empty() && !accepting && !escaped; }
};

// Expansion (closure over references and rule ends) and byte steps, with reusable scratch.
class Stepper {
 public:
  explicit Stepper(const Automaton& a) : a_(&a) { visited_keys_.assign(256, 0); visited_gen_.assign(256, 0); }

  // The state where `node` is entered with `parent` below it (tops, accepting, escaped).
  void expand(FramePool& pool, uint32_t node, uint32_t parent, StateBuf& out);
  // The state after reading byte `b` from the top frames `tops`.
  void step(FramePool& pool, const uint32_t* tops, size_t n, uint8_t b, StateBuf& out);

 private:
  void begin();
  bool visit(uint32_t node, uint32_t parent);
  void run(FramePool& pool, StateBuf& out);

  const Automaton* a_;
  std::vector<uint64_t> work_;  // (node, parent) pairs to expand
  std::vector<uint64_t> visited_keys_;
  std::vector<uint32_t> visited_gen_;
  uint32_t gen_ = 0;
  size_t visited_count_ = 0;
};

}  // namespace vllm::structured::detail
