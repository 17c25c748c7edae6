// A causal language model written against Backend ops, and the registry of architectures.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vllm/backends/backend.h"
#include "vllm/config/model_config.h"
#include "vllm/loader/safetensors.h"

namespace vllm {

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  // Runs one flattened step and returns float32 host logits [R, vocab] for in.logits_indices.
  virtual Tensor forward(const ForwardInputs& in, std::vector<KVCacheLayer>& kv_cache) = 0;

  const ModelConfig& config() const { return config_; }
  AttentionShape attention_shape() const {
    return {config_.num_attention_heads, config_.num_key_value_heads, config_.head_dim};
  }
  size_t weight_bytes() const { return weight_bytes_; }

 protected:
  CausalLM(const ModelConfig& config, Backend& backend) : config_(config), backend_(backend) {}
  ModelConfig config_;
  Backend& backend_;
  size_t weight_bytes_ = 0;
};

// One parameter tensor as Hugging Face names it.
struct ParamSpec {
  std::string name;
  Shape shape;
};

struct Architecture {
  std::string name;  // e.g. "LlamaForCausalLM"
  // Every parameter the transformers class has for this config (names and shapes).
  std::function<std::vector<ParamSpec>(const ModelConfig&)> parameters;
  std::function<std::unique_ptr<CausalLM>(const ModelConfig&, const WeightStore&, Backend&)> create;
};

// The architecture named by config.architecture; an unsupported one is an error listing the supported.
const Architecture& find_architecture(const std::string& name);
std::vector<std::string> supported_architectures();

// Loads the model of a folder (config.json + safetensors) onto the backend.
std::unique_ptr<CausalLM> load_model(const std::string& dir, const ModelConfig& config, Backend& backend);
// The model of `config` from any store of its tensors (a folder's, or recipe_weight_store()'s).
std::unique_ptr<CausalLM> load_model(const WeightStore& store, const ModelConfig& config, Backend& backend);

}  // namespace vllm
