// Bad model folders get a clear error naming the file and the key or tensor, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../engine/golden.h"
#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"
#include "vllm/loader/safetensors.h"

using namespace vllm;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

class BadModelFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = test::materialize_model("tiny-qwen2", 2);
    dir_ = fs::temp_directory_path() / ("vllm-bad-model-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(src_, dir_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loads the folder and returns the error message (fails the test if it loads).
  std::string load_error() {
    EngineConfig c;
    c.model = dir_.string();
    c.dtype = "float32";
    c.num_kv_blocks = 64;
    try {
      EngineCore engine(c);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "the folder loaded";
    return "";
  }
  json read_json(const std::string& name) { return json::parse(std::ifstream(dir_ / name)); }
  void write_json(const std::string& name, const json& j) { std::ofstream(dir_ / name) << j.dump(); }
  fs::path shard(int i) { return dir_ / ("model-0000" + std::to_string(i) + "-of-00002.safetensors"); }

  std::string src_;
  fs::path dir_;
};

TEST_F(BadModelFolder, MissingShard) {
  fs::remove(shard(2));
  std::string e = load_error();
  EXPECT_NE(e.find("model.safetensors.index.json"), std::string::npos) << e;
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
}

TEST_F(BadModelFolder, TruncatedFile) {
  fs::resize_file(shard(1), fs::file_size(shard(1)) - 1000);
  std::string e = load_error();
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("past the end"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor '"), std::string::npos) << e;
}

TEST_F(BadModelFolder, FileShorterThanItsHeader) {
  fs::resize_file(shard(1), 20);
  std::string e = load_error();
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("header length"), std::string::npos) << e;
}

// Rewrites a shard's header through `edit`, keeping the data.
void edit_header(const fs::path& path, const std::function<void(std::string&)>& edit) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  std::string header = bytes.substr(8, n), data = bytes.substr(8 + n);
  edit(header);
  uint64_t m = header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(m >> (8 * i));
  std::ofstream(path, std::ios::binary) << out << header << data;
}

TEST_F(BadModelFolder, BadHeaderJson) {
  edit_header(shard(1), [](std::string& h) { h = "{not json" + h; });
  std::string e = load_error();
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("bad safetensors header"), std::string::npos) << e;
}

TEST_F(BadModelFolder, OffsetsPastTheEnd) {
  edit_header(shard(1), [](std::string& h) {
    json j = json::parse(h);
    for (auto& [name, v] : j.items())
      if (name != "__metadata__") {
        v["data_offsets"][1] = v["data_offsets"][1].get<uint64_t>() + (1ull << 40);
        break;
      }
    h = j.dump();
  });
  std::string e = load_error();
  EXPECT_NE(e.find("past the end"), std::string::npos) << e;
}

TEST_F(BadModelFolder, UnknownDtype) {
  edit_header(shard(1), [](std::string& h) {
    json j = json::parse(h);
    for (auto& [name, v] : j.items())
      if (name != "__metadata__") {
        v["dtype"] = "F8_E4M3";
        break;
      }
    h = j.dump();
  });
  std::string e = load_error();
  EXPECT_NE(e.find("unsupported dtype 'F8_E4M3'"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor '"), std::string::npos) << e;
}

TEST_F(BadModelFolder, ShapeMismatch) {
  json c = read_json("config.json");
  c["intermediate_size"] = 96;
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[160, 64]"), std::string::npos) << e;
  EXPECT_NE(e.find("[96, 64]"), std::string::npos) << e;
}

TEST_F(BadModelFolder, MissingTensor) {
  json index = read_json("model.safetensors.index.json");
  index["weight_map"].erase("model.norm.weight");
  write_json("model.safetensors.index.json", index);
  // The shard still holds it; a store built from the index does not know it.
  std::string e = load_error();
  EXPECT_NE(e.find("missing tensor 'model.norm.weight'"), std::string::npos) << e;
}

TEST_F(BadModelFolder, MissingConfigKey) {
  json c = read_json("config.json");
  c.erase("hidden_size");
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("config.json"), std::string::npos) << e;
  EXPECT_NE(e.find("'hidden_size' is missing"), std::string::npos) << e;
}

TEST_F(BadModelFolder, WrongTypedConfigKey) {
  json c = read_json("config.json");
  c["num_hidden_layers"] = "two";
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("'num_hidden_layers' must be an integer"), std::string::npos) << e;
}

TEST_F(BadModelFolder, UnsupportedArchitecture) {
  json c = read_json("config.json");
  c["architectures"] = {"GPTNeoXForCausalLM"};
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("'GPTNeoXForCausalLM' is not supported"), std::string::npos) << e;
  for (const char* arch : {"LlamaForCausalLM", "MistralForCausalLM", "PhiForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"})
    EXPECT_NE(e.find(arch), std::string::npos) << e;
}

TEST_F(BadModelFolder, NoWeights) {
  fs::remove(shard(1));
  fs::remove(shard(2));
  fs::remove(dir_ / "model.safetensors.index.json");
  std::string e = load_error();
  EXPECT_NE(e.find("no model.safetensors"), std::string::npos) << e;
}

TEST_F(BadModelFolder, NoConfig) {
  fs::remove(dir_ / "config.json");
  std::string e = load_error();
  EXPECT_NE(e.find("no config.json"), std::string::npos) << e;
}

TEST(Safetensors, WritesAndReadsBack) {
  fs::path p = fs::temp_directory_path() / ("vllm-st-" + std::to_string(getpid()) + ".safetensors");
  Tensor a = Tensor::from_floats({1, 2, 3, 4, 5, 6}, {2, 3}, DType::BF16);
  Tensor b = Tensor::from_floats({0.5f}, {1}, DType::F32);
  write_safetensors(p.string(), {{"a", a}, {"b", b}});
  SafetensorsFile f(p.string());
  EXPECT_EQ(f.get("a").shape(), (Shape{2, 3}));
  EXPECT_EQ(f.get("a").to_floats(), a.to_floats());
  EXPECT_EQ(f.get("b").get_float(0), 0.5f);
  EXPECT_THROW(f.get("c"), Error);
  fs::remove(p);
}

}  // namespace
