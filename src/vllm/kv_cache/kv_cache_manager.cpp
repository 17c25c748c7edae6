#include "vllm/kv_cache/kv_cache_manager.h"

#include <algorithm>

#include "vllm/core/error.h"

namespace vllm {

KVCacheManager::KVCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : block_size_(block_size), enable_caching_(enable_prefix_caching), pool_(num_blocks, block_size, enable_prefix_caching) {}

BlockHash KVCacheManager::root_hash(uint64_t salt) const {
  // The first block's parent: a per-salt constant, so a cache_salt separates whole prefixes.
  return salt == 0 ? BlockHash{} : hash_block(BlockHash{}, nullptr, 0, salt);
}

int64_t KVCacheManager::find_cached_prefix(const std::vector<int32_t>& tokens, uint64_t salt,
                                           std::vector<int32_t>* blocks) {
  blocks->clear();
  if (!enable_caching_) return 0;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t max_blocks = (n - 1) / block_size_;  // leave the last token to compute
  BlockHash parent = root_hash(salt);
  for (int64_t b = 0; b < max_blocks; ++b) {
    const int32_t* t = tokens.data() + b * block_size_;
    BlockHash h = hash_block(parent, t, static_cast<size_t>(block_size_), 0);
    auto hit = pool_.lookup(h, parent, t);
    if (!hit) break;
    blocks->push_back(*hit);
    parent = h;
  }
  int64_t cached = static_cast<int64_t>(blocks->size()) * block_size_;
  recent_.queries += n;
  recent_.hits += cached;
  total_.queries += n;
  total_.hits += cached;
  return cached;
}

bool KVCacheManager::allocate_slots(uint64_t seq_id, const std::vector<int32_t>& tokens, uint64_t salt,
                                    int64_t num_computed_tokens, int64_t num_new_tokens,
                                    const std::vector<int32_t>& cached_blocks) {
  auto it = seqs_.find(seq_id);
  const size_t have = it == seqs_.end() ? cached_blocks.size() : it->second.blocks.size();
  const int64_t total_tokens = num_computed_tokens + num_new_tokens;
  const int32_t need = blocks_for(total_tokens);
  const int32_t extra = std::max<int32_t>(0, need - static_cast<int32_t>(have));
  // Cached blocks that sit in the free queue are taken out of it by touch(): count them too.
  int32_t reclaimed = 0;
  if (it == seqs_.end())
    for (int32_t b : cached_blocks)
      if (pool_.ref_count(b) == 0) ++reclaimed;
  // Blocks this step writes into that other sequences share (a forked partial block) are copied.
  std::vector<size_t> to_copy;
  if (it != seqs_.end()) {
    const auto& blocks = it->second.blocks;
    const size_t first_written = static_cast<size_t>(num_computed_tokens / block_size_);
    const size_t end = std::min(blocks.size(), static_cast<size_t>(need));
    for (size_t b = first_written; b < end; ++b)
      if (pool_.ref_count(blocks[b]) > 1) to_copy.push_back(b);
  }
  if (extra + reclaimed + static_cast<int32_t>(to_copy.size()) > pool_.num_free_blocks()) return false;

  if (it == seqs_.end()) {
    it = seqs_.emplace(seq_id, Sequence{}).first;
    pool_.touch(cached_blocks);
    it->second.blocks = cached_blocks;
    // Cached blocks' hashes are recomputed lazily below (they are already registered).
  }
  Sequence& s = it->second;
  for (size_t b : to_copy) {
    const int32_t shared = s.blocks[b];
    const int32_t own = pool_.allocate(1)[0];
    pending_copies_.emplace_back(shared, own);
    ++num_block_copies_total_;
    pool_.release({shared});  // still held by the other sharers
    s.blocks[b] = own;
  }
  if (extra > 0) {
    std::vector<int32_t> fresh = pool_.allocate(extra);
    s.blocks.insert(s.blocks.end(), fresh.begin(), fresh.end());
  }
  if (enable_caching_) {
    // Register every block that is full once this step's tokens are written.
    const int64_t full = std::min<int64_t>(total_tokens, static_cast<int64_t>(tokens.size())) / block_size_;
    BlockHash parent = s.hashes.empty() ? root_hash(salt) : s.hashes.back();
    for (int64_t b = static_cast<int64_t>(s.hashes.size()); b < full; ++b) {
      const int32_t* t = tokens.data() + b * block_size_;
      BlockHash h = hash_block(parent, t, static_cast<size_t>(block_size_), 0);
      pool_.cache(s.blocks[static_cast<size_t>(b)], h, parent, t);
      s.hashes.push_back(h);
      parent = h;
    }
  }
  return true;
}

void KVCacheManager::fork(uint64_t parent_id, uint64_t child_id) {
  auto parent = seqs_.find(parent_id);
  VLLM_CHECK(parent != seqs_.end(), "fork of a sequence without blocks");
  VLLM_CHECK(!seqs_.count(child_id), "fork into a sequence that already has blocks");
  Sequence child = parent->second;  // the same blocks and registered hashes
  pool_.touch(child.blocks);
  seqs_.emplace(child_id, std::move(child));
}

std::vector<std::pair<int32_t, int32_t>> KVCacheManager::take_block_copies() {
  std::vector<std::pair<int32_t, int32_t>> out;
  out.swap(pending_copies_);
  return out;
}

void KVCacheManager::free(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  std::vector<int32_t> reversed(it->second.blocks.rbegin(), it->second.blocks.rend());
  pool_.release(reversed);
  seqs_.erase(it);
}

const std::vector<int32_t>& KVCacheManager::block_table(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  VLLM_CHECK(it != seqs_.end(), "unknown sequence");
  return it->second.blocks;
}

std::string KVCacheManager::check_invariants() const {
  std::vector<int32_t> refs(static_cast<size_t>(pool_.num_blocks()), 0);
  for (const auto& [id, seq] : seqs_)
    for (int32_t b : seq.blocks) {
      if (b < 0 || b >= pool_.num_blocks()) return "sequence " + std::to_string(id) + " holds an invalid block";
      ++refs[static_cast<size_t>(b)];
    }
  for (int32_t b = 0; b < pool_.num_blocks(); ++b)
    if (refs[static_cast<size_t>(b)] != pool_.ref_count(b))
      return "block " + std::to_string(b) + " has reference count " + std::to_string(pool_.ref_count(b)) + " but " +
             std::to_string(refs[static_cast<size_t>(b)]) + " block-table entries";
  std::vector<char> seen(static_cast<size_t>(pool_.num_blocks()), 0);
  int32_t n = 0;
  for (int32_t b : pool_.free_queue()) {
    if (seen[static_cast<size_t>(b)]++) return "block " + std::to_string(b) + " is in the free queue twice";
    if (pool_.ref_count(b) != 0) return "block " + std::to_string(b) + " is referenced but in the free queue";
    ++n;
  }
  for (int32_t b = 0; b < pool_.num_blocks(); ++b)
    if (pool_.ref_count(b) == 0 && !seen[static_cast<size_t>(b)]) return "free block " + std::to_string(b) + " is lost";
  if (n != pool_.num_free_blocks()) return "free count " + std::to_string(pool_.num_free_blocks()) + " != queue length";
  return "";
}

PrefixCacheStats KVCacheManager::take_stats() {
  PrefixCacheStats s = recent_;
  recent_ = {};
  return s;
}

}  // namespace vllm
