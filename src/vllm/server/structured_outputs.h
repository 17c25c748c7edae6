// Structured outputs as the OpenAI protocol and vLLM's server spell them: `response_format`
// ({"type": "json_object"}, {"type": "json_schema", "json_schema": {"name", "schema",
// "strict"}}, {"type": "structural_tag", ...}), vLLM's `structured_outputs` object, and the
// older top-level `guided_json` / `guided_regex` / `guided_choice` / `guided_grammar` /
// `guided_whitespace_pattern` fields many clients still send.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

#include "vllm/server/protocol.h"

namespace vllm::server {

// The request's constraint in the engine's JSON form (structured::StructuredOutputsParams), or
// nullopt when it asks for none. A JSON schema is passed as its text, so that its key order (the
// order of the generated object's keys) survives. Throws ApiError (400) naming the field for a
// malformed value; the constraint's own validation happens when it is compiled.
std::optional<nlohmann::json> structured_outputs_from_request(const ojson& body);

// The request's constraint, if any, with the server's defaults (--structured-outputs-config)
// under it, compiled for the served model on the calling (request) thread: written into the
// sampling fields and the engine options. Throws ApiError (400) with the front end's or the
// grammar parser's message (keyword and JSON pointer, regex position, grammar line and column).
// `forced` (tool_choice "required" or a named function) replaces the request's own constraint,
// as in vLLM. For chat, `chat_prompt` is the rendered prompt: with --reasoning-parser the
// constraint then applies to the answer after the reasoning.
void apply_structured_outputs(const ServingContext& ctx, const ojson& body, nlohmann::json& fields,
                              AddRequestOptions& options, std::optional<nlohmann::json> forced = std::nullopt,
                              std::optional<std::string_view> chat_prompt = std::nullopt);

}  // namespace vllm::server
