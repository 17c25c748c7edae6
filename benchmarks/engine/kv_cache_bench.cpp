// kv_cache_bench: what the paged KV cache and automatic prefix caching buy, on the real engine.
//
//   kv_cache_bench --model DIR [--dtype bfloat16] [--only shared,waste,n8,overhead]
//
// shared    32 requests that share a 512-token prefix (plus 32 tokens of their own), 16 output
//           tokens each: hit rate on the shared blocks, and wall time with prefix caching on vs off.
//           The first request runs alone first (it fills the cache, as a system prompt would).
// waste     a mixed-length workload (prompts 16..1024 tokens, outputs 16..256): after every step,
//           KV slots allocated but holding no token, over all allocated slots (prefix caching off,
//           so that every block belongs to exactly one sequence).
// n8        peak KV blocks of n=8 sampling of one 512-token prompt: forked as LLMEngine runs n > 1
//           (the prompt computed once, its blocks shared by reference), as 8 requests of that
//           prompt sharing through the prefix cache, and as 8 requests with prompts of their own.
// overhead  a workload with no shared prefix (64 random prompts of 256 tokens, 32 output tokens):
//           throughput with prefix caching on vs off, best of 3 runs each.
//
// Greedy decoding, ignore_eos. Prints one markdown table per part and the command line.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "vllm/core/thread_pool.h"
#include "vllm/engine/engine_core.h"

using namespace vllm;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

EngineCoreRequest greedy(std::vector<int32_t> prompt, int max_tokens) {
  EngineCoreRequest r;
  r.prompt_token_ids = std::move(prompt);
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.finalize();
  return r;
}

// Runs the engine until idle; calls `after_step` after every step.
template <class F>
void drain(EngineCore& engine, F after_step) {
  while (engine.has_unfinished()) {
    engine.step();
    after_step();
  }
}

void drain(EngineCore& engine) {
  drain(engine, [] {});
}

int32_t blocks_in_use(EngineCore& e) {
  const BlockPool& p = e.kv_cache().pool();
  return p.num_blocks() - p.num_free_blocks();
}

void bench_shared(const EngineConfig& base, std::mt19937_64& rng) {
  std::printf("\n## 32 requests sharing a 512-token prefix (+32 own tokens, 16 out)\n\n");
  std::printf("| prefix caching | wall s | hit rate on shared blocks | tokens from cache | prompt tokens |\n|---|---|---|---|---|\n");
  EngineConfig probe = base;
  const int64_t vocab = EngineCore(probe).model_config().vocab_size;
  const std::vector<int32_t> prefix = random_tokens(rng, 512, vocab);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 32; ++i) {
    auto p = prefix;
    auto own = random_tokens(rng, 32, vocab);
    p.insert(p.end(), own.begin(), own.end());
    prompts.push_back(std::move(p));
  }
  for (bool caching : {true, false}) {
    EngineConfig c = base;
    c.enable_prefix_caching = caching;
    EngineCore engine(c);
    const double t0 = now();
    engine.add_request(greedy(prompts[0], 16));
    drain(engine);
    const auto before = engine.kv_cache().total_stats();
    int64_t cached = 0;
    std::vector<uint64_t> ids;
    for (int i = 1; i < 32; ++i) ids.push_back(engine.add_request(greedy(prompts[static_cast<size_t>(i)], 16)));
    while (engine.has_unfinished())
      for (const auto& o : engine.step())
        if (o.finished) cached += o.num_cached_tokens;
    const double dt = now() - t0;
    const auto after = engine.kv_cache().total_stats();
    const double shared_tokens = 31.0 * 512;
    std::printf("| %s | %.2f | %.1f%% | %lld | %lld |\n", caching ? "on" : "off", dt, 100.0 * static_cast<double>(cached) / shared_tokens,
                static_cast<long long>(after.hits - before.hits), static_cast<long long>(31 * 544));
  }
}

void bench_waste(const EngineConfig& base, std::mt19937_64& rng) {
  std::printf("\n## KV slots allocated but unused, mixed lengths (48 requests, prompts 16..1024, outputs 16..256)\n\n");
  EngineConfig c = base;
  c.enable_prefix_caching = false;
  EngineCore engine(c);
  const int64_t vocab = engine.model_config().vocab_size;
  std::vector<uint64_t> ids;
  std::uniform_int_distribution<int> plen(16, 1024), olen(16, 256);
  for (int i = 0; i < 48; ++i) ids.push_back(engine.add_request(greedy(random_tokens(rng, plen(rng), vocab), olen(rng))));
  double allocated = 0, used = 0, worst = 0;
  int64_t steps = 0;
  drain(engine, [&] {
    int64_t tokens = 0;
    for (uint64_t id : ids)
      if (Request* r = engine.scheduler().find(id)) tokens += r->num_computed_tokens;
    const double slots = static_cast<double>(blocks_in_use(engine)) * c.block_size;
    if (slots == 0) return;
    allocated += slots;
    used += static_cast<double>(tokens);
    worst = std::max(worst, 1.0 - static_cast<double>(tokens) / slots);
    ++steps;
  });
  std::printf("| block size | steps | unused slots (mean over steps, slot-weighted) | worst step |\n|---|---|---|---|\n");
  std::printf("| %d | %lld | %.2f%% | %.2f%% |\n", c.block_size, static_cast<long long>(steps), 100.0 * (1.0 - used / allocated),
              100.0 * worst);
}

