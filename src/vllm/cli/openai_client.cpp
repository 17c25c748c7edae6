#include "vllm/cli/openai_client.h"

#include <nlohmann/json.hpp>

#include <mutex>

#include "vllm/core/error.h"

namespace vllm::cli {

namespace {

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* on_bytes = static_cast<OnBytes*>(user);
  const size_t n = size * count;
  return (*on_bytes)(data, n) ? n : 0;  // a short count makes curl abort the transfer
}

// Runs one blocking transfer; throws when no HTTP answer arrived.
long perform(EasyRequest& req, const std::string& url) {
  const CURLcode rc = curl_easy_perform(req.easy);
  long status = 0;
  curl_easy_getinfo(req.easy, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && status != 0))
    throw Error("cannot reach " + url + ": " + curl_easy_strerror(rc));
  return status;
}

HttpResult blocking(const std::string& url, const std::string* json_body, const std::string& api_key) {
  HttpResult result;
  OnBytes collect = [&](const char* d, size_t n) {
    result.body.append(d, n);
    return true;
  };
  EasyRequest req;
  setup_request(req, url, json_body, api_key, &collect);
  try {
    result.status = perform(req, url);
  } catch (...) {
    cleanup_request(req);
    throw;
  }
  cleanup_request(req);
  return result;
}

}  // namespace

void SseParser::feed(const char* bytes, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    const char c = bytes[i];
    if (c != '\n') {
      line_ += c;
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    dispatch_line(line_);
    line_.clear();
  }
}

void SseParser::dispatch_line(std::string_view line) {
  if (line.empty()) {  // the blank line that ends an event
    if (has_data_) on_data_(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.substr(0, 5) != "data:") return;  // comments (": ping"), event names, ids: not used
  line.remove_prefix(5);
  if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_ += line;
  has_data_ = true;
}

std::string join_url(const std::string& base, const std::string& path) {
  std::string b = base;
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b + (path.empty() || path.front() == '/' ? path : "/" + path);
}

std::string error_message_of(const HttpResult& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  if (j.is_object() && j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();
  return r.body.empty() ? "(empty body)" : r.body.substr(0, 500);
}

void setup_request(EasyRequest& req, const std::string& url, const std::string* json_body, const std::string& api_key,
                   OnBytes* on_bytes) {
  global_init_once();
  req.easy = curl_easy_init();
  if (!req.easy) throw Error("curl_easy_init failed", ErrorKind::kInternal);
  curl_easy_setopt(req.easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(req.easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(req.easy, CURLOPT_CONNECTTIMEOUT, 10L);
  // Nagle would hold back small request bodies; the benchmark measures latency.
  curl_easy_setopt(req.easy, CURLOPT_TCP_NODELAY, 1L);
  if (!api_key.empty()) req.headers = curl_slist_append(req.headers, ("Authorization: Bearer " + api_key).c_str());
  if (json_body) {
    req.body = *json_body;
    req.headers = curl_slist_append(req.headers, "Content-Type: application/json");
    curl_easy_setopt(req.easy, CURLOPT_POST, 1L);
    curl_easy_setopt(req.easy, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(req.easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  if (req.headers) curl_easy_setopt(req.easy, CURLOPT_HTTPHEADER, req.headers);
  curl_easy_setopt(req.easy, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(req.easy, CURLOPT_WRITEDATA, on_bytes);
}

void cleanup_request(EasyRequest& req) {
  if (req.easy) curl_easy_cleanup(req.easy);
  if (req.headers) curl_slist_free_all(req.headers);
  req.easy = nullptr;
  req.headers = nullptr;
}

HttpResult http_get(const std::string& url, const std::string& api_key) { return blocking(url, nullptr, api_key); }

HttpResult http_post_json(const std::string& url, const std::string& json_body, const std::string& api_key) {
  return blocking(url, &json_body, api_key);
}

void http_post_stream(const std::string& url, const std::string& json_body, const std::string& api_key,
                      const std::function<void(std::string_view data)>& on_data) {
  EasyRequest req;
  HttpResult failed;           // the body of a non-200 answer
  std::string callback_error;  // an exception from on_data, carried out of libcurl's callback
  SseParser parser([&](std::string_view data) {
    if (data == "[DONE]") return on_data(data);
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_object() && j.contains("error"))
      throw Error("the server reported an error mid-stream: " + error_message_of({200, std::string(data)}));
    on_data(data);
  });
  OnBytes on_bytes = [&](const char* d, size_t n) {
    long status = 0;
    curl_easy_getinfo(req.easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
      failed.status = status;
      failed.body.append(d, n);
      return true;
    }
    try {
      parser.feed(d, n);
    } catch (const std::exception& e) {
      callback_error = e.what();
      return false;
    }
    return true;
  };
  setup_request(req, url, &json_body, api_key, &on_bytes);
  long status = 0;
  try {
    status = perform(req, url);
  } catch (...) {
    cleanup_request(req);
    throw;
  }
  cleanup_request(req);
  if (!callback_error.empty()) throw Error(callback_error);
  if (status != 200) {
    failed.status = status;
    throw Error("the server answered " + std::to_string(status) + ": " + error_message_of(failed));
  }
}

std::string first_model_id(const std::string& base_url, const std::string& api_key) {
  const std::string url = join_url(base_url, "/models");
  HttpResult r = http_get(url, api_key);
  if (r.status != 200)
    throw Error("GET " + url + " answered " + std::to_string(r.status) + ": " + error_message_of(r));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id") || !j["data"][0]["id"].is_string())
    throw Error("GET " + url + " listed no model");
  return j["data"][0]["id"].get<std::string>();
}

}  // namespace vllm::cli
