// Regular expression (ECMAScript subset) -> GBNF text in our dialect (docs/structured_outputs.md).
//
// Supported: literals; escapes \d \D \w \W \s \S \t \n \r \v \f \0 \cX \xHH \uXXXX \u{X...}
// (a \uD83D\uDE00 surrogate pair is one code point) and escaped syntax characters; `.` (any
// code point but \n \r U+2028 U+2029, as ECMAScript); classes [...] / [^...] with ranges and
// escapes ([\b] is backspace); quantifiers * + ? {m} {m,} {m,n} and their lazy forms (the same
// language); alternation; groups ( ), (?: ), (?<name> ); anchors ^ and $ where they stand at
// an end of the pattern (also inside groups at that end, e.g. (^a|^b)c$).
// Rejected with the position (0-based code point index in the pattern): backreferences \1 \k<>,
// lookaround (?= (?! (?<= (?<!, word boundaries \b \B, anchors anywhere else, inline flags and
// other (? forms, unknown letter escapes (\A, \z, \p{...}), and the limits below.
//
// Characters are Unicode scalar values: surrogate code points are never in the language.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "vllm/core/error.h"
#include "vllm/structured/limits.h"

namespace vllm::structured {

// Limits (a pattern past them is an error, never a hang or an oversized grammar):
inline constexpr size_t kMaxRegexLength = 8192;      // code points in a pattern
inline constexpr size_t kMaxRegexNesting = 40;       // nested groups (the grammar parser
                                                     // allows 128 levels of parentheses; a
                                                     // group may take up to 3 in the output)
inline constexpr size_t kMaxRegexRepetition = limits::kMaxRepetition;  // any m or n of {m,n}
// Sum of the repetition bounds in a pattern (each counted repetition is expanded by the grammar
// compiler into about that many rule steps, so this bounds the expanded grammar's size).
inline constexpr size_t kMaxRegexRepetitionTotal = 100000;

// A pattern we cannot translate exactly. position() is the 0-based code point index in the
// pattern where the problem is.
class RegexError : public vllm::Error {
 public:
  RegexError(const std::string& message, size_t position)
      : vllm::Error(message + " at position " + std::to_string(position),
                    ErrorKind::kInvalidArgument),
        position_(position) {}
  size_t position() const { return position_; }

 private:
  size_t position_;
};

struct RegexOptions {
  // false: the whole text must match (vLLM `regex` requests). true: the language is the strings
  // containing a match (JSON Schema `pattern`); a side not anchored by ^ or $ is free.
  bool search = false;
  // Emit every character in the form it takes inside a JSON string literal (`"` -> \", `\` ->
  // \\, \b \f \n \r \t, other control characters \u00XX with either hex case; anything else
  // as itself), without the enclosing quotes. So the grammar constrains the decoded string
  // while producing JSON text.
  bool json_string = false;
};

// A complete grammar whose start rule `root` is the pattern's language.
std::string regex_to_gbnf(std::string_view pattern, const RegexOptions& opts = {});

}  // namespace vllm::structured
