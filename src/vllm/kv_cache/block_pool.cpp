#include "vllm/kv_cache/block_pool.h"

#include <xxhash.h>

#include <cstring>
#include <vector>

#include "vllm/core/error.h"

namespace vllm {

BlockHash hash_block(const BlockHash& parent, const int32_t* tokens, size_t num_tokens, uint64_t extra_key) {
  // One contiguous message: parent hash, token ids, extra key.
  thread_local std::vector<unsigned char> message;
  message.resize(sizeof(parent) + num_tokens * sizeof(int32_t) + sizeof(extra_key));
  unsigned char* p = message.data();
  std::memcpy(p, &parent, sizeof(parent));
  if (num_tokens) std::memcpy(p + sizeof(parent), tokens, num_tokens * sizeof(int32_t));
  std::memcpy(p + sizeof(parent) + num_tokens * sizeof(int32_t), &extra_key, sizeof(extra_key));
  XXH128_hash_t h = XXH3_128bits(message.data(), message.size());
  return {h.low64, h.high64};
}

uint64_t cache_salt_key(const std::optional<std::string>& salt) {
  if (!salt || salt->empty()) return 0;
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, mixed again by the block hash
  for (unsigned char c : *salt) h = (h ^ c) * 0x100000001b3ull;
  return h | 1;  // never 0, which means "no salt"
}

BlockHash root_block_hash(uint64_t salt_key) {
  return salt_key == 0 ? BlockHash{} : hash_block(BlockHash{}, nullptr, 0, salt_key);
}

std::vector<BlockHash> prompt_block_hashes(const std::vector<int32_t>& tokens, int32_t block_size, uint64_t salt_key) {
  std::vector<BlockHash> out;
  if (tokens.empty() || block_size <= 0) return out;
  const size_t n = (tokens.size() - 1) / static_cast<size_t>(block_size);
  out.reserve(n);
  BlockHash parent = root_block_hash(salt_key);
  for (size_t b = 0; b < n; ++b) {
    parent = hash_block(parent, tokens.data() + b * static_cast<size_t>(block_size), static_cast<size_t>(block_size), 0);
    out.push_back(parent);
  }
  return out;
}

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size, bool enable_caching)
    : block_size_(block_size), enable_caching_(enable_caching), blocks_(static_cast<size_t>(num_blocks)) {
  VLLM_CHECK(num_blocks > 0 && block_size > 0, "a block pool needs blocks");
  if (enable_caching_) tokens_.resize(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size));
  for (int32_t b = 0; b < num_blocks; ++b) push_back_free(b);
}

void BlockPool::push_back_free(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  blk.prev = tail_;
  blk.next = -1;
  if (tail_ >= 0) blocks_[static_cast<size_t>(tail_)].next = b;
  else head_ = b;
  tail_ = b;
  blk.in_free_queue = true;
  ++num_free_;
}

void BlockPool::unlink_free(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  VLLM_CHECK(blk.in_free_queue, "block not in the free queue");
  if (blk.prev >= 0) blocks_[static_cast<size_t>(blk.prev)].next = blk.next;
  else head_ = blk.next;
  if (blk.next >= 0) blocks_[static_cast<size_t>(blk.next)].prev = blk.prev;
  else tail_ = blk.prev;
  blk.prev = blk.next = -1;
  blk.in_free_queue = false;
  --num_free_;
}

void BlockPool::uncache(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (!blk.cached) return;
  auto it = cached_.find(blk.hash);
  if (it != cached_.end() && it->second == b) cached_.erase(it);
  blk.cached = false;
  if (blk.reported && record_events_) {
    KVCacheEvent e;
    e.kind = KVCacheEvent::Kind::kBlockRemoved;
    e.block_hashes.push_back(blk.hash);
    events_.push_back(std::move(e));
  }
  blk.reported = false;
}

std::vector<int32_t> BlockPool::allocate(int32_t n) {
  VLLM_CHECK(n <= num_free_, "not enough free blocks");
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    int32_t b = head_;
    unlink_free(b);
    uncache(b);  // evict: its content is about to be overwritten
    blocks_[static_cast<size_t>(b)].ref_count = 1;
    out.push_back(b);
  }
  return out;
}

void BlockPool::touch(const std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.ref_count == 0) unlink_free(b);
    ++blk.ref_count;
  }
}

void BlockPool::release(const std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    Block& blk = blocks_[static_cast<size_t>(b)];
    VLLM_CHECK(blk.ref_count > 0, "block released more often than referenced");
    if (--blk.ref_count == 0) push_back_free(b);
  }
}

std::optional<int32_t> BlockPool::lookup(const BlockHash& hash, const BlockHash& parent, const int32_t* tokens) const {
  if (!enable_caching_) return std::nullopt;
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  const Block& blk = blocks_[static_cast<size_t>(it->second)];
  // Compare the content itself: a hash collision can never serve another prompt's KV.
  if (!(blk.parent == parent)) return std::nullopt;
  if (std::memcmp(&tokens_[static_cast<size_t>(it->second) * static_cast<size_t>(block_size_)], tokens,
                  static_cast<size_t>(block_size_) * sizeof(int32_t)) != 0)
    return std::nullopt;
  return it->second;
}

bool BlockPool::cache(int32_t block, const BlockHash& hash, const BlockHash& parent, const int32_t* tokens,
                      bool reported) {
  if (!enable_caching_) return false;
  Block& blk = blocks_[static_cast<size_t>(block)];
  if (blk.cached) return false;
  if (cached_.count(hash)) return false;  // another block already holds this content
  blk.cached = true;
  blk.reported = reported;
  blk.hash = hash;
  blk.parent = parent;
  std::memcpy(&tokens_[static_cast<size_t>(block) * static_cast<size_t>(block_size_)], tokens,
              static_cast<size_t>(block_size_) * sizeof(int32_t));
  cached_.emplace(hash, block);
  return true;
}

void BlockPool::reset_cache() {
  for (size_t b = 0; b < blocks_.size(); ++b) blocks_[b].cached = blocks_[b].reported = false;
  cached_.clear();
  if (record_events_) {
    KVCacheEvent e;
    e.kind = KVCacheEvent::Kind::kAllBlocksCleared;
    events_.push_back(std::move(e));
  }
}

std::vector<KVCacheEvent> BlockPool::take_events() {
  std::vector<KVCacheEvent> out;
  out.swap(events_);
  return out;
}

std::vector<int32_t> BlockPool::free_queue() const {
  std::vector<int32_t> out;
  for (int32_t b = head_; b >= 0; b = blocks_[static_cast<size_t>(b)].next) out.push_back(b);
  return out;
}

}  // namespace vllm
