// Writes a parsed, anchor-resolved pattern as a GBNF expression (the JSON Schema front end
// embeds patterns and formats in larger grammars through this).
#pragma once

#include <string>

#include "vllm/structured/gbnf_writer.h"
#include "vllm/structured/regex_ast.h"

namespace vllm::structured {

// An expression that can stand in a sequence (an alternation comes parenthesised). `json_string`
// as RegexOptions::json_string. The node must not be kNothing.
std::string regex_expression(const RegexNode& node, bool json_string, GbnfWriter& writer);

}  // namespace vllm::structured
