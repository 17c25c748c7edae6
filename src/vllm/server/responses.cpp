// POST /v1/responses: vLLM's OpenAIServingResponses for text models (no Harmony). The input
// (a string, or a list of input items) becomes chat messages: instructions first as a system
// message, then the conversation of previous_response_id (its messages without their system
// messages, and its output items), then the new items; function_call items become assistant
// tool calls and function_call_output items tool messages. They are rendered with the chat
// template (render_chat, with the request's function tools in the chat shape), generated as one
// engine request and answered as a response object, or as a stream of Responses events.
// Finished responses are stored (store: true, the default) in a bounded store; GET and DELETE
// /v1/responses/{id} read and drop them.
#include "vllm/server/responses.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>
#include <optional>
#include <string_view>

#include "vllm/core/logging.h"
#include "vllm/server/handlers.h"
#include "vllm/server/json_body.h"
#include "vllm/server/request_job.h"
#include "vllm/server/response_store.h"
#include "vllm/server/sse.h"
#include "vllm/server/structured_outputs.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::server {

std::string new_item_id(const char* prefix) { return prefix + random_uuid(); }

ojson output_text_part(const std::string& text, ojson logprobs) {
  ojson part;
  part["annotations"] = ojson::array();
  part["text"] = text;
  part["type"] = "output_text";
  part["logprobs"] = std::move(logprobs);
  return part;
}

ojson message_item(const std::string& id, ojson content, const std::string& status) {
  ojson item;
  item["id"] = id;
  item["content"] = std::move(content);
  item["role"] = "assistant";
  item["status"] = status;
  item["type"] = "message";
  return item;
}

ojson function_call_item(const std::string& id, const std::string& call_id, const std::string& name,
                         const std::string& arguments, const std::string& status) {
  ojson item;
  item["arguments"] = arguments;
  item["call_id"] = call_id;
  item["name"] = name;
  item["type"] = "function_call";
  item["id"] = id;
  item["status"] = status;
  return item;
}

ojson reasoning_item(const std::string& id, const std::string& text, const std::string& status) {
  ojson item;
  item["id"] = id;
  item["summary"] = ojson::array();
  item["type"] = "reasoning";
  ojson part;
  part["text"] = text;
  part["type"] = "reasoning_text";
  item["content"] = ojson::array({std::move(part)});
  item["encrypted_content"] = nullptr;
  item["status"] = status;
  return item;
}

OutputItems output_items_from_text(const ServingContext& ctx, ChatOutputParser* parser, const FinishedGeneration& gen) {
  OutputItems out;
  const std::string status = gen.truncated ? "incomplete" : "completed";
  if (!parser) {
    if (!gen.text.empty())
      out.items.push_back(message_item(new_item_id("msg_"), ojson::array({output_text_part(gen.text, gen.logprobs)}), status));
    return out;
  }
  // Reasoning first, then the message, then the calls (vLLM's order).
  ChatMessageParts parts = parser->parse(gen.text);
  if (parts.reasoning && !parts.reasoning->empty()) {
    out.items.push_back(reasoning_item(new_item_id("rs_"), *parts.reasoning, "completed"));
    if (const Tokenizer* tok = ctx.tokenizer())
      out.reasoning_tokens = static_cast<int64_t>(tok->encode(*parts.reasoning, false).size());
  }
  if (parts.content && !parts.content->empty()) {
    // Log-probs cover the whole output; they go with the message only when it is all of it.
    const ojson logprobs = *parts.content == gen.text ? gen.logprobs : ojson(nullptr);
    out.items.push_back(message_item(new_item_id("msg_"), ojson::array({output_text_part(*parts.content, logprobs)}), status));
  }
  for (const parsers::ToolCall& call : parts.tool_calls)
    out.items.push_back(function_call_item(new_item_id("fc_"), call.id, call.name, call.arguments, "completed"));
  return out;
}

// ---------------------------------------------------------------------------------------------
// ResponseEventStream

std::string ResponseEventStream::event(const std::string& type, ojson fields) {
  ojson e;
  e["type"] = type;
  for (auto it = fields.begin(); it != fields.end(); ++it) e[it.key()] = std::move(it.value());
  e["sequence_number"] = sequence_++;
  return "event: " + type + "\ndata: " + dump_json(e) + "\n\n";
}

std::string ResponseEventStream::open(Kind kind, const std::string& call_id, const std::string& name) {
  kind_ = kind;
  text_.clear();
  logprobs_ = ojson::array();
  call_id_ = call_id;
  name_ = name;
  const auto output_index = static_cast<int64_t>(output_.size());
  ojson item;
  ojson part;
  std::string out;
  switch (kind) {
    case Kind::kMessage:
      item_id_ = new_item_id("msg_");
      item = message_item(item_id_, ojson::array(), "in_progress");
      part = output_text_part("", ojson::array());
      break;
    case Kind::kReasoning:
      item_id_ = new_item_id("rs_");
      item = reasoning_item(item_id_, "", "in_progress");
      item["content"] = ojson::array();
      part = {{"text", ""}, {"type", "reasoning_text"}};
      break;
    case Kind::kFunctionCall:
      item_id_ = new_item_id("fc_");
      item = function_call_item(item_id_, call_id, name, "", "in_progress");
      break;
    case Kind::kNone: return out;
  }
  out += event("response.output_item.added", {{"output_index", output_index}, {"item", std::move(item)}});
  if (!part.is_null())
    out += event("response.content_part.added", {{"item_id", item_id_},
                                                 {"output_index", output_index},
                                                 {"content_index", 0},
                                                 {"part", std::move(part)}});
  return out;
}

