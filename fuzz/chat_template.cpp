// Chat templates (tokenizer_config.json's chat_template, or --chat-template, or a request's
// chat_template): the input is a template's source, parsed and rendered as a chat request
// renders it, with a conversation that has every message kind and tools. The interpreter's
// limits (depth, loop iterations, string size) must turn a runaway template into an error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "vllm/chat/chat_template.h"
#include "vllm/core/error.h"

using namespace vllm;
using ojson = nlohmann::ordered_json;

namespace {
ChatTemplateInputs* inputs = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  inputs = new ChatTemplateInputs;
  inputs->messages = ojson::parse(R"([
    {"role": "system", "content": "You are brief."},
    {"role": "user", "content": "What is 2+2? <b>bold</b> 日本"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "call_1",
      "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "content": "4", "tool_call_id": "call_1"},
    {"role": "assistant", "content": "<think>easy</think>4"},
    {"role": "user", "content": [{"type": "text", "text": "thanks"}]}
  ])");
  inputs->tools = ojson::parse(R"([{"type": "function", "function": {"name": "add", "description": "Adds.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"]}}}])");
  inputs->add_generation_prompt = true;
  inputs->bos_token = "<s>";
  inputs->eos_token = "</s>";
  inputs->extra_kwargs = ojson{{"enable_thinking", false}};
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ChatTemplate tmpl(std::string(reinterpret_cast<const char*>(data), size));
    (void)apply_chat_template(tmpl, *inputs);
  } catch (const Error&) {
  }
  return 0;
}
