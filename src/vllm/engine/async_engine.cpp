#include "vllm/engine/async_engine.h"

#include <algorithm>
#include <chrono>

#include "vllm/core/logging.h"

namespace vllm {

namespace {
double wall_now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }
}  // namespace

AsyncEngine::AsyncEngine(const EngineConfig& config, double log_stats_interval_s)
    : AsyncEngine(config, Options{log_stats_interval_s, false, ""}) {}

AsyncEngine::AsyncEngine(const EngineConfig& config, const Options& options)
    : engine_(std::make_unique<LLMEngine>(config)),
      log_interval_(options.log_stats_interval_s),
      log_prefix_(options.log_prefix) {
  block_size_ = config.block_size;
  on_cpu_ = engine_->core().runner().backend().device() == Device::kCPU;
  // The events arrive on the engine thread at the end of each step; the set has its own lock.
  if (options.track_cached_blocks)
    engine_->core().set_kv_event_observer([this](const std::vector<KVCacheEvent>& events) { cached_blocks_.apply(events); });
  tokenizer_ = engine_->tokenizer();
  model_config_ = engine_->model_config();
  generation_config_ = engine_->core().generation_config();
  max_model_len_ = engine_->max_model_len();
  max_logprobs_ = config.max_logprobs;
  thread_ = std::thread([this] { loop(); });
}

AsyncEngine::~AsyncEngine() { shutdown(false); }

void AsyncEngine::add_request(std::string request_id, PromptInput prompt, SamplingParams params,
                              AddRequestOptions options, OutputSink on_output, ErrorSink on_error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      on_error(Error("the engine is shutting down"));
      return;
    }
    pending_.push_back({std::move(request_id), std::move(prompt), std::move(params), options, std::move(on_output),
                        std::move(on_error)});
    num_waiting_.fetch_add(1, std::memory_order_relaxed);
  }
  cv_.notify_one();
}

void AsyncEngine::abort(const std::string& request_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    aborts_.push_back(request_id);
  }
  cv_.notify_one();
}

void AsyncEngine::set_output_paused(const std::string& request_id, bool paused) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pauses_.emplace_back(request_id, paused);
  }
  cv_.notify_one();
}

void AsyncEngine::shutdown(bool drain) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    drain_ = drain;
  }
  cv_.notify_one();
  thread_.join();
}

EngineMetrics AsyncEngine::metrics() const {
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  return metrics_;
}

void AsyncEngine::deliver(std::vector<RequestOutput>& outputs) {
  update_metrics(outputs);
  for (auto& out : outputs) {
    auto it = sinks_.find(out.request_id);
    if (it == sinks_.end()) continue;
    const bool finished = out.finished;
    OutputSink sink = finished ? std::move(it->second) : it->second;
    if (finished) sinks_.erase(it), timing_.erase(out.request_id);
    sink(std::move(out));
  }
}

void AsyncEngine::update_metrics(const std::vector<RequestOutput>& outputs) {
  const double now = wall_now();
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  for (const auto& out : outputs) {
    auto t = timing_.find(out.request_id);
    if (t == timing_.end()) continue;
    size_t tokens = 0;
    for (const auto& c : out.outputs) tokens += c.token_ids.size();
    // DELTA outputs carry only the new tokens; the others carry all of them.
    Timing& tm = t->second;
    const size_t total = tm.delta ? tm.tokens + tokens : tokens;
    const size_t fresh = total - std::min(total, tm.tokens);
    if (fresh > 0) {
      if (tm.tokens == 0) metrics_.time_to_first_token.observe(now - tm.arrival);
      else metrics_.inter_token_latency.observe((now - tm.last_token) / static_cast<double>(fresh));
      tm.last_token = now;
      metrics_.generation_tokens += static_cast<int64_t>(fresh);
    }
    tm.tokens = total;
    if (out.finished) {
      metrics_.e2e_request_latency.observe(now - tm.arrival);
      metrics_.request_prompt_tokens.observe(static_cast<double>(out.prompt_token_ids.size()));
      metrics_.request_generation_tokens.observe(static_cast<double>(total));
      metrics_.prompt_tokens += static_cast<int64_t>(out.prompt_token_ids.size());
      for (const auto& c : out.outputs)
        if (c.finish_reason) ++metrics_.request_success[std::string(finish_reason_name(*c.finish_reason))];
    }
  }
  SchedulerStats s = engine_->core().scheduler().stats();
  metrics_.num_requests_running = s.num_running;
  metrics_.num_requests_waiting = s.num_waiting;
  metrics_.num_requests_output_paused = s.num_output_paused;
  metrics_.kv_cache_usage = s.kv_cache_usage;
  metrics_.num_preemptions = s.num_preemptions_total;
  metrics_.prefix_cache_queries = s.prefix_cache_total.queries;
  metrics_.prefix_cache_hits = s.prefix_cache_total.hits;
}

