// A context-free grammar over bytes, parsed from our GBNF dialect (llama.cpp's): the one
// representation every structured-output front end (JSON Schema, regex, choice, json_object,
// user GBNF) ends in. See docs/structured_outputs.md.
//
// A Grammar is a list of rules; a rule is a list of alternatives; an alternative is a sequence of
// elements; an element is a set of bytes (256 bits) or a reference to a rule. Everything above
// bytes is desugared by the parser:
//   - a literal "abc" is the sequence of its UTF-8 bytes;
//   - a code point class [^"\\] becomes the UTF-8 byte sequences of exactly the code points in it
//     (a helper rule when it reaches beyond ASCII), so the grammar only ever matches valid UTF-8;
//   - groups, X*, X+, X?, X{m}, X{m,}, X{m,n} become helper rules (X{m,n}: m copies of X, then a
//     chain of n - m nested optional copies, with X itself shared).
// The parser also checks what the matcher relies on: every rule is defined, `root` exists, every
// rule reachable from it matches at least one string, and there is no left recursion (a rule
// reaching itself before consuming a byte through a non-tail reference; the matcher is a
// pushdown automaton). Unreachable rules are dropped.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/core/error.h"

namespace vllm::structured {

// A grammar that cannot be parsed or used; the message names the line and column:
// "grammar error at line 3, column 14: undefined rule 'valu'". Kind kInvalidArgument (HTTP 400).
class GrammarError : public Error {
 public:
  GrammarError(int line, int column, const std::string& message);
  int line() const { return line_; }
  int column() const { return column_; }
  // The message without the "grammar error at line L, column C: " prefix.
  const std::string& reason() const { return reason_; }

 private:
  int line_;
  int column_;
  std::string reason_;
};

// A set of bytes.
class ByteSet {
 public:
  bool test(uint8_t b) const { return (words_[b >> 6] >> (b & 63)) & 1; }
  void set(uint8_t b) { words_[b >> 6] |= uint64_t{1} << (b & 63); }
  void set_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) set(static_cast<uint8_t>(b));
  }
  bool empty() const { return (words_[0] | words_[1] | words_[2] | words_[3]) == 0; }
  int count() const;
  bool intersects(const ByteSet& o) const {
    return ((words_[0] & o.words_[0]) | (words_[1] & o.words_[1]) | (words_[2] & o.words_[2]) |
            (words_[3] & o.words_[3])) != 0;
  }
  ByteSet& operator|=(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) words_[i] |= o.words_[i];
    return *this;
  }
  bool operator==(const ByteSet& o) const { return words_ == o.words_; }
  bool operator<(const ByteSet& o) const { return words_ < o.words_; }
  const std::array<uint64_t, 4>& words() const { return words_; }
  // "a" for one printable ASCII byte, a class such as [a-z\x80-\xBF] otherwise (for listings).
  std::string to_string() const;

 private:
  std::array<uint64_t, 4> words_{};
};

struct GrammarElement {
  enum class Kind : uint8_t { kBytes, kRule };
  Kind kind = Kind::kBytes;
  uint32_t index = 0;  // Grammar::byte_sets() index (kBytes) or Grammar::rules() index (kRule)
  bool operator==(const GrammarElement& o) const { return kind == o.kind && index == o.index; }
};

using GrammarSequence = std::vector<GrammarElement>;

struct GrammarRule {
  std::string name;  // as written; helper rules get "<owner>--<n>" names no user rule has
  std::vector<GrammarSequence> alternatives;  // an empty sequence matches the empty string
  // Made by the parser (group, repetition, class): the compiler inlines these into their users.
  bool helper = false;
  // The user rule it was written in (itself for a user rule): error messages name this one.
  uint32_t owner = 0;
  int line = 0, column = 0;  // where it is defined (a helper: where its construct starts)
};

class Grammar {
 public:
  // Parses GBNF text. Throws GrammarError. `root_rule` names the start rule.
  static Grammar from_gbnf(std::string_view text, std::string_view root_rule = "root");

  uint32_t root() const { return root_; }
  const std::vector<GrammarRule>& rules() const { return rules_; }
  const std::vector<ByteSet>& byte_sets() const { return byte_sets_; }
  std::optional<uint32_t> find_rule(std::string_view name) const;
  size_t num_elements() const;
  // A GBNF-like listing of the rules for debugging: byte sets print as classes of \xHH escapes,
  // which here mean bytes (in GBNF text they mean code points), so it is not meant to be parsed.
  std::string to_string() const;

  // Built by the parser (gbnf_parser.cpp) through GrammarBuilder.
  Grammar() = default;

 private:
  friend class GrammarBuilder;
  std::vector<GrammarRule> rules_;
  std::vector<ByteSet> byte_sets_;
  uint32_t root_ = 0;
};

}  // namespace vllm::structured
