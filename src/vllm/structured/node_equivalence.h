// Which automaton nodes get the same token classes (internal to the structured library).
//
// A token of length L read from node p only ever sees what p's automaton can do in the next L
// bytes. Two nodes of one rule whose futures agree for L bytes therefore classify every token of
// length <= L the same way, and are classified once. This is what keeps bounded repetition
// affordable: in X{0,64} the 64 copies of X differ only in how far the end is, so for the short
// tokens that make up most of a vocabulary nearly all copies agree.
//
// Futures are compared by partition refinement (Moore's algorithm): level d splits nodes by
// their rule, whether they can end it, and the level d-1 classes their byte edges lead to (and
// the level d-m classes their references return to, m being the callee's shortest match). Token
// lengths are cut into tiers (up to 4, 8, 16, ... bytes), and a node's classes are assembled from
// one classification per tier, each shared by every node in the same tier class.
#pragma once

#include <cstdint>
#include <vector>

#include "vllm/structured/automaton.h"

namespace vllm::structured::detail {

struct TierPlan {
  // Tier t covers token lengths (bounds[t-1], bounds[t]] (bounds[-1] = 0); the last bound is the
  // longest token.
  std::vector<uint32_t> bounds;
  // class_of[t][node]: nodes with byte edges in the same tier-t class classify the tokens of
  // tier t alike (nodes without byte edges: UINT32_MAX).
  std::vector<std::vector<uint32_t>> class_of;
  // future[t][node]: every node's class at level bounds[t] - 1 (its future over that many bytes).
  std::vector<std::vector<uint32_t>> future;
  // body[t][node]: for a body node (is_body_node), its class at level bounds[t] - 1 of the
  // *body* partition: what it reads before it leaves the body (takes a body exit), whatever the
  // rule, and where it leaves; UINT32_MAX for other nodes. Two body nodes of this class accept
  // the same byte strings of that length without leaving and leave at the same places, so a
  // trie walk inside the body is shared by every copy of it (every JSON string of a grammar)
  // and only what follows an exit is walked per copy.
  std::vector<std::vector<uint32_t>> body;
  // body_shared[t][class]: whether two or more nodes have that body class at tier t.
  std::vector<std::vector<uint8_t>> body_shared;
};

// Body nodes: byte edges only (no references, not final), so reading from one never depends on
// the stack. A byte edge between body nodes stays in the body unless its set holds a double
// quote: the closing quote of a JSON string is where the body ends and the context begins.
// (Which edges are exits only decides what is shared; any choice gives exact classes.)
inline bool is_body_node(const Node& n) { return n.has_bytes() && n.refs_end == n.refs_begin && !n.final; }
inline bool is_body_edge(const Automaton& a, const ByteEdge& e) {
  return is_body_node(a.nodes[e.target]) && !a.sets[e.set].test('"');
}

TierPlan plan_tiers(const Automaton& a, size_t max_token_bytes);

}  // namespace vllm::structured::detail