std::string ResponseEventStream::output_text_delta(const std::string& delta, const ojson& logprobs) {
  std::string out;
  if (kind_ != Kind::kMessage) {
    out += close_item("completed");
    out += open(Kind::kMessage, "", "");
  }
  text_ += delta;
  for (const auto& lp : logprobs) logprobs_.push_back(lp);
  out += event("response.output_text.delta", {{"item_id", item_id_},
                                              {"output_index", static_cast<int64_t>(output_.size())},
                                              {"content_index", 0},
                                              {"delta", delta},
                                              {"logprobs", logprobs}});
  return out;
}

std::string ResponseEventStream::reasoning_text_delta(const std::string& delta) {
  std::string out;
  if (kind_ != Kind::kReasoning) {
    out += close_item("completed");
    out += open(Kind::kReasoning, "", "");
  }
  text_ += delta;
  out += event("response.reasoning_text.delta", {{"item_id", item_id_},
                                                 {"output_index", static_cast<int64_t>(output_.size())},
                                                 {"content_index", 0},
                                                 {"delta", delta}});
  return out;
}

std::string ResponseEventStream::function_call_arguments_delta(const std::string& call_id, const std::string& name,
                                                               const std::string& delta) {
  std::string out;
  if (kind_ != Kind::kFunctionCall || call_id != call_id_) {
    out += close_item("completed");
    out += open(Kind::kFunctionCall, call_id, name);
  }
  text_ += delta;
  out += event("response.function_call_arguments.delta",
               {{"item_id", item_id_}, {"output_index", static_cast<int64_t>(output_.size())}, {"delta", delta}});
  return out;
}

