// decode_bench: decode speed of the engine at several concurrencies, next to the bound that
// memory bandwidth allows for batch-1 decode.
//
//   decode_bench --model DIR [--dtype bfloat16] [--concurrency 1,8,32] [--input-len 32]
//                [--output-len 64] [--bandwidth-gbs X] [--device cpu|cuda|auto]
//                [--tensor-parallel-size N] [--load-format auto|dummy]
//
// A benchmark of the CPU engine, so --device defaults to cpu (auto would take a visible GPU).
// Each concurrency runs that many requests of random prompts together (greedy, ignore_eos) and
// times the decode steps only (prefill excluded): output tokens/s = decoded tokens / decode time.
// The batch-1 bound is bandwidth / bytes read per token (the packed weights a token reads: all
// but the embedding table's other rows and, in MoE layers, the experts it is not routed to; plus
// the KV cache read at the mean context); pass the read bandwidth measured by membw_bench on the
// same machine.
#include <CLI/CLI.hpp>

#include <chrono>
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <random>

#include "vllm/core/thread_pool.h"
#include "vllm/engine/engine_core.h"

using namespace vllm;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Engine decode speed at several concurrencies", "decode_bench"};
  EngineConfig config;
  config.dtype = "bfloat16";
  config.kv_cache_space_gib = 2;
  config.device = "cpu";
  std::vector<int> concurrency{1, 8, 32};
  int input_len = 32, output_len = 64;
  double bandwidth = 0;
  app.add_option("--model", config.model, "Model folder")->required();
  app.add_option("--dtype", config.dtype)->capture_default_str();
  app.add_option("--concurrency", concurrency)->delimiter(',');
  app.add_option("--input-len", input_len)->capture_default_str();
  app.add_option("--output-len", output_len)->capture_default_str();
  app.add_option("--bandwidth-gbs", bandwidth, "Measured read bandwidth (membw_bench)");
  app.add_option("--device", config.device)->check(CLI::IsMember({"cpu", "cuda", "auto"}))->capture_default_str();
  app.add_option("--tensor-parallel-size", config.tensor_parallel_size, "Ranks that split every layer (CPU: threads)")
      ->capture_default_str();
  app.add_option("--load-format", config.load_format, "auto, or dummy: the recipe's weights made in memory")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  EngineCore engine(config);
  const ModelConfig& c = engine.model_config();
  const size_t weight_bytes = engine.runner().weight_bytes();  // every rank's
  const size_t bytes_per_token = engine.runner().weight_bytes_per_token();
  const int tp = config.tensor_parallel_size;
  std::printf("# decode_bench --model %s --dtype %s --input-len %d --output-len %d --bandwidth-gbs %.1f --device %s "
              "--tensor-parallel-size %d --load-format %s\n",
              config.model.c_str(), config.dtype.c_str(), input_len, output_len, bandwidth, config.device.c_str(), tp,
              config.load_format.c_str());
  std::printf("# %s, %d threads (%d rank(s) of %d), weights %.1f MiB (as packed), %.1f MiB of them read per token\n",
              c.architecture.c_str(), ThreadPool::global().num_threads(), tp,
              tp > 1 ? std::max(1, ThreadPool::global().num_threads() / tp) : ThreadPool::global().num_threads(),
              static_cast<double>(weight_bytes) / (1 << 20), static_cast<double>(bytes_per_token) / (1 << 20));
  std::printf("| sequences | output tok/s | tok/s per sequence | ms per step | batch-1 bound tok/s | %% of bound |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::mt19937_64 rng(1);
  // KV bytes per token of context, all layers, K and V.
  const double kv_per_token = static_cast<double>(2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim) *
                              (engine.compute_dtype() == DType::F32 ? 4.0 : 2.0);
  for (int n : concurrency) {
    std::map<uint64_t, int> produced;
    for (int i = 0; i < n; ++i) {
      EngineCoreRequest r;
      for (int k = 0; k < input_len; ++k)
        r.prompt_token_ids.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size)));
      r.params.temperature = 0;
      r.params.max_tokens = output_len;
      r.params.ignore_eos = true;
      r.params.finalize();
      produced[engine.add_request(std::move(r))] = 0;
    }
    // Prefill until every request has its first token; then time the pure decode steps.
    auto all_started = [&] {
      for (const auto& [id, k] : produced)
        if (k == 0) return false;
      return true;
    };
    while (!all_started())
      for (const auto& o : engine.step()) produced[o.seq_id] += static_cast<int>(o.new_token_ids.size());
    int64_t decoded = 0, steps = 0;
    const double t0 = now();
    while (engine.has_unfinished()) {
      for (const auto& o : engine.step()) decoded += static_cast<int64_t>(o.new_token_ids.size());
      ++steps;
    }
    const double dt = now() - t0;
    const double tps = static_cast<double>(decoded) / dt;
    const double mean_context = input_len + output_len / 2.0;
    const double bytes = static_cast<double>(bytes_per_token) + kv_per_token * mean_context;
    const double bound = bandwidth > 0 ? bandwidth * 1e9 / bytes : 0;
    std::printf("| %d | %.1f | %.2f | %.1f | %.1f | %s |\n", n, tps, tps / n, 1000 * dt / static_cast<double>(steps), bound,
                n == 1 && bound > 0 ? (std::to_string(static_cast<int>(100 * tps / bound + 0.5)) + "%").c_str() : "-");
  }
  return 0;
}
