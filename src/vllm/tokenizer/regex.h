// PCRE2-backed regular expressions with the semantics the `tokenizers` library gets from
// Oniguruma (internal header). Patterns are compiled once, with UTF + UCP and JIT; matching is
// thread-safe (per-thread match data and JIT stacks).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vllm::tok {

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message (the caller names the file and field).
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches, left to right, as [start, end) byte ranges; after an empty
  // match the search resumes one character later (the regex crates' find_iter behaviour). The
  // subject must be valid UTF-8.
  void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const;

  // Calls fn(start, end) for every match, as find_all would list them, without a list.
  template <typename F>
  void for_each_match(std::string_view subject, F&& fn) const {
    size_t pos = 0;
    while (pos <= subject.size()) {
      size_t ms = 0, me = 0;
      if (!match_from(subject, pos, &ms, &me)) break;
      fn(ms, me);
      if (me > ms) {
        pos = me;
      } else {
        // Empty match: step over one character so the search makes progress.
        if (me >= subject.size()) break;
        pos = me + utf8_char_len(static_cast<unsigned char>(subject[me]));
      }
    }
  }

  // The leftmost match at or after byte offset `start`.
  bool match_from(std::string_view subject, size_t start, size_t* ms, size_t* me) const;

  const std::string& pattern() const { return pattern_; }

 private:
  static size_t utf8_char_len(unsigned char b) { return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

// Rewrites an Oniguruma (Ruby syntax) pattern as used in tokenizer.json into an equivalent PCRE2
// pattern: Oniguruma's \s also matches U+0085 (NEL), which PCRE2's Unicode \s does not.
std::string onig_to_pcre2(std::string_view pattern);

}  // namespace vllm::tok
