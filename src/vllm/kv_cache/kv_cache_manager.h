// Hands KV cache blocks to sequences: block tables, automatic prefix caching, sharing between
// forked sequences, and statistics. Sequences are named by an integer id and described by their
// token ids (prompt then output); the manager knows nothing else about requests.
//
// Forking (n > 1 sampling, beams): a child takes its parent's block table by reference. A block
// shared that way is copied only when one of its holders is about to write into it (copy on
// write, which only ever happens to the last, partly filled block: full blocks are never written
// again). The copies are listed for the model runner, which has the backend do them before the
// next forward pass.
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

class KVCacheManager {
 public:
  KVCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return enable_caching_; }
  const BlockPool& pool() const { return pool_; }
  double usage() const { return pool_.usage(); }

  // The longest run of cached full blocks at the start of `tokens`, never covering the last
  // token (it must be recomputed to produce logits). Returns the number of cached tokens and
  // fills `blocks`. Counts as one prefix-cache query of tokens.size() tokens.
  int64_t find_cached_prefix(const std::vector<int32_t>& tokens, uint64_t salt, std::vector<int32_t>* blocks);

  // Makes room for `num_new_tokens` more tokens after `num_computed_tokens` (which, for a
  // sequence new to the manager, are covered by `cached_blocks` from find_cached_prefix).
  // Returns false and changes nothing if the pool has too few free blocks.
  bool allocate_slots(uint64_t seq, const std::vector<int32_t>& tokens, uint64_t salt, int64_t num_computed_tokens,
                      int64_t num_new_tokens, const std::vector<int32_t>& cached_blocks = {});

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
  const std::vector<int32_t>& block_table(uint64_t seq) const;
  // How many blocks `num_tokens` tokens occupy.
  int32_t blocks_for(int64_t num_tokens) const {
    return static_cast<int32_t>((num_tokens + block_size_ - 1) / block_size_);
  }

  PrefixCacheStats take_stats();  // since the last call
  const PrefixCacheStats& total_stats() const { return total_; }
  void reset_prefix_cache() { pool_.reset_cache(); }
  size_t num_sequences() const { return seqs_.size(); }
  // Checks every bookkeeping invariant (reference counts equal block-table membership, the free
  // queue holds exactly the unreferenced blocks, once each). Returns "" or the first violation.
  std::string check_invariants() const;

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    std::vector<BlockHash> hashes;  // of its full blocks registered so far
  };
  BlockHash root_hash(uint64_t salt) const;

  int32_t block_size_;
  bool enable_caching_;
  BlockPool pool_;
  std::unordered_map<uint64_t, Sequence> seqs_;
  PrefixCacheStats recent_, total_;
  std::vector<std::pair<int32_t, int32_t>> pending_copies_;
  int64_t num_block_copies_total_ = 0;
};

}  // namespace vllm
