#include "vllm/parsers/text_stream.h"

namespace vllm::parsers::detail {

size_t utf8_complete_prefix(std::string_view s) {
  // A sequence is at most 4 bytes: only the last 3 bytes can belong to an unfinished one.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back for the lead
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 4;
    } else {
      return n;  // ASCII or a byte that cannot lead a sequence: nothing to wait for
    }
    return back < need ? n - back : n;
  }
  return n;
}

std::string Utf8Holdback::push(std::string_view s) {
  if (held_.empty()) {
    const size_t k = utf8_complete_prefix(s);
    held_.assign(s.substr(k));
    return std::string(s.substr(0, k));
  }
  held_.append(s);
  const size_t k = utf8_complete_prefix(held_);
  std::string out = held_.substr(0, k);
  held_.erase(0, k);
  return out;
}

std::string Utf8Holdback::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

bool MarkerMatcher::is_prefix_of_marker(std::string_view s) const {
  for (const auto& m : markers_)
    if (m.size() >= s.size() && std::string_view(m).substr(0, s.size()) == s) return true;
  return false;
}

int MarkerMatcher::push(char c, std::string& released) {
  if (held_.empty()) {
    // The common case: a byte that starts no marker goes straight through.
    bool starts = false;
    for (const auto& m : markers_) starts = starts || (!m.empty() && m[0] == c);
    if (!starts) {
      released.push_back(c);
      return -1;
    }
  }
  held_.push_back(c);
  for (;;) {
    for (size_t i = 0; i < markers_.size(); ++i) {
      if (held_ == markers_[i]) {
        held_.clear();
        return static_cast<int>(i);
      }
    }
    if (held_.empty() || is_prefix_of_marker(held_)) return -1;
    // The held bytes can no longer become a marker from their first byte: release it and see
    // whether the rest is still a marker's beginning.
    released.push_back(held_[0]);
    held_.erase(0, 1);
  }
}

std::string MarkerMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace vllm::parsers::detail
