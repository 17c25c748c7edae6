// POST /v1/completions: vLLM's OpenAIServingCompletion. One engine request per prompt
// ("<id>-<i>"), choices indexed prompt * n + output index, echo, completions-format log-probs,
// streaming as SSE with DELTA outputs.
#include <algorithm>

#include "vllm/core/logging.h"
#include "vllm/server/handlers.h"
#include "vllm/server/structured_outputs.h"
#include "vllm/server/json_body.h"
#include "vllm/server/request_job.h"
#include "vllm/server/sse.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::server {

namespace {

std::vector<int32_t> int_list(const ojson& v, const char* what) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_number_integer())
      throw ApiError(std::string(what) + " must be a string, a list of strings, a list of token ids or a list of "
                                         "token id lists",
                     "prompt");
    if (e.is_number_unsigned() ? e.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX) : false)
      throw ApiError("Token id " + e.dump() + " is out of vocabulary");
    int64_t id = e.get<int64_t>();
    if (id < 0) throw ApiError("prompt: token ids must be greater than or equal to 0, got " + std::to_string(id), "prompt");
    if (id > INT32_MAX) throw ApiError("Token id " + std::to_string(id) + " is out of vocabulary");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

}  // namespace

std::vector<PromptIn> parse_prompts(const ServingContext& ctx, const ojson& body, bool add_special_tokens,
                                    int64_t max_tokens, bool truncating) {
  auto it = body.find("prompt");
  if (auto pe = body.find("prompt_embeds"); pe != body.end() && !pe->is_null())
    throw ApiError("prompt_embeds are not supported by vllm-cpp", "prompt_embeds");
  if (it == body.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()))
    throw ApiError("Either prompt or prompt_embeds must be provided and non-empty.", "prompt");
  const ojson& p = *it;
  auto encode = [&](const std::string& text) {
    if (!ctx.tokenizer()) throw ApiError("this model has no tokenizer; give prompts as token ids", "prompt");
    if (!truncating) check_text_length(ctx, text, max_tokens);
    PromptIn in;
    in.text = text;
    in.ids = ctx.tokenizer()->encode(text, add_special_tokens);
    return in;
  };
  check_request_size(ctx, p.is_array() && !p.empty() && (p.front().is_string() || p.front().is_array()) ? p.size() : 1,
                     body);
  std::vector<PromptIn> out;
  if (p.is_string()) {
    out.push_back(encode(p.get<std::string>()));
  } else if (p.is_array()) {
    if (p.empty()) throw ApiError("prompt must not be an empty list", "prompt");
    if (p.front().is_string()) {
      for (const auto& e : p) {
        if (!e.is_string()) throw ApiError("prompt: a list of prompts must hold only strings", "prompt");
        out.push_back(encode(e.get<std::string>()));
      }
    } else if (p.front().is_array()) {
      for (const auto& e : p) {
        if (!e.is_array()) throw ApiError("prompt: a list of token id lists must hold only lists", "prompt");
        out.push_back({int_list(e, "prompt"), std::nullopt});
      }
    } else {
      out.push_back({int_list(p, "prompt"), std::nullopt});
    }
  } else {
    throw ApiError("prompt must be a string, a list of strings, a list of token ids or a list of token id lists",
                   "prompt");
  }
  return out;
}

// vLLM's check_logprobs validator.
void check_logprobs_fields(const ojson& body, bool stream) {
  for (const char* f : {"prompt_logprobs", "logprobs"}) {
    auto it = body.find(f);
    if (it != body.end() && !it->is_null() && !it->is_number() && !it->is_boolean())
      throw ApiError(std::string("`") + f + "` must be an integer.", f);
  }
  auto value = [&](const char* f) -> std::optional<double> {
    auto it = body.find(f);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (it->is_boolean()) return it->get<bool>() ? 1.0 : 0.0;
    return it->get<double>();
  };
  if (auto pl = value("prompt_logprobs")) {
    if (stream && (*pl > 0 || *pl == -1))
      throw ApiError("`prompt_logprobs` are not available when `stream=True`.", "prompt_logprobs");
    if (*pl < 0 && *pl != -1) throw ApiError("`prompt_logprobs` must be a positive value or -1.", "prompt_logprobs");
  }
  if (auto lp = value("logprobs"); lp && *lp < 0 && *lp != -1)
    throw ApiError("`logprobs` must be a positive value or -1.", "logprobs");
}

namespace {

class CompletionJob : public RequestJob {
 public:
  using RequestJob::RequestJob;

  struct Prompt {
    std::vector<int32_t> ids;
    std::string text;
    std::optional<RequestOutput> final;
    std::vector<std::optional<TokenLogprobs>> prompt_logprobs;
  };

