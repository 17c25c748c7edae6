// vllm serve [MODEL]: vLLM's OpenAI-compatible API server, with vLLM's flag names.
#include <algorithm>
#include <filesystem>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/core/logging.h"
#include "vllm/kv_events/kv_events_config.h"
#include "vllm/parsers/reasoning_parser.h"
#include "vllm/parsers/tool_parser.h"
#include "vllm/server/api_server.h"

namespace vllm::cli {

namespace {

// vLLM's --structured-outputs-config: a JSON object (or key=value pairs, as vLLM's CLI takes
// them). backend must be auto or vllm-cpp (the one engine here); the JSON options become the
// server's defaults for every request.
// (Its reasoning_parser, an older place for --reasoning-parser, goes to *reasoning_parser, and
// enable_in_reasoning to *in_reasoning.)
nlohmann::json parse_structured_outputs_config(const std::string& text, std::string* reasoning_parser,
                                               bool* in_reasoning) {
  nlohmann::json cfg = nlohmann::json::object();
  if (text.empty()) return cfg;
  if (text.front() == '{') {
    if (!nlohmann::json::accept(text)) throw Error("--structured-outputs-config: not a JSON object: " + text);
    cfg = nlohmann::json::parse(text);
  } else {
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) throw Error("--structured-outputs-config: expected KEY=VALUE, got '" + item + "'");
      const std::string v = item.substr(eq + 1);
      cfg[item.substr(0, eq)] = v == "true" ? nlohmann::json(true) : v == "false" ? nlohmann::json(false) : nlohmann::json(v);
    }
  }
  nlohmann::json defaults = nlohmann::json::object();
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    const std::string& k = it.key();
    if (k == "backend") {
      if (!it->is_string() || (*it != "auto" && *it != "vllm-cpp"))
        throw Error("--structured-outputs-config: backend " + it->dump() +
                    " is not available; vllm-cpp has its own engine: use \"auto\" (or \"vllm-cpp\")");
    } else if (k == "disable_any_whitespace" || k == "disable_additional_properties") {
      if (!it->is_boolean()) throw Error("--structured-outputs-config: " + k + " must be true or false");
      defaults[k] = *it;
    } else if (k == "disable_fallback" || k == "enable_in_reasoning") {
      if (!it->is_boolean()) throw Error("--structured-outputs-config: " + k + " must be true or false");
      if (k == "enable_in_reasoning") *in_reasoning = it->get<bool>();
    } else if (k == "reasoning_parser") {
      if (!it->is_string()) throw Error("--structured-outputs-config: reasoning_parser must be a parser's name");
      if (!it->get<std::string>().empty()) *reasoning_parser = it->get<std::string>();
    } else {
      throw Error("--structured-outputs-config: unknown key '" + k + "'");
    }
  }
  return defaults;
}

std::string join(const std::vector<std::string>& names, const char* sep) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : sep) + n;
  return out;
}

struct ServeArgs {
  EngineConfig engine;
  server::ServerConfig server;
  std::string model_tag;  // positional
  std::string model_flag;  // --model
  std::vector<std::string> api_keys;
  std::vector<std::string> served_model_names;
  std::string chat_template;
  std::string chat_template_content_format = "auto";
  std::string allowed_origins = "[\"*\"]", allowed_methods = "[\"*\"]", allowed_headers = "[\"*\"]";
  bool allow_credentials = false;
  bool disable_log_requests = false, enable_log_requests = false;
  bool disable_access_log = false;
  bool disable_log_stats = false;
  bool trust_remote_code = false;
  std::string log_level = "info";
  std::string uvicorn_log_level = "info";
  std::string download_dir;
  std::string revision;
  std::string response_role = "assistant";
  int max_log_len = 0;
  bool enable_prompt_tokens_details = false;
  bool enable_force_include_usage = false;
  bool return_tokens_as_token_ids = false;
  std::string ssl_keyfile, ssl_certfile, ssl_ca_certs;
  int ssl_cert_reqs = 0;
  std::string structured_outputs_config;
  bool enable_auto_tool_choice = false;
  bool trust_request_chat_template = false;
  std::string tool_call_parser, reasoning_parser;
};

// Python's codecs.decode(s, "unicode_escape") for the escapes a shell-quoted template holds.
std::string unicode_unescape(const std::string& s) {
  std::string out;
  auto put_utf8 = [&out](uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    auto hex = [&](size_t digits) -> bool {
      uint32_t v = 0;
      for (size_t k = 1; k <= digits; ++k) {
        if (i + k >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + k]))) return false;
        v = v * 16 + static_cast<uint32_t>(std::stoi(std::string(1, s[i + k]), nullptr, 16));
      }
      put_utf8(v);
      i += digits;
      return true;
    };
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'x': if (!hex(2)) out += "\\x"; break;
      case 'u': if (!hex(4)) out += "\\u"; break;
      case 'U': if (!hex(8)) out += "\\U"; break;
      default: out += '\\'; out += c;
    }
  }
  return out;
}

