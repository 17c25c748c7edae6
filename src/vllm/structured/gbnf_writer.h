// Writing GBNF text (our dialect, docs/structured_outputs.md) from the front ends: literal and
// class escaping, JSON-string character forms, and a rule table with unique names.
#pragma once

#include <cstdint>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/core/error.h"
#include "vllm/structured/code_point_set.h"
#include "vllm/structured/limits.h"

namespace vllm::structured {

// Upper bound on the text one front end call may produce: a schema or pattern whose grammar
// would be larger is rejected rather than handed to the grammar compiler.
inline constexpr size_t kMaxFrontendGrammarBytes = limits::kMaxGrammarBytes;

class GrammarTooLargeError : public vllm::Error {
 public:
  GrammarTooLargeError()
      : vllm::Error("generated grammar exceeds " + std::to_string(kMaxFrontendGrammarBytes) +
                        " bytes (schema or pattern too large)",
                    ErrorKind::kInvalidArgument) {}
};

// "..." for UTF-8 text: printable ASCII as is, the rest escaped (\n \t \r \\ \" \xHH \uHHHH
// \UHHHHHHHH), so the generated grammar text is ASCII (builtin_grammars.h's gbnf_literal keeps
// UTF-8 as is).
std::string gbnf_ascii_literal(std::string_view utf8);
// One code point of `set` (non-empty): a literal for one code point, else a class, negated
// when that is shorter. Surrogates are excluded whatever `set` holds.
std::string gbnf_class(const CodePointSet& set);

// The canonical JSON-string form of code point cp (without quotes), if it has one form:
// false for the control characters written \u00XX (their hex digits may be in either case).
bool json_escape_code_point(uint32_t cp, std::string& out);
// JSON string contents (no quotes) of UTF-8 text, canonical escapes, lowercase hex.
std::string json_escape(std::string_view utf8);
// An expression for one character of `set` as written inside a JSON string: plain characters
// as themselves, `"` `\` and control characters escaped (see RegexOptions::json_string).
std::string gbnf_json_char(const CodePointSet& set);

class GbnfWriter {
 public:
  // A fresh rule name from `hint`, reduced to [a-z0-9-] and made unique.
  std::string reserve(std::string_view hint);
  void define(const std::string& name, const std::string& body);
  // A rule with a fixed meaning shared by all users (ws, json-string...): defined on first use.
  // `body` may itself ask for helpers, including this one (recursion).
  std::string helper(const std::string& key, const std::function<std::string()>& body);
  // The grammar: `root ::= root_body` then the rules in the order they were defined.
  std::string finish(const std::string& root_body) const;

 private:
  std::map<std::string, int> used_;
  std::map<std::string, std::string> helpers_;
  std::vector<std::pair<std::string, std::string>> rules_;
  size_t bytes_ = 0;
};

// Concatenation by appends (GCC 12 reports a false -Wrestrict for "literal" + std::string).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

// Wraps an alternation in parentheses (returns a single alternative as is).
std::string gbnf_alternatives(const std::vector<std::string>& alts);

}  // namespace vllm::structured
