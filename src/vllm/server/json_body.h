// Request bodies as JSON, parsed defensively: every request body comes from an unauthenticated
// client (/tokenize is open even with --api-key), so parsing must stay linear in the body's
// size and must never recurse as deep as the client nests.
//
// - Nesting is limited to kMaxJsonDepth levels, checked while parsing (nlohmann's SAX parser
//   keeps its own stack on the heap), before anything walks the value recursively (dump,
//   conversions between JSON types, the chat template's values).
// - Objects are built with a hash index of their keys, so n keys take O(n), not the O(n^2) of
//   nlohmann::ordered_json's linear ordered_map inserts. Duplicate keys keep their first
//   position and their last value, as Python's json (and so vLLM) does.
// - A number out of double's range (1e400) is a 400 naming the field, not the library's text.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace vllm::server {

using ojson = nlohmann::ordered_json;

// Python's json module (under vLLM's FastAPI) fails at about 1,000 levels (the interpreter's
// recursion limit); the same limit here. Depth counts containers: [] is 1, [[]] is 2.
inline constexpr int kMaxJsonDepth = 1000;

// Parses `text`; throws ApiError (400) with a short message on malformed JSON ("JSON decode
// error: ..."), nesting deeper than max_depth, or a number out of range.
ojson parse_request_json(std::string_view text, int max_depth = kMaxJsonDepth);

// At most about max_chars characters of v's compact JSON, for error messages: serialized
// without recursion and stopped as soon as the excerpt is long enough ("..." marks a cut), so
// a huge or deep value costs no more than its first few characters.
std::string json_excerpt(const ojson& v, size_t max_chars = 80);

// Appends key: value to a JSON object in O(1) (ordered_json's own insert searches every key
// first). The caller knows the key is not there yet.
void append_new_key(ojson& object, std::string key, ojson value);

// A nlohmann exception's message without its "[json.exception.type_error.302] " prefix, cut to
// a few hundred characters.
std::string json_error_text(const std::exception& e);

}  // namespace vllm::server
