// The weight tool reproduces every tensor of the reference models bit for bit; --load-format dummy
// makes the same weights in memory; the real-shape configs have the published sizes.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <filesystem>

#include "golden.h"
#include "vllm/engine/engine_core.h"
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

// The Hub's MoE checkpoints keep each expert as three matrices (transformers 4's layout); the
// weight tool writes transformers 5's fused tensors. A checkpoint rewritten into the per-expert
// names (and, for Mixtral, block_sparse_moe.*) must load into the same model: same greedy ids,
// same log-probs to the last bit.
class PerExpertCheckpoint : public ::testing::TestWithParam<std::string> {};

TEST_P(PerExpertCheckpoint, LoadsTheSameModelAsTheFusedOne) {
  namespace fs = std::filesystem;
  const std::string model = GetParam();
  const bool mixtral = model == "tiny-mixtral";
  const std::string fused_dir = test::materialize_model(model, 1);
  const std::string split_dir = fs::path(fused_dir).parent_path() / (model + "-per-expert");
  fs::remove_all(split_dir);
  fs::create_directories(split_dir);
  for (const auto& f : fs::directory_iterator(fused_dir))
    if (f.path().extension() != ".safetensors") fs::copy(f.path(), split_dir / f.path().filename());

  const std::string moe = mixtral ? "block_sparse_moe." : "mlp.";
  const std::string gate = mixtral ? "w1" : "gate_proj", up = mixtral ? "w3" : "up_proj", down = mixtral ? "w2" : "down_proj";
  WeightStore store = WeightStore::open_folder(fused_dir);
  std::vector<std::pair<std::string, Tensor>> out;
  int rewritten = 0;
  for (const std::string& name : store.names()) {
    Tensor t = store.get(name);
    // "model.layers.<i>.mlp.{gate.weight, experts.gate_up_proj, experts.down_proj}" (std::regex
    // is avoided: GCC 12's <regex> trips -Wmaybe-uninitialized in the sanitizer build).
    const std::string prefix = "model.layers.";
    const size_t layer_end = name.find('.', prefix.size());
    const std::string layer = layer_end == std::string::npos ? "" : name.substr(0, layer_end + 1);
    const std::string rest = layer.empty() ? "" : name.substr(layer.size());
    const bool is_router = rest == "mlp.gate.weight", is_down = rest == "mlp.experts.down_proj";
    if (name.rfind(prefix, 0) != 0 || !(is_router || is_down || rest == "mlp.experts.gate_up_proj")) {
      out.emplace_back(name, t);
      continue;
    }
    ++rewritten;
    if (is_router) {
      out.emplace_back(layer + moe + "gate.weight", t);
      continue;
    }
    const int64_t E = t.shape()[0], rows = t.shape()[1], cols = t.shape()[2];
    Tensor flat = t.view({E * rows, cols});
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = layer + moe + "experts." + std::to_string(e) + ".";
      if (is_down) {
        out.emplace_back(ep + down + ".weight", flat.slice_rows(e * rows, (e + 1) * rows));
      } else {
        out.emplace_back(ep + gate + ".weight", flat.slice_rows(e * rows, e * rows + rows / 2));
        out.emplace_back(ep + up + ".weight", flat.slice_rows(e * rows + rows / 2, (e + 1) * rows));
      }
    }
  }
  ASSERT_GT(rewritten, 0) << "no fused expert tensors in " << fused_dir;
  write_safetensors(split_dir + "/model.safetensors", out);

  auto golden = test::load_golden(model);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& g : golden["generation"]) prompts.push_back(g["prompt_ids"].get<std::vector<int32_t>>());
  auto run = [&](const std::string& dir) {
    EngineConfig c;
    c.model = dir;
    c.dtype = "float32";
    c.num_kv_blocks = 1024;
    return test::run_greedy(c, prompts, 8, 5, 0);
  };
  auto fused = run(fused_dir), split = run(split_dir);
  ASSERT_EQ(fused.size(), split.size());
  for (size_t p = 0; p < fused.size(); ++p) {
    EXPECT_EQ(fused[p].ids, split[p].ids) << "prompt " << p;
    for (size_t s = 0; s < fused[p].logprobs.size() && s < split[p].logprobs.size(); ++s)
      EXPECT_EQ(fused[p].logprobs[s].logprob, split[p].logprobs[s].logprob)
          << "prompt " << p << " step " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(MoeModels, PerExpertCheckpoint, ::testing::Values("tiny-mixtral", "tiny-qwen3moe"));

}  // namespace

