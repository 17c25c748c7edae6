// Automatic prefix caching never changes an output. The same workload (prompts that share
// prefixes, repeated prompts, n > 1 with seeds, mixed priorities, and a second wave that finds
// the first wave's freed blocks in the cache) runs with caching on and off, at block sizes 1, 16
// and 32, with a pool large enough for everything and with one small enough to force
// preemptions. Every run must give the reference's tokens exactly (the CPU kernels are batch
// invariant), and the caching runs must really have served tokens from the cache.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "../engine/golden.h"
#include "vllm/engine/llm_engine.h"

using namespace vllm;

namespace {

struct Job {
  std::string id;
  std::vector<int32_t> prompt;
  SamplingParams params;
  int priority = 0;
};

// Two waves of requests; the second repeats prompts of the first.
std::vector<std::vector<Job>> workload(int64_t vocab) {
  std::mt19937_64 rng(2024);
  auto tokens = [&](int n) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab)));
    return t;
  };
  std::vector<std::vector<int32_t>> prefixes{tokens(40), tokens(33), tokens(64)};
  std::vector<std::vector<Job>> waves(2);
  for (int i = 0; i < 10; ++i) {
    Job j;
    j.id = "r" + std::to_string(i);
    j.prompt = prefixes[static_cast<size_t>(i % 3)];
    auto own = tokens(1 + static_cast<int>(rng() % 20));
    if (i != 4) j.prompt.insert(j.prompt.end(), own.begin(), own.end());  // r4: a bare prefix
    j.params.temperature = 0;
    j.params.max_tokens = 12 + static_cast<int>(rng() % 14);
    j.params.ignore_eos = true;
    j.priority = static_cast<int>(rng() % 3);
    if (i % 4 == 1) {  // n = 3 seeded samples: the children share the prompt's blocks
      j.params.n = 3;
      j.params.temperature = 0.8;
      j.params.seed = 100 + i;
    }
    waves[0].push_back(j);
    if (i % 2 == 0) {
      j.id += "-again";
      waves[1].push_back(j);
    }
  }
  return waves;
}

struct RunResult {
  std::map<std::string, std::vector<std::vector<int32_t>>> tokens;  // request -> one list per sample
  int64_t cached_tokens = 0;
  int64_t preemptions = 0;
  double final_usage = 0;
};

RunResult run(const std::string& model, int block_size, bool caching, int64_t pool_tokens) {
  EngineConfig c;
  c.model = test::materialize_model(model);
  c.dtype = "float32";
  c.block_size = block_size;
  // Room for pool_tokens of context (and, for sliding-window layers, what their groups hold).
  c.num_kv_blocks = test::kv_pool_blocks(c.model, pool_tokens, block_size, 48);
  c.enable_prefix_caching = caching;
  c.scheduling_policy = "priority";
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 48;  // chunked prefill of the longer prompts
  LLMEngine engine(c);
  RunResult r;
  for (const auto& wave : workload(engine.model_config().vocab_size)) {
    for (const auto& j : wave) {
      AddRequestOptions o;
      o.priority = j.priority;
      engine.add_request(j.id, PromptInput::from_ids(j.prompt), j.params, o);
    }
    while (engine.has_unfinished())
      for (auto& out : engine.step()) {
        if (!out.finished) continue;
        r.cached_tokens += out.num_cached_tokens;
        auto& lists = r.tokens[out.request_id];
        for (const auto& s : out.outputs) lists.push_back(s.token_ids);
      }
  }
  r.preemptions = engine.core().scheduler().stats().num_preemptions_total;
  r.final_usage = engine.core().kv_cache().usage();
  EXPECT_EQ(engine.core().kv_cache().check_invariants(), "");
  return r;
}

class PrefixCachingEquivalence : public ::testing::TestWithParam<std::string> {};

TEST_P(PrefixCachingEquivalence, SameTokensOnAndOffAtEveryBlockSizeWithPreemption) {
  const std::string model = GetParam();
  const RunResult reference = run(model, 16, false, 16 * 1024);
  ASSERT_EQ(reference.tokens.size(), 15u);
  for (int bs : {1, 16, 32})
    for (bool caching : {true, false})
      for (int64_t pool : {int64_t{16 * 1024}, int64_t{192}}) {
        SCOPED_TRACE("block size " + std::to_string(bs) + (caching ? ", caching on" : ", caching off") +
                     ", pool of " + std::to_string(pool) + " tokens");
        const RunResult got = run(model, bs, caching, pool);
        EXPECT_EQ(got.tokens, reference.tokens);
        EXPECT_EQ(got.final_usage, 0.0) << "blocks still held after every request finished";
        if (caching) {
          EXPECT_GT(got.cached_tokens, 0) << "the prefix cache served nothing";
        } else {
          EXPECT_EQ(got.cached_tokens, 0);
        }
        if (pool == 192) {
          EXPECT_GT(got.preemptions, 0) << "the small pool forced no preemption";
        }
      }
}

INSTANTIATE_TEST_SUITE_P(Models, PrefixCachingEquivalence,
                         ::testing::Values("tiny-llama3", "tiny-phi", "tiny-phi3", "tiny-mixtral", "tiny-qwen3moe", "tiny-gemma3",
                                           "tiny-gemma2", "tiny-gptoss"));

}  // namespace
