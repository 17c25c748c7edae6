// The one error type that crosses subsystem boundaries. Each boundary (CLI, HTTP, Python)
// turns it into its own shape: a message and exit code, an OpenAI error body, an exception.
#pragma once

#include <stdexcept>
#include <string>

namespace vllm {

enum class ErrorKind {
  kInvalidArgument,  // the caller's input is wrong (HTTP 400, Python ValueError)
  kNotFound,         // a model, file or route that does not exist (HTTP 404)
  kModelLoad,        // a model folder that cannot be loaded as given
  kUnsupported,      // valid but not implemented here
  kInternal,         // a bug in vllm-cpp
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::kInvalidArgument)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace vllm

// Internal invariant check: a failure is a bug in vllm-cpp, reported with its location.
#define VLLM_CHECK(cond, msg)                                                                  \
  do {                                                                                         \
    if (!(cond))                                                                               \
      throw ::vllm::Error(std::string("internal check failed: ") + #cond + " (" + (msg) +    \
                              ") at " + __FILE__ + ":" + std::to_string(__LINE__),             \
                          ::vllm::ErrorKind::kInternal);                                       \
  } while (0)