  std::string id;
  int64_t created = 0;
  std::string model;
  bool stream = false, echo = false, echo_only = false, return_token_ids = false, as_token_id = false;
  std::optional<int> logprobs;
  int n = 1;
  StreamOptions stream_options;
  std::vector<Prompt> prompts;

  void start(std::vector<SamplingParams> params, const AddRequestOptions& options) {
    const size_t choices = prompts.size() * static_cast<size_t>(n);
    prev_text_len_.assign(choices, 0);
    prev_tokens_.assign(choices, 0);
    echoed_.assign(choices, false);
    finish_sent_.assign(choices, false);
    prompt_ids_sent_.assign(choices, false);
    for (size_t i = 0; i < prompts.size(); ++i)
      submit(i, id + "-" + std::to_string(i), prompts[i].ids, std::move(params[i]), options);
    watch_disconnect();
    if (stream) watch_backpressure();
  }

 protected:
  void on_output(size_t p, RequestOutput&& out) override {
    if (failed_ || ex_->disconnected()) return;
    Prompt& prompt = prompts[p];
    // Prompt log-probs come once (DELTA) or with the final output; keep them for echo.
    if (!out.prompt_logprobs.empty()) {
      prompt.prompt_logprobs.resize(std::max(prompt.prompt_logprobs.size(), out.prompt_logprobs.size()));
      for (size_t k = 0; k < out.prompt_logprobs.size(); ++k)
        if (out.prompt_logprobs[k]) prompt.prompt_logprobs[k] = out.prompt_logprobs[k];
    }
    if (!cached_tokens_) cached_tokens_ = out.num_cached_tokens;
    if (stream) {
      stream_output(p, out);
    } else if (out.finished) {
      prompt.final = std::move(out);
      if (++finished_ == prompts.size()) respond_full();
    }
  }

 private:
  // The token ids, log-probs and text a choice shows for this output (echo prepends the prompt).
  void choice_view(size_t p, size_t choice, const CompletionOutput& c, std::string* text, std::vector<int32_t>* ids,
                   std::vector<const TokenLogprobs*>* lps) {
    Prompt& prompt = prompts[p];
    auto add_prompt = [&] {
      ids->insert(ids->end(), prompt.ids.begin(), prompt.ids.end());
      for (size_t k = 0; k < prompt.ids.size(); ++k)
        lps->push_back(k < prompt.prompt_logprobs.size() && prompt.prompt_logprobs[k] ? &*prompt.prompt_logprobs[k]
                                                                                      : nullptr);
    };
    if (echo && !echoed_[choice]) {
      echoed_[choice] = true;
      add_prompt();
      *text = prompt.text;
      if (echo_only) return;
      *text += c.text;
    } else {
      *text = c.text;
    }
    ids->insert(ids->end(), c.token_ids.begin(), c.token_ids.end());
    for (size_t k = 0; k < c.token_ids.size(); ++k) lps->push_back(k < c.logprobs.size() ? &c.logprobs[k] : nullptr);
  }

  ojson chunk_head() const {
    ojson chunk;
    chunk["id"] = id;
    chunk["object"] = "text_completion";
    chunk["created"] = created;
    chunk["model"] = model;
    return chunk;
  }