// --load-format dummy: the recipe's weights made in memory are the weight tool's files, bit for
// bit, and an engine over a folder holding only config.json gives what the written folder gives.
namespace {

namespace fs = std::filesystem;

fs::path scratch_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("vllm-test-dummy-" + std::to_string(getuid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(DummyWeights, RecipeStoreEqualsTheWeightTool) {
  for (const char* model : {"tiny-qwen3moe", "tiny-phi", "tiny-llama3"}) {
    const auto golden = test::load_golden(model);
    const std::string dir = test::materialize_model(model, 1);
    const ModelConfig config = ModelConfig::from_folder(dir);
    WeightStore files = WeightStore::open_folder(dir);
    WeightStore made = recipe_weight_store(config, golden["weights"]["seed"].get<uint64_t>(),
                                           parse_dtype(golden["weights"]["dtype"].get<std::string>()));
    EXPECT_EQ(made.names(), files.names()) << model;
    for (const std::string& name : files.names()) {
      Tensor a = files.get(name), b = made.get(name);
      ASSERT_EQ(a.shape(), b.shape()) << model << " " << name;
      ASSERT_EQ(a.dtype(), b.dtype()) << model << " " << name;
      ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << model << " " << name;
    }
    EXPECT_THROW(made.get("model.no_such_tensor"), Error);
    EXPECT_THROW(made.get("model.norm.weight", {1}), Error);  // the shape check holds for made tensors too
  }
}

TEST(DummyWeights, EngineNeedsOnlyConfigJson) {
  for (const char* model : {"tiny-qwen3moe", "tiny-llama2"}) {
    const fs::path config = fs::path(test::data_dir()) / "models" / model / "config.json";
    // The weight tool's folder (seed 0, bfloat16) and a folder with config.json alone.
    const fs::path written = scratch_dir(std::string(model) + "-written"), bare = scratch_dir(std::string(model) + "-bare");
    write_random_model(config.string(), written.string(), {0, DType::BF16, 1});
    fs::copy_file(config, bare / "config.json");
    EngineConfig c;
    c.device = "cpu";
    c.dtype = "bfloat16";
    c.kv_cache_space_gib = 0.25;
    c.model = written.string();
    const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 200, 31}, {7}, {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}};
    const auto want = test::run_greedy(c, prompts, 6, 3, 0);
    c.model = bare.string();
    c.load_format = "dummy";
    const auto got = test::run_greedy(c, prompts, 6, 3, 0);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].ids, want[i].ids) << model << " prompt " << i;
      ASSERT_EQ(got[i].logprobs.size(), want[i].logprobs.size());
      for (size_t s = 0; s < got[i].logprobs.size(); ++s)
        EXPECT_EQ(got[i].logprobs[s].logprob, want[i].logprobs[s].logprob) << model << " prompt " << i << " step " << s;
    }
    // The bare folder cannot load without --load-format dummy: its weights are missing.
    c.load_format = "auto";
    EXPECT_THROW(EngineCore{c}, Error);
  }
}

TEST(DummyWeights, UnknownLoadFormatIsAnError) {
  const fs::path bare = scratch_dir("bad-format");
  fs::copy_file(fs::path(test::data_dir()) / "models" / "tiny-llama2" / "config.json", bare / "config.json");
  EngineConfig c;
  c.device = "cpu";
  c.model = bare.string();
  c.load_format = "pt";
  try {
    EngineCore engine(c);
    FAIL() << "--load-format pt was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("dummy"), std::string::npos) << e.what();
  }
}

// The real-shape configs of tests/data/configs (written from the Hub's config.json files) give the
// published parameter counts: through the architecture's own parameter list where vllm-cpp
// supports it, else (Gemma 3) by its text model's formula.
TEST(RealShapeConfigs, ParameterCountsAreThePublishedOnes) {
  struct Want {
    const char* file;
    int64_t params;  // the safetensors total of the Hub checkpoint (Gemma 3 4B: its language model)
  };
  for (Want w : {Want{"qwen3-30b-a3b", 30532122624}, Want{"mixtral-8x7b", 46702792704}, Want{"phi-3-mini", 3821079552},
                 Want{"gemma-3-1b", 999885952}, Want{"gemma-3-4b", 3880263168}}) {
    const fs::path path = fs::path(test::data_dir()) / "configs" / (std::string(w.file) + ".json");
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    nlohmann::json j = nlohmann::json::parse(in);
    const std::string arch = j["architectures"][0];
    int64_t total = 0;
    const auto supported = supported_architectures();
    if (std::find(supported.begin(), supported.end(), arch) != supported.end()) {
      if (arch == "Phi3ForCausalLM") {
        // Phi-3-mini-4k's sliding window (2,047 of 4,096 positions) is refused for now; its
        // parameters do not depend on it.
        EXPECT_THROW(find_architecture(arch).parameters(ModelConfig::from_json(j, path.string())), Error);
        j["sliding_window"] = nullptr;
      }
      const ModelConfig config = ModelConfig::from_json(j, path.string());
      for (const ParamSpec& p : find_architecture(arch).parameters(config)) total += shape_numel(p.shape);
    } else {
      ASSERT_EQ(arch, "Gemma3ForCausalLM") << w.file;
      const int64_t H = j["hidden_size"], I = j["intermediate_size"], L = j["num_hidden_layers"], V = j["vocab_size"];
      const int64_t q = j["num_attention_heads"].get<int64_t>() * j["head_dim"].get<int64_t>();
      const int64_t kv = j["num_key_value_heads"].get<int64_t>() * j["head_dim"].get<int64_t>();
      // Tied embeddings; per layer q/k/v/o, gate/up/down, four norms of H and q/k norms of head_dim.
      total = V * H + H + L * (2 * q * H + 2 * kv * H + 3 * H * I + 4 * H + 2 * j["head_dim"].get<int64_t>());
    }
    EXPECT_EQ(total, w.params) << w.file;
  }
}

}  // namespace
