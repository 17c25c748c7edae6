// POST /v1/chat/completions: vLLM's OpenAIServingChat for text models. Messages are rendered
// with the chat template (the request's, --chat-template, or the tokenizer's), tokenized
// without extra special tokens, generated as one engine request, and answered as a
// chat.completion or a stream of chat.completion.chunk events.
#include <algorithm>

#include "vllm/core/logging.h"
#include "vllm/server/handlers.h"
#include "vllm/server/structured_outputs.h"
#include "vllm/server/tool_calls.h"
#include "vllm/server/json_body.h"
#include "vllm/server/request_job.h"
#include "vllm/server/sse.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::server {

namespace {

std::string where(size_t i) { return "messages[" + std::to_string(i) + "]"; }

// A message's content as the template gets it (--chat-template-content-format): in the "string"
// format the text parts joined by newlines, in the "openai" format a list of
// {"type": "text", "text": ...} parts (a string content is one part, none is an empty list).
ojson message_content(const ojson& content, size_t i, ChatContentFormat format) {
  const bool openai = format == ChatContentFormat::kOpenAI;
  auto text_part = [](std::string text) { return ojson{{"type", "text"}, {"text", std::move(text)}}; };
  if (content.is_null()) return openai ? ojson::array() : ojson("");
  if (content.is_string()) return openai ? ojson::array({text_part(content.get<std::string>())}) : content;
  if (!content.is_array())
    throw ApiError(where(i) + ".content must be a string or a list of content parts", "messages");
  std::string text;
  ojson parts = ojson::array();
  bool first = true;
  for (const auto& part : content) {
    std::string piece;
    if (part.is_string()) {
      piece = part.get<std::string>();
    } else if (part.is_object()) {
      std::string type = part.contains("type") && part["type"].is_string() ? part["type"].get<std::string>() : "";
      if (type.empty() && part.contains("text")) type = "text";
      if (type == "text" || type == "input_text" || type == "output_text") {
        if (!part.contains("text") || !part["text"].is_string())
          throw ApiError(where(i) + ": a text content part needs a string 'text'", "messages");
        piece = part["text"].get<std::string>();
      } else if (type == "refusal") {
        piece = part.value("refusal", "");
      } else {
        throw ApiError(where(i) + ": content parts of type '" + (type.empty() ? "unknown" : type) +
                           "' are not supported (vllm-cpp serves text-only models)",
                       "messages");
      }
    } else {
      throw ApiError(where(i) + ": each content part must be an object", "messages");
    }
    if (openai) parts.push_back(text_part(piece));
    if (!first) text += "\n";
    text += piece;
    first = false;
  }
  return openai ? parts : ojson(text);
}

// The text of a rendered message's content (either format): the parts joined by newlines, or
// with last_part_only the last part's text (transformers' continue_final_message looks there).
std::string rendered_text(const ojson& content, bool last_part_only = false) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  for (const auto& part : content) {
    if (last_part_only) text.clear();
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

ojson parse_conversation(const ojson& body, ChatContentFormat format) {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) throw ApiError("messages: Field required", "messages");
  if (!it->is_array()) throw ApiError("messages must be a list of messages", "messages");
  ojson conversation = ojson::array();
  for (size_t i = 0; i < it->size(); ++i) {
    const ojson& m = (*it)[i];
    if (!m.is_object()) throw ApiError(where(i) + " must be an object", "messages");
    if (!m.contains("role") || !m["role"].is_string()) throw ApiError(where(i) + ".role: a string is required", "messages");
    const std::string role = m["role"].get<std::string>();
    ojson msg;
    msg["role"] = role;
    msg["content"] = message_content(m.contains("content") ? m["content"] : ojson(nullptr), i, format);
    if (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      if (!m["tool_calls"].is_array()) throw ApiError(where(i) + ".tool_calls must be a list", "messages");
      ojson calls = m["tool_calls"];
      for (auto& call : calls) {
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
          throw ApiError(where(i) + ".tool_calls: each call needs a 'function' object", "messages");
        ojson& fn = call["function"];
        // Templates expect arguments as a dict, not OpenAI's JSON string (vLLM parses them).
        auto args = fn.find("arguments");
        if (args == fn.end() || args->is_null() || (args->is_string() && args->get<std::string>().empty())) {
          fn["arguments"] = ojson::object();
        } else if (args->is_string()) {
          try {
            fn["arguments"] = ojson::parse(args->get<std::string>());
          } catch (const ojson::exception& e) {  // parse_error, or out_of_range for a number past a double
            throw ApiError(where(i) + ".tool_calls: function.arguments is not valid JSON (" + e.what() + ")", "messages");
          }
        }
      }
      msg["tool_calls"] = std::move(calls);
    }
    if (role == "assistant") {
      for (const char* key : {"reasoning", "reasoning_content"})
        if (m.contains(key) && m[key].is_string()) {
          msg["reasoning"] = m[key];
          msg["reasoning_content"] = m[key];
          break;
        }
    }
    if (role == "tool" && m.contains("tool_call_id")) msg["tool_call_id"] = m["tool_call_id"];
    if (m.contains("name") && m["name"].is_string()) msg["name"] = m["name"];
    conversation.push_back(std::move(msg));
  }
  return conversation;
}

}  // namespace

