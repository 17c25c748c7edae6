// The prefix cache's block hash: a chain of 128-bit XXH3 hashes, each naming its block's
// tokens and, through its parent, every block before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vllm {

// 128-bit XXH3 of (parent hash, the block's token ids, extra keys).
struct BlockHash {
  uint64_t low = 0;
  uint64_t high = 0;
  bool operator==(const BlockHash& o) const { return low == o.low && high == o.high; }
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.low ^ (h.high * 0x9E3779B97F4A7C15ull)); }
};

// hash(parent, tokens, extra): chained so that a block's hash names its whole prefix.
BlockHash hash_block(const BlockHash& parent, const int32_t* tokens, size_t num_tokens, uint64_t extra_key);

// A request's cache_salt as the extra key of its chain's root (0: no salt, never a salt's key).
uint64_t cache_salt_key(const std::optional<std::string>& salt);
// The parent of a prompt's first block in group 0's chain (the chain KV cache events report) for a
// salt key: a constant per salt, so that a cache_salt separates whole prefixes.
BlockHash root_block_hash(uint64_t salt_key);
// Group 0's hashes of the blocks of `tokens` a prefix-cache lookup may hit (whole blocks, never
// the last token, as KVCacheManager::find_cached_prefix): what another thread can compare with the
// hashes a cache's events report, e.g. the data-parallel router choosing the replica to send to.
std::vector<BlockHash> prompt_block_hashes(const std::vector<int32_t>& tokens, int32_t block_size, uint64_t salt_key);

}  // namespace vllm
