// Engine arguments, with vLLM's names and defaults where they exist.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vllm {

struct EngineConfig {
  std::string model;                 // a model folder (resolved by the caller)
  std::string tokenizer;             // folder with tokenizer files ("" = the model folder)
  std::string dtype = "auto";        // auto | float32 | bfloat16 | float16
  std::string device = "auto";       // auto | cpu | cuda
  // CPU threads of this engine's backend: 0 uses the process-wide pool (VLLM_NUM_THREADS, or every
  // usable core); > 0 gives it a pool of its own (a data-parallel replica's share of the cores).
  int cpu_threads = 0;
  // vLLM's --tensor-parallel-size: every layer split over this many ranks (one backend each).
  int tensor_parallel_size = 1;
  // vLLM's --data-parallel-size: the server runs this many replicas of the engine, each with its
  // own KV cache (and, on the CPU, an even share of the cores), behind one API server
  // (engine/data_parallel_engine.h).
  int data_parallel_size = 1;
  // Which replica this engine is (DataParallelEngine sets it): its KV cache events carry it, and
  // their endpoints are offset by it, as vLLM's.
  int data_parallel_rank = 0;
  int block_size = 16;
  double kv_cache_space_gib = 4.0;   // CPU KV cache size (vLLM's VLLM_CPU_KVCACHE_SPACE)
  double gpu_memory_utilization = 0.9;
  std::optional<int64_t> num_kv_blocks;  // overrides the size computed from the above
  int max_num_seqs = 256;
  std::optional<int64_t> max_num_batched_tokens;  // default: max(2048, max_model_len) unless chunking
  std::optional<int64_t> max_model_len;           // default: the config's max_position_embeddings
  bool enable_chunked_prefill = true;
  bool enable_prefix_caching = true;
  std::string scheduling_policy = "fcfs";
  uint64_t seed = 0;
  int max_logprobs = 20;
  std::string generation_config = "auto";  // auto | vllm
  bool enforce_eager = false;
  // auto | safetensors: the folder's weights; dummy: the recipe's weights (tests/data/WEIGHTS.md,
  // seed 0, the compute dtype) made in memory, so the folder needs only config.json.
  std::string load_format = "auto";
  // vLLM's --quantization: "" (the checkpoint's own quantization_config, if any), or "fp8"
  // (online per-tensor FP8 of a float checkpoint); see loader/quantization_config.h.
  std::string quantization;
  // vLLM's --kv-cache-dtype: auto (the compute dtype); fp8 / fp8_e4m3 are the CUDA backend's.
  std::string kv_cache_dtype = "auto";
  // vLLM's --kv-events-config: a JSON object (kv_events/kv_events_config.h); "" publishes nothing.
  std::string kv_events_config;
};

}  // namespace vllm