RenderedChat render_chat(const ServingContext& ctx, const ojson& body) {
  RenderedChat r;
  std::shared_ptr<const ChatTemplate> tmpl = ctx.default_chat_template;
  if (!ctx.config.trust_request_chat_template) {
    const auto kw = body.find("chat_template_kwargs");
    const bool in_kwargs = kw != body.end() && kw->is_object() && kw->contains("chat_template") &&
                           !(*kw)["chat_template"].is_null();
    if ((body.contains("chat_template") && !body["chat_template"].is_null()) || in_kwargs)
      throw ApiError("Chat template is passed with request, but --trust-request-chat-template is not set. Refused "
                     "request with untrusted chat template.",
                     "chat_template");
  }
  if (auto source = opt_string(body, "chat_template")) {
    try {
      tmpl = std::make_shared<const ChatTemplate>(*source);
    } catch (const Error& e) {
      throw ApiError(std::string("chat_template: ") + e.what(), "chat_template");
    }
  }
  // The messages in the content format the template wants (messages' own errors come first).
  // (The server's template was resolved at start-up; a request's own is asked here.)
  const ChatContentFormat format =
      !tmpl                                 ? ChatContentFormat::kString
      : tmpl == ctx.default_chat_template ? ctx.default_content_format
                                            : resolve_chat_content_format(ctx.config.chat_template_content_format, *tmpl);
  r.conversation = parse_conversation(body, format);
  ChatTemplateInputs in;
  in.tools = parse_tools_list(body);
  const bool add_generation_prompt = get_bool(body, "add_generation_prompt", true);
  const bool continue_final = get_bool(body, "continue_final_message", false);
  if (add_generation_prompt && continue_final)
    throw ApiError("Cannot set both `continue_final_message` and `add_generation_prompt` to True.");
  if (!tmpl)
    throw ApiError("As of transformers v4.44, default chat template is no longer allowed, so you must provide a chat "
                   "template if the tokenizer does not define one.");
  if (auto kw = body.find("chat_template_kwargs"); kw != body.end() && !kw->is_null()) {
    if (!kw->is_object()) throw ApiError("chat_template_kwargs must be an object", "chat_template_kwargs");
    in.extra_kwargs = ojson::object();
    for (auto it = kw->begin(); it != kw->end(); ++it) {
      const std::string& k = it.key();
      // The request's own fields win over the same names in chat_template_kwargs.
      if (k == "messages" || k == "tools" || k == "documents" || k == "add_generation_prompt" ||
          k == "continue_final_message" || k == "chat_template")
        continue;
      append_new_key(in.extra_kwargs, k, it.value());  // keys of one object: unique
    }
  }
  if (auto effort = opt_string(body, "reasoning_effort")) {
    // vLLM passes it to the template, and turns thinking on or off unless the kwargs decide.
    if (in.extra_kwargs.is_null()) in.extra_kwargs = ojson::object();
    in.extra_kwargs["reasoning_effort"] = *effort;
    if (!in.extra_kwargs.contains("enable_thinking")) in.extra_kwargs["enable_thinking"] = *effort != "none";
  }
  if (auto docs = body.find("documents"); docs != body.end() && !docs->is_null()) {
    if (!docs->is_array()) throw ApiError("documents must be a list of objects", "documents");
    in.documents = *docs;
  }
  in.messages = r.conversation;
  in.add_generation_prompt = add_generation_prompt;
  if (const Tokenizer* tok = ctx.tokenizer()) {
    in.bos_token = tok->bos_token();
    in.eos_token = tok->eos_token();
  }
  r.text = apply_chat_template(*tmpl, in);
  if (continue_final && !r.conversation.empty()) {
    // transformers: cut everything the template put after the final message.
    std::string final_msg = rendered_text(r.conversation.back()["content"], /*last_part_only=*/true);
    const auto b = final_msg.find_first_not_of(" \t\n\r\f\v");
    const auto e = final_msg.find_last_not_of(" \t\n\r\f\v");
    final_msg = b == std::string::npos ? std::string() : final_msg.substr(b, e - b + 1);
    const auto pos = r.text.rfind(final_msg);
    if (pos == std::string::npos)
      throw ApiError("continue_final_message is set but the final message does not appear in the chat after applying "
                     "the chat template! This can happen if the chat template deletes portions of the final message. "
                     "Please verify the chat template and final message in your chat to ensure they are compatible.");
    r.text.resize(pos + final_msg.size());
  }
  if (!ctx.tokenizer()) throw ApiError("this model has no tokenizer, so chat requests cannot be served");
  if (!body.contains("truncate_prompt_tokens") || body["truncate_prompt_tokens"].is_null()) {
    std::optional<int64_t> out = opt_int(body, "max_completion_tokens");
    if (!out) out = opt_int(body, "max_tokens");
    check_text_length(ctx, r.text, out.value_or(0));
  }
  r.token_ids = ctx.tokenizer()->encode(r.text, get_bool(body, "add_special_tokens", false));
  return r;
}