std::string ResponseEventStream::close_item(const std::string& status) {
  std::string out;
  const auto output_index = static_cast<int64_t>(output_.size());
  ojson item;
  switch (kind_) {
    case Kind::kNone: return out;
    case Kind::kMessage: {
      // The logprobs were sent with the deltas; the done events repeat the text only.
      out += event("response.output_text.done", {{"item_id", item_id_},
                                                 {"output_index", output_index},
                                                 {"content_index", 0},
                                                 {"text", text_},
                                                 {"logprobs", ojson::array()}});
      out += event("response.content_part.done", {{"item_id", item_id_},
                                                  {"output_index", output_index},
                                                  {"content_index", 0},
                                                  {"part", output_text_part(text_, ojson::array())}});
      item = message_item(item_id_, ojson::array({output_text_part(text_, std::move(logprobs_))}), status);
      break;
    }
    case Kind::kReasoning: {
      ojson part = {{"text", text_}, {"type", "reasoning_text"}};
      out += event("response.reasoning_text.done",
                   {{"item_id", item_id_}, {"output_index", output_index}, {"content_index", 0}, {"text", text_}});
      out += event("response.content_part.done",
                   {{"item_id", item_id_}, {"output_index", output_index}, {"content_index", 0}, {"part", part}});
      item = reasoning_item(item_id_, text_, status);
      break;
    }
    case Kind::kFunctionCall:
      out += event("response.function_call_arguments.done", {{"item_id", item_id_},
                                                             {"output_index", output_index},
                                                             {"name", name_},
                                                             {"arguments", text_}});
      item = function_call_item(item_id_, call_id_, name_, text_, status);
      break;
  }
  out += event("response.output_item.done", {{"output_index", output_index}, {"item", item}});
  output_.push_back(std::move(item));
  kind_ = Kind::kNone;
  text_.clear();
  logprobs_ = ojson::array();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading the request

namespace {

[[noreturn]] void bad(const std::string& message, const std::string& param) { throw ApiError(message, param); }

std::string at(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

const ojson* present(const ojson& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// A string field of an object (nullopt when absent or null); another type is a 400.
std::optional<std::string> str_field(const ojson& obj, const char* key, const std::string& where) {
  const ojson* v = present(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) bad(where + "." + key + " must be a string, got " + json_excerpt(*v), where + "." + key);
  return v->get<std::string>();
}

std::string required_str(const ojson& obj, const char* key, const std::string& where) {
  auto s = str_field(obj, key, where);
  if (!s) bad(where + "." + key + ": Field required", where + "." + key);
  return *s;
}

// Content as a string, or a list of content parts whose texts are joined by newlines (the
// chat template's "string" content format). Text-only: images, files and audio are refused.
std::string content_text(const ojson& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(where + " must be a string or a list of content parts", where);
  std::string text;
  for (size_t j = 0; j < content.size(); ++j) {
    const ojson& part = content[j];
    const std::string w = at(where, j);
    if (!part.is_object()) bad(w + " must be an object", w);
    const std::string type = str_field(part, "type", w).value_or("");
    std::string piece;
    if (type == "input_text" || type == "output_text" || type == "text") {
      piece = required_str(part, "text", w);
    } else if (type == "refusal") {
      piece = required_str(part, "refusal", w);
    } else if (type == "input_image" || type == "input_file" || type == "input_audio") {
      bad(w + ": content parts of type '" + type + "' are not supported (vllm-cpp serves text-only models)",
          w + ".type");
    } else {
      bad(w + ".type: unknown content part type '" + type + "'", w + ".type");
    }
    if (j > 0) text += "\n";
    text += piece;
  }
  return text;
}

// Response input and output items -> chat messages, as vLLM's construct_chat_messages_with_tool_call
// merges them: a function call joins the assistant message before it (as one more tool call),
// reasoning and message text fill an assistant message that has none yet.
class MessageBuilder {
 public:
  ojson messages = ojson::array();

  void add(const ojson& item, const std::string& where, bool skip_reasoning) {
    if (!item.is_object()) bad(where + " must be an object", where);
    std::string type;
    if (auto t = str_field(item, "type", where)) type = *t;
    else if (item.contains("role")) type = "message";
    else bad(where + ": an input item needs a 'type' (or a 'role', for a message)", where + ".type");

    if (type == "message") {
      const std::string role = required_str(item, "role", where);
      if (role != "user" && role != "system" && role != "developer" && role != "assistant")
        bad(where + ".role must be one of 'user', 'system', 'developer', 'assistant', got '" + role + "'",
            where + ".role");
      const ojson* content = present(item, "content");
      if (!content) bad(where + ".content: Field required", where + ".content");
      std::string text = content_text(*content, where + ".content");
      if (role == "assistant") {
        if (ojson* prev = prev_assistant(); prev && (*prev)["content"].is_null()) {
          (*prev)["content"] = std::move(text);
          return;
        }
      }
      messages.push_back({{"role", role}, {"content", std::move(text)}});
    } else if (type == "function_call") {
      const std::string call_id = required_str(item, "call_id", where);
      const std::string name = required_str(item, "name", where);
      const std::string arguments = required_str(item, "arguments", where);
      if (!ojson::accept(arguments)) bad(where + ".arguments is not valid JSON", where + ".arguments");
      ojson call = {{"id", call_id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
      if (ojson* prev = prev_assistant()) {
        if (!prev->contains("tool_calls")) (*prev)["tool_calls"] = ojson::array();
        (*prev)["tool_calls"].push_back(std::move(call));
        return;
      }
      messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", ojson::array({std::move(call)})}});
    } else if (type == "function_call_output") {
      const std::string call_id = required_str(item, "call_id", where);
      const ojson* output = present(item, "output");
      if (!output) bad(where + ".output: Field required", where + ".output");
      messages.push_back(
          {{"role", "tool"}, {"content", content_text(*output, where + ".output")}, {"tool_call_id", call_id}});
    } else if (type == "reasoning") {
      if (present(item, "encrypted_content")) bad("Encrypted content is not supported.", where + ".encrypted_content");
      if (skip_reasoning) return;
      std::string text;
      for (const char* key : {"content", "summary"}) {
        const ojson* parts = present(item, key);
        if (!parts) continue;
        if (!parts->is_array()) bad(where + "." + key + " must be a list", where + "." + key);
        if (parts->empty()) continue;
        const std::string w = where + "." + key + "[0]";
        if (!parts->front().is_object()) bad(w + " must be an object", w);
        text = required_str(parts->front(), "text", w);
        break;
      }
      if (ojson* prev = prev_assistant(); prev && !prev->contains("reasoning")) {
        (*prev)["reasoning"] = std::move(text);
        return;
      }
      messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"reasoning", std::move(text)}});
    } else if (type == "item_reference") {
      bad(where + ": input items of type 'item_reference' are not supported (continue a stored response with "
                  "previous_response_id instead)",
          where + ".type");
    } else {
      bad("Unsupported input item type: " + type, where + ".type");
    }
  }

 private:
  ojson* prev_assistant() {
    if (messages.empty() || messages.back()["role"] != "assistant") return nullptr;
    return &messages.back();
  }
};

// The request's function tools, flat as the Responses API writes them ({"type": "function",
// "name", "description", "parameters", "strict"}), in the chat shape the template takes; null
// when there are none. Built-in (hosted) tools are refused.
ojson chat_tools_of(const ojson& body) {
  const ojson* tools = present(body, "tools");
  if (!tools) return nullptr;
  if (!tools->is_array()) bad("tools must be a list of tools", "tools");
  ojson out = ojson::array();
  for (size_t i = 0; i < tools->size(); ++i) {
    const ojson& tool = (*tools)[i];
    const std::string w = at("tools", i);
    if (!tool.is_object()) bad(w + " must be an object", w);
    const std::string type = required_str(tool, "type", w);
    if (type != "function")
      bad("Tool type '" + type + "' is not supported: vllm-cpp serves function tools only (built-in tools such as "
          "web_search, file_search, code_interpreter, computer_use, mcp or image_generation are not available)",
          w + ".type");
    const std::string name = required_str(tool, "name", w);
    if (name.empty()) bad(w + ".name must not be empty", w + ".name");
    ojson fn;
    fn["name"] = name;
    if (auto d = str_field(tool, "description", w)) fn["description"] = *d;
    if (const ojson* p = present(tool, "parameters")) {
      if (!p->is_object()) bad(w + ".parameters must be a JSON schema object", w + ".parameters");
      fn["parameters"] = *p;
    }
    if (const ojson* s = present(tool, "strict")) {
      if (!s->is_boolean()) bad(w + ".strict must be a boolean", w + ".strict");
      fn["strict"] = *s;
    }
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out.empty() ? ojson(nullptr) : out;
}

// tool_choice, in the Responses shape ({"type": "function", "name": ...} for a named function):
// "required" and a named function constrain the output as on chat completions; "auto" parses
// calls out of the text when the server has a --tool-call-parser (without one the text stays
// text, as in vLLM's Responses API); built-in tool choices name tools vllm-cpp does not have.
ToolRequest responses_tool_request(const ServingContext& ctx, const ojson& body, const ojson& chat_tools) {
  ToolRequest r;
  r.tools = chat_tools;
  if (auto p = opt_bool(body, "parallel_tool_calls")) r.parallel = *p;
  const ojson* choice = present(body, "tool_choice");
  if (!choice) {
    if (!chat_tools.is_null() && ctx.config.enable_auto_tool_choice && !ctx.config.tool_call_parser.empty())
      r.choice = ToolRequest::Choice::kAuto;
    return r;
  }
  if (choice->is_string()) {
    const std::string c = choice->get<std::string>();
    if (c == "none") return r;
    if (c != "auto" && c != "required")
      bad("Invalid value for `tool_choice`: " + c + "! Only \"none\", \"auto\", \"required\" or a function are supported.",
          "tool_choice");
    if (chat_tools.is_null()) bad("When using `tool_choice`, `tools` must be set.", "tool_choice");
    if (c == "required") r.choice = ToolRequest::Choice::kRequired;
    else if (ctx.config.enable_auto_tool_choice && !ctx.config.tool_call_parser.empty()) r.choice = ToolRequest::Choice::kAuto;
    return r;
  }
  if (!choice->is_object())
    bad("Invalid value for `tool_choice`: " + json_excerpt(*choice) + "! Only \"none\", \"auto\", \"required\" or a "
        "function are supported.",
        "tool_choice");
  const std::string type = required_str(*choice, "type", "tool_choice");
  if (type == "function") {
    const std::string name = required_str(*choice, "name", "tool_choice");
    bool found = false;
    if (!chat_tools.is_null())
      for (const auto& t : chat_tools) found = found || t["function"]["name"] == name;
    if (!found) bad("The tool specified in `tool_choice` does not match any of the specified `tools`", "tool_choice");
    r.choice = ToolRequest::Choice::kNamed;
    r.named = name;
    return r;
  }
  if (type == "allowed_tools") bad("tool_choice of type 'allowed_tools' is not supported by vllm-cpp", "tool_choice.type");
  bad("tool_choice of type '" + type + "' is not supported: vllm-cpp serves function tools only", "tool_choice.type");
  return r;
}

// text.format -> the chat completions response_format that structured_outputs.cpp maps to a
// grammar (null for plain text).
ojson response_format_of(const ojson& body) {
  const ojson* text = present(body, "text");
  if (!text) return nullptr;
  if (!text->is_object()) bad("text must be an object", "text");
  if (auto v = str_field(*text, "verbosity", "text"); v && *v != "low" && *v != "medium" && *v != "high")
    bad("text.verbosity must be one of 'low', 'medium', 'high', got '" + *v + "'", "text.verbosity");
  const ojson* format = present(*text, "format");
  if (!format) return nullptr;
  if (!format->is_object()) bad("text.format must be an object", "text.format");
  const std::string type = required_str(*format, "type", "text.format");
  if (type == "text") return nullptr;
  if (type == "json_object") return {{"type", "json_object"}};
  if (type != "json_schema")
    bad("text.format.type must be one of 'text', 'json_schema', 'json_object', got '" + type + "'", "text.format.type");
  const std::string name = required_str(*format, "name", "text.format");
  str_field(*format, "description", "text.format");
  const ojson* schema = present(*format, "schema");
  if (!schema) bad("text.format.schema: Field required", "text.format.schema");
  if (!schema->is_object()) bad("text.format.schema must be a JSON schema object", "text.format.schema");
  ojson js;
  js["name"] = name;
  js["schema"] = *schema;
  if (const ojson* strict = present(*format, "strict")) {
    if (!strict->is_boolean()) bad("text.format.strict must be a boolean", "text.format.strict");
    js["strict"] = *strict;
  }
  return {{"type", "json_schema"}, {"json_schema", std::move(js)}};
}

// include: whether "message.output_text.logprobs" is asked for. The other values OpenAI defines
// are about tools and inputs vllm-cpp does not have; they are accepted and change nothing.
bool include_logprobs(const ojson& body) {
  const ojson* include = present(body, "include");
  if (!include) return false;
  if (!include->is_array()) bad("include must be a list of strings", "include");
  static const char* kKnown[] = {"code_interpreter_call.outputs",      "computer_call_output.output.image_url",
                                 "file_search_call.results",           "message.input_image.image_url",
                                 "message.output_text.logprobs",       "reasoning.encrypted_content",
                                 "web_search_call.action.sources",     "web_search_call.results"};
  bool logprobs = false;
  for (size_t i = 0; i < include->size(); ++i) {
    const ojson& v = (*include)[i];
    if (!v.is_string()) bad(at("include", i) + " must be a string", "include");
    const std::string s = v.get<std::string>();
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return s == k; }))
      bad("include: unknown value '" + s + "'", "include");
    logprobs = logprobs || s == "message.output_text.logprobs";
  }
  return logprobs;
}

// OpenAI's metadata: at most 16 string pairs, keys up to 64 characters, values up to 512.
void check_metadata(const ojson& body) {
  const ojson* m = present(body, "metadata");
  if (!m) return;
  if (!m->is_object()) bad("metadata must be an object of strings", "metadata");
  if (m->size() > 16) bad("metadata holds at most 16 key-value pairs, got " + std::to_string(m->size()), "metadata");
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (py_len(it.key()) > 64) bad("metadata keys are at most 64 characters", "metadata");
    if (!it->is_string()) bad("metadata." + it.key() + " must be a string", "metadata");
    if (py_len(it->get<std::string>()) > 512) bad("metadata values are at most 512 characters", "metadata");
  }
}