// vLLM's load_chat_template: a readable file, else an inline template (it must look like one).
std::string load_chat_template(const std::string& arg) {
  // Only a regular file is read: opening a FIFO would wait for a writer forever.
  std::string why;
  const PathType type = path_type(arg, &why);
  if (type == PathType::kRegular) return read_regular_file(arg, ErrorKind::kInvalidArgument);
  if (type != PathType::kMissing && arg.find_first_of("{}\n") == std::string::npos)
    throw Error("The supplied chat template (" + arg + ") looks like a file path, but it failed to be opened. Reason: " +
                (type == PathType::kDirectory ? std::string("is a directory") : why));
  if (arg.find_first_of("{}\n") == std::string::npos)
    throw Error("The supplied chat template (" + arg +
                ") looks like a file path, but it failed to be opened. Reason: no such file or it cannot be read");
  return unicode_unescape(arg);
}

std::vector<std::string> json_list(const std::string& flag, const std::string& value) {
  try {
    auto j = nlohmann::json::parse(value);
    if (j.is_array()) {
      std::vector<std::string> out;
      for (const auto& e : j) {
        if (!e.is_string()) throw std::runtime_error("not a string");
        out.push_back(e.get<std::string>());
      }
      return out;
    }
  } catch (const std::exception&) {
  }
  throw Error(flag + " must be a JSON list of strings, e.g. '[\"http://localhost:3000\"]', not '" + value + "'");
}

// Where a model argument becomes a folder: a local folder, the default model when empty, or a Hub
// model id (org/name) taken from the cache or downloaded into --download-dir at --revision.
std::string resolve_serve_model(const std::string& model, const std::string& download_dir, const std::string& revision) {
  return resolve_model_folder(model, revision, download_dir);
}

