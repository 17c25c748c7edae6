#include "vllm/kv_cache/cached_block_set.h"

namespace vllm {

void CachedBlockSet::apply(const std::vector<KVCacheEvent>& events) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const KVCacheEvent& e : events) {
    switch (e.kind) {
      case KVCacheEvent::Kind::kBlockStored:
        hashes_.insert(e.block_hashes.begin(), e.block_hashes.end());
        break;
      case KVCacheEvent::Kind::kBlockRemoved:
        for (const BlockHash& h : e.block_hashes) hashes_.erase(h);
        break;
      case KVCacheEvent::Kind::kAllBlocksCleared:
        hashes_.clear();
        break;
    }
  }
}

size_t CachedBlockSet::cached_prefix_blocks(const std::vector<BlockHash>& chain) const {
  std::lock_guard<std::mutex> lock(mutex_);
  // A block's hash names its whole prefix, and a lookup stops at its first miss: so does this.
  size_t n = 0;
  while (n < chain.size() && hashes_.count(chain[n])) ++n;
  return n;
}

size_t CachedBlockSet::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hashes_.size();
}

}  // namespace vllm
