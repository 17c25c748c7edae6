// Test helpers: materialise a reference model folder (recipe weights + tokenizer files) and
// compare engine outputs with golden.json by the rules of tests/data/README.md.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "vllm/engine/engine_core.h"

namespace vllm::test {

// tests/data (or VLLM_TEST_DATA_DIR).
std::string data_dir();
// A folder of this process's own under the system's temp folder (vllm-<name>-<pid>), made on the
// first call and removed with everything in it when the process exits: for the models and files a
// test binary writes (tens of MB).
std::filesystem::path scratch_dir(const std::string& name);
// tests/data/models/<name>/golden.json
nlohmann::json load_golden(const std::string& model);
// A model folder for <name>: config, generation config, tokenizer files, and the recipe's
// weights (cached under the build tree; regenerated if missing). `shards` > 1 writes an index.
std::string materialize_model(const std::string& model, int shards = 2);

struct GenerationResult {
  std::vector<int32_t> ids;
  std::vector<TokenLogprobs> logprobs;         // per generated token
  std::vector<TokenLogprobs> prompt_logprobs;  // for prompt positions 1..n-1
  std::string finish_reason;
};

// Why the model in `dir` cannot run on VLLM_TEST_DEVICE (the backend's kUnsupported error, e.g.
// a sliding window on the GPU), or "" when it can or the tests run on the CPU. Tests skip such
// models there rather than fail.
std::string unsupported_on_test_device(const std::string& dir);

// A pool size in blocks for the model in `dir` that holds `tokens` tokens of context in each
// full-attention KV cache group and, in each sliding-window group (kv_cache/kv_cache_layout.h),
// the most it holds: a window plus a prefill chunk of `chunk` tokens. For a model without
// sliding layers: ceil(tokens / block_size).
int64_t kv_pool_blocks(const std::string& dir, int64_t tokens, int block_size, int64_t chunk);

// Runs every prompt through one engine (all queued at once) with greedy sampling, on
// VLLM_TEST_DEVICE when it is set.
std::vector<GenerationResult> run_greedy(EngineConfig config, const std::vector<std::vector<int32_t>>& prompts,
                                         int max_tokens, int logprobs, int prompt_logprobs,
                                         int64_t* num_preemptions = nullptr);
// The same on config.device whatever VLLM_TEST_DEVICE says (tests that compare two devices, or
// check what only the CPU promises).
std::vector<GenerationResult> run_greedy_on(EngineConfig config, const std::vector<std::vector<int32_t>>& prompts,
                                            int max_tokens, int logprobs, int prompt_logprobs,
                                            int64_t* num_preemptions = nullptr);

// The check_logprobs_close rule: returns "" if `ours` agrees with `golden` greedy ids under it,
// else a description of the first violation. Also returns the first divergence step (or n).
std::string check_logprobs_close(const std::vector<int32_t>& ref_ids, const std::vector<std::vector<std::pair<int32_t, double>>>& ref_top,
                                 const GenerationResult& ours, size_t* first_divergence);

}  // namespace vllm::test