int run_serve(ServeArgs& a) {
  set_log_level(a.log_level);
  if (!a.model_tag.empty() && !a.model_flag.empty() && a.model_tag != a.model_flag)
    throw Error("the model is given twice (positional '" + a.model_tag + "' and --model '" + a.model_flag + "')");
  const std::string model = !a.model_tag.empty() ? a.model_tag : a.model_flag;
  a.engine.model = resolve_serve_model(model, a.download_dir, a.revision);
  if (a.trust_remote_code)
    VLLM_LOG_INFO("--trust-remote-code: accepted; vllm-cpp implements every supported architecture natively, so no "
                  "remote code is run");
  if (!a.revision.empty() || !a.download_dir.empty())
    VLLM_LOG_INFO("--revision/--download-dir apply to Hub downloads; '{}' is served from {}", model, a.engine.model);

  server::ServerConfig& s = a.server;
  if (s.port < 0 || s.port > 65535) throw Error("--port must be between 0 and 65535, not " + std::to_string(s.port));
  if (a.engine.data_parallel_size < 1)
    throw Error("--data-parallel-size must be at least 1, not " + std::to_string(a.engine.data_parallel_size));
  // With no MODEL the embedded default model is served under the name "default" (its folder's
  // name), not under a path of this checkout.
  s.model_root = model.empty() ? std::filesystem::path(a.engine.model).filename().string() : model;
  s.served_model_names = a.served_model_names.empty() ? std::vector<std::string>{s.model_root} : a.served_model_names;
  s.api_keys = a.api_keys;
  s.api_keys.erase(std::remove(s.api_keys.begin(), s.api_keys.end(), std::string()), s.api_keys.end());
  if (!a.chat_template.empty()) s.chat_template = load_chat_template(a.chat_template);
  s.chat_template_content_format = parse_chat_content_format(a.chat_template_content_format);
  s.allowed_origins = json_list("--allowed-origins", a.allowed_origins);
  s.allowed_methods = json_list("--allowed-methods", a.allowed_methods);
  s.allowed_headers = json_list("--allowed-headers", a.allowed_headers);
  s.allow_credentials = a.allow_credentials;
  s.log_requests = a.enable_log_requests && !a.disable_log_requests;
  s.access_log = !a.disable_access_log;
  s.max_log_len = a.max_log_len;
  s.enable_prompt_tokens_details = a.enable_prompt_tokens_details;
  s.enable_force_include_usage = a.enable_force_include_usage;
  s.return_tokens_as_token_ids = a.return_tokens_as_token_ids;
  s.response_role = a.response_role;
  s.log_stats_interval_s = a.disable_log_stats ? 0.0 : 10.0;
  if (!a.ssl_keyfile.empty() || !a.ssl_certfile.empty()) {
    if (a.ssl_keyfile.empty() || a.ssl_certfile.empty())
      throw Error("HTTPS needs both --ssl-keyfile and --ssl-certfile");
    s.tls = server::TlsOptions{a.ssl_certfile, a.ssl_keyfile, a.ssl_ca_certs, a.ssl_cert_reqs};
  } else if (!a.ssl_ca_certs.empty() || a.ssl_cert_reqs != 0) {
    throw Error("--ssl-ca-certs and --ssl-cert-reqs need --ssl-keyfile and --ssl-certfile");
  }
  s.structured_outputs_defaults = parse_structured_outputs_config(a.structured_outputs_config, &s.reasoning_parser,
                                                                  &s.structured_outputs_in_reasoning);
  if (!a.reasoning_parser.empty()) s.reasoning_parser = a.reasoning_parser;
  s.enable_auto_tool_choice = a.enable_auto_tool_choice;
  s.trust_request_chat_template = a.trust_request_chat_template;
  s.tool_call_parser = a.tool_call_parser;
  // Unknown names fail here, listing the known ones, not at the first request.
  if (s.enable_auto_tool_choice && s.tool_call_parser.empty())
    throw Error("--enable-auto-tool-choice requires --tool-call-parser");
  if (!s.tool_call_parser.empty()) (void)parsers::make_tool_parser(s.tool_call_parser);
  if (!s.reasoning_parser.empty()) (void)parsers::make_reasoning_parser(s.reasoning_parser);
  if (s.max_prompts_per_request < 0) throw Error("--max-prompts-per-request must be 0 (no limit) or positive");
  if (s.max_waiting_requests < 0) throw Error("--max-waiting-requests must be 0 (no limit) or positive");
  if (!(s.stalled_client_timeout_s > 0)) throw Error("--stalled-client-timeout must be positive");
  (void)kv_events::parse_kv_events_config(a.engine.kv_events_config);  // a bad one fails before the model loads
  s.version = VLLM_VERSION;
  VLLM_LOG_INFO("vLLM API server version {}", s.version);
  VLLM_LOG_INFO("serving model {} (from {}) as {}", model.empty() ? "(default)" : model, a.engine.model,
                nlohmann::json(s.served_model_names).dump());
  return server::run_api_server(a.engine, std::move(s));
}

}  // namespace

