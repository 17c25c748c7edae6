#include "vllm/scheduler/scheduler.h"

#include <algorithm>

#include "vllm/core/error.h"

namespace vllm {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
  }
  return "?";
}

SchedulingPolicy parse_scheduling_policy(const std::string& name) {
  if (name == "fcfs") return SchedulingPolicy::kFcfs;
  if (name == "priority") return SchedulingPolicy::kPriority;
  throw Error("scheduling policy must be 'fcfs' or 'priority', not '" + name + "'");
}

Scheduler::Scheduler(const SchedulerConfig& config, KVCacheManager& kv) : config_(config), kv_(kv) {}

void Scheduler::add_request(std::unique_ptr<Request> request) {
  Request* r = request.get();
  VLLM_CHECK(!requests_.count(r->seq_id), "duplicate sequence id");
  r->status = RequestStatus::kWaiting;
  requests_.emplace(r->seq_id, std::move(request));
  waiting_.push_back(r);
}

void Scheduler::add_forked(std::unique_ptr<Request> child, const Request& after) {
  Request* r = child.get();
  VLLM_CHECK(!requests_.count(r->seq_id), "duplicate sequence id");
  requests_.emplace(r->seq_id, std::move(child));
  auto running = std::find(running_.begin(), running_.end(), &after);
  if (running != running_.end()) {
    r->status = RequestStatus::kRunning;
    running_.insert(running + 1, r);
    return;
  }
  auto waiting = std::find(waiting_.begin(), waiting_.end(), &after);
  r->status = after.status;
  if (waiting != waiting_.end()) waiting_.insert(waiting + 1, r);
  else waiting_.push_back(r);
}

Request* Scheduler::find(uint64_t seq_id) {
  auto it = requests_.find(seq_id);
  return it == requests_.end() ? nullptr : it->second.get();
}

namespace {
// True if a should be served before b: lower priority value, then earlier arrival.
bool before(const Request* a, const Request* b) {
  if (a->priority != b->priority) return a->priority < b->priority;
  if (a->arrival_time != b->arrival_time) return a->arrival_time < b->arrival_time;
  return a->seq_id < b->seq_id;
}
}  // namespace

size_t Scheduler::victim_index() const {
  if (config_.policy == SchedulingPolicy::kFcfs) return running_.size() - 1;
  size_t worst = 0;
  for (size_t i = 1; i < running_.size(); ++i)
    if (before(running_[worst], running_[i])) worst = i;
  return worst;
}

std::deque<Request*>::iterator Scheduler::next_waiting() {
  auto best = waiting_.end();
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if ((*it)->idle()) continue;
    if (config_.policy == SchedulingPolicy::kFcfs) return it;
    if (best == waiting_.end() || before(*it, *best)) best = it;
  }
  return best;
}

bool Scheduler::preempt_a_paused_request() {
  for (size_t i = running_.size(); i-- > 0;) {
    if (!running_[i]->idle()) continue;
    Request* r = running_[i];
    running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
    preempt(r);
    return true;
  }
  return false;
}

bool Scheduler::preempt_an_output_paused_request() {
  for (size_t i = running_.size(); i-- > 0;) {
    if (!running_[i]->output_paused) continue;
    Request* r = running_[i];
    running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
    preempt(r);
    return true;
  }
  return false;
}

bool Scheduler::has_runnable() const {
  for (const Request* r : running_)
    if (!r->idle()) return true;
  for (const Request* r : waiting_)
    if (!r->idle()) return true;
  return false;
}

