// Data parallelism (engine/data_parallel_engine.h): the routing rule, the replicas' share of the
// cores, and two real replicas of the default model, where a repeated prompt goes to the replica
// holding its prefix even when the tie-break alone would send it elsewhere.
#include <gtest/gtest.h>

#include <future>

#include "vllm/engine/data_parallel_engine.h"

using namespace vllm;

TEST(DataParallel, PicksLongestCachedPrefixThenLeastLoadThenLowestIndex) {
  EXPECT_EQ(pick_replica({{0, 0}}), 0u);
  EXPECT_EQ(pick_replica({{0, 0}, {0, 0}}), 0u);
  EXPECT_EQ(pick_replica({{0, 3}, {0, 1}, {0, 1}}), 1u);
  EXPECT_EQ(pick_replica({{0, 0}, {2, 5}, {1, 0}}), 1u);
  EXPECT_EQ(pick_replica({{4, 9}, {4, 2}, {4, 2}}), 1u);
}

TEST(DataParallel, SplitsTheCores) {
  EXPECT_EQ(replica_cpu_threads(16, 2), 8);
  EXPECT_EQ(replica_cpu_threads(2, 2), 1);
  EXPECT_EQ(replica_cpu_threads(2, 4), 1);
  EXPECT_EQ(replica_cpu_threads(7, 1), 7);
}

TEST(DataParallel, RejectsBadSizes) {
  EngineConfig c;
  c.model = VLLM_DEFAULT_MODEL_DIR;
  c.device = "cpu";
  c.data_parallel_size = 0;
  EXPECT_THROW(DataParallelEngine(c, 0), Error);
}

namespace {
// Runs a request to the end; returns its final output.
RequestOutput run(DataParallelEngine& dp, const std::string& id, std::vector<int32_t> ids, int max_tokens = 2) {
  auto done = std::make_shared<std::promise<RequestOutput>>();
  auto result = done->get_future();
  SamplingParams p;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  dp.add_request(
      id, PromptInput::from_ids(std::move(ids)), p, {},
      [done](RequestOutput&& o) {
        if (o.finished) done->set_value(std::move(o));
      },
      [done](const Error& e) { done->set_exception(std::make_exception_ptr(e)); });
  return result.get();
}

int64_t finished(const DataParallelEngine& dp, size_t replica, const std::string& reason) {
  const auto m = dp.metrics(replica).request_success;
  auto it = m.find(reason);
  return it == m.end() ? 0 : it->second;
}
}  // namespace

TEST(DataParallel, RoutesARepeatedPromptToTheReplicaThatCachedIt) {
  EngineConfig c;
  c.model = VLLM_DEFAULT_MODEL_DIR;
  c.device = "cpu";
  c.dtype = "float32";
  c.kv_cache_space_gib = 0.05;
  c.data_parallel_size = 2;
  DataParallelEngine dp(c, 0);
  ASSERT_EQ(dp.num_replicas(), 2u);

  // A long request holds replica 0 (both idle: the lowest index), so the prompt goes to replica 1.
  auto held = std::make_shared<std::promise<void>>();
  auto held_done = held->get_future();
  SamplingParams long_params;
  long_params.ignore_eos = true;
  long_params.max_tokens.reset();  // to the model's length, unless aborted first
  dp.add_request("hold", PromptInput::from_ids({5, 6, 7}), long_params, {},
                 [held](RequestOutput&& o) {
                   if (o.finished) held->set_value();
                 },
                 [held](const Error& e) { held->set_exception(std::make_exception_ptr(e)); });
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 70; ++i) prompt.push_back(100 + i * 3);
  run(dp, "a1", prompt);
  EXPECT_EQ(finished(dp, 1, "length"), 1);
  EXPECT_GE(dp.replica(1).cached_blocks().size(), 4u);
  EXPECT_EQ(dp.replica(0).cached_blocks().cached_prefix_blocks(prompt_block_hashes(prompt, c.block_size, 0)), 0u);
  dp.abort("hold");
  held_done.get();

  // Both idle now: only the cached prefix sends the repeat to replica 1, where it hits.
  const int64_t hits_before = dp.metrics(1).prefix_cache_hits;
  run(dp, "a2", prompt);
  EXPECT_EQ(finished(dp, 1, "length"), 2);
  EXPECT_EQ(dp.metrics(1).prefix_cache_hits - hits_before, (70 - 1) / 16 * 16);
  // A prompt nobody holds goes to the lowest index. (The held request may have finished by
  // length before its abort: count from here.)
  const int64_t before = finished(dp, 0, "length");
  run(dp, "b", {9, 8, 7, 6, 5, 4, 3, 2, 1, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  EXPECT_EQ(finished(dp, 0, "length"), before + 1);
  dp.shutdown(false);
}
