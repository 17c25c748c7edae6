// Helpers shared by the streaming parsers: finding markers in text that arrives in arbitrary
// pieces, and never ending an emitted piece inside a UTF-8 sequence.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vllm::parsers::detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Length of the longest prefix of s that does not end inside a UTF-8 sequence: a trailing lead
// byte with fewer continuation bytes than it announces is cut off (to be completed by the next
// piece). Bytes that cannot be the start of a valid sequence are not held back: invalid input
// passes through rather than being kept forever.
size_t utf8_complete_prefix(std::string_view s);

// A stream of text emitted in pieces: each piece is cut before an incomplete UTF-8 sequence at
// its end, which is prepended to the next piece.
class Utf8Holdback {
 public:
  // Appends s and returns what can be emitted now.
  std::string push(std::string_view s);
  // End of the stream: whatever is held back, complete or not.
  std::string flush();

 private:
  std::string held_;
};

// Finds fixed markers (e.g. "<tool_call>") in text fed one byte at a time. Bytes that cannot be
// part of a marker are released at once; only a suffix that could still grow into a marker is
// held. Overlaps are handled: in "<<tool_call>" the first '<' is released when the second
// arrives.
class MarkerMatcher {
 public:
  MarkerMatcher() = default;
  explicit MarkerMatcher(std::vector<std::string> markers) : markers_(std::move(markers)) {}

  // Feeds one byte. Appends to `released` the bytes now known not to belong to a marker and
  // returns the index of the marker this byte completed (its bytes are consumed), or -1.
  int push(char c, std::string& released);
  // End of input: returns the held bytes (a marker prefix that never completed) and clears them.
  std::string flush();
  const std::string& held() const { return held_; }
  // Replaces the markers; bytes held are kept and re-examined with the next byte.
  void set_markers(std::vector<std::string> markers) { markers_ = std::move(markers); }

 private:
  bool is_prefix_of_marker(std::string_view s) const;
  std::vector<std::string> markers_;
  std::string held_;
};

}  // namespace vllm::parsers::detail
