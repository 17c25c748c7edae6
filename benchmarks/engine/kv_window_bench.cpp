// kv_window_bench: the KV memory one sequence holds when sliding-window layers give back the
// blocks their window has passed (KV cache groups, kv_cache/kv_cache_layout.h), against every
// layer keeping every block. It runs the engine's KVCacheManager on the layout the model's config
// gives (no weights are loaded): one sequence prefilled in chunks, its blocks counted at its peak.
//
//   kv_window_bench --config tests/data/configs/gemma-3-1b.json [--config ...]
//                   [--contexts 1024,4096,32768] [--block-size 16] [--chunk 2048] [--kv-bytes 2]
//
// Prints a markdown table and the command line.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "vllm/config/model_config.h"
#include "vllm/core/error.h"
#include "vllm/kv_cache/kv_cache_layout.h"
#include "vllm/kv_cache/kv_cache_manager.h"
#include "vllm/models/model.h"

using namespace vllm;

namespace {

// Peak blocks one sequence of `context` tokens holds: prefilled `chunk` tokens a step, then one
// decode step (its first query sees the whole window).
int64_t peak_blocks(const KVCacheLayout& layout, int64_t context, int block_size, int64_t chunk) {
  const int64_t per_group = (context + block_size) / block_size + 1;
  KVCacheManager kv(static_cast<int32_t>(per_group * layout.num_groups()), block_size, false, layout.group_windows);
  const std::vector<int32_t> tokens(static_cast<size_t>(context + 1), 7);
  int64_t peak = 0;
  for (int64_t done = 0; done <= context;) {
    const int64_t n = std::min(chunk, context + 1 - done);
    if (!kv.allocate_slots(1, tokens, 0, done, n)) throw Error("kv_window_bench: the simulated pool is too small");
    peak = std::max<int64_t>(peak, kv.num_blocks_held(1));
    done += n;
  }
  return peak;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"KV memory of one sequence with sliding-window KV cache groups"};
  std::vector<std::string> configs;
  std::vector<int64_t> contexts{1024, 4096, 8192, 32768};
  int block_size = 16;
  int64_t chunk = 2048, kv_bytes = 2;
  app.add_option("--config", configs, "config.json of a model (repeatable)")->required();
  app.add_option("--contexts", contexts, "sequence lengths")->delimiter(',');
  app.add_option("--block-size", block_size, "tokens per block");
  app.add_option("--chunk", chunk, "prefill chunk (max_num_batched_tokens)");
  app.add_option("--kv-bytes", kv_bytes, "bytes per KV element (2: bfloat16, the GPU's; 4: float32)");
  CLI11_PARSE(app, argc, argv);
  try {
    std::printf("| shape | layers (sliding window) | context | every layer keeps every block | with window groups | saved |\n");
    std::printf("|---|---|---|---|---|---|\n");
    for (const std::string& path : configs) {
      std::ifstream in(path);
      if (!in) throw Error("cannot read " + path);
      const ModelConfig c = ModelConfig::from_json(nlohmann::json::parse(in), path);
      const std::vector<int64_t> windows = layer_sliding_windows(c);
      const KVCacheLayout layout = plan_kv_cache_layout(windows);
      int64_t sliding = 0, window = 0;
      for (int64_t w : windows) sliding += w > 0, window = std::max(window, w);
      const double layer_block = static_cast<double>(2 * c.num_key_value_heads * block_size * c.head_dim * kv_bytes);
      std::string name = path.substr(path.find_last_of('/') + 1);
      name = name.substr(0, name.rfind(".json"));
      for (int64_t context : contexts) {
        if (context > c.max_position_embeddings) continue;
        const double every = static_cast<double>(c.num_hidden_layers) * static_cast<double>((context + block_size) / block_size) * layer_block;
        const double grouped = static_cast<double>(peak_blocks(layout, context, block_size, chunk) * layout.group_size) * layer_block;
        std::printf("| %s | %lld (%lld of %lld tokens) | %lld | %.1f MiB | %.1f MiB | %.1fx |\n", name.c_str(),
                    static_cast<long long>(c.num_hidden_layers), static_cast<long long>(sliding),
                    static_cast<long long>(window), static_cast<long long>(context), every / (1 << 20),
                    grouped / (1 << 20), every / grouped);
      }
    }
    std::printf("\ncommand:");
    for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
    std::printf("\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kv_window_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
