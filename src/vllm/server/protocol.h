// The OpenAI protocol pieces shared by the endpoints: reading request fields with vLLM's
// validation, turning a request into SamplingParams, the context-length rule, ids, usage and
// log-probability JSON in the completions and chat formats.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "vllm/engine/outputs.h"
#include "vllm/sampling/sampling_params.h"
#include "vllm/server/api_server.h"
#include "vllm/server/errors.h"
#include "vllm/server/http_server.h"

namespace vllm::server {

using ojson = nlohmann::ordered_json;

// The body as a JSON object (400 "JSON decode error ..." otherwise). Key order is kept.
ojson parse_body(const HttpRequest& req);

// Typed optional fields: absent or null -> nullopt; a wrong type -> 400 naming the field.
std::optional<bool> opt_bool(const ojson& body, const char* field);
std::optional<int64_t> opt_int(const ojson& body, const char* field);
std::optional<std::string> opt_string(const ojson& body, const char* field);
bool get_bool(const ojson& body, const char* field, bool fallback);

// vLLM's OpenAIBaseModel: fields a request type does not know are ignored, with a warning.
void warn_unknown_fields(const ojson& body, std::initializer_list<const char*> known);

// --max-waiting-requests: a 503 (with Retry-After) when that many requests already wait for
// the engine. Counted in ctx.num_rejected.
void check_capacity(ServingContext& ctx);
// --max-prompts-per-request: a 400 when a request carries more prompts, or more sequences
// (prompts x n, or best_of), than one request may; checked before any prompt is tokenized.
void check_request_size(const ServingContext& ctx, size_t num_prompts, const ojson& body);

// 404 unless the request names a served model (or none, which means the first).
void check_model(const ServingContext& ctx, const ojson& body);

// uuid4().hex: 32 random hex digits.
std::string random_uuid();
// vLLM's request id: the X-Request-Id header, else the body's request_id, else a random one.
std::string base_request_id(const HttpRequest& req, const ojson& body);
int64_t unix_time();

struct StreamOptions {
  bool include_usage = false;
  bool continuous_usage_stats = false;
};
// stream_options (400 when given without stream); --enable-force-include-usage forces both.
StreamOptions parse_stream_options(const ServingContext& ctx, const ojson& body, bool stream);

// The request's sampling fields (vLLM's names) for SamplingParams::from_json; `logprobs_key`
// names the field that holds the per-token top-logprob count ("logprobs" for completions;
// chat maps logprobs/top_logprobs itself). Fields that are not sampling fields stay out.
nlohmann::json sampling_fields(const ojson& body);

// vLLM's TokenizeParams and get_max_tokens: rejects a request whose prompt plus requested
// output does not fit the model ("You passed N input tokens and requested M output tokens.
// However, the model's context length is only L tokens, ...") and returns the max_tokens the
// engine gets: min(max_model_len - prompt, requested or generation-config default).
int64_t resolve_max_tokens(const ServingContext& ctx, int64_t prompt_len, std::optional<int64_t> requested,
                           const char* param);

// vLLM's check before tokenizing: a text longer than the longest possible prompt (the
// context left for input times the longest token) is refused without tokenizing it.
void check_text_length(const ServingContext& ctx, const std::string& text, int64_t max_output_tokens);

// Builds, validates (against max_logprobs and the vocabulary) and returns the parameters.
// Throws ApiError(400) with SamplingParams' messages.
SamplingParams make_sampling_params(const ServingContext& ctx, const nlohmann::json& fields, int64_t max_tokens,
                                    bool stream);

// Token ids must be in [0, max_token_id]: "Token id X is out of vocabulary".
void check_token_ids(const ServingContext& ctx, const std::vector<int32_t>& ids);
// truncate_prompt_tokens: keep the last k tokens (-1: the model length).
void truncate_prompt(const ServingContext& ctx, std::optional<int64_t> k, std::vector<int32_t>* ids);
// vLLM's priority and cache_salt checks; returns the engine options.
AddRequestOptions request_options(const ServingContext& ctx, const ojson& body);

ojson usage_json(const ServingContext& ctx, int64_t prompt_tokens, int64_t completion_tokens,
                 std::optional<int64_t> cached_tokens);
ojson stop_reason_json(const StopReason& r);
ojson finish_reason_json(const std::optional<FinishReason>& r);

// A token as a log-probs entry names it: its text decoded alone (special tokens kept), or
// "token_id:N" with --return-tokens-as-token-ids.
std::string token_text(const ServingContext& ctx, int32_t id, bool as_token_id);
// Python's len() of a str: code points.
size_t py_len(const std::string& utf8);
// The candidates vLLM's logprob dict holds for a position, in its order: the chosen token,
// then the top ones by rank (the chosen token not repeated).
std::vector<std::pair<int32_t, float>> logprob_candidates(const TokenLogprobs& lp);

// Completions-format log-probs {text_offset, token_logprobs, tokens, top_logprobs} of a token
// run; entries without log-probs (the first prompt token) have nulls.
ojson completion_logprobs(const ServingContext& ctx, const std::vector<int32_t>& ids,
                          const std::vector<const TokenLogprobs*>& lps, int num_top, size_t initial_offset,
                          bool as_token_id);
// Chat-format log-probs content: [{token, logprob, bytes, top_logprobs: [...]}].
ojson chat_logprobs_content(const ServingContext& ctx, const std::vector<int32_t>& ids,
                            const std::vector<TokenLogprobs>& lps, int num_top, bool as_token_id);
// vLLM's prompt_logprobs field: [null, {"id": {"logprob", "rank", "decoded_token"}}, ...].
ojson prompt_logprobs_json(const ServingContext& ctx, const std::vector<std::optional<TokenLogprobs>>& lps);

// The prompt (or params) as request logging shows it, cut at --max-log-len.
std::string log_excerpt(const ServingContext& ctx, const std::string& s);

}  // namespace vllm::server
