// What happened to the prefix cache, as vLLM reports it to routers (--kv-events-config): a run
// of full blocks entered the cache, a block left it, or the whole cache was forgotten. The block
// pool records these only when asked (KVCacheManager::enable_events), so an engine without
// a publisher pays one branch per change. Turning them into bytes and sending them is the
// kv_events subsystem's job; here they are plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "vllm/kv_cache/block_hash.h"

namespace vllm {

struct KVCacheEvent {
  enum class Kind { kBlockStored, kBlockRemoved, kAllBlocksCleared };
  Kind kind = Kind::kBlockStored;
  // kBlockStored: a chain of consecutive blocks, each the next one's parent, the first one's
  // parent in `parent_block_hash` (none for the first block of a prompt). kBlockRemoved: the
  // blocks evicted.
  std::vector<BlockHash> block_hashes;
  std::optional<BlockHash> parent_block_hash;
  std::vector<int32_t> token_ids;  // kBlockStored: the blocks' tokens, block_size per block
  int32_t block_size = 0;
};

}  // namespace vllm
