// Logging in vLLM's style ("INFO 11-25 10:04:05 message"), through spdlog, to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace vllm {

spdlog::logger& logger();
// "debug", "info", "warning", "error", "critical" (uvicorn's names); throws on others.
void set_log_level(std::string_view level);

}  // namespace vllm

#define VLLM_LOG_DEBUG(...) ::vllm::logger().debug(__VA_ARGS__)
#define VLLM_LOG_INFO(...) ::vllm::logger().info(__VA_ARGS__)
#define VLLM_LOG_WARN(...) ::vllm::logger().warn(__VA_ARGS__)
#define VLLM_LOG_ERROR(...) ::vllm::logger().error(__VA_ARGS__)
