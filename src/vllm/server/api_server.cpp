#include "vllm/server/api_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "vllm/core/logging.h"
#include "vllm/core/startup_signals.h"
#include "vllm/server/handlers.h"
#include "vllm/server/protocol.h"
#include "vllm/server/response_store.h"
#include "vllm/server/router.h"
#include "vllm/server/sse.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::server {

ServingContext::ServingContext(DataParallelEngine& e, ServerConfig c, const EngineConfig& engine_config)
    : engine(e), config(std::move(c)), scheduling_policy(engine_config.scheduling_policy) {
  if (config.served_model_names.empty()) config.served_model_names.push_back(config.model_root);
  response_store = std::make_shared<ResponseStore>(config.max_stored_responses, config.max_stored_response_bytes);
  if (config.chat_template) {
    default_chat_template = std::make_shared<const ChatTemplate>(*config.chat_template);
  } else if (tokenizer()) {
    if (auto source = tokenizer()->chat_template()) {
      try {
        default_chat_template = std::make_shared<const ChatTemplate>(*source);
      } catch (const Error& err) {
        VLLM_LOG_WARN("the tokenizer's chat template does not parse ({}); chat requests need a chat_template", err.what());
      }
    }
  }
  if (default_chat_template) {
    default_content_format = resolve_chat_content_format(config.chat_template_content_format, *default_chat_template);
    if (config.chat_template_content_format == ChatContentFormat::kAuto)
      VLLM_LOG_INFO("Detected the chat template content format to be '{}'. You can set `--chat-template-content-format` "
                    "to override this.",
                    chat_content_format_name(default_content_format));
  }
  // vLLM's get_diff_sampling_param: the generation config's sampling fields, max_new_tokens as
  // max_tokens (applied only where a request leaves the field unset).
  const nlohmann::json& defaults = engine.generation_config().sampling_defaults;
  for (const char* key : {"repetition_penalty", "temperature", "top_k", "top_p", "min_p"})
    if (defaults.contains(key) && !defaults[key].is_null()) default_sampling[key] = defaults[key];
  if (defaults.contains("max_new_tokens") && defaults["max_new_tokens"].is_number_integer())
    default_max_tokens = defaults["max_new_tokens"].get<int64_t>();
  if (!default_sampling.empty() || default_max_tokens) {
    VLLM_LOG_WARN(
        "Default sampling parameters have been overridden by the model's Hugging Face generation config recommended "
        "from the model creator. If this is not intended, please relaunch vLLM instance with `--generation-config "
        "vllm`.");
    nlohmann::json shown = default_sampling;
    if (default_max_tokens) shown["max_tokens"] = *default_max_tokens;
    VLLM_LOG_INFO("Using default chat sampling params from model: {}", shown.dump());
    VLLM_LOG_INFO("Using default completion sampling params from model: {}", shown.dump());
  }
  max_token_id = engine.model_config().vocab_size - 1;
  if (tokenizer()) {
    max_token_id = std::max<int64_t>(max_token_id, tokenizer()->vocab_size() - 1);
    for (int32_t id = 0; id < tokenizer()->vocab_size(); ++id)
      max_chars_per_token = std::max<int64_t>(max_chars_per_token, static_cast<int64_t>(py_len(tokenizer()->id_to_token(id))));
  }
}

bool ServingContext::serves(const std::string& name) const {
  return std::find(config.served_model_names.begin(), config.served_model_names.end(), name) !=
         config.served_model_names.end();
}

HttpResponse json_response(const ojson& body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

void handle_models(ServingContext& ctx, HttpRequest&&, std::shared_ptr<Exchange> ex) {
  const int64_t now = unix_time();
  ojson data = ojson::array();
  for (const auto& name : ctx.config.served_model_names) {
    ojson perm;
    perm["id"] = "modelperm-" + random_uuid();
    perm["object"] = "model_permission";
    perm["created"] = now;
    perm["allow_create_engine"] = false;
    perm["allow_sampling"] = true;
    perm["allow_logprobs"] = true;
    perm["allow_search_indices"] = false;
    perm["allow_view"] = true;
    perm["allow_fine_tuning"] = false;
    perm["organization"] = "*";
    perm["group"] = nullptr;
    perm["is_blocking"] = false;
    ojson card;
    card["id"] = name;
    card["object"] = "model";
    card["created"] = now;
    card["owned_by"] = "vllm";
    card["root"] = ctx.config.model_root;
    card["parent"] = nullptr;
    card["max_model_len"] = ctx.engine.max_model_len();
    card["permission"] = ojson::array({std::move(perm)});
    data.push_back(std::move(card));
  }
  ojson body;
  body["object"] = "list";
  body["data"] = std::move(data);
  ex->respond(json_response(body));
}

namespace {

// Sockets for hundreds of concurrent clients: lift the soft descriptor limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int default_io_threads() {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::clamp(hw / 4, 2u, 4u));
}

}  // namespace

