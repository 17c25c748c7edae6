// Deterministic model weights for any config.json, by the recipe of tests/data/WEIGHTS.md:
// each element is a splitmix64 draw keyed by (seed, FNV-1a of the tensor name, element index),
// so any implementation reproduces the same bytes. Used by tests and by benchmarks at real shapes.
#pragma once

#include <cstdint>
#include <string>

#include "vllm/config/model_config.h"
#include "vllm/core/tensor.h"
#include "vllm/loader/safetensors.h"

namespace vllm {

// The recipe's values of one tensor, stored in dtype (F32, F16 or BF16).
Tensor recipe_tensor(const std::string& name, const Shape& shape, uint64_t seed, DType dtype);

struct RandomModelOptions {
  uint64_t seed = 0;
  DType dtype = DType::BF16;
  int num_shards = 1;  // > 1 writes model-0000i-of-0000n.safetensors and an index
};

// Writes config.json (a copy of config_path) and the weights for its architecture into out_dir.
void write_random_model(const std::string& config_path, const std::string& out_dir, const RandomModelOptions& opts);

// The same weights made in memory, one tensor each time the model asks for it (--load-format
// dummy): what write_random_model would store with this seed and dtype, bit for bit, with no
// file written or read, so a shape too big for the disk (61 GB of Qwen3-30B-A3B) still loads.
WeightStore recipe_weight_store(const ModelConfig& config, uint64_t seed, DType dtype);

}  // namespace vllm
