// A small blocking HTTP client over libcurl: what the Hub client needs and nothing more.
// Redirects are followed (the Hub sends large files to a CDN), and the headers of every response in
// the redirect chain are kept, because the Hub's own headers (X-Linked-Etag, X-Repo-Commit) are on
// the first response, not on the CDN's.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vllm::hub {

// Header names lowercased; one map per response of the redirect chain, in order.
using HttpHeaders = std::map<std::string, std::string>;

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  bool head_only = false;
  // Off: a 3xx comes back as the response (its Location header says where to go next).
  bool follow_redirects = true;
  uint64_t range_start = 0;  // > 0: ask for bytes range_start.. (a resumed download)
  long connect_timeout_s = 10;
  // Abort when under 1 byte/s for this long: a stalled transfer, without capping a slow large one.
  long stall_timeout_s = 10;
};

struct HttpResponse {
  long status = 0;  // of the last response (after redirects)
  std::vector<HttpHeaders> chain;
  std::string body;  // the body when no sink took it (or an error response's body)
  std::string effective_url;

  // The value from the first response of the chain that has it.
  std::optional<std::string> header(const std::string& lowercase_name) const;
  // The value on the last response only.
  std::optional<std::string> final_header(const std::string& lowercase_name) const;
};

// A transport failure (no HTTP status): connection refused, reset, a short body, a timeout.
struct HttpTransportError {
  int curl_code = 0;
  std::string message;
  bool retryable = false;  // the connection dropped or stalled: resuming may succeed
};

// Receives the body of a successful (2xx) final response, chunk by chunk; `status` lets it react
// to a server that ignored a Range request (200 instead of 206). Returning false aborts the
// transfer (it must not throw: it runs inside libcurl).
using BodySink = std::function<bool(long status, const char* data, size_t size)>;
// Called as bytes arrive: (received so far in this transfer, expected total or 0 when unknown).
using ProgressFn = std::function<void(uint64_t received, uint64_t total)>;

// Performs the request. Returns the response, or fills `error` and returns nothing when no
// response arrived whole.
std::optional<HttpResponse> http_perform(const HttpRequest& request, const BodySink& sink, const ProgressFn& progress,
                                         HttpTransportError& error);

// Percent-encodes like Python's urllib.parse.quote(s, safe=safe).
std::string url_quote(const std::string& s, const std::string& safe = "/");

}  // namespace vllm::hub
