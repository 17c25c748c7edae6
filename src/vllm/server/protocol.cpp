#include "vllm/server/protocol.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "vllm/core/logging.h"
#include "vllm/server/json_body.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::server {

namespace {

// A value quoted in an error message: its first characters only, never a walk of all of it.
std::string describe(const ojson& v) { return json_excerpt(v, 80); }

const ojson* field_of(const ojson& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double clamp_logprob(float lp) { return std::max(static_cast<double>(lp), -9999.0); }

}  // namespace

ojson parse_body(const HttpRequest& req) {
  auto ct = req.header("content-type");
  std::string media = ct ? ct->substr(0, ct->find(';')) : "";
  media.erase(std::remove(media.begin(), media.end(), ' '), media.end());
  std::transform(media.begin(), media.end(), media.begin(), [](unsigned char c) { return std::tolower(c); });
  if (media != "application/json")
    throw ApiError("Unsupported Media Type: Only 'application/json' is allowed");
  ojson body = parse_request_json(req.body);
  if (!body.is_object()) throw ApiError("The request body must be a JSON object, got " + describe(body));
  return body;
}

std::optional<bool> opt_bool(const ojson& body, const char* field) {
  const ojson* v = field_of(body, field);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw ApiError(std::string(field) + " must be a boolean, got " + describe(*v), field);
  return v->get<bool>();
}

bool get_bool(const ojson& body, const char* field, bool fallback) { return opt_bool(body, field).value_or(fallback); }

std::optional<int64_t> opt_int(const ojson& body, const char* field) {
  const ojson* v = field_of(body, field);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw ApiError(std::string(field) + " is out of range, got " + describe(*v), field);
    return v->get<int64_t>();
  }
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  }
  throw ApiError(std::string(field) + " must be an integer, got " + describe(*v), field);
}

std::optional<std::string> opt_string(const ojson& body, const char* field) {
  const ojson* v = field_of(body, field);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw ApiError(std::string(field) + " must be a string, got " + describe(*v), field);
  return v->get<std::string>();
}

void warn_unknown_fields(const ojson& body, std::initializer_list<const char*> known) {
  // A body may carry a hundred thousand unknown keys: name the first few, count the rest, so
  // one request cannot write megabytes into the log.
  constexpr size_t kMaxNamed = 20;
  std::string unknown;
  size_t count = 0;
  for (auto it = body.begin(); it != body.end(); ++it) {
    bool found = false;
    for (const char* k : known) found = found || it.key() == k;
    if (found) continue;
    if (++count > kMaxNamed) continue;
    std::string name = it.key();
    if (name.size() > 60) {
      size_t cut = 57;
      while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // whole characters
      name = name.substr(0, cut) + "...";
    }
    unknown += (unknown.empty() ? "'" : ", '") + name + "'";
  }
  if (count > kMaxNamed) unknown += ", ... (" + std::to_string(count - kMaxNamed) + " more)";
  if (!unknown.empty()) VLLM_LOG_WARN("The following fields were present in the request but ignored: {{{}}}", unknown);
}

void check_capacity(ServingContext& ctx) {
  const int64_t limit = ctx.config.max_waiting_requests;
  if (limit <= 0) return;
  const int64_t waiting = ctx.engine.num_waiting();
  if (waiting < limit) return;
  ctx.num_rejected.fetch_add(1, std::memory_order_relaxed);
  throw ApiError("The server is overloaded: " + std::to_string(waiting) +
                     " requests are waiting (--max-waiting-requests " + std::to_string(limit) +
                     "). Please retry later.",
                 std::nullopt, 503, "ServiceUnavailableError")
      .with_retry_after(1);
}

void check_request_size(const ServingContext& ctx, size_t num_prompts, const ojson& body) {
  const int64_t limit = ctx.config.max_prompts_per_request;
  if (limit <= 0) return;
  const auto prompts = static_cast<int64_t>(num_prompts);
  if (prompts > limit)
    throw ApiError("This request has " + std::to_string(prompts) + " prompts, more than the " +
                       std::to_string(limit) + " one request may carry (--max-prompts-per-request).",
                   "prompt");
  // n and best_of as SamplingParams will read them (it reports their type errors itself).
  int64_t per_prompt = 1;
  for (const char* f : {"n", "best_of"}) {
    auto it = body.find(f);
    if (it != body.end() && it->is_number()) {
      const double v = it->get<double>();
      if (v > static_cast<double>(per_prompt)) per_prompt = v >= 9e18 ? INT64_MAX : static_cast<int64_t>(v);
    }
  }
  if (per_prompt > limit / std::max<int64_t>(prompts, 1))
    throw ApiError("This request asks for " + std::to_string(prompts) + " x " + std::to_string(per_prompt) +
                       " sequences (prompts x n or best_of), more than the " + std::to_string(limit) +
                       " one request may generate (--max-prompts-per-request).",
                   "n");
}

