#include <algorithm>
#include <map>

#include "vllm/core/error.h"
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

std::unique_ptr<CausalLM> load_model(const std::string& dir, const ModelConfig& config, Backend& backend) {
  find_architecture(config.architecture);  // an unsupported one fails before any file is read
  return load_model(WeightStore::open_folder(dir), config, backend);
}

std::unique_ptr<CausalLM> load_model(const WeightStore& store, const ModelConfig& config, Backend& backend) {
  return find_architecture(config.architecture).create(config, store, backend);
}

}  // namespace vllm
