#include "vllm/sampling/stop_checker.h"

#include <algorithm>

namespace vllm {

namespace {
inline bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of an incomplete UTF-8 character at the end of text (0 if the text ends cleanly).
size_t incomplete_tail(std::string_view text) {
  size_t n = text.size();
  size_t back = 0;
  while (back < 3 && back < n && is_continuation(static_cast<unsigned char>(text[n - 1 - back]))) ++back;
  if (back == n) return 0;  // only continuation bytes: not UTF-8 we can reason about
  unsigned char lead = static_cast<unsigned char>(text[n - 1 - back]);
  size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return back + 1 < want ? back + 1 : 0;
}
}  // namespace

std::optional<StopMatch> check_stop_strings(std::string_view text, size_t new_bytes,
                                            std::span<const std::string> stop, bool include_in_output) {
  if (new_bytes == 0 || stop.empty()) return std::nullopt;
  new_bytes = std::min(new_bytes, text.size());
  const std::string* best = nullptr;
  size_t best_start = 0, best_end = std::string_view::npos;
  for (const auto& s : stop) {
    if (s.empty()) continue;
    // A match must end inside the new bytes: start at or after size - new_bytes - len + 1.
    size_t limit = text.size() - new_bytes + 1;
    size_t from = limit > s.size() ? limit - s.size() : 0;
    size_t at = text.find(s, from);
    if (at == std::string_view::npos) continue;
    if (at + s.size() < best_end) {
      best = &s;
      best_start = at;
      best_end = at + s.size();
    }
  }
  if (!best) return std::nullopt;
  StopMatch m{*best, std::nullopt};
  if (!include_in_output) {
    m.truncate_to = best_start;
  } else if (best_end < text.size()) {
    m.truncate_to = best_end;
  }
  return m;
}

size_t stop_holdback(std::string_view text, std::span<const std::string> stop) {
  size_t hold = 0;
  for (const auto& s : stop) {
    // Longest proper prefix of s that the text ends with.
    size_t longest = std::min(s.size() > 0 ? s.size() - 1 : 0, text.size());
    for (size_t len = longest; len > hold; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  hold = std::max(hold, incomplete_tail(text));
  // Never split a character: widen to the start of the one the cut would fall in.
  size_t visible = text.size() - hold;
  while (visible > 0 && visible < text.size() && is_continuation(static_cast<unsigned char>(text[visible]))) --visible;
  return text.size() - visible;
}

StopChecker::StopChecker(std::vector<std::string> stop, bool include_stop_str_in_output)
    : stop_(std::move(stop)), include_(include_stop_str_in_output) {}

bool StopChecker::append(std::string_view delta, bool check_stop) {
  if (stopped()) return false;
  text_.append(delta);
  if (!check_stop || delta.empty()) return false;
  auto match = check_stop_strings(text_, delta.size(), stop_, include_);
  if (!match) return false;
  if (match->truncate_to) text_.resize(*match->truncate_to);
  stop_reason_ = std::move(match->stop_str);
  return true;
}

size_t StopChecker::visible_length(bool finished) const {
  if (finished || stopped()) return text_.size();
  // Stop strings that stay in the output need no hold-back; only a torn character does.
  size_t hold = include_ ? stop_holdback(text_, {}) : stop_holdback(text_, stop_);
  return text_.size() - hold;
}

std::string_view StopChecker::visible_text(bool finished) const {
  return std::string_view(text_).substr(0, visible_length(finished));
}

std::string StopChecker::next_delta(bool finished) {
  size_t visible = visible_length(finished);
  sent_ = std::min(sent_, text_.size());
  if (visible <= sent_) return {};
  std::string out = text_.substr(sent_, visible - sent_);
  sent_ = visible;
  return out;
}

}  // namespace vllm