void check_model(const ServingContext& ctx, const ojson& body) {
  auto model = opt_string(body, "model");
  if (model && !ctx.serves(*model)) throw not_found("The model `" + *model + "` does not exist.", "model");
}

std::string random_uuid() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  static const char* digits = "0123456789abcdef";
  std::string s(32, '0');
  uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) {
    s[static_cast<size_t>(i)] = digits[(a >> (4 * i)) & 15];
    s[static_cast<size_t>(16 + i)] = digits[(b >> (4 * i)) & 15];
  }
  s[12] = '4';                                             // version 4
  s[16] = digits[8 + ((b >> 2) & 3)];                      // variant 10xx
  return s;
}

std::string base_request_id(const HttpRequest& req, const ojson& body) {
  if (auto h = req.header("x-request-id"); h && !h->empty()) return *h;
  if (auto id = opt_string(body, "request_id"); id && !id->empty()) return *id;
  return random_uuid();
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

StreamOptions parse_stream_options(const ServingContext& ctx, const ojson& body, bool stream) {
  StreamOptions so;
  const ojson* v = field_of(body, "stream_options");
  if (v) {
    if (!v->is_object()) throw ApiError("stream_options must be an object, got " + describe(*v), "stream_options");
    if (!v->empty() && !stream)
      throw ApiError("Stream options can only be defined when `stream=True`.", "stream_options");
    auto include = v->find("include_usage");
    if (include == v->end()) so.include_usage = true;  // StreamOptions.include_usage defaults to True
    else so.include_usage = opt_bool(*v, "include_usage").value_or(false);
    so.continuous_usage_stats = so.include_usage && opt_bool(*v, "continuous_usage_stats").value_or(false);
  }
  if (ctx.config.enable_force_include_usage) so.include_usage = so.continuous_usage_stats = true;
  return so;
}

nlohmann::json sampling_fields(const ojson& body) {
  static const char* kKeys[] = {"n",
                                "best_of",
                                "presence_penalty",
                                "frequency_penalty",
                                "repetition_penalty",
                                "temperature",
                                "top_p",
                                "top_k",
                                "min_p",
                                "seed",
                                "stop",
                                "stop_token_ids",
                                "bad_words",
                                "include_stop_str_in_output",
                                "ignore_eos",
                                "min_tokens",
                                "skip_special_tokens",
                                "spaces_between_special_tokens",
                                "logit_bias",
                                "allowed_token_ids",
                                "prompt_logprobs",
                                "logprob_token_ids",
                                "stream_interval",
                                "logits_processors",
                                "thinking_token_budget",
                                "repetition_detection"};
  nlohmann::json out = nlohmann::json::object();
  for (const char* k : kKeys) {
    auto it = body.find(k);
    if (it != body.end() && !it->is_null()) out[k] = nlohmann::json(*it);
  }
  if (auto it = body.find("vllm_xargs"); it != body.end() && !it->is_null()) out["extra_args"] = nlohmann::json(*it);
  return out;
}

int64_t resolve_max_tokens(const ServingContext& ctx, int64_t prompt_len, std::optional<int64_t> requested,
                           const char* param) {
  const int64_t limit = ctx.engine.max_model_len();
  const int64_t out = requested.value_or(0);
  if (requested && out > limit)
    throw ApiError(std::string(param) + "=" + std::to_string(out) + " cannot be greater than max_model_len=" +
                       std::to_string(limit) + ". Please request fewer output tokens.",
                   std::string(param));
  if (prompt_len > limit - out)
    throw ApiError("You passed " + std::to_string(prompt_len) + " input tokens and requested " + std::to_string(out) +
                       " output tokens. However, the model's context length is only " + std::to_string(limit) +
                       " tokens, resulting in a maximum input length of " + std::to_string(limit - out) +
                       " tokens. Please reduce the length of the input prompt.",
                   "input_tokens");
  int64_t result = limit - prompt_len;
  if (requested) result = std::min(result, *requested);
  else if (ctx.default_max_tokens) result = std::min(result, *ctx.default_max_tokens);
  return result;
}

void check_text_length(const ServingContext& ctx, const std::string& text, int64_t max_output_tokens) {
  const int64_t limit = ctx.engine.max_model_len();
  if (max_output_tokens > limit) return;  // resolve_max_tokens reports that
  const int64_t max_input = limit - std::max<int64_t>(max_output_tokens, 0);
  const int64_t max_chars = max_input * ctx.max_chars_per_token;
  if (text.size() <= static_cast<size_t>(std::max<int64_t>(max_chars, 0))) return;  // bytes >= characters
  const auto chars = static_cast<int64_t>(py_len(text));
  if (chars > max_chars)
    throw ApiError("You passed " + std::to_string(chars) + " input characters and requested " +
                       std::to_string(max_output_tokens) + " output tokens. However, the model's context length is only " +
                       std::to_string(limit) + " tokens, resulting in a maximum input length of " +
                       std::to_string(max_input) + " tokens (at most " + std::to_string(max_chars) +
                       " characters). Please reduce the length of the input prompt.",
                   "input_text");
}

SamplingParams make_sampling_params(const ServingContext& ctx, const nlohmann::json& fields, int64_t max_tokens,
                                    bool stream) {
  nlohmann::json f = fields;
  f["max_tokens"] = std::clamp<int64_t>(max_tokens, INT32_MIN, INT32_MAX);
  try {
    SamplingParams p = SamplingParams::from_json(f, ctx.default_sampling);
    p.output_kind = stream ? RequestOutputKind::kDelta : RequestOutputKind::kFinalOnly;
    p.validate(ctx.engine.max_logprobs(), ctx.engine.model_config().vocab_size);
    return p;
  } catch (const Error& e) {
    throw api_error_from(e);
  }
}

void check_token_ids(const ServingContext& ctx, const std::vector<int32_t>& ids) {
  if (ids.empty()) return;
  int32_t hi = *std::max_element(ids.begin(), ids.end());
  if (hi > ctx.max_token_id) throw ApiError("Token id " + std::to_string(hi) + " is out of vocabulary");
}

void truncate_prompt(const ServingContext& ctx, std::optional<int64_t> k, std::vector<int32_t>* ids) {
  if (!k) return;
  if (*k < -1) throw ApiError("truncate_prompt_tokens must be at least -1, got " + std::to_string(*k),
                              "truncate_prompt_tokens");
  const int64_t keep = *k == -1 ? ctx.engine.max_model_len() : *k;
  if (keep < static_cast<int64_t>(ids->size())) ids->erase(ids->begin(), ids->end() - keep);
}

AddRequestOptions request_options(const ServingContext& ctx, const ojson& body) {
  AddRequestOptions o;
  if (auto p = opt_int(body, "priority")) {
    if (*p != 0 && ctx.scheduling_policy != "priority")
      throw ApiError("Got priority " + std::to_string(*p) + " but Priority scheduling is not enabled.", "priority");
    o.priority = static_cast<int>(std::clamp<int64_t>(*p, INT32_MIN, INT32_MAX));
  }
  if (auto it = body.find("cache_salt"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty())
      throw ApiError("Parameter 'cache_salt' must be a non-empty string if provided.", "cache_salt");
    o.cache_salt = it->get<std::string>();
  }
  return o;
}

ojson usage_json(const ServingContext& ctx, int64_t prompt_tokens, int64_t completion_tokens,
                 std::optional<int64_t> cached_tokens) {
  ojson u;
  u["prompt_tokens"] = prompt_tokens;
  u["total_tokens"] = prompt_tokens + completion_tokens;
  u["completion_tokens"] = completion_tokens;
  if (ctx.config.enable_prompt_tokens_details && cached_tokens) u["prompt_tokens_details"] = {{"cached_tokens", *cached_tokens}};
  else u["prompt_tokens_details"] = nullptr;
  return u;
}

ojson stop_reason_json(const StopReason& r) {
  if (std::holds_alternative<int32_t>(r)) return std::get<int32_t>(r);
  if (std::holds_alternative<std::string>(r)) return std::get<std::string>(r);
  return nullptr;
}

ojson finish_reason_json(const std::optional<FinishReason>& r) {
  if (!r) return nullptr;
  return std::string(finish_reason_name(*r));
}

std::string token_text(const ServingContext& ctx, int32_t id, bool as_token_id) {
  if (as_token_id || !ctx.tokenizer()) return "token_id:" + std::to_string(id);
  return ctx.tokenizer()->decode(std::vector<int32_t>{id}, /*skip_special_tokens=*/false);
}

size_t py_len(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<std::pair<int32_t, float>> logprob_candidates(const TokenLogprobs& lp) {
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(lp.top.size() + 1);
  out.emplace_back(lp.token, lp.logprob);
  for (const auto& t : lp.top)
    if (t.token_id != lp.token) out.emplace_back(t.token_id, t.logprob);
  return out;
}

ojson completion_logprobs(const ServingContext& ctx, const std::vector<int32_t>& ids,
                          const std::vector<const TokenLogprobs*>& lps, int num_top, size_t initial_offset,
                          bool as_token_id) {
  ojson text_offset = ojson::array(), token_logprobs = ojson::array(), tokens = ojson::array(),
        top_logprobs = ojson::array();
  size_t last_len = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string token = token_text(ctx, ids[i], as_token_id);
    const TokenLogprobs* lp = i < lps.size() ? lps[i] : nullptr;
    tokens.push_back(token);
    if (!lp) {
      token_logprobs.push_back(nullptr);
      top_logprobs.push_back(nullptr);
    } else {
      token_logprobs.push_back(clamp_logprob(lp->logprob));
      ojson top = ojson::object();
      auto cands = logprob_candidates(*lp);
      // vLLM keeps entries 0..logprobs of its dict: the chosen token and the top ones.
      size_t keep = num_top < 0 ? cands.size() : std::min(cands.size(), static_cast<size_t>(num_top) + 1);
      for (size_t k = 0; k < keep; ++k) top[token_text(ctx, cands[k].first, as_token_id)] = clamp_logprob(cands[k].second);
      top_logprobs.push_back(std::move(top));
    }
    text_offset.push_back(i == 0 ? initial_offset : text_offset.back().get<size_t>() + last_len);
    last_len = py_len(token);
  }
  ojson out;
  out["text_offset"] = std::move(text_offset);
  out["token_logprobs"] = std::move(token_logprobs);
  out["tokens"] = std::move(tokens);
  out["top_logprobs"] = std::move(top_logprobs);
  return out;
}

namespace {
ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}
}  // namespace

