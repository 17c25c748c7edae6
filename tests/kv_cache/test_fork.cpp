// Forked sequences share blocks by reference count; a shared partly filled block is copied once
// per writer that diverges in it (copy on write), a full block never; freeing every branch
// empties the pool. The CPU backend's block copy against a plain reference.
#include <gtest/gtest.h>

#include <numeric>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/kv_cache/kv_cache_manager.h"

using namespace vllm;

namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first = 1) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

using Copies = std::vector<std::pair<int32_t, int32_t>>;

}  // namespace

TEST(KVCacheFork, SharesEveryBlockAndCopiesThePartialOneOnlyOnDivergence) {
  for (bool caching : {true, false}) {
    SCOPED_TRACE(caching ? "prefix caching on" : "prefix caching off");
    KVCacheManager kv(16, 4, caching);
    std::vector<int32_t> prompt = iota_tokens(10);  // 2 full blocks and one holding 2 tokens
    ASSERT_TRUE(kv.allocate_slots(1, prompt, 0, 0, 10));
    EXPECT_TRUE(kv.take_block_copies().empty());
    const std::vector<int32_t> parent = kv.block_table(1);
    ASSERT_EQ(parent.size(), 3u);

    kv.fork(1, 2);
    kv.fork(1, 3);
    EXPECT_EQ(kv.pool().num_free_blocks(), 13) << "a fork allocates nothing";
    for (uint64_t s : {2u, 3u}) EXPECT_EQ(kv.block_table(s), parent);
    for (int32_t b : parent) EXPECT_EQ(kv.pool().ref_count(b), 3);
    EXPECT_EQ(kv.check_invariants(), "");

    // Each branch writes its own 11th token. The first two writers copy the shared partial
    // block; the last one owns it by then and writes in place. Full blocks stay shared.
    std::vector<int32_t> a = prompt, b = prompt, c = prompt;
    a.push_back(100), b.push_back(200), c.push_back(300);
    ASSERT_TRUE(kv.allocate_slots(2, a, 0, 10, 1));
    Copies first = kv.take_block_copies();
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].first, parent[2]);
    EXPECT_EQ(kv.block_table(2)[2], first[0].second);
    EXPECT_NE(first[0].second, parent[2]);
    ASSERT_TRUE(kv.allocate_slots(3, b, 0, 10, 1));
    Copies second = kv.take_block_copies();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].first, parent[2]);
    ASSERT_TRUE(kv.allocate_slots(1, c, 0, 10, 1));
    EXPECT_TRUE(kv.take_block_copies().empty()) << "the last holder writes in place";
    EXPECT_EQ(kv.block_table(1), parent);
    EXPECT_EQ(kv.num_block_copies_total(), 2);
    for (uint64_t s : {1u, 2u, 3u}) {
      EXPECT_EQ(kv.block_table(s)[0], parent[0]);
      EXPECT_EQ(kv.block_table(s)[1], parent[1]);
    }
    EXPECT_EQ(kv.pool().ref_count(parent[0]), 3);
    EXPECT_EQ(kv.pool().ref_count(parent[2]), 1);
    EXPECT_EQ(kv.check_invariants(), "");

    // Writing again into a block that is now its own copies nothing.
    a.push_back(101);
    ASSERT_TRUE(kv.allocate_slots(2, a, 0, 11, 1));
    EXPECT_TRUE(kv.take_block_copies().empty());
    a.push_back(102);  // a fresh fourth block: allocated, not copied
    ASSERT_TRUE(kv.allocate_slots(2, a, 0, 12, 1));
    EXPECT_TRUE(kv.take_block_copies().empty());
    EXPECT_EQ(kv.block_table(2).size(), 4u);

    for (uint64_t s : {2u, 1u, 3u}) kv.free(s);
    EXPECT_EQ(kv.usage(), 0.0);
    EXPECT_EQ(kv.pool().num_free_blocks(), 16);
    EXPECT_EQ(kv.check_invariants(), "");
  }
}

