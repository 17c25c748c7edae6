// The pushdown automaton's moves (internal to the structured library).
//
// A stack is a chain of frames; a frame is (node, parent), hash-consed in a FramePool so that
// equal stacks have equal ids and a parser state is a sorted set of ids. The *top* frames of a
// state sit at nodes with byte edges (the next byte is read there); the frames below them are
// return frames (node = where to continue when the rule above ends). Frames are persistent:
// pushing creates a frame whose parent is an existing one, nothing is ever modified, so a state
// is a handful of ids however deep its stacks are, and forks share everything.
//
// The stacks form a graph-structured stack: a parent can be a *set* of frames (hash-consed too).
// Tops at the same node are merged into one frame whose parent is the union of their parents,
// which is exact (popping it continues below each of them) and keeps an ambiguous grammar's
// state to at most one top per node instead of one per parse, which can be exponentially many.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "vllm/structured/automaton.h"

namespace vllm::structured::detail {

// Parent of the root rule's frames: popping to it ends the input (the grammar can terminate).
inline constexpr uint32_t kRootFrame = 0xFFFFFFFFu;
// Compile time: the unknown rest of the stack below the frame being classified. Popping to it
// is an "escape": the rule ended and what follows depends on the real stack.
inline constexpr uint32_t kUnknownFrame = 0xFFFFFFFEu;
// Parent ids with this bit (below the two sentinels) name a set of frames.
inline constexpr uint32_t kSetBit = 0x80000000u;

inline bool is_frame_set(uint32_t parent) { return parent >= kSetBit && parent < kUnknownFrame; }

class FramePool {
 public:
  FramePool() {
    table_.assign(64, 0);
    set_table_.assign(16, 0);
    set_begin_.push_back(0);
  }
  // The frame (node, parent); parent is a frame, a set (intern_set) or a sentinel.
  uint32_t intern(uint32_t node, uint32_t parent) {
    const uint64_t key = (uint64_t{node} << 32) | parent;
    if (frames_.size() * 2 >= table_.size()) grow();
    const size_t mask = table_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
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
  // Calls f(frame) for each frame a parent stands for: the set's members, or the parent itself
  // (a frame or a sentinel).
  template <typename F>
  void for_each_member(uint32_t parent, F&& f) const {
    if (!is_frame_set(parent)) {
      f(parent);
      return;
    }
    const uint32_t s = parent & ~kSetBit;
    for (uint32_t k = set_begin_[s]; k < set_begin_[s + 1]; ++k) f(set_data_[k]);
  }
  // The parent id of a set of two or more parents (sorted, unique, none of them a set).
  uint32_t intern_set(const std::vector<uint32_t>& members);
  size_t size() const { return frames_.size(); }
  size_t memory_bytes() const {
    return frames_.capacity() * 8 + table_.capacity() * 4 + set_data_.capacity() * 4 + set_begin_.capacity() * 4 +
           set_table_.capacity() * 4;
  }
  void clear();
  // Keeps the frames reachable (through parents and sets) from `roots` and renumbers them,
  // keeping their order (a parent is always older than its children, so ids stay parent <
  // child). Returns the old -> new map (UINT32_MAX for dropped frames).
  std::vector<uint32_t> compact(const std::vector<uint32_t>& roots);

  static size_t mix(uint64_t k) {  // MurmurHash3's finalizer: every key bit reaches the low bits
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }

 private:
  void grow();
  size_t set_hash(const uint32_t* p, size_t n) const;

  std::vector<uint64_t> frames_;  // node << 32 | parent
  std::vector<uint32_t> table_;   // open addressing: frame id + 1, 0 = empty
  std::vector<uint32_t> set_data_;
  std::vector<uint32_t> set_begin_;  // sets + 1 entries into set_data_
  std::vector<uint32_t> set_table_;  // open addressing: set index + 1
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
  bool dead() const { return tops.empty() && !accepting && !escaped; }
};

// Expansion (closure over references and rule ends) and byte steps, with reusable scratch.
class Stepper {
 public:
  explicit Stepper(const Automaton& a) : a_(&a) {
    visited_keys_.assign(256, 0);
    visited_gen_.assign(256, 0);
  }

  // The state where `node` is entered with `parent` below it (tops, accepting, escaped).
  void expand(FramePool& pool, uint32_t node, uint32_t parent, StateBuf& out);
  // The state where each of `nodes` is entered with `parent` below it (their union).
  void expand(FramePool& pool, const std::vector<uint32_t>& nodes, uint32_t parent, StateBuf& out);
  // The state after reading byte `b` from the top frames `tops`.
  void step(FramePool& pool, const uint32_t* tops, size_t n, uint8_t b, StateBuf& out);
  // Parser moves made so far (work items: expansions of a node with a parent, repeats included,
  // and parents gathered when tops merge): the work done.
  uint64_t moves() const { return moves_; }

 private:
  void begin();
  bool visit(uint32_t node, uint32_t parent);
  void run(FramePool& pool, StateBuf& out);
  void merge_tops(FramePool& pool, StateBuf& out);
  [[noreturn]] static void too_ambiguous();

  const Automaton* a_;
  std::vector<uint64_t> work_;  // (node, parent) pairs to expand
  std::vector<uint64_t> visited_keys_;
  std::vector<uint32_t> visited_gen_;
  uint32_t gen_ = 0;
  size_t visited_count_ = 0;
  uint64_t moves_ = 0;
  size_t step_work_ = 0;  // work items of the current expand() or step()
  std::vector<uint64_t> by_node_;   // merge scratch: node << 32 | frame
  std::vector<uint32_t> parents_;   // merge scratch
};

}  // namespace vllm::structured::detail