std::string one_of(const ojson& body, const char* field, std::initializer_list<const char*> allowed,
                   const char* fallback) {
  auto v = opt_string(body, field);
  if (!v) return fallback;
  std::string list;
  for (const char* a : allowed) {
    if (*v == a) return *v;
    list += (list.empty() ? "'" : ", '") + std::string(a) + "'";
  }
  bad(std::string(field) + " must be one of " + list + ", got '" + *v + "'", field);
}

// A sampling-parameter error from SamplingParams names the field in its text; give it as param.
ApiError with_sampling_param(const ApiError& e) {
  if (e.param()) return e;
  const std::string msg = e.what();
  for (const char* f : {"max_tokens", "temperature", "top_p", "top_k", "logit_bias", "logprobs"}) {
    if (msg.find(f) == std::string::npos) continue;
    std::string param = f;
    if (param == "max_tokens") param = "max_output_tokens";
    if (param == "logprobs") param = "top_logprobs";
    return ApiError(msg, param, e.status(), e.type());
  }
  return e;
}

ojson usage_of(int64_t input, int64_t cached, int64_t output, int64_t reasoning) {
  ojson u;
  u["input_tokens"] = input;
  u["input_tokens_details"] = {{"cached_tokens", cached}};
  u["output_tokens"] = output;
  u["output_tokens_details"] = {{"reasoning_tokens", reasoning}};
  u["total_tokens"] = input + output;
  return u;
}

