// Errors as the OpenAI API (and vLLM's ErrorResponse) shapes them:
// {"error": {"message": ..., "type": "BadRequestError", "param": ..., "code": 400}}.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>

#include "vllm/core/error.h"
#include "vllm/server/http_server.h"

namespace vllm::server {

// A request that cannot be served, with the HTTP status and error type it is answered with.
// Request parsing throws it; handlers turn it into a response (or an SSE error event).
class ApiError : public std::runtime_error {
 public:
  explicit ApiError(const std::string& message, std::optional<std::string> param = std::nullopt, int status = 400,
                    std::string type = "BadRequestError")
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }
  // A Retry-After header (seconds) for the response, when retrying later can succeed (503).
  std::optional<int> retry_after_s() const { return retry_after_s_; }
  ApiError& with_retry_after(int seconds) {
    retry_after_s_ = seconds;
    return *this;
  }

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
  std::optional<int> retry_after_s_;
};

ApiError not_found(const std::string& message, std::optional<std::string> param = std::nullopt);
// vllm::Error -> its HTTP form: invalid argument 400, not found 404, unsupported 400 (the
// message says so), model or internal failures 500.
ApiError api_error_from(const Error& e);
// The type name vLLM uses for a status (400 BadRequestError, 404 NotFoundError, ...).
std::string error_type_for(int status);

nlohmann::ordered_json error_json(const ApiError& e);
HttpResponse error_response(const ApiError& e);
// An error reported inside a started event stream: "data: {"error": ...}\n\n".
std::string error_event(const ApiError& e);

}  // namespace vllm::server
