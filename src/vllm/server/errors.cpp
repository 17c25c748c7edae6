#include "vllm/server/errors.h"

#include "vllm/server/sse.h"

namespace vllm::server {

std::string error_type_for(int status) {
  switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 413: return "RequestEntityTooLargeError";
    case 415: return "UnsupportedMediaTypeError";
    case 422: return "UnprocessableEntityError";
    case 431: return "RequestHeaderFieldsTooLargeError";
    case 501: return "NotImplementedError";
    case 503: return "ServiceUnavailableError";
    default: return status >= 500 ? "InternalServerError" : "BadRequestError";
  }
}

ApiError not_found(const std::string& message, std::optional<std::string> param) {
  return ApiError(message, std::move(param), 404, "NotFoundError");
}

ApiError api_error_from(const Error& e) {
  switch (e.kind()) {
    case ErrorKind::kInvalidArgument: return ApiError(e.what());
    case ErrorKind::kUnsupported: return ApiError(e.what());
    case ErrorKind::kNotFound: return not_found(e.what());
    case ErrorKind::kModelLoad:
    case ErrorKind::kInternal: break;
  }
  return ApiError(e.what(), std::nullopt, 500, "InternalServerError");
}

nlohmann::ordered_json error_json(const ApiError& e) {
  nlohmann::ordered_json info;
  info["message"] = e.what();
  info["type"] = e.type();
  info["param"] = e.param() ? nlohmann::ordered_json(*e.param()) : nlohmann::ordered_json(nullptr);
  info["code"] = e.status();
  nlohmann::ordered_json body;
  body["error"] = std::move(info);
  return body;
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status();
  r.body = dump_json(error_json(e));
  if (e.retry_after_s()) r.headers.emplace_back("retry-after", std::to_string(*e.retry_after_s()));
  return r;
}

std::string error_event(const ApiError& e) { return sse_event(error_json(e)); }

}  // namespace vllm::server
