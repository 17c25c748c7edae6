// Tools and reasoning in chat answers (vLLM's tool_choice handling, --enable-auto-tool-choice
// --tool-call-parser, --reasoning-parser): what a request asks of tools, the constraint that
// tool_choice "required" or a named function puts on the output, and the per-choice parser that
// turns generated text into reasoning, content and tool calls, whole or as stream deltas.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/parsers/reasoning_parser.h"
#include "vllm/parsers/tool_parser.h"
#include "vllm/server/protocol.h"

namespace vllm::server {

struct ToolRequest {
  enum class Choice { kNone, kAuto, kRequired, kNamed };
  ojson tools;  // the tools as the chat template gets them (null: none)
  Choice choice = Choice::kNone;
  std::string named;      // the function of a named tool_choice
  bool parallel = true;   // parallel_tool_calls
};

// The request's `tools` as the chat template gets them (ChatCompletionToolsParam.model_dump());
// null when there are none. Throws ApiError for a malformed list.
ojson parse_tools_list(const ojson& body);

// vLLM's check_tool_usage and tool_choice rules. Throws ApiError with vLLM's messages; "auto"
// with tools needs --enable-auto-tool-choice and a --tool-call-parser, as in vLLM.
ToolRequest parse_tool_request(const ServingContext& ctx, const ojson& body);

// tool_choice "required": a JSON list of {"name", "parameters"} calls whose parameters fit the
// named tool's schema (at most one call without parallel_tool_calls); a named function: its
// parameters alone. nullopt for "none" and "auto". The engine's structured-outputs form.
std::optional<nlohmann::json> tool_choice_constraint(const ToolRequest& tools);

// Where generation starts relative to the reasoning part, judged from the rendered prompt.
enum class ReasoningStart { kInside, kMaybe, kAfter };
ReasoningStart reasoning_start(const parsers::ReasoningParser& parser, std::string_view prompt_text);

// With --reasoning-parser, a constraint applies to the answer after the reasoning: adds the
// "reasoning" markers to the structured-outputs JSON (nothing when the prompt closed it).
void constrain_after_reasoning(const ServingContext& ctx, std::string_view prompt_text, nlohmann::json& so);

// One generated sequence's message: reasoning (when a reasoning parser runs), then content and
// tool calls from the answer part (from the tool parser under "auto", from the constrained JSON
// under "required" or a named function).
struct ChatMessageParts {
  std::optional<std::string> reasoning;
  std::optional<std::string> content;
  std::vector<parsers::ToolCall> tool_calls;
};

class ChatOutputParser {
 public:
  // include_reasoning false (vLLM's request field): the reasoning is read and dropped.
  ChatOutputParser(const ServingContext& ctx, const ToolRequest& tools, std::string_view prompt_text,
                   bool include_reasoning = true);

  // Whether the text must be detokenized with special tokens kept (the tool parser reads them).
  bool wants_special_tokens() const;
  // Nothing to do: plain content passes through.
  bool passthrough() const { return !reasoning_ && !tool_parser_ && mode_ == ToolRequest::Choice::kNone; }

  // A finished sequence's whole text.
  ChatMessageParts parse(std::string_view text);
  // Streaming: the next text delta, and the end of the sequence.
  parsers::DeltaMessage feed(std::string_view delta);
  parsers::DeltaMessage finish();
  // Whether the stream emitted tool calls (its finish_reason is then "tool_calls").
  bool tools_called() const { return calls_emitted_ > 0; }

 private:
  parsers::DeltaMessage answer_delta(std::string_view text, bool end);

  ToolRequest::Choice mode_;
  bool include_reasoning_;
  std::string named_;
  std::unique_ptr<parsers::ReasoningParser> reasoning_;
  std::unique_ptr<parsers::ToolParser> tool_parser_;
  std::string answer_;     // required: the answer text so far, and the scan's state over it
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false;
  size_t element_start_ = 0;
  int calls_emitted_ = 0;
  std::string named_id_;   // named: the call's id, once announced
};

}  // namespace vllm::server