ojson chat_logprobs_content(const ServingContext& ctx, const std::vector<int32_t>& ids,
                            const std::vector<TokenLogprobs>& lps, int num_top, bool as_token_id) {
  ojson content = ojson::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string token = token_text(ctx, ids[i], as_token_id);
    ojson entry;
    entry["token"] = token;
    ojson top = ojson::array();
    if (i < lps.size() && lps[i].token == ids[i]) {
      entry["logprob"] = clamp_logprob(lps[i].logprob);
      auto cands = logprob_candidates(lps[i]);
      size_t keep = num_top < 0 ? cands.size() : std::min(cands.size(), static_cast<size_t>(std::max(num_top, 0)));
      for (size_t k = 0; k < keep; ++k) {
        std::string t = token_text(ctx, cands[k].first, as_token_id);
        ojson c;
        c["token"] = t;
        c["logprob"] = clamp_logprob(cands[k].second);
        c["bytes"] = bytes_of(t);
        top.push_back(std::move(c));
      }
    } else {
      entry["logprob"] = -9999.0;
    }
    entry["bytes"] = bytes_of(token);
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return content;
}

ojson prompt_logprobs_json(const ServingContext& ctx, const std::vector<std::optional<TokenLogprobs>>& lps) {
  ojson out = ojson::array();
  for (const auto& lp : lps) {
    if (!lp) {
      out.push_back(nullptr);
      continue;
    }
    ojson d = ojson::object();
    auto add = [&](int32_t id, float logprob, int64_t rank) {
      std::string key = std::to_string(id);
      if (d.contains(key)) return;
      d[key] = {{"logprob", clamp_logprob(logprob)}, {"rank", rank}, {"decoded_token", token_text(ctx, id, false)}};
    };
    add(lp->token, lp->logprob, lp->rank);
    for (size_t k = 0; k < lp->top.size(); ++k) add(lp->top[k].token_id, lp->top[k].logprob, static_cast<int64_t>(k) + 1);
    out.push_back(std::move(d));
  }
  return out;
}

std::string log_excerpt(const ServingContext& ctx, const std::string& s) {
  if (ctx.config.max_log_len > 0 && s.size() > static_cast<size_t>(ctx.config.max_log_len))
    return s.substr(0, static_cast<size_t>(ctx.config.max_log_len));
  return s;
}

}  // namespace vllm::server
