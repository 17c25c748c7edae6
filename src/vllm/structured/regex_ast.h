// The parsed form of an ECMAScript pattern (see regex.h for the accepted subset), shared by the
// GBNF emitter, the anchor normaliser and the small matcher used to evaluate patterns on
// literal strings at compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "vllm/structured/code_point_set.h"

namespace vllm::structured {

struct RegexNode {
  enum class Kind {
    kEmpty,    // the empty string
    kNothing,  // the empty language (e.g. the class [])
    kSet,      // one code point from `set`
    kConcat,   // children in sequence
    kAlt,      // one of children
    kRepeat,   // children[0] repeated min..max times (max == kUnbounded: no limit)
    kStart,    // ^
    kEnd,      // $
  };
  static constexpr uint32_t kUnbounded = UINT32_MAX;

  Kind kind = Kind::kEmpty;
  CodePointSet set;
  std::vector<RegexNode> children;
  uint32_t min = 0, max = 0;
  size_t position = 0;  // where the node starts in the pattern (for errors)

  static RegexNode empty(size_t pos = 0) { return RegexNode{Kind::kEmpty, {}, {}, 0, 0, pos}; }
  static RegexNode nothing(size_t pos = 0) { return RegexNode{Kind::kNothing, {}, {}, 0, 0, pos}; }
  static RegexNode chars(CodePointSet s, size_t pos = 0) {
    if (s.empty()) return nothing(pos);  // e.g. the class []
    return RegexNode{Kind::kSet, std::move(s), {}, 0, 0, pos};
  }
  static RegexNode seq(std::vector<RegexNode> parts, size_t pos = 0);
  static RegexNode alt(std::vector<RegexNode> parts, size_t pos = 0);
};

// Parses a UTF-8 pattern; throws RegexError with the position on anything outside the subset or
// past the limits of regex.h.
RegexNode parse_regex(std::string_view pattern);

// The language with the anchors resolved: for search semantics each side that no ^ / $ anchors
// gets any-string; for full match the anchors are dropped. Anchors that are not at an end of the
// pattern are an error (with their position).
RegexNode resolve_anchors(const RegexNode& root, bool search);

// Whether `text` (code points) is in the language of an anchor-free node.
bool regex_full_match(const RegexNode& node, const std::vector<uint32_t>& text);

}  // namespace vllm::structured

namespace vllm::structured {

// The language of an anchor-free node minus a finite set of strings, as a node: used for
// property names that must differ from the listed ones ("any key but these", "keys matching a
// pattern but not these"). Built with Brzozowski derivatives along a trie of the strings, so
// its size is about the pattern's size times the strings' total length.
RegexNode regex_minus_strings(const RegexNode& node, const std::vector<std::vector<uint32_t>>& strings);

// Whether the empty string is in the language of an anchor-free node.
bool regex_nullable(const RegexNode& node);

}  // namespace vllm::structured
