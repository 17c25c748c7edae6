#include "vllm/hub/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "vllm/core/error.h"

namespace vllm::hub {

namespace {

void ensure_curl_initialised() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* curl = nullptr;
  const BodySink* sink = nullptr;
  const ProgressFn* progress = nullptr;
  HttpResponse response;
  long current_status = 0;
};

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    // A status line starts the next response of the redirect chain.
    t->response.chain.emplace_back();
    size_t sp = line.find(' ');
    t->current_status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon != std::string::npos && !t->response.chain.empty()) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    t->response.chain.back().emplace(name, trim(line.substr(colon + 1)));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  bool success = t->current_status >= 200 && t->current_status < 300;
  if (success && *t->sink) {
    if (!(*t->sink)(t->current_status, data, n)) return 0;  // libcurl stops with CURLE_WRITE_ERROR
  } else if (success || t->response.body.size() < (1 << 16)) {
    // Error bodies are kept (capped) for the message; they never reach the sink.
    t->response.body.append(data, n);
  }
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (*t->progress && t->current_status >= 200 && t->current_status < 300)
    (*t->progress)(static_cast<uint64_t>(now), static_cast<uint64_t>(total));
  return 0;
}

bool is_retryable(CURLcode code) {
  switch (code) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string> HttpResponse::header(const std::string& name) const {
  for (const auto& headers : chain) {
    auto it = headers.find(name);
    if (it != headers.end()) return it->second;
  }
  return std::nullopt;
}

std::optional<std::string> HttpResponse::final_header(const std::string& name) const {
  if (chain.empty()) return std::nullopt;
  auto it = chain.back().find(name);
  if (it == chain.back().end()) return std::nullopt;
  return it->second;
}

std::optional<HttpResponse> http_perform(const HttpRequest& request, const BodySink& sink, const ProgressFn& progress,
                                         HttpTransportError& error) {
  ensure_curl_initialised();
  Transfer t;
  t.sink = &sink;
  t.progress = &progress;
  t.curl = curl_easy_init();
  if (!t.curl) throw Error("libcurl could not start a transfer", ErrorKind::kInternal);
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());

  curl_easy_setopt(t.curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(t.curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(t.curl, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(t.curl, CURLOPT_MAXREDIRS, 10L);
  // A custom Authorization header is not forwarded to another host (libcurl's default, kept on
  // purpose): the token must not leak to the CDN a download is redirected to.
  curl_easy_setopt(t.curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(t.curl, CURLOPT_USERAGENT, "vllm-cpp; hf_hub-compatible");
  curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(t.curl, CURLOPT_CONNECTTIMEOUT, request.connect_timeout_s);
  curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(t.curl, CURLOPT_LOW_SPEED_TIME, request.stall_timeout_s);
  curl_easy_setopt(t.curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(t.curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(t.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(t.curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(t.curl, CURLOPT_NOPROGRESS, 0L);
  if (request.head_only) curl_easy_setopt(t.curl, CURLOPT_NOBODY, 1L);
  std::string range;
  if (request.range_start > 0) {
    range = std::to_string(request.range_start) + "-";
    curl_easy_setopt(t.curl, CURLOPT_RANGE, range.c_str());
  }
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(t.curl, CURLOPT_ERRORBUFFER, error_buffer);

  CURLcode code = curl_easy_perform(t.curl);
  std::optional<HttpResponse> result;
  if (code == CURLE_OK) {
    curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.response.status);
    char* url = nullptr;
    curl_easy_getinfo(t.curl, CURLINFO_EFFECTIVE_URL, &url);
    if (url) t.response.effective_url = url;
    result = std::move(t.response);
  } else {
    error.curl_code = static_cast<int>(code);
    error.message = error_buffer[0] ? std::string(error_buffer) : std::string(curl_easy_strerror(code));
    error.retryable = is_retryable(code);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(t.curl);
  return result;
}

std::string url_quote(const std::string& s, const std::string& safe) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~';
    if (unreserved || safe.find(static_cast<char>(c)) != std::string::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

}  // namespace vllm::hub
