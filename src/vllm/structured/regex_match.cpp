// Evaluates a pattern on one literal string at compile time (a property name against
// patternProperties, an enum value against pattern). A set-of-positions simulation over the
// AST: polynomial in the text length, no backtracking.
#include <cstdint>
#include <vector>

#include "vllm/structured/regex_ast.h"

namespace vllm::structured {

namespace {

using Kind = RegexNode::Kind;
using Positions = std::vector<char>;  // positions[p]: a match can be at text offset p

bool any_set(const Positions& p) {
  for (char c : p)
    if (c) return true;
  return false;
}

Positions step(const RegexNode& n, const std::vector<uint32_t>& text, const Positions& in) {
  const size_t len = text.size();
  Positions out(len + 1, 0);
  switch (n.kind) {
    case Kind::kEmpty:
      return in;
    case Kind::kNothing:
      return out;
    case Kind::kStart:
      out[0] = in[0];
      return out;
    case Kind::kEnd:
      out[len] = in[len];
      return out;
    case Kind::kSet:
      for (size_t p = 0; p < len; ++p)
        if (in[p] && n.set.contains(text[p])) out[p + 1] = 1;
      return out;
    case Kind::kConcat: {
      Positions cur = in;
      for (const auto& c : n.children) {
        cur = step(c, text, cur);
        if (!any_set(cur)) break;
      }
      return cur;
    }
    case Kind::kAlt:
      for (const auto& c : n.children) {
        Positions r = step(c, text, in);
        for (size_t p = 0; p <= len; ++p) out[p] |= r[p];
      }
      return out;
    case Kind::kRepeat: {
      // out collects the positions after k repetitions for k >= min. A position reached again
      // after more repetitions leads nowhere new (fewer repetitions remain), so stop once an
      // iteration adds nothing.
      Positions cur = in;
      if (n.min == 0) out = in;
      for (uint64_t k = 1; n.max == RegexNode::kUnbounded || k <= n.max; ++k) {
        cur = step(n.children[0], text, cur);
        if (!any_set(cur)) break;
        if (k >= n.min) {
          bool added = false;
          for (size_t p = 0; p <= len; ++p)
            if (cur[p] && !out[p]) out[p] = 1, added = true;
          if (!added) break;
        }
      }
      return out;
    }
  }
  return out;
}

}  // namespace

bool regex_full_match(const RegexNode& node, const std::vector<uint32_t>& text) {
  Positions start(text.size() + 1, 0);
  start[0] = 1;
  return step(node, text, start)[text.size()] != 0;
}

}  // namespace vllm::structured
