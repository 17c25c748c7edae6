// Small front ends that emit GBNF text (the JSON Schema and regex front ends live in their own
// files). Their output goes through Grammar::from_gbnf like any user grammar.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vllm::structured {

struct JsonObjectOptions {
  // Whitespace (space, tab, newline, carriage return) allowed between tokens and around the
  // object, as JSON allows; false: compact JSON only.
  bool whitespace = true;
};

// Any JSON object (RFC 8259: nested objects and arrays, strings with escapes, numbers, true,
// false, null), for response_format {"type": "json_object"}.
std::string json_object_gbnf(const JsonObjectOptions& options = {});

// Exactly one of `choices` (guided_choice). Throws vllm::Error (kInvalidArgument) for an empty
// list or a choice that is not valid UTF-8.
std::string choice_to_gbnf(const std::vector<std::string>& choices);

// A GBNF literal ("...") matching exactly the UTF-8 string `text`: quotes, backslashes and
// control characters escaped. Throws vllm::Error (kInvalidArgument) for invalid UTF-8.
std::string gbnf_literal(std::string_view text);

}  // namespace vllm::structured
