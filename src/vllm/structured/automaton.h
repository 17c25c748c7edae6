// The compiled form of a Grammar that the matcher runs (internal to the structured library).
//
// Each *real* rule becomes a small NFA over bytes and rule references; every other rule is
// inlined into the NFAs of the rules that use it. Real rules are the root, the rules on a
// recursion cycle, and user rules too large to copy; helper rules (groups, repetitions, classes)
// and small user rules are inlined, and a tail self-reference (X ::= a X | b, the shape every
// repetition desugars into) becomes a loop. So `string ::= "\"" ([^"\\] | "\\" esc)* "\""` is one
// NFA with a loop, not a chain of helper rules: inside a string the stack is one frame, and the
// token classes of the loop node see the closing quote and what follows it.
//
// Nodes are epsilon-free. A node can have byte edges (byte set -> node of the same rule),
// reference edges (rule, return node) and be final (the rule may end there). A reference whose
// return node is a pure exit (final, no edges) is a tail call: it replaces the caller's frame.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vllm/structured/grammar.h"

namespace vllm::structured::detail {

// The return site of the root rule: the end of the input.
inline constexpr uint32_t kAcceptSite = 0xFFFFFFFFu;

struct ByteEdge {
  uint32_t set;     // Automaton::sets index
  uint32_t target;  // node
};

struct RefEdge {
  uint32_t rule;  // real rule
  uint32_t ret;   // node to continue at when the rule ends
  bool tail;      // ret is a pure exit: the callee returns straight to the caller's parent
};

struct Node {
  uint32_t rule = 0;  // the real rule it belongs to
  uint32_t bytes_begin = 0, bytes_end = 0;  // Automaton::byte_edges range
  uint32_t refs_begin = 0, refs_end = 0;    // Automaton::ref_edges range
  bool final = false;
  ByteSet first;  // the union of its byte edges' sets
  bool has_bytes() const { return bytes_end > bytes_begin; }
};

struct Automaton {
  std::vector<Node> nodes;
  std::vector<ByteEdge> byte_edges;
  std::vector<RefEdge> ref_edges;
  std::vector<ByteSet> sets;
  std::vector<uint32_t> rule_start;       // real rule -> its start node
  std::vector<std::string> rule_names;    // real rule -> name (the Grammar rule's)
  std::vector<std::vector<uint32_t>> return_sites;  // real rule -> sorted nodes (kAcceptSite)
  uint32_t root = 0;                      // real rule index of the root
  size_t memory_bytes() const;
};

// Compiles a checked Grammar. Throws GrammarError when it passes limits::kMaxCompiledNodes.
Automaton build_automaton(const Grammar& grammar);

}  // namespace vllm::structured::detail
