// The engine core: the step loop of scheduler -> model runner -> sampler -> stop checks, over
// token ids. Not thread-safe: one thread drives it (the AsyncEngine or the offline LLM loop).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vllm/config/model_config.h"
#include "vllm/engine/engine_config.h"
#include "vllm/engine/model_runner.h"
#include "vllm/engine/step_masks.h"
#include "vllm/kv_cache/kv_cache_manager.h"
#include "vllm/sampling/sampler.h"
#include "vllm/scheduler/scheduler.h"

namespace vllm {

namespace kv_events {
class ZmqEventPublisher;
}

// The log-probability of one token, with the top alternatives of its distribution.
struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0;
  int64_t rank = 0;  // 1 = most likely
  // The requested number of best tokens, best first, then `token` if it is not among them.
  std::vector<TokenLogprob> top;
};

struct EngineCoreRequest {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  SamplingParams params;  // finalized
  int priority = 0;
  std::optional<std::string> cache_salt;
  double arrival_time = 0;  // 0: now
  // n > 1 (or best_of): the further sequences of the request, forked from this one when its
  // prompt is done (at its first sampled token), sharing the prompt's KV blocks. Their seq_id
  // is assigned by add_request.
  std::vector<PendingBranch> branches;
  // Structured outputs: the request's constraint compiled for the tokenizer (the branches share
  // it, each with its own matcher). Compiled before the request reaches the engine.
  std::shared_ptr<const structured::CompiledGrammar> grammar;
};

// What a step produced for one request.
struct EngineCoreOutput {
  uint64_t seq_id = 0;
  std::string request_id;
  std::vector<int32_t> new_token_ids;
  std::vector<TokenLogprobs> new_logprobs;  // one per new token, when params.logprobs
  std::vector<TokenLogprobs> new_prompt_logprobs;  // for prompt positions finished this step
  int64_t first_prompt_logprob_pos = 0;  // prompt position of new_prompt_logprobs[0]
  bool finished = false;
  std::optional<FinishReason> finish_reason;
  StopReason stop_reason;
  int64_t num_cached_tokens = 0;
  int64_t num_prompt_tokens = 0;
};

class EngineCore {
 public:
  explicit EngineCore(const EngineConfig& config);
  ~EngineCore();

  // Validates and queues a request; returns its engine handle. Throws vllm::Error for
  // requests the model cannot serve (too long, token ids out of the vocabulary, ...).
  // The seq ids of request.branches go to `branch_seq_ids`.
  uint64_t add_request(EngineCoreRequest request, std::vector<uint64_t>* branch_seq_ids = nullptr);
  // Aborts a queued or running request; its blocks are freed now. Returns its final output
  // (finished, reason abort) or nothing if it was unknown or already done.
  std::optional<EngineCoreOutput> abort_request(uint64_t seq_id);
  // One scheduling + model step. Returns outputs of every request that produced something.
  std::vector<EngineCoreOutput> step();
  bool has_unfinished() const { return scheduler_->has_unfinished(); }
  // Forgets the prefix cache (blocks in use keep their data); with --kv-events-config, publishes
  // AllBlocksCleared at once.
  void reset_prefix_cache();
  // The KV cache events publisher (--kv-events-config), or null when nothing is published.
  kv_events::ZmqEventPublisher* kv_event_publisher() { return kv_event_publisher_.get(); }
  // Also hands every batch of KV cache events to `observer`, on the thread that steps the engine,
  // before the publisher (if any) takes it: the data-parallel router's view of this replica's
  // prefix cache (kv_cache/cached_block_set.h). Turns event recording on; set before any request.
  void set_kv_event_observer(std::function<void(const std::vector<KVCacheEvent>&)> observer);

  // Beam search's primitives, on a request that has sampled a token not yet computed:
  // a new sequence with the same tokens, parameters and blocks (shared by reference);
  uint64_t fork_request(uint64_t seq_id);
  // replaces that last token (before its K/V are computed);
  void replace_last_token(uint64_t seq_id, int32_t token);
  // keeps the request from being scheduled (it stays in the KV cache) until unpaused.
  void set_paused(uint64_t seq_id, bool paused);
  // Backpressure (see Request::output_paused). Unknown or finished ids are ignored; a branch
  // not forked yet takes its parent's state when it is forked.
  void set_output_paused(uint64_t seq_id, bool paused);

