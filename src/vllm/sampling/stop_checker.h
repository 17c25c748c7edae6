// Stop strings over streamed text, for the output processor. The detokenizer hands over text
// a token at a time; a stop string may straddle those pieces, and while its first characters
// sit at the end of the text they must not be streamed to the client, because if the rest
// arrives the stop string (and everything after it) is cut from the output.
//
// Strings are UTF-8 and handled as bytes: a valid UTF-8 stop string only ever matches at
// character boundaries, and what is held back is widened so a streamed piece never ends
// inside a character.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vllm {

struct StopMatch {
  std::string stop_str;                // the stop string that matched (vLLM's stop_reason)
  std::optional<size_t> truncate_to;   // cut the text to this many bytes; none: keep it all
};

// vLLM's check_stop_strings, in bytes: looks for stop strings that end inside the last
// `new_bytes` bytes of `text` (so text before was already checked and is not re-scanned).
// The one completing first wins, ties to the earlier in `stop` (what adding the text one
// token at a time gives). The text is cut before the stop string, or after it when
// include_in_output (no cut if it ends the text).
std::optional<StopMatch> check_stop_strings(std::string_view text, size_t new_bytes,
                                            std::span<const std::string> stop, bool include_in_output);

// Bytes at the end of `text` not to stream yet: the longest suffix that is a proper prefix
// of some stop string, widened to the start of its first character, plus any incomplete
// UTF-8 character at the very end.
size_t stop_holdback(std::string_view text, std::span<const std::string> stop);

// One output sequence's text and stop state.
class StopChecker {
 public:
  StopChecker(std::vector<std::string> stop, bool include_stop_str_in_output);

  // Adds newly detokenized text. With check_stop (vLLM checks only once more than
  // min_tokens tokens exist), looks for a stop string ending in it; on a match cuts the text,
  // sets stop_reason and returns true. Text appended after a stop is ignored.
  bool append(std::string_view delta, bool check_stop = true);

  bool stopped() const { return stop_reason_.has_value(); }
  const std::optional<std::string>& stop_reason() const { return stop_reason_; }
  const std::string& text() const { return text_; }

  // Bytes of text() that may be shown: all of it once finished (or stopped), else all but
  // what might still become a stop string that is cut (nothing is held back when stop
  // strings are kept in the output, as in vLLM).
  size_t visible_length(bool finished) const;
  // CUMULATIVE output: text()[0, visible_length(finished)).
  std::string_view visible_text(bool finished) const;
  // DELTA output: the visible text not returned by an earlier call.
  std::string next_delta(bool finished);

 private:
  std::vector<std::string> stop_;
  bool include_;
  std::string text_;
  size_t sent_ = 0;
  std::optional<std::string> stop_reason_;
};

}  // namespace vllm
