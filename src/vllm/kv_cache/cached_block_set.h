// A prefix cache seen from other threads: the block hashes it holds (group 0's chain, as its KV
// cache events report them), kept up to date from those events by the thread that owns the cache.
// The data-parallel router (engine/data_parallel_engine.h) asks each replica's set how many
// leading blocks of a request's chain it holds, without touching the engine thread's KV cache.
//
// Exact, not a guess: the block pool caches a hash in at most one block, reports every block it
// caches (BlockStored) and every one it evicts (BlockRemoved), and a reset (AllBlocksCleared).
#pragma once

#include <cstddef>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "vllm/kv_cache/block_hash.h"
#include "vllm/kv_cache/kv_cache_events.h"

namespace vllm {

class CachedBlockSet {
 public:
  // Applies a batch of events, in order (from the cache's thread).
  void apply(const std::vector<KVCacheEvent>& events);
  // How many leading blocks of `chain` (a prompt's hashes, prompt_block_hashes) the cache holds.
  size_t cached_prefix_blocks(const std::vector<BlockHash>& chain) const;
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_set<BlockHash, BlockHashHasher> hashes_;
};

}  // namespace vllm
