// The prefix cache's block hash: a chain of 128-bit XXH3 hashes, each naming its block's
// tokens and, through its parent, every block before it.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace vllm
