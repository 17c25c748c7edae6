// Engine statistics for the logs and /metrics, with vLLM's metric meanings: gauges (running,
// waiting, KV usage), counters (tokens, preemptions, prefix cache, finished requests by reason)
// and histograms (time to first token, inter-token latency, end-to-end latency, lengths).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vllm {

struct Histogram {
  std::vector<double> bounds;    // upper bounds, ascending (+Inf implied)
  std::vector<uint64_t> counts;  // per bucket, bounds.size() + 1
  double sum = 0;
  uint64_t count = 0;
  explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void observe(double v);
};

struct EngineMetrics {
  // Gauges.
  int num_requests_running = 0;
  int num_requests_waiting = 0;
  int num_requests_output_paused = 0;  // paused by backpressure (their clients are not reading)
  double kv_cache_usage = 0;  // 0..1
  // Counters.
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t num_preemptions = 0;
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  std::map<std::string, int64_t> request_success;  // finished_reason -> count
  // Histograms (seconds, tokens).
  Histogram time_to_first_token, inter_token_latency, e2e_request_latency, request_prompt_tokens,
      request_generation_tokens;
  EngineMetrics();
};

// vLLM's periodic log line: throughput, running, waiting, KV usage, prefix hit rate.
std::string format_stats_line(const EngineMetrics& now, const EngineMetrics& before, double seconds);

}  // namespace vllm