void AsyncEngine::loop() {
  EngineMetrics last_logged;
  double last_log = wall_now();
  for (;;) {
    std::deque<Pending> incoming;
    std::vector<std::string> aborts;
    std::vector<std::pair<std::string, bool>> pauses;
    bool stopping, drain;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Requests paused by backpressure give the engine nothing to do: sleep until something
      // arrives (a request, an abort, a resume) rather than spin on empty steps.
      cv_.wait(lock, [&] {
        return stopping_ || !pending_.empty() || !aborts_.empty() || !pauses_.empty() || engine_->has_runnable();
      });
      incoming.swap(pending_);
      aborts.swap(aborts_);
      pauses.swap(pauses_);
      stopping = stopping_;
      drain = drain_;
    }
    for (auto& p : incoming) {
      const bool delta = p.params.output_kind == RequestOutputKind::kDelta;
      try {
        engine_->add_request(p.id, p.prompt, std::move(p.params), p.options);
        sinks_[p.id] = std::move(p.on_output);
        timing_[p.id] = {p.options.arrival_time > 0 ? p.options.arrival_time : wall_now(), 0, 0, delta};
      } catch (const Error& e) {
        p.on_error(e);
      } catch (const std::exception& e) {
        p.on_error(Error(e.what(), ErrorKind::kInternal));
      }
    }
    for (const auto& [id, paused] : pauses) engine_->set_output_paused(id, paused);
    if (stopping && !drain)
      for (const auto& [id, _] : sinks_) aborts.push_back(id);
    for (const auto& id : aborts) {
      if (auto out = engine_->abort_request(id)) {
        std::vector<RequestOutput> v{std::move(*out)};
        deliver(v);
      }
    }
    if (engine_->has_runnable()) {
      std::vector<RequestOutput> outs;
      try {
        outs = engine_->step();
      } catch (const std::exception& e) {
        VLLM_LOG_ERROR("engine step failed: {}", e.what());
        std::vector<std::string> ids;
        for (const auto& [id, _] : sinks_) ids.push_back(id);
        for (const auto& id : ids)
          if (auto out = engine_->abort_request(id)) outs.push_back(std::move(*out));
      }
      deliver(outs);
    } else {
      update_metrics({});
    }
    const double now = wall_now();
    if (log_interval_ > 0 && now - last_log >= log_interval_) {
      EngineMetrics m = metrics();
      if (m.generation_tokens != last_logged.generation_tokens || m.prompt_tokens != last_logged.prompt_tokens ||
          m.num_requests_running > 0)
        VLLM_LOG_INFO("{}{}", log_prefix_, format_stats_line(m, last_logged, now - last_log));
      last_logged = m;
      last_log = now;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      num_waiting_.store(static_cast<int64_t>(pending_.size()) + engine_->core().scheduler().num_waiting(),
                         std::memory_order_relaxed);
    }
    if (stopping && !engine_->has_unfinished()) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (pending_.empty()) break;
    }
  }
}

}  // namespace vllm