void bench_n8(const EngineConfig& base, std::mt19937_64& rng) {
  std::printf("\n## n=8 sampling of one 512-token prompt vs 8 separate requests (64 tokens out each)\n\n");
  std::printf("| workload | peak KV blocks | peak KV MiB | partial blocks copied |\n|---|---|---|---|\n");
  enum class Mode { kForked, kPrefixCache, kSeparate };
  for (Mode mode : {Mode::kForked, Mode::kPrefixCache, Mode::kSeparate}) {
    EngineCore engine(base);
    const int64_t vocab = engine.model_config().vocab_size;
    const auto prompt = random_tokens(rng, 512, vocab);
    auto sample = [&](const std::vector<int32_t>& p, int seed) {
      EngineCoreRequest r = greedy(p, 64);
      r.params.temperature = 1.0;
      r.params.seed = seed;
      r.params.finalize();
      return r;
    };
    if (mode == Mode::kForked) {
      // What LLMEngine does for n = 8: one request whose prompt is computed once, forked into 8
      // sequences at the first sampled token (sharing every prompt block by reference).
      EngineCoreRequest r = sample(prompt, 0);
      for (int i = 1; i < 8; ++i) r.branches.push_back({0, "", sample(prompt, i).params});
      engine.add_request(std::move(r));
    } else {
      // 8 requests: of the same prompt (sharing its full blocks through the prefix cache, each
      // recomputing the last), or each with its own prompt.
      for (int i = 0; i < 8; ++i)
        engine.add_request(sample(mode == Mode::kPrefixCache ? prompt : random_tokens(rng, 512, vocab), i));
    }
    int32_t peak = 0;
    drain(engine, [&] { peak = std::max(peak, blocks_in_use(engine)); });
    const double mib = static_cast<double>(peak) *
                       static_cast<double>(engine.runner().bytes_per_block()) /
                       (1 << 20);
    const char* name = mode == Mode::kForked        ? "n=8 of one prompt (forked)"
                       : mode == Mode::kPrefixCache ? "8 requests of the same prompt (prefix cache)"
                                                    : "8 requests, own prompts";
    std::printf("| %s | %d | %.1f | %lld |\n", name, peak, mib,
                static_cast<long long>(engine.kv_cache().num_block_copies_total()));
  }
}

void bench_overhead(const EngineConfig& base, std::mt19937_64& rng) {
  std::printf("\n## Prefix caching overhead with no shared prefix (64 prompts of 256 random tokens, 32 out)\n\n");
  std::printf("| prefix caching | best wall s of 3 | total tok/s |\n|---|---|---|\n");
  std::vector<std::vector<int32_t>> prompts;
  const int64_t vocab = EngineCore(base).model_config().vocab_size;
  for (int i = 0; i < 64; ++i) prompts.push_back(random_tokens(rng, 256, vocab));
  double best[2] = {1e30, 1e30};
  for (int run = 0; run < 3; ++run)
    for (int caching = 1; caching >= 0; --caching) {
      EngineConfig c = base;
      c.enable_prefix_caching = caching == 1;
      EngineCore engine(c);
      const double t0 = now();
      for (const auto& p : prompts) engine.add_request(greedy(p, 32));
      drain(engine);
      best[caching] = std::min(best[caching], now() - t0);
    }
  const double tokens = 64.0 * (256 + 32);
  std::printf("| on | %.3f | %.1f |\n| off | %.3f | %.1f |\n", best[1], tokens / best[1], best[0], tokens / best[0]);
  std::printf("\noverhead of prefix caching: %.2f%%\n", 100.0 * (best[1] / best[0] - 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"KV cache and prefix caching benchmarks", "kv_cache_bench"};
  EngineConfig config;
  config.dtype = "bfloat16";
  config.kv_cache_space_gib = 2;
  std::vector<std::string> only{"shared", "waste", "n8", "overhead"};
  app.add_option("--model", config.model, "Model folder")->required();
  app.add_option("--dtype", config.dtype)->capture_default_str();
  app.add_option("--block-size", config.block_size)->capture_default_str();
  app.add_option("--kv-cache-space", config.kv_cache_space_gib)->capture_default_str();
  app.add_option("--only", only, "Parts to run")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  config.device = "cpu";

  std::printf("# kv_cache_bench --model %s --dtype %s --block-size %d (%d threads)\n", config.model.c_str(),
              config.dtype.c_str(), config.block_size, ThreadPool::global().num_threads());
  std::mt19937_64 rng(7);
  auto want = [&](const char* name) { return std::find(only.begin(), only.end(), name) != only.end(); };
  if (want("shared")) bench_shared(config, rng);
  if (want("waste")) bench_waste(config, rng);
  if (want("n8")) bench_n8(config, rng);
  if (want("overhead")) bench_overhead(config, rng);
  return 0;
}
