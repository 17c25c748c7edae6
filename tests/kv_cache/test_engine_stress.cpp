// Randomised stress of scheduling and the KV cache (seeded): thousands of arrivals, aborts,
// priorities and lengths on a tiny pool with prefix caching. After every step no block is
// leaked or freed twice and reference counts match the block tables; every request ends; and
// every finished request's tokens equal a solo run of the same prompt.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "../engine/golden.h"
#include "vllm/engine/engine_core.h"

using namespace vllm;

namespace {

EngineCoreRequest make_request(const std::vector<int32_t>& prompt, int max_tokens, int priority) {
  EngineCoreRequest r;
  r.prompt_token_ids = prompt;
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.finalize();
  r.priority = priority;
  return r;
}

std::vector<int32_t> solo(EngineCore& engine, const std::vector<int32_t>& prompt, int max_tokens) {
  uint64_t id = engine.add_request(make_request(prompt, max_tokens, 0));
  std::vector<int32_t> out;
  while (engine.has_unfinished())
    for (const auto& o : engine.step())
      if (o.seq_id == id) out.insert(out.end(), o.new_token_ids.begin(), o.new_token_ids.end());
  return out;
}

void stress(const std::string& policy, uint64_t seed, int num_requests) {
  EngineConfig c;
  c.model = test::materialize_model("tiny-qwen2");
  c.dtype = "float32";
  c.block_size = 4;
  c.num_kv_blocks = 48;  // ~190 tokens: constant preemption
  c.max_num_batched_tokens = 32;
  c.max_num_seqs = 12;
  c.scheduling_policy = policy;
  c.enable_prefix_caching = true;
  EngineCore engine(c);
  EngineConfig solo_config = c;
  solo_config.num_kv_blocks = 256;
  solo_config.enable_prefix_caching = false;
  EngineCore reference(solo_config);

  std::mt19937_64 rng(seed);
  // Prompts drawn from a few shared prefixes so the prefix cache is exercised.
  std::vector<std::vector<int32_t>> prefixes(6);
  for (auto& p : prefixes)
    for (int i = 0; i < 12; ++i) p.push_back(static_cast<int32_t>(rng() % 32000));
  struct Live {
    std::vector<int32_t> prompt, out;
    int max_tokens;
    std::vector<uint64_t> group;  // the request's sequences: itself and its n > 1 branches
  };
  std::map<uint64_t, Live> live;
  std::map<std::pair<std::vector<int32_t>, int>, std::vector<int32_t>> solo_cache;
  int arrived = 0, finished = 0, aborted = 0, steps = 0, sequences = 0;
  while (arrived < num_requests || engine.has_unfinished()) {
    // Arrivals.
    int burst = static_cast<int>(rng() % 4);
    for (int i = 0; i < burst && arrived < num_requests; ++i, ++arrived) {
      std::vector<int32_t> prompt = prefixes[rng() % prefixes.size()];
      prompt.resize(1 + rng() % prompt.size());
      int extra = static_cast<int>(rng() % 20);
      for (int k = 0; k < extra; ++k) prompt.push_back(static_cast<int32_t>(rng() % 32000));
      int max_tokens = 1 + static_cast<int>(rng() % 24);
      EngineCoreRequest req = make_request(prompt, max_tokens, static_cast<int>(rng() % 3));
      // Some requests fork into n > 1 greedy branches: each must still equal the solo run.
      const int branches = rng() % 6 == 0 ? 1 + static_cast<int>(rng() % 3) : 0;
      for (int b = 0; b < branches; ++b) req.branches.push_back({0, "", req.params});
      std::vector<uint64_t> group;  // the branches, then the request itself
      const uint64_t id = engine.add_request(std::move(req), &group);
      group.push_back(id);
      for (uint64_t id : group) live[id] = {prompt, {}, max_tokens, group};
      sequences += static_cast<int>(group.size());
    }
    // Aborts: a whole request, its branches too (forked already or not).
    if (!live.empty() && rng() % 10 == 0) {
      auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      const std::vector<uint64_t> group = it->second.group;
      for (uint64_t g : group) {  // branches first: one not forked yet is aborted through its parent
        if (!live.count(g)) continue;  // finished already
        auto out = engine.abort_request(g);
        ASSERT_TRUE(out.has_value());
        live.erase(g);
        ++aborted;
      }
    }
    for (const auto& o : engine.step()) {
      Live& l = live.at(o.seq_id);
      l.out.insert(l.out.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      if (o.finished) {
        ASSERT_EQ(static_cast<int>(l.out.size()), l.max_tokens);
        auto key = std::make_pair(l.prompt, l.max_tokens);
        if (!solo_cache.count(key)) solo_cache[key] = solo(reference, l.prompt, l.max_tokens);
        ASSERT_EQ(l.out, solo_cache[key]) << "request " << o.seq_id << " differs from its solo run";
        live.erase(o.seq_id);
        ++finished;
      }
    }
    ASSERT_EQ(engine.kv_cache().check_invariants(), "") << "after step " << steps;
    ASSERT_LT(++steps, 200000) << "requests never finish";
  }
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(finished + aborted, sequences);
  EXPECT_EQ(engine.kv_cache().usage(), 0.0);
  EXPECT_GT(engine.scheduler().stats().num_preemptions_total, 0);
  EXPECT_GT(engine.kv_cache().total_stats().hits, 0);
}

TEST(EngineStress, FcfsThousandsOfRequests) { stress("fcfs", 1, 1500); }
TEST(EngineStress, PriorityThousandsOfRequests) { stress("priority", 2, 1500); }

}  // namespace