TEST(KVCacheFork, FullBlocksAreNeverCopied) {
  KVCacheManager kv(8, 4, true);
  std::vector<int32_t> prompt = iota_tokens(8);  // exactly two full blocks
  ASSERT_TRUE(kv.allocate_slots(1, prompt, 0, 0, 8));
  kv.fork(1, 2);
  std::vector<int32_t> a = prompt, b = prompt;
  a.push_back(7), b.push_back(9);
  ASSERT_TRUE(kv.allocate_slots(1, a, 0, 8, 1));
  ASSERT_TRUE(kv.allocate_slots(2, b, 0, 8, 1));
  EXPECT_TRUE(kv.take_block_copies().empty());
  EXPECT_EQ(kv.num_block_copies_total(), 0);
  EXPECT_NE(kv.block_table(1)[2], kv.block_table(2)[2]);
  EXPECT_EQ(kv.pool().ref_count(kv.block_table(1)[1]), 2);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.usage(), 0.0);
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(KVCacheFork, ACopyNeedsAFreeBlockAndFailsWithoutSideEffects) {
  KVCacheManager kv(3, 4, false);
  std::vector<int32_t> prompt = iota_tokens(6);  // one full block, one with 2 tokens
  ASSERT_TRUE(kv.allocate_slots(1, prompt, 0, 0, 6));
  kv.fork(1, 2);
  std::vector<int32_t> a = prompt;
  a.push_back(42);
  ASSERT_TRUE(kv.allocate_slots(2, a, 0, 6, 1));  // takes the last free block
  EXPECT_EQ(kv.take_block_copies().size(), 1u);
  kv.fork(2, 3);
  std::vector<int32_t> b = a;
  b.push_back(43);
  const std::vector<int32_t> before = kv.block_table(3);
  EXPECT_FALSE(kv.allocate_slots(3, b, 0, 7, 1)) << "no free block to copy into";
  EXPECT_EQ(kv.block_table(3), before);
  EXPECT_TRUE(kv.take_block_copies().empty());
  EXPECT_EQ(kv.check_invariants(), "");
  kv.free(2);  // now sequence 3 alone holds its partial block: it writes in place
  EXPECT_TRUE(kv.allocate_slots(3, b, 0, 7, 1));
  EXPECT_TRUE(kv.take_block_copies().empty());
  for (uint64_t s : {1u, 3u}) kv.free(s);
  EXPECT_EQ(kv.usage(), 0.0);
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(KVCacheFork, ForkedPrefixStaysInThePrefixCache) {
  KVCacheManager kv(16, 4, true);
  std::vector<int32_t> prompt = iota_tokens(10);
  ASSERT_TRUE(kv.allocate_slots(1, prompt, 0, 0, 10));
  kv.fork(1, 2);
  // The child's tokens fill its copy of the partial block: it is registered under its own content.
  std::vector<int32_t> a = prompt;
  a.insert(a.end(), {50, 51, 52});
  ASSERT_TRUE(kv.allocate_slots(2, a, 0, 10, 3));
  kv.take_block_copies();
  std::vector<int32_t> probe = a;
  probe.push_back(0);
  KVCacheManager::GroupBlocks cached;
  EXPECT_EQ(kv.find_cached_prefix(probe, 0, &cached), 12);
  EXPECT_EQ(cached[0], (std::vector<int32_t>{kv.block_table(2)[0], kv.block_table(2)[1], kv.block_table(2)[2]}));
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(KVCacheFork, UnknownParentIsAnError) {
  KVCacheManager kv(4, 4, true);
  EXPECT_THROW(kv.fork(7, 8), std::exception);
  ASSERT_TRUE(kv.allocate_slots(1, iota_tokens(3), 0, 0, 3));
  kv.fork(1, 2);
  EXPECT_THROW(kv.fork(1, 2), std::exception) << "the child already has blocks";
  EXPECT_EQ(kv.check_invariants(), "");
}

TEST(CpuBackend, CopyBlocksMatchesAPlainCopyInOrder) {
  for (DType kv_dtype : {DType::F32, DType::BF16}) {
    CpuBackend backend(kv_dtype == DType::F32 ? DType::F32 : DType::BF16);
    const Shape shape{6, 2, 4, 8};  // blocks, kv heads, block size, head dim
    KVCacheLayer layer{backend.empty(shape, backend.kv_cache_dtype()), backend.empty(shape, backend.kv_cache_dtype())};
    const size_t n = layer.k.nbytes(), per_block = n / 6;
    auto* k = static_cast<unsigned char*>(layer.k.raw());
    auto* v = static_cast<unsigned char*>(layer.v.raw());
    for (size_t i = 0; i < n; ++i) k[i] = static_cast<unsigned char>(i * 7 + 1), v[i] = static_cast<unsigned char>(i * 13 + 5);
    std::vector<unsigned char> ref_k(k, k + n), ref_v(v, v + n);
    // Copies run in order: block 4 receives block 1's bytes, then block 1 receives block 2's.
    const Copies copies{{1, 4}, {2, 1}, {3, 3}};
    for (const auto& [src, dst] : copies) {
      std::copy_n(ref_k.begin() + static_cast<long>(static_cast<size_t>(src) * per_block), per_block,
                  ref_k.begin() + static_cast<long>(static_cast<size_t>(dst) * per_block));
      std::copy_n(ref_v.begin() + static_cast<long>(static_cast<size_t>(src) * per_block), per_block,
                  ref_v.begin() + static_cast<long>(static_cast<size_t>(dst) * per_block));
    }
    backend.copy_blocks(layer, copies);
    EXPECT_TRUE(std::equal(ref_k.begin(), ref_k.end(), k));
    EXPECT_TRUE(std::equal(ref_v.begin(), ref_v.end(), v));
    EXPECT_THROW(backend.copy_blocks(layer, {{0, 6}}), std::exception);
  }
}
