// Block pool and KV cache manager: allocation, LRU eviction, prefix-cache hits, collisions.
#include <gtest/gtest.h>

#include "vllm/kv_cache/kv_cache_manager.h"

using namespace vllm;

TEST(BlockPool, AllocatesAndReleasesInLruOrder) {
  BlockPool pool(4, 2, true);
  auto a = pool.allocate(2);
  EXPECT_EQ(pool.num_free_blocks(), 2);
  pool.release({a[1], a[0]});  // tail first: a[1] is evicted before a[0]
  EXPECT_EQ(pool.free_queue(), (std::vector<int32_t>{2, 3, a[1], a[0]}));
  EXPECT_EQ(pool.allocate(3), (std::vector<int32_t>{2, 3, a[1]}));
}

TEST(KVCacheManager, SharesCachedPrefixBlocks) {
  KVCacheManager kv(16, 4, true);
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  ASSERT_TRUE(kv.allocate_slots(1, a, 0, 0, 10));
  std::vector<int32_t> b = {1, 2, 3, 4, 5, 6, 7, 8, 42};
  KVCacheManager::GroupBlocks cached;
  EXPECT_EQ(kv.find_cached_prefix(b, 0, &cached), 8);
  ASSERT_TRUE(kv.allocate_slots(2, b, 0, 8, 1, cached));
  EXPECT_EQ(kv.block_table(2)[0], kv.block_table(1)[0]);
  EXPECT_EQ(kv.pool().ref_count(kv.block_table(1)[0]), 2);
  EXPECT_EQ(kv.check_invariants(), "");
  // A salt separates the cache.
  EXPECT_EQ(kv.find_cached_prefix(b, 77, &cached), 0);
  // The last token is always recomputed.
  std::vector<int32_t> exact = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(kv.find_cached_prefix(exact, 0, &cached), 4);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.usage(), 0.0);
  // Freed blocks keep their content until evicted.
  EXPECT_EQ(kv.find_cached_prefix(b, 0, &cached), 8);
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(KVCacheManager, FailsAllocationWithoutSideEffects) {
  KVCacheManager kv(3, 4, true);
  std::vector<int32_t> t(20, 5);
  EXPECT_FALSE(kv.allocate_slots(1, t, 0, 0, 20));
  EXPECT_FALSE(kv.has(1));
  EXPECT_EQ(kv.pool().num_free_blocks(), 3);
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(KVCacheManager, DisabledCachingNeverHits) {
  KVCacheManager kv(8, 2, false);
  std::vector<int32_t> a = {1, 2, 3, 4, 5};
  ASSERT_TRUE(kv.allocate_slots(1, a, 0, 0, 5));
  KVCacheManager::GroupBlocks cached;
  EXPECT_EQ(kv.find_cached_prefix(a, 0, &cached), 0);
}

TEST(BlockHash, ChainsThroughTheParent) {
  int32_t t[2] = {1, 2};
  BlockHash root{};
  BlockHash h1 = hash_block(root, t, 2, 0);
  BlockHash h2 = hash_block(h1, t, 2, 0);
  EXPECT_FALSE(h1 == h2);
  EXPECT_TRUE(h1 == hash_block(root, t, 2, 0));
}
