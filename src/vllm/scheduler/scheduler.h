// Each step, the scheduler hands out a token budget across requests (vLLM v1's design: no
// separate prefill and decode phases). Running requests come first, one decode token each or
// their next prefill chunk; then waiting requests are admitted while budget, sequence slots and
// KV blocks last. When blocks run out, the lowest-priority running request is preempted (its
// blocks freed; it is recomputed later, cheaply when its blocks are still cached).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "vllm/kv_cache/kv_cache_manager.h"
#include "vllm/scheduler/request.h"

namespace vllm {

enum class SchedulingPolicy { kFcfs, kPriority };
SchedulingPolicy parse_scheduling_policy(const std::string& name);  // "fcfs" | "priority"

struct SchedulerConfig {
  int max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 2048;
  bool enable_chunked_prefill = true;
  SchedulingPolicy policy = SchedulingPolicy::kFcfs;
};

struct ScheduledRequest {
  Request* request;
  int64_t num_new_tokens;  // tokens computed this step, starting at request->num_computed_tokens
};

struct SchedulerOutput {
  std::vector<ScheduledRequest> scheduled;  // running (decodes, chunks) then newly admitted
  int64_t num_scheduled_tokens = 0;
  int num_preempted = 0;
  // Requests the KV cache cannot hold even with nothing else running (a sequence grown past the
  // whole pool): out of the queues, their blocks freed; the engine ends them.
  std::vector<Request*> unschedulable;
  bool empty() const { return scheduled.empty(); }
};

struct SchedulerStats {
  int num_running = 0;
  int num_waiting = 0;
  double kv_cache_usage = 0;
  int64_t num_preemptions_total = 0;
  int num_output_paused = 0;  // unfinished requests paused by backpressure
  PrefixCacheStats prefix_cache_recent;  // since the last stats() call
  PrefixCacheStats prefix_cache_total;
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KVCacheManager& kv);

  void add_request(std::unique_ptr<Request> request);
  // Adds a copy of a request (forked by the caller, blocks included) in the same state as
  // `after` (that request or an earlier fork of it), right after it: running requests run on,
  // waiting ones wait.
  void add_forked(std::unique_ptr<Request> child, const Request& after);
  // Chooses this step's work. Requests stay owned by the scheduler.
  SchedulerOutput schedule();
  // After the model ran: advances num_computed_tokens of everything scheduled.
  void update_computed(const SchedulerOutput& out);
  // Ends a request (stop, length, abort): frees its blocks and forgets it. Returns it.
  std::unique_ptr<Request> finish(uint64_t seq_id, FinishReason reason);
  Request* find(uint64_t seq_id);

  bool has_unfinished() const { return !running_.empty() || !waiting_.empty(); }
  // Whether schedule() may find work: an unfinished request that is not paused.
  bool has_runnable() const;
  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  SchedulerStats stats();
  const SchedulerConfig& config() const { return config_; }
  KVCacheManager& kv() { return kv_; }

 private:
  void preempt(Request* r);
  // The running request to preempt: the latest arrival (fcfs), or the lowest priority then
  // latest arrival (priority).
  size_t victim_index() const;
  // The next waiting request to admit (priority policy: the best), skipping paused ones; end()
  // if none.
  std::deque<Request*>::iterator next_waiting();
  // Preempts the latest paused running request, if any (so that a waiting request is never
  // blocked forever by idle ones holding every block).
  bool preempt_a_paused_request();
  // Preempts the latest running request paused by backpressure, if any (so that clients that do
  // not read cannot hold every sequence slot).
  bool preempt_an_output_paused_request();

  SchedulerConfig config_;
  KVCacheManager& kv_;
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::vector<Request*> running_;
  std::deque<Request*> waiting_;
  int64_t num_preemptions_ = 0;
};

}  // namespace vllm
