// GET /metrics: the engine's statistics in the Prometheus text format (0.0.4), with vLLM's
// metric names, types and help texts, labelled like vLLM's (model_name, engine: one series per
// data-parallel replica).
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

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

// One sample per engine (data-parallel replica) under each family's header, labelled
// engine="i" as vLLM labels each engine's numbers; the server's own numbers carry no engine.
class Writer {
 public:
  Writer(const std::string& model, const std::vector<EngineMetrics>& engines)
      : model_label_("model_name=\"" + escape_label(model) + "\""), engines_(engines) {}

  void header(const std::string& name, const std::string& type, const std::string& help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, double value, size_t engine, const std::string& extra = "") {
    out_ += name + "{" + model_label_ + ",engine=\"" + std::to_string(engine) + "\"" + (extra.empty() ? "" : "," + extra) +
            "} " + pyfloat(value) + "\n";
  }
  // The server's own (not an engine's) number.
  void server_sample(const std::string& name, const std::string& type, const std::string& help, double value) {
    header(name, type, help);
    out_ += name + "{" + model_label_ + "} " + pyfloat(value) + "\n";
  }
  template <typename Get>
  void gauge(const std::string& name, const std::string& help, Get get) {
    header(name, "gauge", help);
    for (size_t e = 0; e < engines_.size(); ++e) sample(name, static_cast<double>(get(engines_[e])), e);
  }
  template <typename Get>
  void counter(const std::string& name, const std::string& help, Get get) {
    header(name, "counter", help);  // prometheus_client names the family without _total
    for (size_t e = 0; e < engines_.size(); ++e) sample(name, static_cast<double>(get(engines_[e])), e);
  }
  void histogram(const std::string& name, const std::string& help, Histogram EngineMetrics::*member) {
    header(name, "histogram", help);
    for (size_t e = 0; e < engines_.size(); ++e) {
      const Histogram& h = engines_[e].*member;
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cumulative += h.counts[i];
        sample(name + "_bucket", static_cast<double>(cumulative), e, "le=\"" + pyfloat(h.bounds[i]) + "\"");
      }
      cumulative += h.counts.empty() ? 0 : h.counts.back();
      sample(name + "_bucket", static_cast<double>(cumulative), e, "le=\"+Inf\"");
      sample(name + "_count", static_cast<double>(h.count), e);
      sample(name + "_sum", h.sum, e);
    }
  }
  std::string take() { return std::move(out_); }

 private:
  std::string model_label_;
  const std::vector<EngineMetrics>& engines_;
  std::string out_;
};

}  // namespace

void handle_metrics(ServingContext& ctx, HttpRequest&&, std::shared_ptr<Exchange> ex) {
  std::vector<EngineMetrics> engines;
  for (size_t i = 0; i < ctx.engine.num_replicas(); ++i) engines.push_back(ctx.engine.metrics(i));
  Writer w(ctx.model_name(), engines);
  w.gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
          [](const EngineMetrics& m) { return m.num_requests_running; });
  w.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
          [](const EngineMetrics& m) { return m.num_requests_waiting; });
  w.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
          [](const EngineMetrics& m) { return m.kv_cache_usage; });
  // Beyond vLLM: the server's own limits (docs/architecture.md, "Limits").
  w.gauge("vllm:num_requests_output_paused",
          "Number of requests paused because their clients are not reading their streams (backpressure).",
          [](const EngineMetrics& m) { return m.num_requests_output_paused; });
  w.server_sample("vllm:max_waiting_requests", "gauge",
                  "Waiting requests past which new ones get 503 (--max-waiting-requests; 0: no limit).",
                  static_cast<double>(ctx.config.max_waiting_requests));
  w.server_sample("vllm:num_requests_rejected_total", "counter",
                  "Requests refused with 503 because too many were waiting.", static_cast<double>(ctx.num_rejected.load()));
  w.counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.",
            [](const EngineMetrics& m) { return m.prefix_cache_queries; });
  w.counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
            [](const EngineMetrics& m) { return m.prefix_cache_hits; });
  w.counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.",
            [](const EngineMetrics& m) { return m.num_preemptions; });
  w.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
            [](const EngineMetrics& m) { return m.prompt_tokens; });
  w.counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
            [](const EngineMetrics& m) { return m.generation_tokens; });
  w.header("vllm:request_success_total", "counter", "Count of successfully processed requests.");
  for (size_t e = 0; e < engines.size(); ++e) {
    std::map<std::string, int64_t> reasons = {{"stop", 0}, {"length", 0}, {"abort", 0}};
    for (const auto& [reason, count] : engines[e].request_success) reasons[reason] = count;
    for (const auto& [reason, count] : reasons)
      w.sample("vllm:request_success_total", static_cast<double>(count), e,
               "finished_reason=\"" + escape_label(reason) + "\"");
  }
  w.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
              &EngineMetrics::time_to_first_token);
  w.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
              &EngineMetrics::inter_token_latency);
  w.histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
              &EngineMetrics::e2e_request_latency);
  w.histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", &EngineMetrics::request_prompt_tokens);
  w.histogram("vllm:request_generation_tokens", "Number of generation tokens processed.",
              &EngineMetrics::request_generation_tokens);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = w.take();
  ex->respond(std::move(r));
}

}  // namespace vllm::server
