// Language difference L(P) \ K for a finite K, without building an automaton: walk a trie of
// K; at each trie node the remaining language splits into the strings that end here, those
// whose next character is a trie edge (derivative of P by that character, recursively) and
// those whose next character is not (P restricted to such a first character).
#include <cstdint>
#include <map>
#include <memory>

#include "vllm/structured/regex.h"
#include "vllm/structured/regex_ast.h"

namespace vllm::structured {

namespace {

using Kind = RegexNode::Kind;

RegexNode repeat(const RegexNode& child, uint32_t min, uint32_t max) {
  if (max == 0) return RegexNode::empty();
  if (child.kind == Kind::kNothing) return min == 0 ? RegexNode::empty() : RegexNode::nothing();
  if (child.kind == Kind::kEmpty) return RegexNode::empty();
  if (min == 1 && max == 1) return child;
  RegexNode n;
  n.kind = Kind::kRepeat;
  n.min = min;
  n.max = max;
  n.children.push_back(child);
  return n;
}

// The remaining repetition after one iteration was used.
RegexNode repeat_rest(const RegexNode& n) {
  uint32_t min = n.min > 0 ? n.min - 1 : 0;
  uint32_t max = n.max == RegexNode::kUnbounded ? n.max : n.max - 1;
  return repeat(n.children[0], min, max);
}

// Strings of L(n) whose first character is in `first` (derivative when `first` is one code
// point and `derive` is set: then the first character is removed).
RegexNode restrict_first(const RegexNode& n, const CodePointSet& first, bool derive) {
  switch (n.kind) {
    case Kind::kEmpty:
    case Kind::kNothing:
    case Kind::kStart:
    case Kind::kEnd:
      return RegexNode::nothing();
    case Kind::kSet: {
      CodePointSet s = n.set.intersect(first);
      if (s.empty()) return RegexNode::nothing();
      return derive ? RegexNode::empty() : RegexNode::chars(s);
    }
    case Kind::kAlt: {
      std::vector<RegexNode> parts;
      for (const auto& c : n.children) parts.push_back(restrict_first(c, first, derive));
      return RegexNode::alt(std::move(parts));
    }
    case Kind::kConcat: {
      std::vector<RegexNode> alts;
      for (size_t i = 0; i < n.children.size(); ++i) {
        std::vector<RegexNode> seq;
        seq.push_back(restrict_first(n.children[i], first, derive));
        for (size_t j = i + 1; j < n.children.size(); ++j) seq.push_back(n.children[j]);
        alts.push_back(RegexNode::seq(std::move(seq)));
        if (!regex_nullable(n.children[i])) break;
      }
      return RegexNode::alt(std::move(alts));
    }
    case Kind::kRepeat:
      // Leading empty iterations change nothing: one iteration starts the string.
      return RegexNode::seq({restrict_first(n.children[0], first, derive), repeat_rest(n)});
  }
  return RegexNode::nothing();
}

size_t count_nodes(const RegexNode& n) {
  size_t k = 1;
  for (const auto& c : n.children) k += count_nodes(c);
  return k;
}

// Derivatives can grow (each nullable prefix adds an alternative); past this many nodes the
// names cannot be excluded from the pattern at a reasonable grammar size.
constexpr size_t kMaxDerivedNodes = 200000;

struct Trie {
  bool terminal = false;
  std::map<uint32_t, std::unique_ptr<Trie>> next;
};

RegexNode minus(const RegexNode& p, const Trie& t, size_t& budget) {
  if (p.kind == Kind::kNothing) return p;
  size_t size = count_nodes(p);
  if (size > budget)
    throw RegexError("pattern too large to exclude the listed property names from", p.position);
  budget -= size;
  if (t.next.empty() && !t.terminal) return p;
  std::vector<RegexNode> parts;
  if (!t.terminal && regex_nullable(p)) parts.push_back(RegexNode::empty());
  CodePointSet others = CodePointSet::any_scalar();
  for (const auto& [cp, child] : t.next) {
    others.subtract(CodePointSet::single(cp));
    RegexNode d = restrict_first(p, CodePointSet::single(cp), /*derive=*/true);
    if (d.kind == Kind::kNothing) continue;
    RegexNode rest = minus(d, *child, budget);
    parts.push_back(RegexNode::seq({RegexNode::chars(CodePointSet::single(cp)), std::move(rest)}));
  }
  if (!others.empty()) parts.push_back(restrict_first(p, others, /*derive=*/false));
  return RegexNode::alt(std::move(parts));
}

}  // namespace

bool regex_nullable(const RegexNode& n) {
  switch (n.kind) {
    case Kind::kEmpty:
    case Kind::kStart:
    case Kind::kEnd:
      return true;
    case Kind::kNothing:
    case Kind::kSet:
      return false;
    case Kind::kConcat:
      for (const auto& c : n.children)
        if (!regex_nullable(c)) return false;
      return true;
    case Kind::kAlt:
      for (const auto& c : n.children)
        if (regex_nullable(c)) return true;
      return false;
    case Kind::kRepeat:
      return n.min == 0 || regex_nullable(n.children[0]);
  }
  return false;
}

RegexNode regex_minus_strings(const RegexNode& node, const std::vector<std::vector<uint32_t>>& strings) {
  Trie root;
  for (const auto& s : strings) {
    Trie* t = &root;
    for (uint32_t cp : s) {
      auto& slot = t->next[cp];
      if (!slot) slot = std::make_unique<Trie>();
      t = slot.get();
    }
    t->terminal = true;
  }
  size_t budget = kMaxDerivedNodes;
  return minus(node, root, budget);
}

}  // namespace vllm::structured
