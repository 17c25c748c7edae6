// OpenAI's Responses API (POST /v1/responses) as vLLM serves it (serving_responses.py): the
// output items a generation becomes, and the event stream of a streamed response. The handler
// is in responses.cpp; the store behind previous_response_id in response_store.h.
#pragma once

#include <cstdint>
#include <string>

#include "vllm/server/api_server.h"
#include "vllm/server/protocol.h"
#include "vllm/server/tool_calls.h"

namespace vllm::server {

// prefix + 32 random hex digits: "resp_", "msg_", "fc_", "call_", "rs_".
std::string new_item_id(const char* prefix);

// The output items, in the shapes (and key order) of OpenAI's types.
// {"id", "content": [{"annotations": [], "text", "type": "output_text", "logprobs"}], "role":
// "assistant", "status", "type": "message"}; logprobs null unless they were asked for.
ojson output_text_part(const std::string& text, ojson logprobs);
ojson message_item(const std::string& id, ojson content, const std::string& status);
// {"arguments", "call_id", "name", "type": "function_call", "id", "status"}.
ojson function_call_item(const std::string& id, const std::string& call_id, const std::string& name,
                         const std::string& arguments, const std::string& status);
// {"id", "summary": [], "type": "reasoning", "content": [{"text", "type": "reasoning_text"}],
// "encrypted_content": null, "status"}.
ojson reasoning_item(const std::string& id, const std::string& text, const std::string& status);

// A finished (non-streamed) generation.
struct FinishedGeneration {
  std::string text;          // all of the generated text
  ojson logprobs = nullptr;  // its output_text logprobs (a list), when include asked for them
  bool truncated = false;    // cut by max_output_tokens: the last item is "incomplete"
};

struct OutputItems {
  ojson items = ojson::array();
  int64_t reasoning_tokens = 0;  // usage.output_tokens_details.reasoning_tokens
};

// Where a finished generation's text becomes output items (vLLM's
// _make_response_output_items): with no parser, one assistant message holding all of the text
// (none when the text is empty, as vLLM does); with one (--reasoning-parser, tool calls), a
// reasoning item, the message with the content left, then one function_call item per call.
// Streamed responses build the same items delta by delta (ResponsesJob::stream_delta).
OutputItems output_items_from_text(const ServingContext& ctx, ChatOutputParser* parser, const FinishedGeneration& gen);

// The events of a streamed response (OpenAI's Responses streaming events, each an SSE
// "event: <type>" line and a "data: <json>" line, numbered by sequence_number from 0).
// Output items are streamed one at a time: a delta for a kind of item other than the open
// one closes it (its ...done events and response.output_item.done) and opens a new one
// (response.output_item.added, and for messages and reasoning response.content_part.added),
// so one response can hold reasoning, a message and function calls, in the order generated.
class ResponseEventStream {
 public:
  // One event: {"type", <fields>..., "sequence_number"}.
  std::string event(const std::string& type, ojson fields);

  // A piece of the assistant message's text, with its tokens' logprobs (a list; empty when
  // not asked for).
  std::string output_text_delta(const std::string& delta, const ojson& logprobs);
  // A piece of reasoning text (response.reasoning_text.delta).
  std::string reasoning_text_delta(const std::string& delta);
  // A piece of a function call's arguments; a call_id other than the open call's starts a new
  // function_call item.
  std::string function_call_arguments_delta(const std::string& call_id, const std::string& name,
                                             const std::string& delta);
  // Closes the open item, if any, with this status ("completed", or "incomplete" when the
  // generation was cut).
  std::string close_item(const std::string& status);

  // The items closed so far, as the final response lists them.
  const ojson& output() const { return output_; }

 private:
  enum class Kind { kNone, kMessage, kReasoning, kFunctionCall };
  std::string open(Kind kind, const std::string& call_id, const std::string& name);

  Kind kind_ = Kind::kNone;
  std::string item_id_, call_id_, name_, text_;
  ojson logprobs_ = ojson::array();
  ojson output_ = ojson::array();
  int64_t sequence_ = 0;
};

}  // namespace vllm::server
