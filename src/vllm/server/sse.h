// Server-sent events as the OpenAI streaming API writes them: each event one `data: <json>`
// line and a blank line; the stream ends with `data: [DONE]`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace vllm::server {

// Compact JSON, UTF-8 kept as is (as pydantic writes it); invalid UTF-8 (a token that splits a
// character) becomes U+FFFD rather than an exception.
std::string dump_json(const nlohmann::ordered_json& j);
std::string dump_json(const nlohmann::json& j);

std::string sse_event(const nlohmann::ordered_json& j);  // "data: {...}\n\n"
std::string sse_done();                                   // "data: [DONE]\n\n"
inline constexpr const char* kEventStreamType = "text/event-stream; charset=utf-8";

}  // namespace vllm::server
