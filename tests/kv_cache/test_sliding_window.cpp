// KV cache groups for sliding-window layers: the layout planner, and the manager giving back the
// blocks a window has passed, finding prefix-cache hits only where every group can resume, forks
// and frees. The engine half runs tiny-gemma3 and watches the pool while a sequence grows.
#include <gtest/gtest.h>

#include <numeric>

#include "../engine/golden.h"
#include "vllm/engine/llm_engine.h"
#include "vllm/kv_cache/kv_cache_layout.h"
#include "vllm/kv_cache/kv_cache_manager.h"

using namespace vllm;

namespace {

TEST(KVCacheLayout, LayersThatAttendAlikeAreOneGroup) {
  const KVCacheLayout l = plan_kv_cache_layout({0, 0, 0, 0});
  EXPECT_EQ(l.group_size, 4);
  EXPECT_EQ(l.group_windows, (std::vector<int64_t>{0}));
  EXPECT_EQ(l.layer_group, (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(l.layer_slot, (std::vector<int>{0, 1, 2, 3}));
}

TEST(KVCacheLayout, GemmaThreeFiveSlidingToOneFull) {
  // Gemma 3 1B: 26 layers, every sixth full attention (layers 5, 11, 17, 23), the rest a window of 512.
  std::vector<int64_t> windows(26, 512);
  for (int l = 5; l < 26; l += 6) windows[static_cast<size_t>(l)] = 0;
  const KVCacheLayout l = plan_kv_cache_layout(windows);
  EXPECT_EQ(l.group_size, 4);  // the four full layers fill one group
  ASSERT_EQ(l.num_groups(), 7);  // 1 full + ceil(22 / 4) sliding, the last with two empty slots
  EXPECT_EQ(l.group_windows[0], 0);
  for (int g = 1; g < 7; ++g) EXPECT_EQ(l.group_windows[static_cast<size_t>(g)], 512);
  EXPECT_EQ(l.layer_group[5], 0);
  EXPECT_EQ(l.layer_slot[23], 3);
  EXPECT_EQ(l.layer_group[0], 1);
  EXPECT_EQ(l.layer_group[4], 2);  // the fifth sliding layer opens the second sliding group
  EXPECT_EQ(l.layer_slot[4], 0);
  // No two layers of one group share a tensor.
  for (int a = 0; a < 26; ++a)
    for (int b = a + 1; b < 26; ++b)
      if (l.layer_group[static_cast<size_t>(a)] == l.layer_group[static_cast<size_t>(b)]) {
        EXPECT_NE(l.layer_slot[static_cast<size_t>(a)], l.layer_slot[static_cast<size_t>(b)]) << a << " " << b;
      }
}

TEST(KVCacheLayout, AlternatingLayers) {
  const KVCacheLayout l = plan_kv_cache_layout({128, 0, 128, 0});
  EXPECT_EQ(l.group_size, 2);
  EXPECT_EQ(l.group_windows, (std::vector<int64_t>{0, 128}));
  EXPECT_EQ(l.layer_group, (std::vector<int>{1, 0, 1, 0}));
  EXPECT_EQ(l.layer_slot, (std::vector<int>{0, 0, 1, 1}));
}

std::vector<int32_t> iota_tokens(int n, int32_t first = 1) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

int32_t held(const std::vector<int32_t>& table) {
  int32_t n = 0;
  for (int32_t b : table) n += b != kNoBlock;
  return n;
}

// Block size 4, window 8: a query at position p sees p - 7 .. p, so the sliding group holds the
// blocks from (p - 7) / 4 on, at most 3 of them, while the full group keeps every block.
constexpr int32_t kBlock = 4;
constexpr int64_t kWindow = 8;

int64_t first_visible(int64_t pos) { return std::max<int64_t>(0, pos - kWindow + 1) / kBlock; }

TEST(SlidingWindowKV, UsageStaysFlatAsTheSequenceGrows) {
  KVCacheManager kv(64, kBlock, false, {0, kWindow});
  const std::vector<int32_t> tokens = iota_tokens(120);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 0, 0, 5));
  for (int64_t n = 5; n < 120; ++n) {
    ASSERT_TRUE(kv.allocate_slots(1, tokens, 0, n, 1)) << n;
    const auto& full = kv.block_table(1, 0);
    const auto& sliding = kv.block_table(1, 1);
    ASSERT_EQ(full.size(), static_cast<size_t>(kv.blocks_for(n + 1)));
    EXPECT_EQ(held(full), kv.blocks_for(n + 1));
    ASSERT_EQ(sliding.size(), full.size());
    // Exactly the blocks the query at n sees are held: [first_visible(n), end).
    for (int64_t b = 0; b < static_cast<int64_t>(sliding.size()); ++b)
      EXPECT_EQ(sliding[static_cast<size_t>(b)] != kNoBlock, b >= first_visible(n)) << "position " << n << ", block " << b;
    EXPECT_LE(held(sliding), 3);
    EXPECT_EQ(kv.num_blocks_held(1), held(full) + held(sliding));
    EXPECT_EQ(64 - kv.pool().num_free_blocks(), kv.num_blocks_held(1));
    ASSERT_EQ(kv.check_invariants(), "") << n;
  }
  kv.free(1);
  EXPECT_EQ(kv.usage(), 0.0);
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(SlidingWindowKV, ChunkedPrefillHoldsTheChunkThenGivesBack) {
  KVCacheManager kv(64, kBlock, false, {0, kWindow});
  const std::vector<int32_t> tokens = iota_tokens(64);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 0, 0, 32));
  EXPECT_EQ(held(kv.block_table(1, 1)), 8) << "every position of the chunk is written";
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 0, 32, 32));
  // Queries 32..63 see from position 25 on: blocks 6..15.
  EXPECT_EQ(held(kv.block_table(1, 1)), 10);
  EXPECT_EQ(kv.block_table(1, 1)[5], kNoBlock);
  EXPECT_NE(kv.block_table(1, 1)[6], kNoBlock);
  EXPECT_EQ(kv.check_invariants(), "");
}

