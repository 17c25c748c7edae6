// CachedBlockSet fed from a KV cache manager's events agrees with the cache itself, and
// prompt_block_hashes names the blocks a lookup hits (the data-parallel router relies on both).
#include <gtest/gtest.h>

#include "vllm/kv_cache/cached_block_set.h"
#include "vllm/kv_cache/kv_cache_manager.h"

using namespace vllm;

namespace {
std::vector<int32_t> tokens(int32_t start, int32_t n) {
  std::vector<int32_t> t;
  for (int32_t i = 0; i < n; ++i) t.push_back(start + i);
  return t;
}
}  // namespace

TEST(CachedBlockSet, MirrorsTheCacheThroughItsEvents) {
  KVCacheManager kv(8, 4, true);
  kv.enable_events();
  CachedBlockSet set;
  const std::vector<int32_t> a = tokens(1, 13);  // 3 full blocks + 1 token
  ASSERT_TRUE(kv.allocate_slots(1, a, 0, 0, 13));
  set.apply(kv.take_events());
  EXPECT_EQ(set.size(), 3u);
  // A lookup of the same prompt hits every whole block before the last token: 3 blocks; the
  // set says the same of the prompt's chain.
  KVCacheManager::GroupBlocks cached;
  EXPECT_EQ(kv.find_cached_prefix(a, 0, &cached), 12);
  EXPECT_EQ(prompt_block_hashes(a, 4, 0).size(), 3u);
  EXPECT_EQ(set.cached_prefix_blocks(prompt_block_hashes(a, 4, 0)), 3u);
  // Exactly 12 tokens: the last block holds the last token, so only 2 blocks can hit.
  const std::vector<int32_t> exact(a.begin(), a.begin() + 12);
  EXPECT_EQ(kv.find_cached_prefix(exact, 0, &cached), 8);
  EXPECT_EQ(set.cached_prefix_blocks(prompt_block_hashes(exact, 4, 0)), 2u);
  // A prompt that diverges in its second block shares only the first.
  std::vector<int32_t> b = a;
  b[5] = 999;
  EXPECT_EQ(kv.find_cached_prefix(b, 0, &cached), 4);
  EXPECT_EQ(set.cached_prefix_blocks(prompt_block_hashes(b, 4, 0)), 1u);
  // A salt changes every hash of the chain.
  const uint64_t salt = cache_salt_key(std::string("tenant"));
  EXPECT_NE(salt, 0u);
  EXPECT_EQ(cache_salt_key(std::nullopt), 0u);
  EXPECT_EQ(cache_salt_key(std::string()), 0u);
  EXPECT_EQ(kv.find_cached_prefix(a, salt, &cached), 0);
  EXPECT_EQ(set.cached_prefix_blocks(prompt_block_hashes(a, 4, salt)), 0u);

  // Eviction: freed blocks stay cached until reused; a new sequence taking the whole pool
  // evicts them, and the set forgets them.
  kv.free(1);
  ASSERT_TRUE(kv.allocate_slots(2, tokens(100, 32), 0, 0, 32));
  set.apply(kv.take_events());
  EXPECT_EQ(kv.find_cached_prefix(a, 0, &cached), 0);
  EXPECT_EQ(set.cached_prefix_blocks(prompt_block_hashes(a, 4, 0)), 0u);
  EXPECT_EQ(set.size(), 8u);  // the new sequence's 8 full blocks

  kv.reset_prefix_cache();
  set.apply(kv.take_events());
  EXPECT_EQ(set.size(), 0u);
}