// ---------------------------------------------------------------------------------------------
// The engine request

class ResponsesJob : public RequestJob {
 public:
  using RequestJob::RequestJob;

  std::string id;
  ojson response;    // the response object with status in_progress, no output and no usage
  ojson messages;    // what the prompt was rendered from, for the store
  // Reasoning and tool calls read out of the text (null: the text is the message).
  std::unique_ptr<ChatOutputParser> parser;
  bool stream = false, store = false, as_token_id = false;
  std::optional<int> top_logprobs;  // set when include asks for logprobs
  std::vector<int32_t> prompt_ids;

  void start(SamplingParams params, const AddRequestOptions& options) {
    submit(0, id, prompt_ids, std::move(params), options);
    watch_disconnect();
    if (stream) watch_backpressure();
  }

 protected:
  void on_output(size_t, RequestOutput&& out) override {
    if (failed_ || ex_->disconnected()) return;
    if (!stream) {
      if (out.finished) respond_full(out);
      return;
    }
    std::string data;
    if (!headers_sent_) {
      headers_sent_ = true;
      ex_->start_stream(200, kEventStreamType);
      data += events_.event("response.created", {{"response", response}});
      data += events_.event("response.in_progress", {{"response", response}});
    }
    for (const CompletionOutput& c : out.outputs) {
      output_tokens_ += static_cast<int64_t>(c.token_ids.size());
      if (top_logprobs)
        for (auto& lp : chat_logprobs_content(ctx_, c.token_ids, c.logprobs, *top_logprobs, as_token_id))
          pending_logprobs_.push_back(std::move(lp));
      // A delta may hold tokens but no text yet (a character split across tokens): their
      // logprobs wait for the text.
      if (!c.text.empty() || (c.finish_reason && parser)) {
        data += stream_delta(c.text, pending_logprobs_, c.finish_reason.has_value());
        pending_logprobs_ = ojson::array();
      }
      if (c.finish_reason) finish_ = c.finish_reason;
    }
    if (out.finished) {
      const std::string status = status_of(finish_);
      data += events_.close_item(status == "incomplete" ? "incomplete" : "completed");
      ojson final = finished(status, events_.output(),
                             usage_of(static_cast<int64_t>(prompt_ids.size()), out.num_cached_tokens, output_tokens_, 0));
      keep(final);
      data += events_.event(status == "incomplete" ? "response.incomplete" : "response.completed",
                            {{"response", std::move(final)}});
      ex_->write(std::move(data));
      ex_->end_stream();
      return;
    }
    if (!data.empty()) ex_->write(std::move(data));
  }

  // Once the event stream has begun, an error is an "error" event (OpenAI's shape) that ends it.
  void on_error(size_t index, const Error& e) override {
    if (!headers_sent_) {
      RequestJob::on_error(index, e);
      return;
    }
    if (failed_ || ex_->disconnected()) return;
    failed_ = true;
    abort_all();
    const ApiError err = api_error_from(e);
    ex_->write(events_.event("error", {{"code", err.type()},
                                       {"message", err.what()},
                                       {"param", err.param() ? ojson(*err.param()) : ojson(nullptr)}}));
    ex_->end_stream();
  }

