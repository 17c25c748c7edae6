// A small client of OpenAI-compatible servers over libcurl, shared by `vllm bench serve`,
// `vllm chat` and `vllm complete`: blocking JSON requests, blocking streamed (server-sent events)
// requests, and the pieces the benchmark's curl-multi event loop needs to run many streams at once.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vllm::cli {

// Splits a server-sent-event stream into the payloads of its `data:` lines, one call per event.
// Bytes may arrive cut anywhere; an event is complete at its blank line ("\n\n" or "\r\n\r\n").
class SseParser {
 public:
  using OnData = std::function<void(std::string_view data)>;
  explicit SseParser(OnData on_data) : on_data_(std::move(on_data)) {}
  void feed(const char* bytes, size_t size);

 private:
  void dispatch_line(std::string_view line);
  OnData on_data_;
  std::string line_;  // the current, unfinished line
  std::string data_;  // the data lines of the current event, joined by "\n"
  bool has_data_ = false;
};

struct HttpResult {
  long status = 0;
  std::string body;
};

// "http://h:p/v1" + "/models" with exactly one slash between them.
std::string join_url(const std::string& base, const std::string& path);

// The OpenAI-style error message of a non-2xx answer ({"error": {"message"}}), or its body.
std::string error_message_of(const HttpResult& r);

// One easy handle for a request: url, optional JSON body (POST), bearer key, a body callback.
// The caller owns the handle and the header list (free both with curl_easy_cleanup and
// curl_slist_free_all). Used directly by the benchmark's multi handle.
struct EasyRequest {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;  // the POST body; curl reads it from here, so it lives as long as the handle
};
// `on_bytes` receives the response body; returning false aborts the transfer.
using OnBytes = std::function<bool(const char* data, size_t size)>;
void setup_request(EasyRequest& req, const std::string& url, const std::string* json_body, const std::string& api_key,
                   OnBytes* on_bytes);
void cleanup_request(EasyRequest& req);

// Blocking requests. Throw vllm::Error, naming the URL, when no answer came (refused, timeout).
HttpResult http_get(const std::string& url, const std::string& api_key);
HttpResult http_post_json(const std::string& url, const std::string& json_body, const std::string& api_key);
// A streamed POST: each SSE payload goes to `on_data` as it arrives ("[DONE]" included). A non-200
// answer or an error event throws vllm::Error with the server's message.
void http_post_stream(const std::string& url, const std::string& json_body, const std::string& api_key,
                      const std::function<void(std::string_view data)>& on_data);

// The id of the first model GET {base}/models lists (what vLLM's clients default to).
std::string first_model_id(const std::string& base_url, const std::string& api_key);

}  // namespace vllm::cli