// Sequence 1 prefills 24 tokens then decodes to 40: it ends holding 10 full-group blocks and
// sliding blocks 8 and 9, having given back sliding blocks 0..7 in that order (free, still cached,
// at the back of the free queue behind the blocks never used). Sequence 3 then takes the blocks
// never used and `evict` more, evicting that many of those sliding blocks, oldest first. Sequence 2
// shares the first 24 tokens: the full group hits 6 blocks; resuming at 24 needs sliding 4 and 5.
int64_t shared_prefix_hit(int evict, KVCacheManager::GroupBlocks* cached) {
  // 20 blocks for sequence 1 and 2 or 3 never used, so that sequence 3 takes an even number.
  const int32_t pool = 22 + evict % 2;
  KVCacheManager kv(pool, kBlock, true, {0, kWindow});
  const std::vector<int32_t> t1 = iota_tokens(40);
  EXPECT_TRUE(kv.allocate_slots(1, t1, 0, 0, 24));
  for (int64_t n = 24; n < 40; ++n) EXPECT_TRUE(kv.allocate_slots(1, t1, 0, n, 1));
  EXPECT_EQ(kv.num_blocks_held(1), 12);
  std::vector<int32_t> t2(t1.begin(), t1.begin() + 24);
  t2.push_back(7777);
  EXPECT_EQ(kv.find_cached_prefix(t2, 0, cached), 24) << "before sequence 3";
  // Sequence 3 (its own tokens) takes m blocks in each of the two groups.
  const int32_t m = (pool - 20 + evict) / 2;
  EXPECT_TRUE(kv.allocate_slots(3, iota_tokens(m * kBlock, 1000), 0, 0, m * kBlock));
  const int64_t hit = kv.find_cached_prefix(t2, 0, cached);
  if (hit > 0) {
    EXPECT_TRUE(kv.allocate_slots(2, t2, 0, hit, 25 - hit, *cached));
    EXPECT_EQ(kv.check_invariants(), "");
  }
  return hit;
}