void Scheduler::preempt(Request* r) {
  kv_.free(r->seq_id);
  r->status = RequestStatus::kPreempted;
  r->num_computed_tokens = 0;
  ++r->num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(r);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = config_.max_num_batched_tokens;

  // 1. Running requests, in order: each gets its next tokens or preempts others to make room.
  size_t i = 0;
  while (i < running_.size() && budget > 0) {
    Request* r = running_[i];
    if (r->idle()) {
      ++i;
      continue;
    }
    int64_t num_new = std::min(r->num_tokens() - r->num_computed_tokens, budget);
    num_new = std::min(num_new, config_.max_model_len - r->num_computed_tokens);
    if (num_new <= 0) {
      ++i;
      continue;
    }
    bool scheduled = true;
    while (!kv_.allocate_slots(r->seq_id, r->token_ids, r->cache_salt, r->num_computed_tokens, num_new)) {
      if (running_.size() == 1) {
        // Alone and still no room: preempting it would only bring it back to fail again.
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
        kv_.free(r->seq_id);
        out.unschedulable.push_back(r);
        scheduled = false;
        break;
      }
      size_t v = victim_index();
      Request* victim = running_[v];
      running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(v));
      if (v < i) --i;  // r moved down one place
      // Drop anything already scheduled for the victim this step.
      for (auto it = out.scheduled.begin(); it != out.scheduled.end(); ++it) {
        if (it->request == victim) {
          budget += it->num_new_tokens;
          out.num_scheduled_tokens -= it->num_new_tokens;
          out.scheduled.erase(it);
          break;
        }
      }
      preempt(victim);
      ++out.num_preempted;
      if (victim == r) {
        scheduled = false;
        break;
      }
    }
    if (!scheduled) continue;  // r was removed; running_[i] is now the next one
    out.scheduled.push_back({r, num_new});
    out.num_scheduled_tokens += num_new;
    budget -= num_new;
    ++i;
  }

  // 2. Waiting requests, while nothing was preempted this step.
  if (out.num_preempted == 0) {
    while (budget > 0) {
      auto it = next_waiting();
      if (it == waiting_.end()) break;
      Request* r = *it;
      // A request that forks into n branches takes n sequence slots (unless nothing runs).
      const int slots = 1 + static_cast<int>(r->pending_branches.size());
      const int running = static_cast<int>(running_.size());
      if (running >= config_.max_num_seqs || (running > 0 && running + slots > config_.max_num_seqs)) {
        // Requests whose clients do not read give their slots to those waiting.
        if (preempt_an_output_paused_request()) continue;
        break;
      }
      KVCacheManager::GroupBlocks cached_blocks;
      // Prompt log-probs need the logits of every prompt position, so such requests do not
      // read the prefix cache until those are done (as in vLLM).
      const bool skip_cache = r->params.prompt_logprobs && r->next_prompt_logprob_pos < r->num_prompt_tokens;
      int64_t cached = skip_cache ? 0 : kv_.find_cached_prefix(r->token_ids, r->cache_salt, &cached_blocks);
      int64_t num_new = r->num_tokens() - cached;
      if (!config_.enable_chunked_prefill && num_new > budget) break;
      num_new = std::min(num_new, budget);
      if (!kv_.allocate_slots(r->seq_id, r->token_ids, r->cache_salt, cached, num_new, cached_blocks)) {
        // Idle (paused) requests give way when nothing else can run; then try again.
        if (out.scheduled.empty() && preempt_a_paused_request()) continue;
        if (out.scheduled.empty() && running_.empty()) {
          // The whole pool is free and still too small for it.
          waiting_.erase(it);
          kv_.free(r->seq_id);
          out.unschedulable.push_back(r);
          continue;
        }
        break;
      }
      waiting_.erase(it);
      r->num_computed_tokens = cached;
      if (r->num_cached_tokens < 0) r->num_cached_tokens = cached;
      r->status = RequestStatus::kRunning;
      running_.push_back(r);
      out.scheduled.push_back({r, num_new});
      out.num_scheduled_tokens += num_new;
      budget -= num_new;
    }
  }
  return out;
}

void Scheduler::update_computed(const SchedulerOutput& out) {
  for (const auto& s : out.scheduled) s.request->num_computed_tokens += s.num_new_tokens;
}

std::unique_ptr<Request> Scheduler::finish(uint64_t seq_id, FinishReason reason) {
  auto it = requests_.find(seq_id);
  if (it == requests_.end()) return nullptr;
  std::unique_ptr<Request> r = std::move(it->second);
  requests_.erase(it);
  kv_.free(seq_id);
  running_.erase(std::remove(running_.begin(), running_.end(), r.get()), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r.get()), waiting_.end());
  r->status = RequestStatus::kFinished;
  r->finish_reason = reason;
  return r;
}

SchedulerStats Scheduler::stats() {
  SchedulerStats s;
  s.num_running = num_running();
  s.num_waiting = num_waiting();
  for (const Request* r : running_) s.num_output_paused += r->output_paused;
  for (const Request* r : waiting_) s.num_output_paused += r->output_paused;
  s.kv_cache_usage = kv_.usage();
  s.num_preemptions_total = num_preemptions_;
  s.prefix_cache_recent = kv_.take_stats();
  s.prefix_cache_total = kv_.total_stats();
  return s;
}

}  // namespace vllm
