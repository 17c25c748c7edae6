// Owns the backend, the model and the KV cache tensors, and runs one scheduled step: flattens
// the step's requests into one batch of tokens (ids, positions, slot mapping, block tables) and
// returns the logits of the rows the sampler needs, on the backend's device. The model never sees a request.
#pragma once

#include <memory>
#include <vector>

#include "vllm/backends/backend.h"
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
  // Allocates the KV cache: `layout.group_size` K and V tensors of num_blocks blocks, shared by
  // the groups' layers as the layout says.
  ModelRunner(std::unique_ptr<Backend> backend, std::unique_ptr<CausalLM> model, int64_t num_blocks, int block_size,
              const KVCacheLayout& layout);

  // Runs the step; returns its logits [plan.num_rows, vocab] where the backend computed them
  // (CausalLM::forward). On a GPU the step may still be running when this returns.
  Tensor execute(const SchedulerOutput& step, KVCacheManager& kv, LogitsPlan* plan);

  Backend& backend() { return *backend_; }
  const CausalLM& model() const { return *model_; }
  int64_t num_blocks() const { return num_blocks_; }
  const KVCacheLayout& kv_layout() const { return layout_; }
  // Bytes of one block of the pool (K and V of every tensor).
  size_t bytes_per_block() const;
  // Host time spent flattening steps and uploading their inputs, in all (step timing).
  double prepare_seconds() const { return prepare_seconds_; }
  // Bytes of one block of a pool whose blocks span `kv_tensors` layers' K and V
  // (KVCacheLayout::group_size; every layer when all attend alike).
  static size_t block_bytes(const ModelConfig& c, int64_t kv_tensors, int block_size, DType kv_dtype);

 private:
  double prepare_seconds_ = 0;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<CausalLM> model_;
  int64_t num_blocks_;
  int block_size_;
  KVCacheLayout layout_;
  std::vector<KVCacheLayer> slot_tensors_;  // the layout's group_size K/V tensors
  std::vector<KVCacheLayer> kv_cache_;      // per layer: its slot's tensors and its group
};

}  // namespace vllm
