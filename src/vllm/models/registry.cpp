#include <algorithm>
#include <map>

#include "vllm/core/error.h"
#include "vllm/loader/quantization_config.h"
#include "vllm/models/architectures.h"
#include "vllm/models/model.h"

namespace vllm {

namespace {
// Each family file contributes its architectures; listed here explicitly (rather than through
// static registration objects) so that linking a static library cannot drop one.
const std::map<std::string, Architecture>& registry() {
  static const std::map<std::string, Architecture> r = [] {
    std::map<std::string, Architecture> m;
    for (auto family : {phi_architectures, llama_architectures, qwen2_architectures, qwen3_architectures,
                        phi3_architectures, mixtral_architectures, qwen3_moe_architectures, gemma2_architectures,
                        gemma3_architectures, gpt_oss_architectures})
      for (Architecture& a : family()) m.emplace(a.name, std::move(a));
    return m;
  }();
  return r;
}
}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> out;
  for (const auto& [name, _] : registry()) out.push_back(name);
  return out;
}

const Architecture& find_architecture(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string list;
    for (const auto& n : supported_architectures()) list += (list.empty() ? "" : ", ") + n;
    throw Error("model architecture '" + name + "' is not supported; supported architectures: " + list,
                ErrorKind::kUnsupported);
  }
  return it->second;
}

std::vector<int64_t> layer_sliding_windows(const ModelConfig& config) {
  const Architecture& arch = find_architecture(config.architecture);
  if (arch.layer_sliding_windows) return arch.layer_sliding_windows(config);
  return std::vector<int64_t>(static_cast<size_t>(config.num_hidden_layers), 0);
}

std::unique_ptr<CausalLM> load_model(const std::string& dir, const ModelConfig& config, Backend& backend) {
  find_architecture(config.architecture);  // an unsupported one fails before any file is read
  return load_model(WeightStore::open_folder(dir), config, backend);
}

std::unique_ptr<CausalLM> load_model(const WeightStore& store, const ModelConfig& config, Backend& backend) {
  const Architecture& arch = find_architecture(config.architecture);
  // An FP8 checkpoint's weights are dequantized as they are read; --quantization fp8 quantizes
  // float weights online (the WeightLoader). Model files see float weights either way.
  const std::string method = resolve_quantization(config.raw, config.quantization, "config.json");
  if (method.empty()) return arch.create(config, store, backend);
  WeightStore quantized = store;
  if (auto checkpoint = parse_quantization_config(config.raw, "config.json")) {
    quantized.set_fp8_checkpoint(std::move(*checkpoint));
  } else {
    quantized.set_online_quantization(method);
  }
  return arch.create(config, quantized, backend);
}

}  // namespace vllm
