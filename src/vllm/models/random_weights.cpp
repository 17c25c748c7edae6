#include "vllm/models/random_weights.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"
#include "vllm/loader/safetensors.h"
#include "vllm/models/model.h"

namespace vllm {

namespace fs = std::filesystem;

namespace {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Tensor recipe_tensor(const std::string& name, const Shape& shape, uint64_t seed, DType dtype) {
  double center = 0.0, half_width = 0.17;
  if (ends_with(name, ".bias")) {
    center = 0.0, half_width = 0.05;
  } else if (shape.size() == 1 && ends_with(name, ".weight")) {
    center = 1.0, half_width = 0.1;
  }
  const uint64_t key = seed ^ fnv1a64(name);
  Tensor t = Tensor::empty(shape, dtype);
  ThreadPool::global().parallel_for(t.numel(), [&](int, int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) {
      uint64_t s = key + static_cast<uint64_t>(idx + 1) * 0x9E3779B97F4A7C15ull;
      uint64_t z = (s ^ (s >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z = z ^ (z >> 31);
      double u = static_cast<double>(z >> 11) * 0x1.0p-53;
      float v = static_cast<float>(center + (2.0 * u - 1.0) * half_width);
      switch (dtype) {
        case DType::F32: t.data<float>()[idx] = v; break;
        case DType::F16: t.data<uint16_t>()[idx] = f32_to_f16(v); break;
        case DType::BF16: t.data<uint16_t>()[idx] = f32_to_bf16(v); break;
        default: break;
      }
    }
  }, 4096);
  return t;
}

WeightStore recipe_weight_store(const ModelConfig& config, uint64_t seed, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error("weights must be float32, float16 or bfloat16");
  std::map<std::string, Shape> shapes;
  for (const ParamSpec& p : find_architecture(config.architecture).parameters(config)) shapes.emplace(p.name, p.shape);
  return WeightStore::generated("'" + config.architecture + "' with dummy weights (the recipe's, seed " +
                                    std::to_string(seed) + ")",
                                std::move(shapes),
                                [seed, dtype](const std::string& name, const Shape& shape) {
                                  return recipe_tensor(name, shape, seed, dtype);
                                });
}

void write_random_model(const std::string& config_path, const std::string& out_dir, const RandomModelOptions& opts) {
  if (opts.dtype != DType::F32 && opts.dtype != DType::F16 && opts.dtype != DType::BF16)
    throw Error("weights must be float32, float16 or bfloat16");
  std::ifstream in(config_path);
  if (!in) throw Error("cannot open " + config_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
    throw Error(config_path + ": invalid JSON: " + e.what());
  }
  ModelConfig config = ModelConfig::from_json(j, config_path);
  const Architecture& arch = find_architecture(config.architecture);
  std::vector<ParamSpec> params = arch.parameters(config);

  fs::create_directories(out_dir);
  if (fs::absolute(config_path) != fs::absolute(fs::path(out_dir) / "config.json"))
    fs::copy_file(config_path, fs::path(out_dir) / "config.json", fs::copy_options::overwrite_existing);

  size_t total = 0;
  for (const auto& p : params) total += static_cast<size_t>(shape_numel(p.shape)) * dtype_size(opts.dtype);
  const int shards = std::max(1, opts.num_shards);
  const size_t per_shard = (total + static_cast<size_t>(shards) - 1) / static_cast<size_t>(shards);
  nlohmann::json weight_map = nlohmann::json::object();
  std::vector<std::pair<std::string, Tensor>> current;
  size_t current_bytes = 0;
  int shard = 0;
  auto shard_name = [&](int i) {
    if (shards == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", i + 1, shards);
    return std::string(buf);
  };
  auto flush = [&] {
    if (current.empty() && shard > 0) return;
    std::string name = shard_name(shard);
    write_safetensors((fs::path(out_dir) / name).string(), current, {{"format", "pt"}});
    for (const auto& [n, _] : current) weight_map[n] = name;
    current.clear();
    current_bytes = 0;
    ++shard;
  };
  for (const auto& p : params) {
    Tensor t = recipe_tensor(p.name, p.shape, opts.seed, opts.dtype);
    if (shards > 1 && current_bytes > 0 && current_bytes + t.nbytes() > per_shard && shard < shards - 1) flush();
    current_bytes += t.nbytes();
    current.emplace_back(p.name, std::move(t));
  }
  flush();
  // Pad with empty shards so the names' "of N" count is honest.
  while (shards > 1 && shard < shards) {
    write_safetensors((fs::path(out_dir) / shard_name(shard)).string(), {}, {{"format", "pt"}});
    ++shard;
  }
  if (shards > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    std::ofstream(fs::path(out_dir) / "model.safetensors.index.json") << index.dump(2) << "\n";
  }
}

}  // namespace vllm
