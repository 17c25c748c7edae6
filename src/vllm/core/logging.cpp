#include "vllm/core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <string>

#include "vllm/core/error.h"

namespace vllm {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> log = [] {
    auto l = spdlog::stderr_color_mt("vllm");
    l->set_pattern("%^%L%$ %m-%d %H:%M:%S %v");
    l->set_level(spdlog::level::info);
    if (const char* env = std::getenv("VLLM_LOGGING_LEVEL")) {
      auto lvl = spdlog::level::from_str(env);
      std::string s(env);
      for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (s == "warning") lvl = spdlog::level::warn;
      l->set_level(lvl);
    }
    return l;
  }();
  return *log;
}

void set_log_level(std::string_view level) {
  std::string s(level);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  spdlog::level::level_enum lvl;
  if (s == "trace") lvl = spdlog::level::trace;
  else if (s == "debug") lvl = spdlog::level::debug;
  else if (s == "info") lvl = spdlog::level::info;
  else if (s == "warning" || s == "warn") lvl = spdlog::level::warn;
  else if (s == "error") lvl = spdlog::level::err;
  else if (s == "critical") lvl = spdlog::level::critical;
  else throw Error("unknown log level '" + s + "' (expected debug, info, warning, error or critical)");
  logger().set_level(lvl);
}

}  // namespace vllm
