// Hands KV cache blocks to sequences: block tables, automatic prefix caching, sharing between
// forked sequences, and statistics. Sequences are named by an integer id and described by their
// token ids (prompt then output); the manager knows nothing else about requests.
//
// Forking (n > 1 sampling, beams): a child takes its parent's block table by reference. A block
// shared that way is copied only when one of its holders is about to write into it (copy on
// write, which only ever happens to the last, partly filled block: full blocks are never written
// again). The copies are listed for the model runner, which has the backend do them before the
// next forward pass.
//
// Groups (kv_cache_layout.h): a model whose layers attend through different windows keeps one
// block table per group of layers. A sliding-window group's table holds kNoBlock for the blocks
// no future query can see (they go back to the pool as soon as the window has passed them), so
// its usage stays flat however long the sequence grows. The prefix cache keeps one hash chain
// per group; a prefix is a hit only where every group has what it needs to resume there: full
// attention every block before it, a sliding window the blocks of the last window.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vllm/kv_cache/block_pool.h"

namespace vllm {

struct PrefixCacheStats {
  int64_t queries = 0;  // tokens looked up in the prefix cache
  int64_t hits = 0;     // of those, tokens found
};

// A sliding-window group's block-table entry for a block outside every future window.
constexpr int32_t kNoBlock = -1;

class KVCacheManager {
 public:
  // Block ids per group: [group][block index in the sequence].
  using GroupBlocks = std::vector<std::vector<int32_t>>;

  // `group_windows`: one entry per group, its sliding window in tokens (0 = full attention).
  KVCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                 std::vector<int64_t> group_windows = {0});

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return enable_caching_; }
  const BlockPool& pool() const { return pool_; }
  double usage() const { return pool_.usage(); }
  int num_groups() const { return static_cast<int>(windows_.size()); }
  int64_t group_window(int group) const { return windows_[static_cast<size_t>(group)]; }

  // The longest prefix of `tokens` in whole blocks that every group holds in the cache (see the
  // header comment), never covering the last token (it must be recomputed to produce logits).
  // Returns the number of cached tokens and fills `blocks` per group (kNoBlock where a sliding
  // group needs nothing). Counts as one prefix-cache query of tokens.size() tokens.
  int64_t find_cached_prefix(const std::vector<int32_t>& tokens, uint64_t salt, GroupBlocks* blocks);

  // Makes room for `num_new_tokens` more tokens after `num_computed_tokens` (which, for a
  // sequence new to the manager, are covered by `cached_blocks` from find_cached_prefix).
  // Returns false if the pool has too few free blocks; the only change it may leave then is
  // blocks returned that no window of the sequence reaches any more.
  bool allocate_slots(uint64_t seq, const std::vector<int32_t>& tokens, uint64_t salt, int64_t num_computed_tokens,
                      int64_t num_new_tokens, const GroupBlocks& cached_blocks = {});

  // Before it writes into a block it shares with other sequences, a sequence gets a fresh copy of
  // that block (listed in pending_block_copies()); the copies count against the free blocks.

  // Gives `child` (new to the manager) the block table of `parent` by reference: one more
  // reference on every block, nothing allocated or copied.
  void fork(uint64_t parent, uint64_t child);
  // (source, destination) block copies owed to copy-on-write, in the order they must run; the
  // model runner takes them before each forward pass.
  std::vector<std::pair<int32_t, int32_t>> take_block_copies();
  int64_t num_block_copies_total() const { return num_block_copies_total_; }

  // Returns the sequence's blocks to the pool (cached ones stay reusable until evicted).
  void free(uint64_t seq);
  bool has(uint64_t seq) const { return seqs_.count(seq) > 0; }
  // The sequence's block table in a group (kNoBlock entries in sliding-window groups).
  const std::vector<int32_t>& block_table(uint64_t seq, int group = 0) const;
  // Blocks the sequence holds, over all groups.
  int32_t num_blocks_held(uint64_t seq) const;
  // How many blocks `num_tokens` tokens occupy.
  int32_t blocks_for(int64_t num_tokens) const {
    return static_cast<int32_t>((num_tokens + block_size_ - 1) / block_size_);
  }

  PrefixCacheStats take_stats();  // since the last call
  const PrefixCacheStats& total_stats() const { return total_; }
  void reset_prefix_cache() { pool_.reset_cache(); }

  // KV cache events for routers (vLLM's --kv-events-config): from now on, record the blocks of
  // group 0's hash chain (all layers, or a group of full-attention layers when some layers slide:
  // kv_cache_layout.h puts them first) entering and leaving the prefix cache, and resets. Off by
  // default: then nothing is recorded.
  void enable_events() { pool_.record_events(true); }
  bool events_enabled() const { return pool_.recording_events(); }
  // The events recorded since the last call, in the order they happened.
  std::vector<KVCacheEvent> take_events() { return pool_.take_events(); }
  size_t num_sequences() const { return seqs_.size(); }
  // Checks every bookkeeping invariant (reference counts equal block-table membership, the free
  // queue holds exactly the unreferenced blocks, once each). Returns "" or the first violation.
  std::string check_invariants() const;

 private:
  struct GroupTable {
    std::vector<int32_t> blocks;
    std::vector<BlockHash> hashes;  // of its full blocks registered so far
  };
  using Sequence = std::vector<GroupTable>;  // one table per group
  BlockHash root_hash(uint64_t salt, int group) const;
  // The first block a query at position `pos` reads in `group` (0 for full attention).
  int64_t first_visible_block(int group, int64_t pos) const;
  // Returns a sliding group's blocks that no query from `pos` on can see.
  void release_passed_blocks(GroupTable& table, int group, int64_t pos);

  int32_t block_size_;
  bool enable_caching_;
  std::vector<int64_t> windows_;
  BlockPool pool_;
  std::unordered_map<uint64_t, Sequence> seqs_;
  PrefixCacheStats recent_, total_;
  std::vector<std::pair<int32_t, int32_t>> pending_copies_;
  int64_t num_block_copies_total_ = 0;
};

}  // namespace vllm
