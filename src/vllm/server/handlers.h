// The endpoints of the OpenAI-compatible server. Each handler answers through the Exchange (now
// or later) and never throws. The cheap ones run on their connection's strand; completions,
// chat completions, tokenize and detokenize run on a worker pool (api_server.cpp) and hand
// their engine work back to the strand with Exchange::post.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vllm/server/api_server.h"
#include "vllm/server/http_server.h"
#include "vllm/server/protocol.h"

namespace vllm::server {

void handle_completions(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
void handle_chat_completions(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
// POST /v1/responses (responses.cpp), and what is under /v1/responses/: GET and DELETE of a
// stored response, POST .../cancel.
void handle_responses(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
void handle_stored_response(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
void handle_tokenize(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
void handle_detokenize(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
void handle_metrics(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);
void handle_models(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex);

// A chat request's messages rendered with the chat template and tokenized, as vLLM's chat
// completions and /tokenize do it.
struct RenderedChat {
  std::string text;
  std::vector<int32_t> token_ids;
  ojson conversation;  // the messages as the template saw them
};
RenderedChat render_chat(const ServingContext& ctx, const ojson& body);

// The request-reading steps of the completions and chat handlers, public for the fuzz target
// (fuzz/openai_request.cpp), which runs them on arbitrary bodies without an engine run.
struct PromptIn {
  std::vector<int32_t> ids;
  std::optional<std::string> text;  // as given, for text prompts
};
// A completions request's prompt (a string, strings, token ids or lists of token ids), tokenized.
std::vector<PromptIn> parse_prompts(const ServingContext& ctx, const ojson& body, bool add_special_tokens,
                                    int64_t max_tokens, bool truncating);
// vLLM's check_logprobs validators of the completions and chat requests.
void check_logprobs_fields(const ojson& body, bool stream);
void check_chat_logprobs(const ojson& body, bool stream);

// The body of a JSON response.
HttpResponse json_response(const ojson& body, int status = 200);

}  // namespace vllm::server
