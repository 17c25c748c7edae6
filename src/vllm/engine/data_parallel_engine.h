// vLLM's data parallelism (--data-parallel-size N) for the server: N engine replicas, each a whole
// copy of the model with its own KV cache on its own thread (AsyncEngine), behind one API server.
// A CPU replica gets its own share of the cores (EngineConfig::cpu_threads).
//
// Routing (vLLM's DP load balancing, made prefix-aware): a request goes to the replica whose
// prefix cache holds the longest run of the request's blocks (so a repeated long prompt lands
// where its KV already is), ties broken by the least load (requests added and not finished), then
// the lowest index. Each replica reports the block hashes its cache holds from its own KV cache
// events (kv_cache/cached_block_set.h); the router hashes the prompt with the same function and
// salt, so the match is exact as of each replica's last step.
//
// The interface is AsyncEngine's, so that the server's handlers are the same for one replica or
// many; with one replica it adds nothing but a map from request id to replica.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "vllm/engine/async_engine.h"

namespace vllm {

// What the router knows of a replica when a request arrives.
struct ReplicaCandidate {
  size_t cached_blocks = 0;  // leading blocks of the request its prefix cache holds
  int64_t load = 0;          // requests routed to it and not finished
};
// The replica a request goes to: the most cached blocks, then the least load, then the lowest
// index. `candidates` must not be empty.
size_t pick_replica(const std::vector<ReplicaCandidate>& candidates);

// The CPU threads each of `replicas` CPU engines gets: an even share of `total` (at least one).
int replica_cpu_threads(int total, int replicas);

class DataParallelEngine {
 public:
  using OutputSink = AsyncEngine::OutputSink;
  using ErrorSink = AsyncEngine::ErrorSink;

  // Loads config.data_parallel_size replicas, one after the other (errors throw). Several
  // replicas need a CPU engine (vllm-cpp places no replica on a second GPU yet).
  DataParallelEngine(const EngineConfig& config, double log_stats_interval_s = 10.0);
  ~DataParallelEngine();  // shutdown(false)

  // AsyncEngine's calls; add_request picks the replica, the others follow the request there.
  void add_request(std::string request_id, PromptInput prompt, SamplingParams params, AddRequestOptions options,
                   OutputSink on_output, ErrorSink on_error);
  void abort(const std::string& request_id);
  void set_output_paused(const std::string& request_id, bool paused);
  int64_t num_waiting() const;  // summed over the replicas
  void shutdown(bool drain);

  size_t num_replicas() const { return replicas_.size(); }
  AsyncEngine& replica(size_t i) { return *replicas_[i]; }
  const AsyncEngine& replica(size_t i) const { return *replicas_[i]; }
  EngineMetrics metrics(size_t i) const { return replicas_[i]->metrics(); }

  // The model's, the same on every replica: replica 0's.
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return replicas_[0]->tokenizer(); }
  std::shared_ptr<const structured::CompiledGrammar> compile_structured_outputs(const nlohmann::json& so) const {
    return replicas_[0]->compile_structured_outputs(so);
  }
  const ModelConfig& model_config() const { return replicas_[0]->model_config(); }
  int64_t max_model_len() const { return replicas_[0]->max_model_len(); }
  const GenerationConfig& generation_config() const { return replicas_[0]->generation_config(); }
  int max_logprobs() const { return replicas_[0]->max_logprobs(); }

 private:
  // The replica a request in flight runs on, for abort and set_output_paused.
  AsyncEngine* find(const std::string& request_id);
  // The request's block hashes for routing (empty when routing ignores prefixes).
  std::vector<BlockHash> block_chain(const PromptInput& prompt, const AddRequestOptions& options) const;
  size_t pick_locked(const std::vector<BlockHash>& chain) const;  // with mutex_ held

  std::vector<std::unique_ptr<AsyncEngine>> replicas_;
  bool prefix_routing_ = false;  // prefix caching is on and there is more than one replica
  mutable std::mutex mutex_;
  struct Placement {
    size_t replica = 0;
    int count = 0;  // requests under this id not finished (more than one only for duplicates)
  };
  std::unordered_map<std::string, Placement> where_;  // request id -> replica, until it finishes
  std::vector<int64_t> load_;  // per replica: requests routed there and not finished
};

}  // namespace vllm
