// Builds the AST from tokens, following jinja2's grammar and operator precedence.
#pragma once

#include <memory>
#include <string_view>

#include "vllm/chat/ast.h"
#include "vllm/chat/lexer.h"

namespace vllm::jinja {

// Throws TemplateError (with its line) on syntax errors.
std::unique_ptr<Template> parse_template(std::string_view source, const LexerOptions& options);

}  // namespace vllm::jinja