Runner add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "Start the OpenAI-compatible API server");
  sub->add_option("model_tag", a->model_tag, "Model folder (default: models/default)");
  sub->add_option("--model", a->model_flag, "Model folder (same as the positional argument)");
  sub->add_option("--host", a->server.host, "Host name or address to listen on")->capture_default_str();
  sub->add_option("--port", a->server.port, "Port to listen on (0: any free port)")->capture_default_str();
  sub->add_option("--api-key", a->api_keys, "Require this key (Authorization: Bearer KEY) on /v1 routes")
      ->envname("VLLM_API_KEY");
  sub->add_option("--served-model-name", a->served_model_names,
                  "Model name(s) the API answers to (default: the model argument)");
  sub->add_option("--chat-template", a->chat_template, "Chat template: a file, or the template itself");
  sub->add_option("--chat-template-content-format", a->chat_template_content_format,
                  "How message content reaches the template: string (text parts joined), openai (the list of "
                  "parts), or auto (openai when the template loops over a message's content)")
      ->check(CLI::IsMember({"auto", "string", "openai"}))
      ->capture_default_str();
  sub->add_option("--response-role", a->response_role, "Role of generated chat messages")->capture_default_str();
  sub->add_option("--allowed-origins", a->allowed_origins, "CORS allowed origins (JSON list)")->capture_default_str();
  sub->add_option("--allowed-methods", a->allowed_methods, "CORS allowed methods (JSON list)")->capture_default_str();
  sub->add_option("--allowed-headers", a->allowed_headers, "CORS allowed headers (JSON list)")->capture_default_str();
  sub->add_flag("--allow-credentials", a->allow_credentials, "CORS: allow credentials");
  sub->add_flag("--enable-log-requests", a->enable_log_requests, "Log each request's prompt and parameters");
  sub->add_flag("--disable-log-requests", a->disable_log_requests, "Do not log requests (the default)");
  sub->add_flag("--disable-uvicorn-access-log", a->disable_access_log, "Do not log one line per HTTP request");
  sub->add_flag("--disable-log-stats", a->disable_log_stats, "Do not log throughput statistics every 10 s");
  sub->add_option("--max-log-len", a->max_log_len, "Longest prompt excerpt in request logs (0: all)");
  sub->add_flag("--trust-remote-code", a->trust_remote_code, "Accepted for compatibility (no remote code ever runs)");
  sub->add_option("--log-level", a->log_level, "debug, info, warning, error or critical")->capture_default_str();
  sub->add_option("--uvicorn-log-level", a->uvicorn_log_level, "Accepted for compatibility");
  sub->add_option("--download-dir", a->download_dir, "Where Hub models are downloaded");
  sub->add_option("--revision", a->revision, "Hub revision (branch, tag or commit) of the model");
  sub->add_flag("--enable-prompt-tokens-details", a->enable_prompt_tokens_details,
                "Report usage.prompt_tokens_details.cached_tokens");
  sub->add_flag("--enable-force-include-usage", a->enable_force_include_usage,
                "Report usage in every stream, as if stream_options asked for it");
  sub->add_flag("--return-tokens-as-token-ids", a->return_tokens_as_token_ids,
                "Name log-prob tokens as 'token_id:N'");
  sub->add_option("--ssl-keyfile", a->ssl_keyfile, "Serve HTTPS with this private key (PEM)");
  sub->add_option("--ssl-certfile", a->ssl_certfile, "Serve HTTPS with this certificate chain (PEM)");
  sub->add_option("--ssl-ca-certs", a->ssl_ca_certs, "CA certificates (PEM) to verify client certificates with");
  sub->add_option("--ssl-cert-reqs", a->ssl_cert_reqs,
                  "Client certificates: 0 not asked for, 1 optional, 2 required (Python's ssl.CERT_*)")
      ->capture_default_str();
  sub->add_option("--max-prompts-per-request", a->server.max_prompts_per_request,
                  "Most prompts (times n or best_of) one request may carry; more is a 400 (0: no limit)")
      ->capture_default_str();
  sub->add_option("--max-waiting-requests", a->server.max_waiting_requests,
                  "Requests waiting for the engine past which new ones get 503 with Retry-After (0: no limit)")
      ->capture_default_str();
  sub->add_option("--max-stream-buffer-bytes", a->server.max_stream_buffer_bytes,
                  "Unsent bytes of a streamed response past which its request pauses until the client reads "
                  "(0: no limit)")
      ->capture_default_str();
  sub->add_option("--stalled-client-timeout", a->server.stalled_client_timeout_s,
                  "Seconds a client may take none of its response before it is disconnected and its request "
                  "aborted")
      ->capture_default_str();
  sub->add_option("--max-stored-responses", a->server.max_stored_responses,
                  "Responses API: finished responses kept in memory for GET /v1/responses/{id} and "
                  "previous_response_id, least recently used evicted first (0: store nothing)")
      ->capture_default_str();
  sub->add_option("--max-stored-response-bytes", a->server.max_stored_response_bytes,
                  "Responses API: the most bytes (JSON size) the stored responses may take (0: no limit)")
      ->capture_default_str();
  sub->add_option("--structured-outputs-config", a->structured_outputs_config,
                  "Structured outputs: JSON (or KEY=VALUE,...) with backend (auto), disable_any_whitespace, "
                  "disable_additional_properties");
  sub->add_flag("--trust-request-chat-template", a->trust_request_chat_template,
                "Accept a chat template sent with a request (chat_template, chat_template_kwargs.chat_template); "
                "refused with a 400 otherwise");
  sub->add_flag("--enable-auto-tool-choice", a->enable_auto_tool_choice,
                "Let the model call tools on its own (tool_choice \"auto\"); needs --tool-call-parser");
  sub->add_option("--tool-call-parser", a->tool_call_parser,
                  "How tool calls are read from the model's text: " + join(parsers::tool_parser_names(), ", "));
  sub->add_option("--reasoning-parser", a->reasoning_parser,
                  "Split a reasoning model's thinking into the message's reasoning field: " +
                      join(parsers::reasoning_parser_names(), ", "));
  add_engine_args(sub, a->engine);
  // Serve only: the offline entry points run one engine. (-dp: main.cpp spells it out.)
  sub->add_option("--data-parallel-size", a->engine.data_parallel_size,
                  "Run this many engine replicas (each with its own KV cache and, on the CPU, an even share of the "
                  "cores) behind one API server; requests go to the replica holding the longest cached prefix, then "
                  "the least loaded (docs/data_parallel.md)")
      ->capture_default_str();
  return [a] { return run_serve(*a); };
}

}  // namespace vllm::cli
