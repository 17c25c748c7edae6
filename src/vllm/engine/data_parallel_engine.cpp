#include "vllm/engine/data_parallel_engine.h"

#include <algorithm>

#include <fmt/format.h>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"
#include "vllm/core/thread_pool.h"

namespace vllm {

size_t pick_replica(const std::vector<ReplicaCandidate>& candidates) {
  VLLM_CHECK(!candidates.empty(), "no replica to route to");
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    const ReplicaCandidate& c = candidates[i];
    const ReplicaCandidate& b = candidates[best];
    if (c.cached_blocks > b.cached_blocks || (c.cached_blocks == b.cached_blocks && c.load < b.load)) best = i;
  }
  return best;
}

int replica_cpu_threads(int total, int replicas) { return std::max(1, total / std::max(1, replicas)); }

DataParallelEngine::DataParallelEngine(const EngineConfig& config, double log_stats_interval_s) {
  const int n = config.data_parallel_size;
  if (n < 1) throw Error(fmt::format("--data-parallel-size must be at least 1, not {}", n));
  if (n > 1 && config.device == "cuda")
    throw Error(fmt::format("--data-parallel-size {} on --device cuda needs a GPU per replica, and vllm-cpp runs one "
                            "engine per process on GPU 0; use --device cpu for data-parallel CPU replicas",
                            n),
                ErrorKind::kUnsupported);
  EngineConfig replica_config = config;
  if (n > 1 && replica_config.cpu_threads == 0)
    replica_config.cpu_threads = replica_cpu_threads(ThreadPool::default_num_threads(), n);
  prefix_routing_ = n > 1 && config.enable_prefix_caching;
  load_.assign(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i) {
    AsyncEngine::Options options;
    options.log_stats_interval_s = log_stats_interval_s;
    options.track_cached_blocks = prefix_routing_;
    if (n > 1) options.log_prefix = fmt::format("Engine {:03d}: ", i);
    // Replica i's KV cache events carry rank i and go out on its own sockets (the endpoint's
    // port plus i, as vLLM's), so a router can tell the replicas' caches apart.
    replica_config.data_parallel_rank = i;
    replicas_.push_back(std::make_unique<AsyncEngine>(replica_config, options));
    if (n > 1 && !replicas_.back()->on_cpu())
      throw Error(fmt::format("--data-parallel-size {} needs a GPU per replica, and vllm-cpp runs one engine per "
                              "process on GPU 0; use --device cpu for data-parallel CPU replicas",
                              n),
                  ErrorKind::kUnsupported);
  }
  if (n > 1)
    VLLM_LOG_INFO("data parallel: {} replicas of {} CPU threads each, routed by cached prefix, then load", n,
                  replica_config.cpu_threads);
}

DataParallelEngine::~DataParallelEngine() { shutdown(false); }

std::vector<BlockHash> DataParallelEngine::block_chain(const PromptInput& prompt, const AddRequestOptions& options) const {
  if (!prefix_routing_) return {};
  const uint64_t salt = cache_salt_key(options.cache_salt);
  const int32_t block_size = replicas_[0]->block_size();
  if (!prompt.text) return prompt_block_hashes(prompt.token_ids, block_size, salt);
  // The server hands over token ids; a text prompt is tokenized as the engine will.
  if (const Tokenizer* tok = tokenizer().get())
    return prompt_block_hashes(tok->encode(*prompt.text, prompt.add_special_tokens), block_size, salt);
  return {};
}

size_t DataParallelEngine::pick_locked(const std::vector<BlockHash>& chain) const {
  std::vector<ReplicaCandidate> candidates(replicas_.size());
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (!chain.empty()) candidates[i].cached_blocks = replicas_[i]->cached_blocks().cached_prefix_blocks(chain);
    candidates[i].load = load_[i];
  }
  return pick_replica(candidates);
}

void DataParallelEngine::add_request(std::string request_id, PromptInput prompt, SamplingParams params,
                                     AddRequestOptions options, OutputSink on_output, ErrorSink on_error) {
  if (replicas_.size() == 1) {
    replicas_[0]->add_request(std::move(request_id), std::move(prompt), std::move(params), std::move(options),
                              std::move(on_output), std::move(on_error));
    return;
  }
  const std::vector<BlockHash> chain = block_chain(prompt, options);  // outside the lock: it hashes the prompt
  size_t target;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // An id already in flight goes where the first one is, whose engine refuses the duplicate.
    auto it = where_.find(request_id);
    if (it == where_.end()) it = where_.emplace(request_id, Placement{pick_locked(chain), 0}).first;
    target = it->second.replica;
    ++it->second.count;
    // Counted here, not when the replica's thread sees it: requests arriving together spread.
    ++load_[target];
  }
  // Registered before the replica sees it: its outputs may come back at once.
  auto forget = [this, request_id, target] {
    std::lock_guard<std::mutex> lock(mutex_);
    --load_[target];
    auto it = where_.find(request_id);
    if (it != where_.end() && --it->second.count == 0) where_.erase(it);
  };
  replicas_[target]->add_request(
      request_id, std::move(prompt), std::move(params), std::move(options),
      [forget, on_output = std::move(on_output)](RequestOutput&& out) {
        if (out.finished) forget();
        on_output(std::move(out));
      },
      [forget, on_error = std::move(on_error)](const Error& e) {
        forget();
        on_error(e);
      });
}

AsyncEngine* DataParallelEngine::find(const std::string& request_id) {
  if (replicas_.size() == 1) return replicas_[0].get();
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = where_.find(request_id);
  return it == where_.end() ? nullptr : replicas_[it->second.replica].get();
}

void DataParallelEngine::abort(const std::string& request_id) {
  if (AsyncEngine* e = find(request_id)) e->abort(request_id);
}

void DataParallelEngine::set_output_paused(const std::string& request_id, bool paused) {
  if (AsyncEngine* e = find(request_id)) e->set_output_paused(request_id, paused);
}

int64_t DataParallelEngine::num_waiting() const {
  int64_t n = 0;
  for (const auto& r : replicas_) n += r->num_waiting();
  return n;
}

void DataParallelEngine::shutdown(bool drain) {
  // All stop taking requests first, then each finishes (or aborts) what it has.
  for (auto& r : replicas_) r->shutdown(drain);
}

}  // namespace vllm
