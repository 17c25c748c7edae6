// Owns the backend, the model and the KV cache tensors, and runs one scheduled step: flattens
// the step's requests into one batch of tokens (ids, positions, slot mapping, block tables) and
// returns the logits of the rows the sampler needs, on the backend's device. The model never sees a request.
// A model split over tensor-parallel ranks has one backend, model share and KV cache share per
// rank: the step is flattened once and every rank runs it at the same time (rank 0 on the calling
// thread), meeting in the all-reduces; rank 0's logits are the step's.
#pragma once

#include <memory>
#include <vector>

#include "vllm/backends/backend.h"
#include "vllm/distributed/rank_threads.h"
#include "vllm/kv_cache/kv_cache_layout.h"
#include "vllm/models/model.h"
#include "vllm/scheduler/scheduler.h"

namespace vllm {

// For each scheduled request, which logits rows belong to it.
struct LogitsPlan {
  struct Entry {
    Request* request;
    int64_t first_prompt_pos = 0;  // prompt positions [first, first + num_prompt_rows) get log-probs
    int64_t num_prompt_rows = 0;   // rows start at `row`
    int64_t row = 0;
    bool sample = false;           // the last row of the entry samples the next token
  };
  std::vector<Entry> entries;
  int64_t num_rows = 0;
};

class ModelRunner {
 public:
  // One tensor-parallel rank's backend and model share (the only one when the model is not split).
  struct Rank {
    std::unique_ptr<Backend> backend;
    std::unique_ptr<CausalLM> model;
  };
  // Allocates the KV cache: `layout.group_size` K and V tensors of num_blocks blocks, shared by
  // the groups' layers as the layout says (per rank: the KV heads of its share).
  ModelRunner(std::vector<Rank> ranks, int64_t num_blocks, int block_size, const KVCacheLayout& layout);
  ModelRunner(std::unique_ptr<Backend> backend, std::unique_ptr<CausalLM> model, int64_t num_blocks, int block_size,
              const KVCacheLayout& layout);
  ~ModelRunner();

  // Runs the step; returns its logits [plan.num_rows, vocab] where the backend computed them
  // (CausalLM::forward). On a GPU the step may still be running when this returns.
  Tensor execute(const SchedulerOutput& step, KVCacheManager& kv, LogitsPlan* plan);

  // Rank 0's (the one that holds the step's logits).
  Backend& backend() { return *ranks_[0].backend; }
  const CausalLM& model() const { return *ranks_[0].model; }
  int tensor_parallel_size() const { return static_cast<int>(ranks_.size()); }
  // CausalLM::weight_bytes and weight_bytes_per_token summed over the ranks.
  size_t weight_bytes() const;
  size_t weight_bytes_per_token() const;
  int64_t num_blocks() const { return num_blocks_; }
  const KVCacheLayout& kv_layout() const { return layout_; }
  // Bytes of one block of the pool (K and V of every tensor, on every rank).
  size_t bytes_per_block() const;
  // Host time spent flattening steps and uploading their inputs, in all (step timing).
  double prepare_seconds() const { return prepare_seconds_; }
  // Bytes of one block of a pool whose blocks span `kv_tensors` layers' K and V
  // (KVCacheLayout::group_size; every layer when all attend alike).
  static size_t block_bytes(const ModelConfig& c, int64_t kv_tensors, int block_size, DType kv_dtype);

 private:
  struct RankState {
    std::unique_ptr<Backend> backend;
    std::unique_ptr<CausalLM> model;
    std::vector<KVCacheLayer> slot_tensors;  // the layout's group_size K/V tensors
    std::vector<KVCacheLayer> kv_cache;      // per layer: its slot's tensors and its group
  };
  // The step's inputs flattened on the host, before any rank's upload.
  struct HostStep;
  static ForwardInputs upload(Backend& b, const HostStep& h);

  double prepare_seconds_ = 0;
  std::vector<RankState> ranks_;
  std::unique_ptr<RankThreads> rank_threads_;  // ranks 1.. (none without tensor parallelism)
  int64_t num_blocks_;
  int block_size_;
  KVCacheLayout layout_;
};

}  // namespace vllm
