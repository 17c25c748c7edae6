// The engine on its own thread, for the server: requests arrive from any thread, each with a
// sink that receives its outputs (called on the engine thread: it must only hand them over,
// never block). Aborts take effect within one engine step. Keeps EngineMetrics up to date.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "vllm/engine/llm_engine.h"
#include "vllm/core/error.h"
#include "vllm/engine/metrics.h"
#include "vllm/kv_cache/cached_block_set.h"

namespace vllm {

class AsyncEngine {
 public:
  using OutputSink = std::function<void(RequestOutput&&)>;
  using ErrorSink = std::function<void(const Error&)>;

  struct Options {
    double log_stats_interval_s = 10.0;  // the throughput log line; 0: off
    // Keeps cached_blocks() up to date (a data-parallel replica, for the router).
    bool track_cached_blocks = false;
    std::string log_prefix;  // before the throughput line ("Engine 001: " for a replica)
  };
  // Loads the model on the calling thread (errors throw), then starts the engine thread.
  explicit AsyncEngine(const EngineConfig& config, double log_stats_interval_s = 10.0);
  AsyncEngine(const EngineConfig& config, const Options& options);
  ~AsyncEngine();  // shutdown(false)

  // Queues a request. Its validation runs on the engine thread: a bad request gets on_error
  // (and no output); a good one gets outputs until one with finished = true.
  void add_request(std::string request_id, PromptInput prompt, SamplingParams params, AddRequestOptions options,
                   OutputSink on_output, ErrorSink on_error);
  // Aborts a request (unknown ids are ignored). Its sink gets a final output with reason abort.
  void abort(const std::string& request_id);
  // Backpressure: pauses (or resumes) a request whose outputs are not being consumed; a paused
  // request is not scheduled, and the others run on. Takes effect within one engine step.
  void set_output_paused(const std::string& request_id, bool paused);
  // Requests queued and not yet running (vLLM's num_requests_waiting), including those just
  // added and not yet seen by the engine thread; for admission control, from any thread.
  int64_t num_waiting() const { return num_waiting_.load(std::memory_order_relaxed); }
  // The block hashes this engine's prefix cache holds, as of its last step (with
  // Options::track_cached_blocks; else always empty). Thread-safe.
  const CachedBlockSet& cached_blocks() const { return cached_blocks_; }
  int32_t block_size() const { return block_size_; }
  // Whether the engine's backend runs on the CPU.
  bool on_cpu() const { return on_cpu_; }
  // Stops taking requests; with drain, finishes those in flight, else aborts them. Joins.
  void shutdown(bool drain);

  EngineMetrics metrics() const;
  // Immutable after construction: safe from any thread.
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }
  // Compiles a request's structured_outputs on the calling thread (the grammar cache is
  // thread-safe), so that requests reach the engine thread with their grammar ready.
  std::shared_ptr<const structured::CompiledGrammar> compile_structured_outputs(const nlohmann::json& so) const {
    return engine_->compile_structured_outputs(so);
  }
  const ModelConfig& model_config() const { return model_config_; }
  int64_t max_model_len() const { return max_model_len_; }
  const GenerationConfig& generation_config() const { return generation_config_; }
  int max_logprobs() const { return max_logprobs_; }

 private:
  struct Pending {
    std::string id;
    PromptInput prompt;
    SamplingParams params;
    AddRequestOptions options;
    OutputSink on_output;
    ErrorSink on_error;
  };
  void loop();
  void deliver(std::vector<RequestOutput>& outputs);
  void update_metrics(const std::vector<RequestOutput>& outputs);

  std::unique_ptr<LLMEngine> engine_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  ModelConfig model_config_;
  GenerationConfig generation_config_;
  int64_t max_model_len_ = 0;
  int max_logprobs_ = 20;
  int32_t block_size_ = 16;
  bool on_cpu_ = true;
  double log_interval_;
  std::string log_prefix_;
  CachedBlockSet cached_blocks_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::vector<std::string> aborts_;
  std::vector<std::pair<std::string, bool>> pauses_;
  std::atomic<int64_t> num_waiting_{0};
  bool stopping_ = false;
  bool drain_ = false;
  std::thread thread_;

  // Engine-thread state.
  std::unordered_map<std::string, OutputSink> sinks_;
  struct Timing {
    double arrival = 0, last_token = 0;
    size_t tokens = 0;
    bool delta = false;
  };
  std::unordered_map<std::string, Timing> timing_;

  mutable std::mutex metrics_mutex_;
  EngineMetrics metrics_;
};

}  // namespace vllm
