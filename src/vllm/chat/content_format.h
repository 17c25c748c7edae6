// How a message's content reaches a chat template, vLLM's --chat-template-content-format:
// "string" joins the text parts of an OpenAI content list into one string (most templates
// print message['content'] as is); "openai" hands the template the list of parts
// ({"type": "text", "text": ...}) for templates that loop over them. "auto" asks the template:
// it is "openai" when the template loops over a message's content, as vLLM detects it.
#pragma once

#include <string>
#include <string_view>

namespace vllm {

class ChatTemplate;

enum class ChatContentFormat { kAuto, kString, kOpenAI };

// "auto", "string" or "openai"; anything else throws vllm::Error naming the choices.
ChatContentFormat parse_chat_content_format(std::string_view name);
const char* chat_content_format_name(ChatContentFormat format);

// kOpenAI when the template has a `for` loop over the content of a message, where a message is
// the loop variable of a `for` over `messages` (or over a variable set from it, a slice of it, or
// it through filters and tests); kString otherwise.
ChatContentFormat detect_chat_content_format(const ChatTemplate& tmpl);

// `given`, or for kAuto what the template asks for.
ChatContentFormat resolve_chat_content_format(ChatContentFormat given, const ChatTemplate& tmpl);

}  // namespace vllm