  const ModelConfig& model_config() const { return model_config_; }
  const EngineConfig& config() const { return config_; }
  int64_t max_model_len() const { return max_model_len_; }
  std::optional<int32_t> eos_token_id() const { return eos_token_id_; }
  void set_eos_token_id(std::optional<int32_t> id) { eos_token_id_ = id; }
  const GenerationConfig& generation_config() const { return generation_config_; }
  DType compute_dtype() const { return compute_dtype_; }
  Scheduler& scheduler() { return *scheduler_; }
  KVCacheManager& kv_cache() { return *kv_; }
  ModelRunner& runner() { return *runner_; }
  int64_t num_kv_blocks() const { return runner_->num_blocks(); }

  // Where steps' time goes (VLLM_STEP_TIMING=1 turns it on at start and logs it when the engine
  // is destroyed; benchmarks turn it on and read it per run). Seconds, summed over `steps`.
  struct StepTimes {
    double schedule = 0;     // the scheduler
    double inputs = 0;       // the model runner's input preparation (uploads included)
    double forward = 0;      // the forward pass: all of it on the CPU, its launch on a GPU
    double masks_wait = 0;   // structured outputs: waiting for masks still filling after the forward's launch
    double device_wait = 0;  // the backend's sampler or the logits' download: on a GPU, the wait for the forward
    double sample = 0;       // the rest of sampling: host sampler, accepting tokens, stop rules
    double total = 0;
    int64_t steps = 0;
  };
  void set_step_timing(bool on) {
    time_steps_ = on;
    step_times_ = StepTimes();
  }
  const StepTimes& step_times() const { return step_times_; }

 private:
  // Samples the step's rows (on the backend's own sampler when it has one and every row allows
  // it, else on the host) and applies the stop rules.
  void sample(const LogitsPlan& plan, Tensor& step_logits, std::vector<EngineCoreOutput>* outputs);
  // Ends a request the scheduler found the KV cache cannot hold (finish_reason length).
  void finish_unschedulable(Request& r, std::vector<EngineCoreOutput>* outputs);
  std::vector<SampleResult> sample_on_backend(const Tensor& logits, std::span<const int64_t> src_rows,
                                              std::span<const SamplingRow> srows);
  // Appends a token and applies vLLM's stop rules; returns true if the request finished. A
  // constrained request passes the mask the token was drawn under (see Request::pending_accept);
  // others pass nullptr.
  bool append_and_check_stop(Request& r, int32_t token, const uint32_t* mask);
  // A copy of `parent` under a new seq id, sharing its KV blocks, queued right after `after`
  // (the parent or an earlier fork of it).
  Request& fork(Request& parent, uint64_t child_seq_id, std::string request_id, SamplingParams params,
                const Request& after);
  Request& running_request(uint64_t seq_id);
  // Hands the KV cache events recorded since the last call to the publisher, as one batch.
  void publish_kv_events();

  EngineConfig config_;
  ModelConfig model_config_;
  GenerationConfig generation_config_;
  DType compute_dtype_;
  int64_t max_model_len_ = 0;
  std::optional<int32_t> eos_token_id_;
  std::unique_ptr<KVCacheManager> kv_;
  std::unique_ptr<kv_events::ZmqEventPublisher> kv_event_publisher_;
  std::function<void(const std::vector<KVCacheEvent>&)> kv_event_observer_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  uint64_t next_seq_id_ = 1;
  Sampler sampler_;
  // Whether steps may sample on the backend's own sampler: it has one, and VLLM_BACKEND_SAMPLER is
  // not 0 (which keeps the host sampler: the baseline of run_sampler_bench.sh).
  bool backend_sampler_ = false;
  std::unique_ptr<StepMasks> step_masks_;  // structured outputs: the step's next-token masks
  std::unordered_map<uint64_t, uint64_t> parent_of_pending_branch_;  // branch seq id -> parent seq id
  bool time_steps_ = false;
  bool log_step_times_ = false;  // VLLM_STEP_TIMING: log step_times_ at the end
  StepTimes step_times_;
};

// The compute dtype for --dtype given the model's torch_dtype (auto: the model's own, with
// float32 for float32 models).
DType resolve_compute_dtype(const std::string& dtype, const ModelConfig& config, Device device);
// --kv-cache-dtype: auto anywhere; fp8 / fp8_e4m3 are refused on the CPU (and, until the CUDA
// backend has an FP8 KV cache, there too); anything else is an error listing the accepted values.
void check_kv_cache_dtype(const std::string& kv_cache_dtype, Device device);

}  // namespace vllm
