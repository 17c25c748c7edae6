// Reasoning parsers: split a model's text into its reasoning part and its answer, complete or
// streamed, the way vLLM's --reasoning-parser does (deepseek_r1, qwen3, granite).
//
// Streaming: markers split over any number of pieces are neither leaked nor missed, and the
// concatenated streamed reasoning and content equal what extract() returns for the same text.
// A piece ending inside a UTF-8 sequence holds the sequence back until it is complete.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vllm/parsers/tool_parser.h"  // DeltaMessage

namespace vllm::parsers {

class ReasoningParser {  // one per sequence
 public:
  virtual ~ReasoningParser() = default;
  // Complete output -> {reasoning (nullopt if none), content (nullopt if none)}. An empty part
  // is nullopt. Independent of this instance's streaming state.
  virtual std::pair<std::optional<std::string>, std::optional<std::string>> extract(std::string_view text) = 0;
  virtual DeltaMessage feed(std::string_view delta) = 0;  // fills .reasoning and/or .content
  virtual DeltaMessage finish() = 0;
  // The reasoning part is over (its end marker was seen, or it never began): what follows is
  // the answer.
  virtual bool reasoning_ended() const = 0;
  // The markers, for the server's structured-output integration (e.g. "<think>", "</think>").
  virtual std::string start_marker() const = 0;
  virtual std::string end_marker() const = 0;
  // Whether generation starts inside the reasoning part given the rendered prompt text
  // (deepseek_r1: the template ends the prompt with "<think>\n"; qwen3: the model writes <think>
  // itself, or the template already closed it with "<think>\n\n</think>\n\n" when
  // enable_thinking is false).
  virtual bool starts_in_reasoning(std::string_view prompt_text) const = 0;
};

// prompt_text: the rendered prompt; a prompt that already closed the reasoning part (see
// starts_in_reasoning) makes the whole output content, as vLLM's prompt_is_reasoning_end does.
// Throws vllm::Error (kInvalidArgument) naming the valid names for an unknown name.
std::unique_ptr<ReasoningParser> make_reasoning_parser(std::string_view name, std::string_view prompt_text = {});
std::vector<std::string> reasoning_parser_names();

}  // namespace vllm::parsers