  void stream_output(size_t p, const RequestOutput& out) {
    if (!headers_sent_) {
      headers_sent_ = true;
      ex_->start_stream(200, kEventStreamType);
    }
    std::string data;
    for (const CompletionOutput& c : out.outputs) {
      const size_t i = static_cast<size_t>(c.index) + p * static_cast<size_t>(n);
      if (i >= finish_sent_.size() || finish_sent_[i]) continue;
      const bool first_echo = echo && !echoed_[i];
      if (!first_echo && c.text.empty() && c.token_ids.empty() && !c.finish_reason) continue;
      std::string text;
      std::vector<int32_t> ids;
      std::vector<const TokenLogprobs*> lps;
      choice_view(p, i, c, &text, &ids, &lps);
      ojson choice;
      choice["index"] = i;
      choice["text"] = text;
      choice["logprobs"] =
          logprobs ? completion_logprobs(ctx_, ids, lps, *logprobs, prev_text_len_[i], as_token_id) : ojson(nullptr);
      choice["finish_reason"] = finish_reason_json(c.finish_reason);
      choice["stop_reason"] = stop_reason_json(c.stop_reason);
      choice["prompt_token_ids"] = nullptr;
      if (return_token_ids && !prompt_ids_sent_[i]) choice["prompt_token_ids"] = prompts[p].ids;
      choice["token_ids"] = return_token_ids ? ojson(c.token_ids) : ojson(nullptr);
      if (return_token_ids) prompt_ids_sent_[i] = true;
      prev_text_len_[i] += py_len(text);
      prev_tokens_[i] += static_cast<int64_t>(c.token_ids.size());
      ojson chunk = chunk_head();
      chunk["choices"] = ojson::array({std::move(choice)});
      if (stream_options.continuous_usage_stats) {
        const auto prompt_tokens = static_cast<int64_t>(prompts[p].ids.size());
        chunk["usage"] = {{"prompt_tokens", prompt_tokens},
                          {"total_tokens", prompt_tokens + prev_tokens_[i]},
                          {"completion_tokens", prev_tokens_[i]}};
      }
      data += sse_event(chunk);
      if (c.finish_reason) finish_sent_[i] = true;
    }
    if (out.finished && ++finished_ == prompts.size()) {
      if (stream_options.include_usage) {
        int64_t prompt_tokens = 0, completion_tokens = 0;
        for (const auto& pr : prompts) prompt_tokens += static_cast<int64_t>(pr.ids.size());
        for (int64_t t : prev_tokens_) completion_tokens += t;
        ojson usage = usage_json(ctx_, prompt_tokens, completion_tokens, cached_tokens_);
        if (usage["prompt_tokens_details"].is_null()) usage.erase("prompt_tokens_details");
        ojson chunk = chunk_head();
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

  void respond_full() {
    ojson choices = ojson::array();
    int64_t prompt_tokens = 0, completion_tokens = 0;
    std::optional<int64_t> cached;
    for (size_t p = 0; p < prompts.size(); ++p) {
      Prompt& prompt = prompts[p];
      RequestOutput& out = *prompt.final;
      std::vector<CompletionOutput> outputs = out.outputs;
      std::stable_sort(outputs.begin(), outputs.end(),
                       [](const CompletionOutput& a, const CompletionOutput& b) { return a.index < b.index; });
      for (const CompletionOutput& c : outputs) {
        const size_t i = static_cast<size_t>(c.index) + p * static_cast<size_t>(n);
        std::string text;
        std::vector<int32_t> ids;
        std::vector<const TokenLogprobs*> lps;
        choice_view(p, i, c, &text, &ids, &lps);
        ojson choice;
        choice["index"] = choices.size();
        choice["text"] = text;
        choice["logprobs"] = logprobs ? completion_logprobs(ctx_, ids, lps, *logprobs, 0, as_token_id) : ojson(nullptr);
        choice["finish_reason"] = finish_reason_json(c.finish_reason);
        choice["stop_reason"] = stop_reason_json(c.stop_reason);
        choice["token_ids"] = return_token_ids ? ojson(c.token_ids) : ojson(nullptr);
        choice["prompt_logprobs"] =
            out.prompt_logprobs.empty() ? ojson(nullptr) : prompt_logprobs_json(ctx_, prompt.prompt_logprobs);
        choice["prompt_token_ids"] = return_token_ids ? ojson(prompt.ids) : ojson(nullptr);
        choices.push_back(std::move(choice));
        completion_tokens += static_cast<int64_t>(c.token_ids.size());
      }
      prompt_tokens += static_cast<int64_t>(prompt.ids.size());
      cached = out.num_cached_tokens;
    }
    ojson body = chunk_head();
    body["choices"] = std::move(choices);
    body["service_tier"] = nullptr;
    body["system_fingerprint"] = nullptr;
    body["usage"] = usage_json(ctx_, prompt_tokens, completion_tokens, cached);
    body["kv_transfer_params"] = nullptr;
    ex_->respond(json_response(body));
  }

  size_t finished_ = 0;
  std::optional<int64_t> cached_tokens_;
  std::vector<size_t> prev_text_len_;
  std::vector<int64_t> prev_tokens_;
  std::vector<bool> echoed_, finish_sent_;
  std::vector<bool> prompt_ids_sent_;
};

}  // namespace

void handle_completions(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex) {
  try {
    if (ctx.shutting_down.load()) throw ApiError("The server is shutting down.", std::nullopt, 503, "ServiceUnavailableError");
    check_capacity(ctx);
    const ojson body = parse_body(req);
    request_options(ctx, body);  // cache_salt and priority first, as vLLM's validators run
    const bool stream = get_bool(body, "stream", false);
    check_logprobs_fields(body, stream);
    const StreamOptions stream_options = parse_stream_options(ctx, body, stream);
    auto prompt_it = body.find("prompt");
    if (prompt_it == body.end() || prompt_it->is_null() || (prompt_it->is_string() && prompt_it->get<std::string>().empty()))
      if (auto pe = body.find("prompt_embeds"); pe == body.end() || pe->is_null())
        throw ApiError("Either prompt or prompt_embeds must be provided and non-empty.", "prompt");
    check_model(ctx, body);
    warn_unknown_fields(body, {"model", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "best_of", "presence_penalty", "seed",
         "stop", "stream", "stream_options", "temperature", "top_p", "user", "use_beam_search", "top_k", "min_p",
         "repetition_penalty", "length_penalty", "stop_token_ids", "include_stop_str_in_output", "ignore_eos",
         "min_tokens", "skip_special_tokens", "spaces_between_special_tokens", "truncate_prompt_tokens",
         "truncation_side", "allowed_token_ids", "prompt_logprobs", "bad_words", "add_special_tokens",
         "response_format", "structured_outputs", "priority", "request_id", "cache_salt", "return_tokens_as_token_ids",
         "return_token_ids", "logprob_token_ids", "vllm_xargs", "kv_transfer_params", "stream_interval",
         "logits_processors", "thinking_token_budget", "repetition_detection", "guided_json", "guided_regex",
         "guided_choice", "guided_grammar", "guided_whitespace_pattern", "guided_decoding_backend", "watermarking", "session_id", "prompt", "echo", "suffix", "prompt_embeds"});
    if (auto suffix = body.find("suffix"); suffix != body.end() && !suffix->is_null())
      throw ApiError("suffix is not currently supported", "suffix");
    if (get_bool(body, "use_beam_search", false))
      throw ApiError("beam search (use_beam_search) is not supported by vllm-cpp", "use_beam_search");

    auto job = std::make_shared<CompletionJob>(ctx, ex);
    job->id = "cmpl-" + base_request_id(req, body);
    job->created = unix_time();
    job->model = ctx.model_name();
    job->stream = stream;
    job->stream_options = stream_options;
    job->echo = get_bool(body, "echo", false);
    job->return_token_ids = get_bool(body, "return_token_ids", false);
    job->as_token_id = opt_bool(body, "return_tokens_as_token_ids").value_or(ctx.config.return_tokens_as_token_ids);

    // max_tokens: null means the default 16 (vLLM's normalize_null_max_tokens).
    const int64_t max_tokens = opt_int(body, "max_tokens").value_or(16);
    job->echo_only = job->echo && max_tokens == 0;
    nlohmann::json fields = sampling_fields(body);
    if (auto it = body.find("logprobs"); it != body.end() && !it->is_null()) fields["logprobs"] = nlohmann::json(*it);
    if (job->echo && !fields.contains("prompt_logprobs") && fields.contains("logprobs"))
      fields["prompt_logprobs"] = fields["logprobs"];

    const bool add_special = get_bool(body, "add_special_tokens", true);
    const auto truncate = opt_int(body, "truncate_prompt_tokens");
    std::vector<PromptIn> inputs = parse_prompts(ctx, body, add_special, max_tokens, truncate.has_value());
    AddRequestOptions options = request_options(ctx, body);
    apply_structured_outputs(ctx, body, fields, options);
    std::vector<SamplingParams> params;
    for (PromptIn& in : inputs) {
      truncate_prompt(ctx, truncate, &in.ids);
      if (in.ids.empty()) throw ApiError("The decoder prompt cannot be empty", "prompt");
      check_token_ids(ctx, in.ids);
      const int64_t engine_max = resolve_max_tokens(ctx, static_cast<int64_t>(in.ids.size()), max_tokens, "max_tokens");
      params.push_back(make_sampling_params(ctx, fields, job->echo_only ? 1 : engine_max, stream));
      CompletionJob::Prompt prompt;
      prompt.text = in.text && !truncate ? *in.text
                                         : (ctx.tokenizer() ? ctx.tokenizer()->decode(in.ids, false) : std::string());
      prompt.ids = std::move(in.ids);
      job->prompts.push_back(std::move(prompt));
    }
    job->n = params.front().n;
    job->logprobs = params.front().logprobs;
    if (ctx.config.log_requests)
      for (size_t i = 0; i < job->prompts.size(); ++i)
        VLLM_LOG_INFO("Received request {}-{}: prompt: {}, params: {}, prompt_token_ids: {}", job->id, i,
                      nlohmann::json(log_excerpt(ctx, job->prompts[i].text)).dump(-1, ' ', false,
                                                                                  nlohmann::json::error_handler_t::replace),
                      params[i].to_json().dump(), nlohmann::json(job->prompts[i].ids).dump());
    // The engine requests start on the connection's strand, where their outputs arrive.
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