 private:
  // The streaming counterpart of output_items_from_text: where each new piece of generated
  // text goes. Today all of it is the assistant message's text; streamed reasoning and tool-call
  // parsing plug in here, routing pieces to events_.reasoning_text_delta() and
  // events_.function_call_arguments_delta() instead (the final response lists the items in the
  // order the stream opened them).
  std::string stream_delta(const std::string& text, const ojson& logprobs, bool end) {
    if (!parser) return events_.output_text_delta(text, logprobs);
    parsers::DeltaMessage d = parser->feed(text);
    if (end) {
      parsers::DeltaMessage rest = parser->finish();
      d.reasoning += rest.reasoning;
      d.content += rest.content;
      for (auto& c : rest.tool_calls) d.tool_calls.push_back(std::move(c));
    }
    std::string data;
    if (!d.reasoning.empty()) data += events_.reasoning_text_delta(d.reasoning);
    // Log-probs go with message text; split among items they would no longer line up.
    if (!d.content.empty()) data += events_.output_text_delta(d.content, d.reasoning.empty() ? logprobs : ojson::array());
    for (const parsers::ToolCallDelta& c : d.tool_calls) {
      const auto i = static_cast<size_t>(c.index);
      if (i >= calls_.size()) calls_.resize(i + 1);
      if (c.id) calls_[i] = {*c.id, c.name.value_or("")};
      data += events_.function_call_arguments_delta(calls_[i].first, calls_[i].second, c.arguments);
    }
    return data;
  }

  static std::string status_of(const std::optional<FinishReason>& r) {
    if (r == FinishReason::kLength) return "incomplete";
    if (r == FinishReason::kAbort) return "cancelled";
    return "completed";
  }

  ojson finished(const std::string& status, ojson output, ojson usage) const {
    ojson r = response;
    r["status"] = status;
    if (status == "incomplete") r["incomplete_details"] = {{"reason", "max_output_tokens"}};
    r["output"] = std::move(output);
    r["usage"] = std::move(usage);
    return r;
  }

  void keep(const ojson& final) const {
    if (!store) return;
    auto entry = std::make_shared<ResponseStore::Entry>();
    entry->response = final;
    entry->messages = messages;
    ctx_.response_store->put(id, std::move(entry));
  }

  void respond_full(const RequestOutput& out) {
    if (out.outputs.empty()) throw Error("the engine finished a request without an output", ErrorKind::kInternal);
    const CompletionOutput& c = out.outputs.front();
    const std::string status = status_of(c.finish_reason);
    FinishedGeneration gen;
    gen.text = c.text;
    gen.truncated = status == "incomplete";
    if (top_logprobs) gen.logprobs = chat_logprobs_content(ctx_, c.token_ids, c.logprobs, *top_logprobs, as_token_id);
    OutputItems items = output_items_from_text(ctx_, parser.get(), gen);
    ojson final = finished(status, std::move(items.items),
                           usage_of(static_cast<int64_t>(prompt_ids.size()), out.num_cached_tokens,
                                    static_cast<int64_t>(c.token_ids.size()), items.reasoning_tokens));
    keep(final);
    ex_->respond(json_response(final));
  }

  ResponseEventStream events_;
  std::vector<std::pair<std::string, std::string>> calls_;  // streamed calls: id and name, by index
  int64_t output_tokens_ = 0;
  std::optional<FinishReason> finish_;
  ojson pending_logprobs_ = ojson::array();
};

}  // namespace