namespace {

class ChatJob : public RequestJob {
 public:
  using RequestJob::RequestJob;

  std::string id;
  int64_t created = 0;
  std::string model;
  std::string role = "assistant";
  bool stream = false, return_token_ids = false, as_token_id = false;
  std::optional<std::string> echo_text;  // the last message's content, when echo applies
  std::optional<int> top_logprobs;        // set when logprobs were requested
  int n = 1;
  StreamOptions stream_options;
  std::vector<int32_t> prompt_ids;
  // Reasoning and tool calls: one parser per choice (none when the text is plain content).
  std::vector<std::unique_ptr<ChatOutputParser>> parsers;

  void start(SamplingParams params, const AddRequestOptions& options) {
    const auto choices = static_cast<size_t>(n);
    prev_tokens_.assign(choices, 0);
    finish_sent_.assign(choices, false);
    submit(0, id, prompt_ids, std::move(params), options);
    watch_disconnect();
    if (stream) watch_backpressure();
  }

 protected:
  void on_output(size_t, RequestOutput&& out) override {
    if (failed_ || ex_->disconnected()) return;
    if (!out.prompt_logprobs.empty()) prompt_logprobs_ = out.prompt_logprobs;
    if (!stream) {
      if (out.finished) respond_full(out);
      return;
    }
    std::string data;
    if (!headers_sent_) {
      headers_sent_ = true;
      ex_->start_stream(200, kEventStreamType);
      // The first chunk per choice carries the role; with echo, then the echoed content.
      for (int i = 0; i < n; ++i) {
        ojson delta;
        delta["role"] = role;
        delta["content"] = "";
        ojson chunk = chunk_of(i, std::move(delta), nullptr, std::nullopt, StopReason{});
        if (return_token_ids) chunk["prompt_token_ids"] = prompt_ids;
        if (stream_options.continuous_usage_stats) chunk["usage"] = chunk_usage(0);
        data += sse_event(chunk);
      }
      if (echo_text) {
        for (int i = 0; i < n; ++i) {
          ojson delta;
          delta["content"] = *echo_text;
          ojson chunk = chunk_of(i, std::move(delta), nullptr, std::nullopt, StopReason{});
          if (stream_options.continuous_usage_stats) chunk["usage"] = chunk_usage(0);
          data += sse_event(chunk);
        }
      }
    }
    for (const CompletionOutput& c : out.outputs) {
      const auto i = static_cast<size_t>(c.index);
      if (i >= finish_sent_.size() || finish_sent_[i]) continue;
      if (c.text.empty() && c.token_ids.empty() && !c.finish_reason) continue;
      prev_tokens_[i] += static_cast<int64_t>(c.token_ids.size());
      ojson logprobs = nullptr;
      if (top_logprobs) logprobs = {{"content", chat_logprobs_content(ctx_, c.token_ids, c.logprobs, *top_logprobs, as_token_id)}};
      ojson delta;
      bool tool_calls = false;
      if (i < parsers.size() && parsers[i]) {
        ChatOutputParser& p = *parsers[i];
        parsers::DeltaMessage d = p.feed(c.text);
        if (c.finish_reason) append_delta(d, p.finish());
        delta = delta_json(d);
        tool_calls = c.finish_reason && p.tools_called();
        // Nothing to say yet (a tag is still being read): no chunk, unless the client wants this
        // chunk's token ids or log-probs.
        if (delta.empty() && !c.finish_reason && !return_token_ids && logprobs.is_null()) continue;
      } else {
        delta["content"] = c.text;
      }
      ojson chunk = chunk_of(c.index, std::move(delta), std::move(logprobs), c.finish_reason, c.stop_reason);
      if (tool_calls) chunk["choices"][0]["finish_reason"] = "tool_calls";
      if (return_token_ids) chunk["choices"][0]["token_ids"] = c.token_ids;
      if (stream_options.continuous_usage_stats) chunk["usage"] = chunk_usage(prev_tokens_[i]);
      data += sse_event(chunk);
      if (c.finish_reason) finish_sent_[i] = true;
    }
    if (out.finished) {
      if (stream_options.include_usage) {
        int64_t completion = 0;
        for (int64_t t : prev_tokens_) completion += t;
        ojson usage = usage_json(ctx_, static_cast<int64_t>(prompt_ids.size()), completion, out.num_cached_tokens);
        if (usage["prompt_tokens_details"].is_null()) usage.erase("prompt_tokens_details");
        ojson chunk = head();
        chunk["choices"] = ojson::array();
        chunk["usage"] = std::move(usage);
        data += sse_event(chunk);
      }
      data += sse_done();
      ex_->write(std::move(data));
      ex_->end_stream();
      return;
    }
    if (!data.empty()) ex_->write(std::move(data));
  }

