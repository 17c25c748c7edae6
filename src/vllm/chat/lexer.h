// Splits template source into tokens exactly where Jinja2's lexer does, applying the
// whitespace rules of the environment (trim_blocks, lstrip_blocks, "-"/"+" markers) so that
// the parser only ever sees the text that will be output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vllm::jinja {

enum class TokenType : uint8_t {
  kData,           // template text outside tags
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,   // value holds the unescaped text
  kInteger,  // int_value
  kFloat,    // float_value
  kOperator,
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0.0;
};

struct LexerOptions {
  bool trim_blocks = false;
  bool lstrip_blocks = false;
  bool keep_trailing_newline = false;
};

// Throws TemplateError (with its line) on malformed input. The last token is always kEof.
std::vector<Token> tokenize(std::string_view source, const LexerOptions& options);

// How a token reads in an error message: 'name', "end of statement block", ...
std::string describe(const Token& token);

}  // namespace vllm::jinja
