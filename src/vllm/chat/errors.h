// The one exception type inside the interpreter. It carries the template line of the node
// that failed; ChatTemplate turns it into vllm::Error("line L: message") at the boundary.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace vllm::jinja {

class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message, int line = 0)
      : std::runtime_error(message), line(line) {}
  // 0 until the innermost AST node on the unwinding path stamps its own line.
  int line;
};

[[noreturn]] inline void fail(const std::string& message) { throw TemplateError(message); }

// 'text', for messages. Built by appending: GCC 12 raises a false -Wrestrict on
// `"'" + std::string(...)` at -O3.
inline std::string in_quotes(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  out += text;
  out += '\'';
  return out;
}

}  // namespace vllm::jinja
