#include "vllm/engine/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace vllm {

void Histogram::observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
  ++counts[i];
  sum += v;
  ++count;
}

namespace {
std::vector<double> token_buckets() {
  std::vector<double> b;
  for (double x = 1; x <= 1e6; x *= 10) b.insert(b.end(), {x, 2 * x, 5 * x});
  return b;
}
}  // namespace

EngineMetrics::EngineMetrics()
    // vLLM's bucket boundaries.
    : time_to_first_token({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                           20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}),
      inter_token_latency({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                           20.0, 40.0, 80.0}),
      e2e_request_latency({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                           240.0, 480.0, 960.0, 1920.0, 7680.0}),
      request_prompt_tokens(token_buckets()),
      request_generation_tokens(token_buckets()) {}

std::string format_stats_line(const EngineMetrics& now, const EngineMetrics& before, double seconds) {
  const double prompt_tps = static_cast<double>(now.prompt_tokens - before.prompt_tokens) / std::max(seconds, 1e-9);
  const double gen_tps = static_cast<double>(now.generation_tokens - before.generation_tokens) / std::max(seconds, 1e-9);
  const int64_t q = now.prefix_cache_queries - before.prefix_cache_queries;
  const int64_t h = now.prefix_cache_hits - before.prefix_cache_hits;
  return fmt::format(
      "Avg prompt throughput: {:.1f} tokens/s, Avg generation throughput: {:.1f} tokens/s, Running: {} reqs, "
      "Waiting: {} reqs, GPU KV cache usage: {:.1f}%, Prefix cache hit rate: {:.1f}%",
      prompt_tps, gen_tps, now.num_requests_running, now.num_requests_waiting, now.kv_cache_usage * 100,
      q > 0 ? 100.0 * static_cast<double>(h) / static_cast<double>(q) : 0.0);
}

}  // namespace vllm
