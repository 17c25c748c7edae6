// The architectures of each family file, collected by the registry.
#pragma once

#include <vector>

#include "vllm/models/model.h"

namespace vllm {

std::vector<Architecture> phi_architectures();
std::vector<Architecture> llama_architectures();
std::vector<Architecture> qwen2_architectures();
std::vector<Architecture> qwen3_architectures();
std::vector<Architecture> phi3_architectures();
std::vector<Architecture> mixtral_architectures();
std::vector<Architecture> qwen3_moe_architectures();
std::vector<Architecture> gemma2_architectures();
std::vector<Architecture> gemma3_architectures();
std::vector<Architecture> gpt_oss_architectures();

}  // namespace vllm