void handle_responses(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex) {
  try {
    if (ctx.shutting_down.load()) throw ApiError("The server is shutting down.", std::nullopt, 503, "ServiceUnavailableError");
    check_capacity(ctx);
    const ojson body = parse_body(req);
    check_model(ctx, body);
    warn_unknown_fields(body, {"background", "include", "input", "instructions", "max_output_tokens", "max_tool_calls",
                               "metadata", "model", "logit_bias", "parallel_tool_calls", "previous_response_id",
                               "prompt", "reasoning", "service_tier", "store", "stream", "temperature", "text",
                               "tool_choice", "tools", "top_logprobs", "top_p", "top_k", "truncation", "user",
                               "skip_special_tokens", "request_id", "mm_processor_kwargs", "priority", "cache_salt",
                               "enable_response_messages", "previous_input_messages", "conversation"});

    // What vLLM refuses, and what it accepts that vllm-cpp cannot honour.
    const bool store = get_bool(body, "store", true);
    if (get_bool(body, "background", false)) {
      if (!store) bad("background can only be used when `store` is true", "background");
      bad("background mode is not supported by vllm-cpp: send the request without `background` (or stream it)",
          "background");
    }
    if (present(body, "prompt")) bad("prompt template is not supported", "prompt");
    if (present(body, "conversation"))
      bad("conversations are not supported by vllm-cpp: continue a response with previous_response_id", "conversation");
    if (get_bool(body, "enable_response_messages", false))
      bad("enable_response_messages is currently only supported for gpt-oss", "enable_response_messages");
    if (present(body, "previous_input_messages"))
      bad("previous_input_messages is only supported for gpt-oss (Harmony) models", "previous_input_messages");
    const bool stream = get_bool(body, "stream", false);
    get_bool(body, "parallel_tool_calls", true);
    const auto instructions = opt_string(body, "instructions");
    const auto previous_id = opt_string(body, "previous_response_id");
    const auto user = opt_string(body, "user");
    const auto max_output_tokens = opt_int(body, "max_output_tokens");
    if (max_output_tokens && *max_output_tokens < 1)
      bad("max_output_tokens must be at least 1, got " + std::to_string(*max_output_tokens), "max_output_tokens");
    const auto max_tool_calls = opt_int(body, "max_tool_calls");
    const auto top_logprobs = opt_int(body, "top_logprobs");
    if (top_logprobs && (*top_logprobs < 0 || *top_logprobs > 20))
      bad("top_logprobs must be between 0 and 20, got " + std::to_string(*top_logprobs), "top_logprobs");
    const std::string service_tier = one_of(body, "service_tier", {"auto", "default", "flex", "scale", "priority"}, "auto");
    const std::string truncation = one_of(body, "truncation", {"auto", "disabled"}, "disabled");
    check_metadata(body);
    const bool logprobs = include_logprobs(body);
    std::optional<std::string> effort;
    if (const ojson* reasoning = present(body, "reasoning")) {
      if (!reasoning->is_object()) bad("reasoning must be an object", "reasoning");
      effort = str_field(*reasoning, "effort", "reasoning");
      str_field(*reasoning, "summary", "reasoning");
    }
    const ojson chat_tools = chat_tools_of(body);
    const ToolRequest tools = responses_tool_request(ctx, body, chat_tools);
    const ojson response_format = response_format_of(body);

    // The conversation: instructions, the previous response's turn(s), then the new input.
    std::shared_ptr<const ResponseStore::Entry> previous;
    if (previous_id) {
      previous = ctx.response_store->get(*previous_id);
      if (!previous) throw not_found("Response with id '" + *previous_id + "' not found.", "previous_response_id");
    }
    MessageBuilder built;
    if (instructions && !instructions->empty()) built.messages.push_back({{"role", "system"}, {"content", *instructions}});
    if (previous) {
      // Instructions do not carry over from one response to the next (OpenAI's rule).
      for (const auto& m : previous->messages)
        if (m["role"] != "system") built.messages.push_back(m);
      const ojson& output = previous->response["output"];
      for (size_t i = 0; i < output.size(); ++i) built.add(output[i], at("previous_response.output", i), true);
    }
    const ojson* input = present(body, "input");
    if (!input) bad("input: Field required", "input");
    bool continue_final = false;
    if (input->is_string()) {
      built.messages.push_back({{"role", "user"}, {"content", input->get<std::string>()}});
    } else if (input->is_array()) {
      for (size_t i = 0; i < input->size(); ++i) built.add((*input)[i], at("input", i), false);
      // A partial assistant message last is continued rather than answered (vLLM's
      // should_continue_final_message).
      if (!input->empty()) {
        // (add() has checked its type and role.)
        const ojson& last = input->back();
        const std::string w = at("input", input->size() - 1);
        if (str_field(last, "type", w).value_or("message") == "message" && required_str(last, "role", w) == "assistant") {
          const auto status = str_field(last, "status", w);
          continue_final = status == "in_progress" || status == "incomplete";
        }
      }
    } else {
      bad("input must be a string or a list of input items", "input");
    }

    ojson chat;
    chat["messages"] = built.messages;
    if (!chat_tools.is_null()) chat["tools"] = chat_tools;
    if (effort) chat["reasoning_effort"] = *effort;
    if (continue_final) {
      chat["add_generation_prompt"] = false;
      chat["continue_final_message"] = true;
    }
    RenderedChat rendered = render_chat(ctx, chat);
    std::vector<int32_t> ids = std::move(rendered.token_ids);
    if (ids.empty()) bad("The decoder prompt cannot be empty", "input");
    check_token_ids(ctx, ids);
    const int64_t limit = ctx.engine.max_model_len();
    const auto prompt_len = static_cast<int64_t>(ids.size());
    if (prompt_len >= limit)
      bad("The engine prompt length " + std::to_string(prompt_len) + " exceeds the max_model_len " +
              std::to_string(limit) + ". Please reduce prompt.",
          "input");
    // vLLM's to_sampling_params: max_output_tokens, capped by what the context has left.
    const int64_t max_tokens = max_output_tokens ? std::min(*max_output_tokens, limit - prompt_len) : limit - prompt_len;

    nlohmann::json fields = nlohmann::json::object();
    for (const char* f : {"temperature", "top_p"})
      if (const ojson* v = present(body, f)) {
        if (!v->is_number()) bad(std::string(f) + " must be a number, got " + json_excerpt(*v), f);
        fields[f] = v->get<double>();
      }
    if (auto k = opt_int(body, "top_k")) fields["top_k"] = *k;
    if (const ojson* lb = present(body, "logit_bias")) {
      if (!lb->is_object()) bad("logit_bias must be an object of token ids to biases", "logit_bias");
      fields["logit_bias"] = nlohmann::json(*lb);
    }
    if (auto s = opt_bool(body, "skip_special_tokens")) fields["skip_special_tokens"] = *s;
    if (logprobs) fields["logprobs"] = top_logprobs.value_or(0);
    AddRequestOptions options = request_options(ctx, body);
    if (auto forced = tool_choice_constraint(tools)) {
      apply_structured_outputs(ctx, ojson::object(), fields, options, std::move(forced), rendered.text);
    } else if (!response_format.is_null()) {
      try {
        apply_structured_outputs(ctx, ojson{{"response_format", response_format}}, fields, options, std::nullopt,
                                 rendered.text);
      } catch (const ApiError& e) {
        throw ApiError(e.what(), std::string("text.format"), e.status(), e.type());
      }
    }
    SamplingParams params;
    try {
      params = make_sampling_params(ctx, fields, max_tokens, stream);
    } catch (const ApiError& e) {
      throw with_sampling_param(e);
    }

    auto job = std::make_shared<ResponsesJob>(ctx, ex);
    job->id = new_item_id("resp_");
    job->stream = stream;
    job->store = store && ctx.response_store->enabled();
    job->as_token_id = ctx.config.return_tokens_as_token_ids;
    if (logprobs) job->top_logprobs = static_cast<int>(top_logprobs.value_or(0));
    job->prompt_ids = ids;
    job->messages = std::move(built.messages);
    job->parser = std::make_unique<ChatOutputParser>(ctx, tools, rendered.text);
    if (job->parser->passthrough()) job->parser.reset();
    else if (job->parser->wants_special_tokens()) params.skip_special_tokens = false;

    // The response object as vLLM's ResponsesResponse.from_request fills it (with OpenAI's
    // error and store fields), in its key order.
    ojson& r = job->response;
    r["id"] = job->id;
    r["created_at"] = unix_time();
    r["error"] = nullptr;
    r["incomplete_details"] = nullptr;
    r["instructions"] = instructions ? ojson(*instructions) : ojson(nullptr);
    r["metadata"] = present(body, "metadata") ? body["metadata"] : ojson(nullptr);
    r["model"] = ctx.model_name();
    r["object"] = "response";
    r["output"] = ojson::array();
    r["parallel_tool_calls"] = get_bool(body, "parallel_tool_calls", true);
    r["temperature"] = params.temperature;
    r["tool_choice"] = present(body, "tool_choice") ? body["tool_choice"] : ojson("auto");
    r["tools"] = present(body, "tools") ? body["tools"] : ojson::array();
    r["top_p"] = params.top_p;
    r["background"] = false;
    r["max_output_tokens"] = max_tokens;
    r["max_tool_calls"] = max_tool_calls ? ojson(*max_tool_calls) : ojson(nullptr);
    r["previous_response_id"] = previous_id ? ojson(*previous_id) : ojson(nullptr);
    r["prompt"] = nullptr;
    r["reasoning"] = present(body, "reasoning") ? body["reasoning"] : ojson(nullptr);
    r["service_tier"] = service_tier;
    r["status"] = "in_progress";
    r["store"] = job->store;
    ojson text = present(body, "text") ? body["text"] : ojson::object();
    if (!present(text, "format")) text["format"] = {{"type", "text"}};
    r["text"] = std::move(text);
    r["top_logprobs"] = top_logprobs.value_or(0);
    r["truncation"] = truncation;
    r["usage"] = nullptr;
    r["user"] = user ? ojson(*user) : ojson(nullptr);

    if (ctx.config.log_requests)
      VLLM_LOG_INFO("Received request {}: prompt: {}, params: {}, prompt_token_ids: {}", job->id,
                    nlohmann::json(log_excerpt(ctx, rendered.text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    params.to_json().dump(), nlohmann::json(ids).dump());
    ex->post([job, params = std::move(params), options]() mutable { job->start(std::move(params), options); });
  } catch (const ApiError& e) {
    ex->respond(error_response(e));
  } catch (const Error& e) {
    ex->respond(error_response(api_error_from(e)));
  } catch (const nlohmann::json::exception& e) {
    ex->respond(error_response(ApiError("Invalid request: " + json_error_text(e))));
  }
}

void handle_stored_response(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex) {
  static constexpr std::string_view kPrefix = "/v1/responses/";
  static constexpr std::string_view kCancel = "/cancel";
  try {
    std::string id = req.path.substr(kPrefix.size());
    const bool cancel = id.size() > kCancel.size() && id.compare(id.size() - kCancel.size(), kCancel.size(), kCancel) == 0;
    if (cancel) id.resize(id.size() - kCancel.size());
    if (id.empty() || id.find('/') != std::string::npos) throw not_found("Not Found");
    if (cancel != (req.method == "POST")) {
      HttpResponse r = error_response(ApiError("Method Not Allowed", std::nullopt, 405, "MethodNotAllowedError"));
      r.headers.emplace_back("allow", cancel ? "POST" : "GET, DELETE");
      ex->respond(std::move(r));
      return;
    }
    auto entry = ctx.response_store->get(id);
    if (!entry) throw not_found("Response with id '" + id + "' not found.", "response_id");
    if (cancel)
      // Only background responses can be cancelled; vllm-cpp answers every response synchronously.
      throw ApiError("Cannot cancel a synchronous response.", std::string("response_id"));
    if (req.method == "DELETE") {
      ctx.response_store->erase(id);
      ojson body;
      body["id"] = id;
      body["object"] = "response.deleted";
      body["deleted"] = true;
      ex->respond(json_response(body));
      return;
    }
    // ?stream=true replays a background response's events in vLLM: there are none here.
    for (size_t pos = 0; pos < req.query.size();) {
      size_t end = req.query.find('&', pos);
      if (end == std::string::npos) end = req.query.size();
      const std::string pair = req.query.substr(pos, end - pos);
      if (pair == "stream=true" || pair == "stream=True" || pair == "stream=1")
        throw ApiError("streaming a stored response is only possible for background responses, which vllm-cpp does "
                       "not support",
                       std::string("stream"));
      pos = end + 1;
    }
    ex->respond(json_response(entry->response));
  } catch (const ApiError& e) {
    ex->respond(error_response(e));
  }
}

}  // namespace vllm::server
