// The pool of KV cache blocks: reference counts, a free queue in LRU order, and the map from
// block hash to cached block that makes automatic prefix caching work. Blocks are numbers only;
// the memory they name lives in the backend's KV tensors (metadata kept apart from memory).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "vllm/kv_cache/block_hash.h"
#include "vllm/kv_cache/kv_cache_events.h"

namespace vllm {

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size, bool enable_caching);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t num_free_blocks() const { return num_free_; }
  // Fraction of blocks in use by requests (cached-but-free blocks count as free).
  double usage() const { return 1.0 - static_cast<double>(num_free_) / static_cast<double>(blocks_.size()); }

  // n blocks with reference count 1, taken from the front of the free queue (least recently
  // freed first); a block that still held cached content loses it. Caller checks num_free_blocks().
  std::vector<int32_t> allocate(int32_t n);
  // One more reference to each block (a cache hit); free blocks leave the free queue.
  void touch(const std::vector<int32_t>& blocks);
  // Drops one reference to each block, in the given order; blocks reaching zero join the back of
  // the free queue (callers pass a request's blocks tail first so that its tail is evicted first).
  void release(const std::vector<int32_t>& blocks);

  // The cached block holding exactly `tokens` under `hash` after `parent`, if any.
  std::optional<int32_t> lookup(const BlockHash& hash, const BlockHash& parent, const int32_t* tokens) const;
  // Registers a full block's content for reuse (first writer wins on duplicates). Returns whether
  // the block entered the cache. `reported`: the caller records its BlockStored event, so the
  // pool records a BlockRemoved event when the block leaves the cache.
  bool cache(int32_t block, const BlockHash& hash, const BlockHash& parent, const int32_t* tokens,
             bool reported = false);
  // Forgets every cached hash (blocks in use keep their data, but become uncached); records
  // AllBlocksCleared when events are recorded.
  void reset_cache();

  // KV cache events (kv_cache_events.h): while recording, the pool records BlockRemoved for each
  // reported block it evicts and AllBlocksCleared at a reset; the caller adds its BlockStored
  // events, so that all of them stay in the order they happened.
  void record_events(bool on) { record_events_ = on; }
  bool recording_events() const { return record_events_; }
  void add_event(KVCacheEvent event) { events_.push_back(std::move(event)); }
  std::vector<KVCacheEvent> take_events();

  int32_t ref_count(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref_count; }
  bool is_cached(int32_t block) const { return blocks_[static_cast<size_t>(block)].cached; }
  // Walks the free queue; for invariant checks in tests.
  std::vector<int32_t> free_queue() const;

 private:
  struct Block {
    int32_t ref_count = 0;
    int32_t prev = -1, next = -1;  // free queue links
    bool in_free_queue = false;
    bool cached = false;
    bool reported = false;  // its BlockStored event was recorded: its eviction is reported too
    BlockHash hash, parent;
  };
  void push_back_free(int32_t b);
  void unlink_free(int32_t b);
  void uncache(int32_t b);

  int32_t block_size_;
  bool enable_caching_;
  std::vector<Block> blocks_;
  std::vector<int32_t> tokens_;  // block_size tokens per block, valid while cached
  int32_t head_ = -1, tail_ = -1, num_free_ = 0;
  std::unordered_map<BlockHash, int32_t, BlockHashHasher> cached_;
  bool record_events_ = false;
  std::vector<KVCacheEvent> events_;
};

}  // namespace vllm