TEST(SlidingWindowKV, PrefixHitNeedsTheWindowBeforeIt) {
  KVCacheManager::GroupBlocks cached;
  // Nothing evicted: the hit covers the shared 24 tokens, the sliding group resuming with 2 blocks.
  ASSERT_EQ(shared_prefix_hit(0, &cached), 24);
  ASSERT_EQ(cached.size(), 2u);
  EXPECT_EQ(held(cached[0]), 6);
  EXPECT_EQ(cached[1], (std::vector<int32_t>{kNoBlock, kNoBlock, kNoBlock, kNoBlock, cached[1][4], cached[1][5]}));
  EXPECT_NE(cached[1][4], kNoBlock);
  // Sliding blocks 0..5 evicted (the full group's six are still held by sequence 1): no place
  // to resume has its window, so nothing is a hit although the full group would serve 24 tokens.
  EXPECT_EQ(shared_prefix_hit(6, &cached), 0);
  // Blocks 0..3 evicted: resuming at 24 needs only 4 and 5, still cached.
  EXPECT_EQ(shared_prefix_hit(4, &cached), 24);
}

TEST(SlidingWindowKV, ForkSharesTheWindowAndFreesCleanly) {
  KVCacheManager kv(64, kBlock, false, {0, kWindow});
  std::vector<int32_t> tokens = iota_tokens(30);
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 0, 0, 30));
  ASSERT_TRUE(kv.allocate_slots(1, tokens, 0, 30, 0));  // gives back the passed blocks
  kv.fork(1, 2);
  EXPECT_EQ(kv.block_table(2, 1), kv.block_table(1, 1));
  std::vector<int32_t> a = tokens, b = tokens;
  a.push_back(1), b.push_back(2);
  // Both write into the shared partial block 7 (positions 28..31): the second writer copies it.
  ASSERT_TRUE(kv.allocate_slots(1, a, 0, 30, 1));
  ASSERT_TRUE(kv.allocate_slots(2, b, 0, 30, 1));
  EXPECT_EQ(kv.take_block_copies().size(), 2u) << "block 7 in the full and in the sliding group";
  for (int64_t n = 31; n < 60; ++n) {
    a.push_back(1), b.push_back(2);
    ASSERT_TRUE(kv.allocate_slots(1, a, 0, n, 1));
    ASSERT_TRUE(kv.allocate_slots(2, b, 0, n, 1));
    ASSERT_EQ(kv.check_invariants(), "") << n;
  }
  EXPECT_LE(held(kv.block_table(1, 1)), 3);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.usage(), 0.0);
  EXPECT_EQ(kv.check_invariants(), "");
}

// tiny-gemma3: 3 layers, the middle one full attention, the others a window of 12 tokens. At
// block size 4 the engine keeps three groups of one layer: one group's blocks grow with the
// sequence, the two sliding groups hold at most 4 blocks each.
TEST(SlidingWindowEngine, BlockUsageStaysFlatPastTheWindow) {
  EngineConfig c;
  c.model = test::materialize_model("tiny-gemma3");
  c.dtype = "float32";
  c.block_size = 4;
  c.num_kv_blocks = 256;
  LLMEngine engine(c);
  ASSERT_EQ(engine.core().kv_cache().num_groups(), 3);
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 80;
  p.ignore_eos = true;
  engine.add_request("r", PromptInput::from_ids(iota_tokens(6, 10)), p);
  int64_t length = 6, steps = 0, peak = 0;
  while (engine.has_unfinished()) {
    engine.step();
    ++steps;
    const KVCacheManager& kv = engine.core().kv_cache();
    const int64_t used = kv.pool().num_blocks() - kv.pool().num_free_blocks();
    if (!engine.has_unfinished()) break;
    length = 6 + steps;  // tokens held after this step's output (prompt + generated), the last not yet written
    const int64_t written = length - 1;
    // Full group: every written token; each sliding group: the blocks the next query (at position
    // `written`) sees, plus the block it writes into.
    const int64_t full = (written + 3) / 4;
    EXPECT_LE(used - full, 2 * 4) << "after " << steps << " steps";
    peak = std::max(peak, used - full);
  }
  EXPECT_GT(length, 60);
  EXPECT_GE(peak, 2 * 3);
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
}

}  // namespace
