// `vllm serve`: vLLM's OpenAI-compatible API server around an AsyncEngine. ServerConfig holds
// the server's own flags; ServingContext is what every endpoint handler shares.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vllm/chat/chat_template.h"
#include "vllm/chat/content_format.h"
#include "vllm/engine/data_parallel_engine.h"
#include "vllm/engine/engine_config.h"
#include "vllm/server/http_server.h"

namespace vllm::server {

class ResponseStore;

struct ServerConfig {
  std::string host = "0.0.0.0";
  int port = 8000;
  int io_threads = 0;  // 0: a few, by core count
  std::vector<std::string> api_keys;            // empty: no authentication
  std::vector<std::string> served_model_names;  // the first is the name responses carry
  std::string model_root;                       // the model as given ("root" in /v1/models)
  std::optional<std::string> chat_template;     // --chat-template, already read from its file
  std::string response_role = "assistant";
  std::vector<std::string> allowed_origins{"*"};
  std::vector<std::string> allowed_methods{"*"};
  std::vector<std::string> allowed_headers{"*"};
  bool allow_credentials = false;
  bool log_requests = false;     // --enable-log-requests (vLLM's default is off)
  bool access_log = true;        // uvicorn's access log; --disable-uvicorn-access-log
  int max_log_len = 0;           // 0: log prompts whole
  bool enable_prompt_tokens_details = false;
  bool enable_force_include_usage = false;
  bool return_tokens_as_token_ids = false;
  size_t max_body_bytes = 32u << 20;
  // Limits on what one client can make the server hold (docs/architecture.md, "Limits").
  int64_t max_prompts_per_request = 1024;  // prompts x n (or best_of) of one request; 0: none
  int64_t max_waiting_requests = 0;        // past it, 503 + Retry-After; 0: no limit
  size_t max_stream_buffer_bytes = 1u << 20;  // unsent SSE bytes before a request pauses; 0: none
  double stalled_client_timeout_s = 60;     // no response bytes taken for this long: disconnect
  std::optional<TlsOptions> tls;            // --ssl-keyfile/--ssl-certfile/...: HTTPS
  // --structured-outputs-config: server-wide defaults of the JSON options
  // (disable_any_whitespace, disable_additional_properties) that a request may override.
  nlohmann::json structured_outputs_defaults = nlohmann::json::object();
  // Tool calling and reasoning (docs/tool_calling.md): --enable-auto-tool-choice,
  // --tool-call-parser NAME, --reasoning-parser NAME (names as vLLM's; empty: none).
  bool enable_auto_tool_choice = false;
  // --trust-request-chat-template: a request may bring its own chat template (chat_template, or
  // chat_template_kwargs.chat_template). Off by default, as in vLLM: a template is a program the
  // server runs, and one from any client is a request the operator opts into.
  bool trust_request_chat_template = false;
  // --chat-template-content-format auto|string|openai (chat/content_format.h): how a message's
  // content reaches the template; auto asks each template.
  ChatContentFormat chat_template_content_format = ChatContentFormat::kAuto;
  std::string tool_call_parser;
  std::string reasoning_parser;
  // --structured-outputs-config enable_in_reasoning: a constraint covers the reasoning too
  // (otherwise it applies to the answer after it).
  bool structured_outputs_in_reasoning = false;
  // The Responses API's store (response_store.h): finished responses kept for GET
  // /v1/responses/{id} and previous_response_id, least recently used evicted past either bound.
  size_t max_stored_responses = 1000;              // 0: nothing is stored
  size_t max_stored_response_bytes = 256u << 20;   // their JSON size; 0: no byte bound
  double shutdown_grace_s = 3.0;
  double log_stats_interval_s = 10.0;  // the engine's throughput log line; 0: off
  std::string version = "0.0.0";  // GET /version  // after aborting, how long in-flight responses may take to end
};

class ServingContext {
 public:
  ServingContext(DataParallelEngine& engine, ServerConfig config, const EngineConfig& engine_config);

  DataParallelEngine& engine;  // one replica, or --data-parallel-size of them
  ServerConfig config;
  std::string scheduling_policy;
  // --chat-template, else the tokenizer's default template (null when there is none).
  std::shared_ptr<const ChatTemplate> default_chat_template;
  // --chat-template-content-format resolved for default_chat_template once, at start-up.
  ChatContentFormat default_content_format = ChatContentFormat::kString;
  // vLLM's default_sampling_params: generation_config.json's temperature, top_p, top_k, min_p,
  // repetition_penalty (--generation-config auto), used for fields a request leaves unset.
  nlohmann::json default_sampling = nlohmann::json::object();
  std::optional<int64_t> default_max_tokens;  // generation_config.json's max_new_tokens
  int64_t max_token_id = 0;                   // largest token id any prompt may hold
  int64_t max_chars_per_token = 1;            // longest token text, in characters
  std::atomic<bool> shutting_down{false};
  std::atomic<int64_t> num_rejected{0};  // 503s for --max-waiting-requests
  std::shared_ptr<ResponseStore> response_store;  // the Responses API's stored responses

  const std::string& model_name() const { return config.served_model_names.front(); }
  bool serves(const std::string& name) const;
  const Tokenizer* tokenizer() const { return engine.tokenizer().get(); }
};

// Runs the server until SIGINT/SIGTERM: listens, logs vLLM/uvicorn-style start-up lines
// ("Application startup complete." once listening), serves, then stops accepting, aborts what
// is in flight and returns 0.
int run_api_server(const EngineConfig& engine_config, ServerConfig config);

}  // namespace vllm::server
