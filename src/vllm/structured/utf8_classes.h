// Code point classes as UTF-8 byte sequences (internal to the structured library).
//
// A class is a set of Unicode scalar values (code points without the surrogates). Its UTF-8
// encodings form a finite language over bytes; utf8_class_sequences() writes it as a prefix tree
// of byte sets: the children of a node have pairwise different byte sets, and one path from the
// root to an end is the set of encodings "b1 b2 ... bn" with every bi in the path's i-th set.
// Exactly the encodings of the class's code points are accepted: an overlong form, a surrogate,
// anything above U+10FFFF or a stray continuation byte never is.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "vllm/structured/grammar.h"

namespace vllm::structured {

struct CodePointRange {
  uint32_t lo = 0, hi = 0;  // inclusive
  bool operator==(const CodePointRange& o) const { return lo == o.lo && hi == o.hi; }
  bool operator<(const CodePointRange& o) const { return lo < o.lo || (lo == o.lo && hi < o.hi); }
};

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// Sorts and merges ranges (overlapping or adjacent ones become one), removes the surrogates
// U+D800-U+DFFF, and complements within the scalar values when `negate` is set.
std::vector<CodePointRange> normalize_class(std::vector<CodePointRange> ranges, bool negate);

// One node of the prefix tree. A node is either an end (a whole encoding was read) or has
// children, never both: no UTF-8 encoding is a prefix of another.
struct Utf8Node {
  struct Edge {
    ByteSet bytes;
    std::unique_ptr<Utf8Node> next;
  };
  std::vector<Edge> edges;
  bool is_end() const { return edges.empty(); }
};

// The encodings of a normalized class (see normalize_class) as a prefix tree. Sequences that
// differ in one position only are merged into one path first (so [^"\\] is eight paths, not
// dozens), then paths sharing a first byte set are joined under one edge.
std::unique_ptr<Utf8Node> utf8_class_sequences(const std::vector<CodePointRange>& ranges);

// Appends the UTF-8 encoding of a scalar value (no checks).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace vllm::structured
