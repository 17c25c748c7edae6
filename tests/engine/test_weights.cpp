// The weight tool reproduces every tensor of the reference models bit for bit.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "golden.h"
#include "vllm/loader/safetensors.h"
#include "vllm/models/model.h"
#include "vllm/models/random_weights.h"

using namespace vllm;

namespace {

std::string sha256_hex(const void* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

class ReferenceWeights : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceWeights, EveryTensorMatchesItsSha256) {
  const std::string model = GetParam();
  auto golden = test::load_golden(model);
  const std::string dir = test::materialize_model(model, 3);
  WeightStore store = WeightStore::open_folder(dir);
  ModelConfig config = ModelConfig::from_folder(dir);
  auto params = find_architecture(config.architecture).parameters(config);
  const auto& tensors = golden["weights"]["tensors"];
  ASSERT_EQ(params.size(), tensors.size()) << "the architecture's parameter list differs from transformers'";
  EXPECT_EQ(store.names().size(), tensors.size());
  for (const auto& t : tensors) {
    const std::string name = t["name"];
    Tensor w = store.get(name, t["shape"].get<Shape>());
    EXPECT_EQ(dtype_name(w.dtype()), t["dtype"].get<std::string>()) << name;
    EXPECT_EQ(sha256_hex(w.raw(), w.nbytes()), t["sha256"].get<std::string>()) << name;
    // "first" holds up to 4 values (GPT-OSS's sinks have 3).
    ASSERT_EQ(t["first"].size(), std::min<size_t>(4, static_cast<size_t>(w.numel()))) << name;
    for (size_t i = 0; i < t["first"].size(); ++i)
      EXPECT_FLOAT_EQ(w.get_float(static_cast<int64_t>(i)), t["first"][i].get<float>()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceWeights,
                         ::testing::Values("tiny-phi", "tiny-llama2", "tiny-llama3", "tiny-qwen3", "tiny-qwen2", "tiny-phi3",
                                           "tiny-mixtral", "tiny-qwen3moe", "tiny-gemma3", "tiny-gemma2", "tiny-gptoss"));

}  // namespace
