#include "vllm/structured/code_point_set.h"

#include <cstdint>
#include <algorithm>

namespace vllm::structured {

CodePointSet CodePointSet::range(uint32_t lo, uint32_t hi) {
  CodePointSet s;
  s.add(lo, hi);
  return s;
}

CodePointSet CodePointSet::any_scalar() {
  CodePointSet s;
  s.add(0, kSurrogateFirst - 1);
  s.add(kSurrogateLast + 1, kMaxCodePoint);
  return s;
}

void CodePointSet::add(uint32_t lo, uint32_t hi) {
  if (lo > hi) return;
  // Insert, then merge overlapping or adjacent neighbours.
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), std::make_pair(lo, hi));
  it = ranges_.insert(it, {lo, hi});
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  merged.reserve(ranges_.size());
  for (const auto& r : ranges_) {
    if (!merged.empty() && static_cast<uint64_t>(merged.back().second) + 1 >= r.first) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  ranges_ = std::move(merged);
}

void CodePointSet::add(const CodePointSet& other) {
  for (const auto& r : other.ranges_) add(r.first, r.second);
}

CodePointSet CodePointSet::complement() const {
  CodePointSet out;
  uint64_t next = 0;
  for (const auto& r : ranges_) {
    if (r.first > next) out.ranges_.push_back({static_cast<uint32_t>(next), r.first - 1});
    next = static_cast<uint64_t>(r.second) + 1;
  }
  if (next <= kMaxCodePoint) out.ranges_.push_back({static_cast<uint32_t>(next), kMaxCodePoint});
  return out;
}

CodePointSet CodePointSet::intersect(const CodePointSet& other) const {
  CodePointSet out;
  size_t i = 0, j = 0;
  while (i < ranges_.size() && j < other.ranges_.size()) {
    uint32_t lo = std::max(ranges_[i].first, other.ranges_[j].first);
    uint32_t hi = std::min(ranges_[i].second, other.ranges_[j].second);
    if (lo <= hi) out.ranges_.push_back({lo, hi});
    if (ranges_[i].second < other.ranges_[j].second) ++i; else ++j;
  }
  return out;
}

void CodePointSet::subtract(const CodePointSet& other) { *this = intersect(other.complement()); }

bool CodePointSet::contains(uint32_t cp) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(cp, kMaxCodePoint + 1));
  if (it == ranges_.begin()) return false;
  --it;
  return cp >= it->first && cp <= it->second;
}

uint64_t CodePointSet::size() const {
  uint64_t n = 0;
  for (const auto& r : ranges_) n += static_cast<uint64_t>(r.second) - r.first + 1;
  return n;
}

bool decode_utf8(std::string_view text, std::vector<uint32_t>& out) {
  size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    size_t len;
    if (b < 0x80) { cp = b; len = 1; }
    else if ((b & 0xE0) == 0xC0) { cp = b & 0x1F; len = 2; }
    else if ((b & 0xF0) == 0xE0) { cp = b & 0x0F; len = 3; }
    else if ((b & 0xF8) == 0xF0) { cp = b & 0x07; len = 4; }
    else return false;
    if (i + len > text.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > kMaxCodePoint ||
        (cp >= kSurrogateFirst && cp <= kSurrogateLast))
      return false;
    out.push_back(cp);
    i += len;
  }
  return true;
}

}  // namespace vllm::structured