 private:
  static void append_delta(parsers::DeltaMessage& d, parsers::DeltaMessage&& more) {
    d.content += more.content;
    d.reasoning += more.reasoning;
    for (auto& c : more.tool_calls) d.tool_calls.push_back(std::move(c));
  }

  // A DeltaMessage as the chunk's delta: only what it has (vLLM's exclude_none).
  static ojson delta_json(const parsers::DeltaMessage& d) {
    ojson delta = ojson::object();
    if (!d.reasoning.empty()) {
      delta["reasoning"] = d.reasoning;
      delta["reasoning_content"] = d.reasoning;
    }
    if (!d.content.empty()) delta["content"] = d.content;
    if (!d.tool_calls.empty()) {
      ojson calls = ojson::array();
      for (const parsers::ToolCallDelta& c : d.tool_calls) {
        ojson call;
        call["index"] = c.index;
        if (c.id) call["id"] = *c.id, call["type"] = "function";
        ojson fn = ojson::object();
        if (c.name) fn["name"] = *c.name;
        fn["arguments"] = c.arguments;
        call["function"] = std::move(fn);
        calls.push_back(std::move(call));
      }
      delta["tool_calls"] = std::move(calls);
    }
    return delta;
  }

  ojson head() const {
    ojson j;
    j["id"] = id;
    j["object"] = stream ? "chat.completion.chunk" : "chat.completion";
    j["created"] = created;
    j["model"] = model;
    return j;
  }