int run_api_server(const EngineConfig& engine_config, ServerConfig config) {
  // Every thread started from here on (engine, compute pool, I/O) inherits a mask that blocks
  // SIGINT/SIGTERM; the main thread takes them with sigwait and shuts down in order.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Until the sigwait below, a signal would only wait behind that mask: while the model loads,
  // SIGINT/SIGTERM end the process at once instead.
  StartupSignalWatcher startup_signals;
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  const int pid = static_cast<int>(getpid());

  DataParallelEngine engine(engine_config, config.log_stats_interval_s);
  ServingContext ctx(engine, std::move(config), engine_config);
  const ServerConfig& cfg = ctx.config;

  Router router(CorsOptions{cfg.allowed_origins, cfg.allowed_methods, cfg.allowed_headers, cfg.allow_credentials},
                cfg.api_keys);
  auto bind = [&ctx](void (*fn)(ServingContext&, HttpRequest&&, std::shared_ptr<Exchange>)) {
    return [&ctx, fn](HttpRequest&& req, std::shared_ptr<Exchange> ex) { fn(ctx, std::move(req), std::move(ex)); };
  };
  // Parsing, validating, rendering and tokenizing a request can take a while for a big body
  // (tens of MB of JSON or prompt text). It runs on these workers, not on the I/O threads, so
  // that one client's big request never holds up other connections' reads and streamed writes.
  const int io_threads = cfg.io_threads > 0 ? cfg.io_threads : default_io_threads();
  boost::asio::thread_pool workers(static_cast<size_t>(io_threads));
  auto offload = [&ctx, &workers](void (*fn)(ServingContext&, HttpRequest&&, std::shared_ptr<Exchange>)) {
    return [&ctx, &workers, fn](HttpRequest&& req, std::shared_ptr<Exchange> ex) {
      boost::asio::post(workers, [&ctx, fn, r = std::make_shared<HttpRequest>(std::move(req)), ex]() mutable {
        try {
          fn(ctx, std::move(*r), ex);
        } catch (const std::exception& e) {
          // Handlers answer their own errors; this is what escaped them (out of memory, say).
          // A worker thread must survive it.
          VLLM_LOG_ERROR("request handler failed: {}", e.what());
          ex->respond(error_response(ApiError("Internal Server Error", std::nullopt, 500, "InternalServerError")));
        }
      });
    };
  };
  router.add("GET", "/health", [&ctx](HttpRequest&&, std::shared_ptr<Exchange> ex) {
    HttpResponse r;
    r.content_type.clear();
    r.status = ctx.shutting_down.load() ? 503 : 200;
    ex->respond(std::move(r));
  });
  router.add("GET", "/ping", [&ctx](HttpRequest&&, std::shared_ptr<Exchange> ex) {
    HttpResponse r;
    r.content_type.clear();
    r.status = ctx.shutting_down.load() ? 503 : 200;
    ex->respond(std::move(r));
  });
  router.add("POST", "/tokenize", offload(handle_tokenize));
  router.add("POST", "/detokenize", offload(handle_detokenize));
  router.add("GET", "/v1/models", bind(handle_models));
  router.add("GET", "/version", [&cfg](HttpRequest&&, std::shared_ptr<Exchange> ex) {
    ex->respond(json_response(ojson{{"version", cfg.version}}));
  });
  router.add("POST", "/v1/chat/completions", offload(handle_chat_completions));
  router.add("POST", "/v1/completions", offload(handle_completions));
  router.add("POST", "/v1/responses", offload(handle_responses));
  // GET /v1/responses/{response_id}, DELETE /v1/responses/{response_id},
  // POST /v1/responses/{response_id}/cancel.
  for (const char* method : {"GET", "DELETE", "POST"})
    router.add_prefix(method, "/v1/responses/", "/v1/responses/{response_id}", offload(handle_stored_response));
  router.add("GET", "/metrics", bind(handle_metrics));

  HttpServerOptions http_options;
  http_options.host = cfg.host;
  http_options.port = static_cast<uint16_t>(cfg.port);
  http_options.io_threads = io_threads;
  http_options.max_body_bytes = cfg.max_body_bytes;
  http_options.access_log = cfg.access_log;
  http_options.write_timeout_s = cfg.stalled_client_timeout_s;
  http_options.tls = cfg.tls;
  http_options.error_body = [](int status, const std::string& message) {
    return error_response(ApiError(message, std::nullopt, status, error_type_for(status)));
  };
  HttpServer http(http_options, [&router](HttpRequest&& req, std::shared_ptr<Exchange> ex) {
    router.handle(std::move(req), std::move(ex));
  });
  http.start();
  // Loaded and listening: from here a signal waits for the sigwait below (an orderly shutdown),
  // also one sent the moment the start-up lines appear.
  startup_signals.done();
  const std::string shown_host = cfg.host.find(':') != std::string::npos ? "[" + cfg.host + "]" : cfg.host;
  const std::string url = (cfg.tls ? "https://" : "http://") + shown_host + ":" + std::to_string(http.port());
  VLLM_LOG_INFO("Starting vLLM API server 0 on {}", url);
  VLLM_LOG_INFO("Available routes are:");
  for (const auto& [path, methods] : router.routes()) VLLM_LOG_INFO("Route: {}, Methods: {}", path, methods);
  VLLM_LOG_INFO("Started server process [{}]", pid);
  VLLM_LOG_INFO("Waiting for application startup.");
  VLLM_LOG_INFO("Application startup complete.");
  VLLM_LOG_INFO("Uvicorn running on {} (Press CTRL+C to quit)", url);

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  VLLM_LOG_INFO("Shutting down");
  ctx.shutting_down = true;
  http.stop_accepting();
  // In-flight requests are aborted: their streams end (finish_reason "abort") and their
  // blocks are freed; responses get a moment to reach their clients.
  engine.shutdown(/*drain=*/false);
  VLLM_LOG_INFO("Waiting for application shutdown.");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(cfg.shutdown_grace_s * 1000));
  while (http.active_exchanges() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http.stop();
  workers.join();
  VLLM_LOG_INFO("Application shutdown complete.");
  VLLM_LOG_INFO("Finished server process [{}]", pid);
  return 0;
}

}  // namespace vllm::server
