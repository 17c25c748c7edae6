// A set of Unicode code points as sorted, disjoint, non-adjacent closed ranges. The front ends
// reason about characters with it (regex classes, JSON string characters) before writing them
// out as GBNF classes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vllm/structured/utf8_classes.h"  // append_utf8, kMaxCodePoint

namespace vllm::structured {

inline constexpr uint32_t kSurrogateFirst = 0xD800;
inline constexpr uint32_t kSurrogateLast = 0xDFFF;

class CodePointSet {
 public:
  CodePointSet() = default;
  static CodePointSet single(uint32_t cp) { return range(cp, cp); }
  static CodePointSet range(uint32_t lo, uint32_t hi);
  // Every scalar value (all code points except the UTF-16 surrogates, which UTF-8 text cannot
  // hold).
  static CodePointSet any_scalar();

  void add(uint32_t lo, uint32_t hi);
  void add(uint32_t cp) { add(cp, cp); }
  void add(const CodePointSet& other);
  void subtract(const CodePointSet& other);
  CodePointSet complement() const;  // within [0, kMaxCodePoint]
  CodePointSet intersect(const CodePointSet& other) const;

  bool contains(uint32_t cp) const;
  bool empty() const { return ranges_.empty(); }
  // Number of code points (for choosing between a class and its negation).
  uint64_t size() const;
  bool is_single() const { return ranges_.size() == 1 && ranges_[0].first == ranges_[0].second; }
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return ranges_; }
  bool operator==(const CodePointSet& other) const { return ranges_ == other.ranges_; }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
};

// Decodes UTF-8; invalid sequences are reported by returning false.
bool decode_utf8(std::string_view text, std::vector<uint32_t>& out);

}  // namespace vllm::structured