  ojson chunk_usage(int64_t completion) const {
    const auto prompt = static_cast<int64_t>(prompt_ids.size());
    return {{"prompt_tokens", prompt}, {"total_tokens", prompt + completion}, {"completion_tokens", completion}};
  }

  ojson chunk_of(int index, ojson delta, ojson logprobs, const std::optional<FinishReason>& finish,
                 const StopReason& stop) const {
    ojson choice;
    choice["index"] = index;
    choice["delta"] = std::move(delta);
    choice["logprobs"] = std::move(logprobs);
    choice["finish_reason"] = finish_reason_json(finish);
    if (finish) choice["stop_reason"] = stop_reason_json(stop);
    ojson chunk = head();
    chunk["choices"] = ojson::array({std::move(choice)});
    return chunk;
  }

  void respond_full(const RequestOutput& out) {
    std::vector<CompletionOutput> outputs = out.outputs;
    std::stable_sort(outputs.begin(), outputs.end(),
                     [](const CompletionOutput& a, const CompletionOutput& b) { return a.index < b.index; });
    ojson choices = ojson::array();
    int64_t completion = 0;
    for (const CompletionOutput& c : outputs) {
      ojson message;
      message["role"] = role;
      message["content"] = echo_text ? *echo_text + c.text : c.text;
      message["refusal"] = nullptr;
      message["annotations"] = nullptr;
      message["audio"] = nullptr;
      message["function_call"] = nullptr;
      message["tool_calls"] = ojson::array();
      message["reasoning"] = nullptr;
      bool tool_calls = false;
      const auto i = static_cast<size_t>(c.index);
      if (i < parsers.size() && parsers[i]) {
        ChatMessageParts parts = parsers[i]->parse(c.text);
        message["content"] = parts.content ? ojson(*parts.content) : ojson(nullptr);
        if (parts.reasoning) {
          message["reasoning"] = *parts.reasoning;
          message["reasoning_content"] = *parts.reasoning;  // the older name, which some clients read
        }
        for (const parsers::ToolCall& call : parts.tool_calls)
          message["tool_calls"].push_back(
              {{"id", call.id}, {"type", "function"}, {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
        tool_calls = !parts.tool_calls.empty();
      }
      ojson choice;
      choice["index"] = c.index;
      choice["message"] = std::move(message);
      choice["logprobs"] =
          top_logprobs ? ojson{{"content", chat_logprobs_content(ctx_, c.token_ids, c.logprobs, *top_logprobs, as_token_id)}}
                       : ojson(nullptr);
      choice["finish_reason"] = tool_calls ? ojson("tool_calls") : finish_reason_json(c.finish_reason);
      choice["stop_reason"] = stop_reason_json(c.stop_reason);
      choice["token_ids"] = return_token_ids ? ojson(c.token_ids) : ojson(nullptr);
      choices.push_back(std::move(choice));
      completion += static_cast<int64_t>(c.token_ids.size());
    }
    ojson body = head();
    body["choices"] = std::move(choices);
    body["service_tier"] = nullptr;
    body["system_fingerprint"] = nullptr;
    body["usage"] = usage_json(ctx_, static_cast<int64_t>(prompt_ids.size()), completion, out.num_cached_tokens);
    body["prompt_logprobs"] = prompt_logprobs_.empty() ? ojson(nullptr) : prompt_logprobs_json(ctx_, prompt_logprobs_);
    body["prompt_token_ids"] = return_token_ids ? ojson(prompt_ids) : ojson(nullptr);
    body["kv_transfer_params"] = nullptr;
    ex_->respond(json_response(body));
  }

  std::vector<int64_t> prev_tokens_;
  std::vector<bool> finish_sent_;
  std::vector<std::optional<TokenLogprobs>> prompt_logprobs_;
};

}  // namespace

// vLLM's check_logprobs validator for chat requests.
void check_chat_logprobs(const ojson& body, bool stream) {
  for (const char* f : {"prompt_logprobs", "top_logprobs"}) {
    auto it = body.find(f);
    if (it != body.end() && !it->is_null() && !it->is_number())
      throw ApiError(std::string("`") + f + "` must be an integer.", f);
  }
  if (auto it = body.find("prompt_logprobs"); it != body.end() && !it->is_null()) {
    const double pl = it->get<double>();
    if (stream && (pl > 0 || pl == -1))
      throw ApiError("`prompt_logprobs` are not available when `stream=True`.", "prompt_logprobs");
    if (pl < 0 && pl != -1) throw ApiError("`prompt_logprobs` must be a positive value or -1.", "prompt_logprobs");
  }
  if (auto it = body.find("top_logprobs"); it != body.end() && !it->is_null()) {
    const double tl = it->get<double>();
    if (tl < 0 && tl != -1) throw ApiError("`top_logprobs` must be a positive value or -1.", "top_logprobs");
    if ((tl == -1 || tl > 0) && !get_bool(body, "logprobs", false))
      throw ApiError("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs");
  }
}

void handle_chat_completions(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex) {
  try {
    if (ctx.shutting_down.load()) throw ApiError("The server is shutting down.", std::nullopt, 503, "ServiceUnavailableError");
    check_capacity(ctx);
    const ojson body = parse_body(req);
    check_request_size(ctx, 1, body);
    request_options(ctx, body);
    const bool stream = get_bool(body, "stream", false);
    const StreamOptions stream_options = parse_stream_options(ctx, body, stream);
    check_chat_logprobs(body, stream);
    check_model(ctx, body);
    warn_unknown_fields(body, {"model", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "best_of", "presence_penalty", "seed",
         "stop", "stream", "stream_options", "temperature", "top_p", "user", "use_beam_search", "top_k", "min_p",
         "repetition_penalty", "length_penalty", "stop_token_ids", "include_stop_str_in_output", "ignore_eos",
         "min_tokens", "skip_special_tokens", "spaces_between_special_tokens", "truncate_prompt_tokens",
         "truncation_side", "allowed_token_ids", "prompt_logprobs", "bad_words", "add_special_tokens",
         "response_format", "structured_outputs", "priority", "request_id", "cache_salt", "return_tokens_as_token_ids",
         "return_token_ids", "logprob_token_ids", "vllm_xargs", "kv_transfer_params", "stream_interval",
         "logits_processors", "thinking_token_budget", "repetition_detection", "guided_json", "guided_regex",
         "guided_choice", "guided_grammar", "guided_whitespace_pattern", "guided_decoding_backend", "watermarking", "session_id", "messages", "top_logprobs", "max_completion_tokens", "tools", "tool_choice",
                               "reasoning_effort", "include_reasoning", "parallel_tool_calls", "echo",
                               "add_generation_prompt", "continue_final_message", "documents", "chat_template",
                               "chat_template_kwargs", "return_prompt_text", "mm_processor_kwargs", "media_io_kwargs"});
    if (get_bool(body, "use_beam_search", false))
      throw ApiError("beam search (use_beam_search) is not supported by vllm-cpp", "use_beam_search");

    RenderedChat chat = render_chat(ctx, body);
    auto job = std::make_shared<ChatJob>(ctx, ex);
    job->id = "chatcmpl-" + base_request_id(req, body);
    job->created = unix_time();
    job->model = ctx.model_name();
    job->stream = stream;
    job->stream_options = stream_options;
    job->return_token_ids = get_bool(body, "return_token_ids", false);
    job->as_token_id = opt_bool(body, "return_tokens_as_token_ids").value_or(ctx.config.return_tokens_as_token_ids);
    const bool add_generation_prompt = get_bool(body, "add_generation_prompt", true);
    const std::string last_role =
        chat.conversation.empty() ? std::string() : chat.conversation.back()["role"].get<std::string>();
    job->role = add_generation_prompt ? ctx.config.response_role : last_role;
    if (get_bool(body, "echo", false) && !chat.conversation.empty() && last_role == job->role)
      job->echo_text = rendered_text(chat.conversation.back()["content"]);

    std::vector<int32_t> ids = std::move(chat.token_ids);
    truncate_prompt(ctx, opt_int(body, "truncate_prompt_tokens"), &ids);
    if (ids.empty()) throw ApiError("The decoder prompt cannot be empty", "messages");
    check_token_ids(ctx, ids);

    std::optional<int64_t> requested = opt_int(body, "max_completion_tokens");
    const char* param = "max_completion_tokens";
    if (!requested) requested = opt_int(body, "max_tokens"), param = "max_tokens";
    const int64_t max_tokens = resolve_max_tokens(ctx, static_cast<int64_t>(ids.size()), requested, param);

    nlohmann::json fields = sampling_fields(body);
    const bool logprobs = get_bool(body, "logprobs", false);
    const auto top = opt_int(body, "top_logprobs");
    if (logprobs) fields["logprobs"] = top.value_or(0);
    if (get_bool(body, "echo", false) && !fields.contains("prompt_logprobs") && logprobs)
      fields["prompt_logprobs"] = top.value_or(0);
    SamplingParams params = make_sampling_params(ctx, fields, max_tokens, stream);
    job->n = params.n;
    if (logprobs) job->top_logprobs = params.logprobs.value_or(0);
    job->prompt_ids = ids;
    AddRequestOptions options = request_options(ctx, body);
    const ToolRequest tools = parse_tool_request(ctx, body);
    apply_structured_outputs(ctx, body, fields, options, tool_choice_constraint(tools), chat.text);
    const bool include_reasoning = get_bool(body, "include_reasoning", true);
    for (int i = 0; i < params.n; ++i) {
      auto parser = std::make_unique<ChatOutputParser>(ctx, tools, chat.text, include_reasoning);
      if (parser->passthrough()) break;
      if (parser->wants_special_tokens()) params.skip_special_tokens = false;
      job->parsers.push_back(std::move(parser));
    }
    if (ctx.config.log_requests)
      VLLM_LOG_INFO("Received request {}: prompt: {}, params: {}, prompt_token_ids: {}", job->id,
                    nlohmann::json(log_excerpt(ctx, chat.text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    params.to_json().dump(), nlohmann::json(ids).dump());
    // The engine request starts on the connection's strand, where its outputs arrive.
    ex->post([job, params = std::move(params), options]() mutable { job->start(std::move(params), options); });
  } catch (const ApiError& e) {
    ex->respond(error_response(e));
  } catch (const Error& e) {
    ex->respond(error_response(api_error_from(e)));
  } catch (const nlohmann::json::exception& e) {
    // A field of an unexpected JSON type deep inside the request.
    ex->respond(error_response(ApiError("Invalid request: " + json_error_text(e))));
  }
}

}  // namespace vllm::server
