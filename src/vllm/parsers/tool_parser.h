// Tool-call parsers: turn a model's text into OpenAI tool calls, complete or streamed, the way
// vLLM's --tool-call-parser does (hermes, llama3_json, mistral, pythonic).
//
// Streaming contract (what OpenAI clients rely on):
//  - the first delta of a call carries its index, id and complete function name (never split);
//    later deltas of that call carry only new arguments text;
//  - the concatenation of a call's argument deltas equals the `arguments` extract() returns
//    for the same complete text, and the concatenated content equals extract()'s content, for
//    any split of the text into pieces;
//  - nothing of a tool-call block (tags, the JSON wrapper, separators) appears in content;
//    ordinary text is passed on at once, holding back only a suffix that could start a tag;
//  - a piece of text ending inside a UTF-8 sequence holds that sequence back until it is
//    complete, so no emitted string ends in a broken character;
//  - malformed calls never throw: extract() returns the whole text as content, streaming
//    passes on the text it held back as content.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vllm::parsers {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text of an object
};

struct ToolCallDelta {
  int index = 0;
  std::optional<std::string> id;    // only in a call's first delta
  std::optional<std::string> name;  // only in a call's first delta, always complete
  std::string arguments;            // the next piece of the arguments' JSON text
};

// One streamed step: any of content, reasoning and tool-call pieces (empty when none).
struct DeltaMessage {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;

  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

struct ExtractedToolCalls {
  bool tools_called = false;
  std::vector<ToolCall> calls;
  std::string content;  // text outside the calls ("" when none)
};

class ToolParser {  // one instance per generated sequence (it keeps streaming state)
 public:
  virtual ~ToolParser() = default;
  // A complete output (non-streaming). Malformed calls: tools_called=false, content = the whole
  // text. Independent of this instance's streaming state.
  virtual ExtractedToolCalls extract(std::string_view text) = 0;
  // Streaming: the next piece of detokenized text (any split, even one byte of a tag).
  virtual DeltaMessage feed(std::string_view delta) = 0;
  // End of output: flush anything held back (e.g. a partial tag that never completed -> content).
  virtual DeltaMessage finish() = 0;
  virtual bool tools_called() const = 0;  // some call was emitted while streaming
  // Whether the server must detokenize with special tokens kept (mistral's [TOOL_CALLS],
  // llama's <|python_tag|>).
  virtual bool wants_special_tokens() const { return false; }
};

// Throws vllm::Error (kInvalidArgument) naming the valid names for an unknown name.
std::unique_ptr<ToolParser> make_tool_parser(std::string_view name);
std::vector<std::string> tool_parser_names();
// "chatcmpl-tool-" + 32 random hex digits, as vLLM's make_tool_call_id.
std::string make_tool_call_id();

}  // namespace vllm::parsers
