// GET /metrics: the engine's statistics in the Prometheus text format (0.0.4), with vLLM's
// metric names, types and help texts, labelled like vLLM's (model_name, engine).
#include <cmath>
#include <cstdio>

#include "vllm/engine/metrics.h"
#include "vllm/server/handlers.h"

namespace vllm::server {

namespace {

// Python's repr of a float, as prometheus_client prints sample values and bucket bounds.
std::string pyfloat(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

class Writer {
 public:
  explicit Writer(const std::string& model) : labels_("model_name=\"" + escape_label(model) + "\",engine=\"0\"") {}

  void header(const std::string& name, const std::string& type, const std::string& help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, double value, const std::string& extra = "") {
    out_ += name + "{" + labels_ + (extra.empty() ? "" : "," + extra) + "} " + pyfloat(value) + "\n";
  }
  void gauge(const std::string& name, const std::string& help, double value) {
    header(name, "gauge", help);
    sample(name, value);
  }
  void counter(const std::string& name, const std::string& help, double value) {
    header(name, "counter", help);  // prometheus_client names the family without _total
    sample(name, value);
  }
  void histogram(const std::string& name, const std::string& help, const Histogram& h) {
    header(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      sample(name + "_bucket", static_cast<double>(cumulative), "le=\"" + pyfloat(h.bounds[i]) + "\"");
    }
    cumulative += h.counts.empty() ? 0 : h.counts.back();
    sample(name + "_bucket", static_cast<double>(cumulative), "le=\"+Inf\"");
    sample(name + "_count", static_cast<double>(h.count));
    sample(name + "_sum", h.sum);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string labels_;
  std::string out_;
};

}  // namespace

void handle_metrics(ServingContext& ctx, HttpRequest&&, std::shared_ptr<Exchange> ex) {
  const EngineMetrics m = ctx.engine.metrics();
  Writer w(ctx.model_name());
  w.gauge("vllm:num_requests_running", "Number of requests in model execution batches.", m.num_requests_running);
  w.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", m.num_requests_waiting);
  w.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", m.kv_cache_usage);
  // Beyond vLLM: the server's own limits (docs/architecture.md, "Limits").
  w.gauge("vllm:num_requests_output_paused",
          "Number of requests paused because their clients are not reading their streams (backpressure).",
          m.num_requests_output_paused);
  w.gauge("vllm:max_waiting_requests", "Waiting requests past which new ones get 503 (--max-waiting-requests; 0: no limit).",
          static_cast<double>(ctx.config.max_waiting_requests));
  w.counter("vllm:num_requests_rejected_total", "Requests refused with 503 because too many were waiting.",
            static_cast<double>(ctx.num_rejected.load()));
  w.counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.",
            static_cast<double>(m.prefix_cache_queries));
  w.counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
            static_cast<double>(m.prefix_cache_hits));
  w.counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.",
            static_cast<double>(m.num_preemptions));
  w.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", static_cast<double>(m.prompt_tokens));
  w.counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
            static_cast<double>(m.generation_tokens));
  w.header("vllm:request_success_total", "counter", "Count of successfully processed requests.");
  std::map<std::string, int64_t> reasons = {{"stop", 0}, {"length", 0}, {"abort", 0}};
  for (const auto& [reason, count] : m.request_success) reasons[reason] = count;
  for (const auto& [reason, count] : reasons)
    w.sample("vllm:request_success_total", static_cast<double>(count), "finished_reason=\"" + escape_label(reason) + "\"");
  w.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", m.time_to_first_token);
  w.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", m.inter_token_latency);
  w.histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", m.e2e_request_latency);
  w.histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", m.request_prompt_tokens);
  w.histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", m.request_generation_tokens);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = w.take();
  ex->respond(std::move(r));
}

}  // namespace vllm::server
