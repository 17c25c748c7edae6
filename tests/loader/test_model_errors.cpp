// Bad model folders get a clear error naming the file and the key or tensor, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "../engine/golden.h"
#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"
#include "vllm/config/model_config.h"
#include "vllm/loader/safetensors.h"
#include "vllm/models/model.h"
#include "vllm/tokenizer/tokenizer.h"

using namespace vllm;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

class BadModelFolder : public ::testing::Test {
 public:
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
        v["dtype"] = "F8_E8M0";  // F8_E4M3 is read now (FP8 checkpoints)
        break;
      }
    h = j.dump();
  });
  std::string e = load_error();
  EXPECT_NE(e.find("unsupported dtype 'F8_E8M0'"), std::string::npos) << e;
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

// A head so narrow that partial_rotary_factor leaves no rotary pair (head_dim 1 x 0.5 = 0): found
// by fuzz_model_config; the config is refused, naming the key, not accepted with no rotation.
TEST_F(BadModelFolder, PartialRotaryFactorThatLeavesNoRotaryDimension) {
  json c = read_json("config.json");
  c["num_attention_heads"] = c["hidden_size"];
  c["num_key_value_heads"] = c["hidden_size"];
  c.erase("head_dim");
  c["partial_rotary_factor"] = 0.5;
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("partial_rotary_factor"), std::string::npos) << e;
  EXPECT_NE(e.find("at least 2"), std::string::npos) << e;
}

TEST_F(BadModelFolder, UnsupportedArchitecture) {
  json c = read_json("config.json");
  c["architectures"] = {"GPTNeoXForCausalLM"};
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("'GPTNeoXForCausalLM' is not supported"), std::string::npos) << e;
  for (const char* arch : {"LlamaForCausalLM", "MistralForCausalLM", "PhiForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                           "Gemma2ForCausalLM", "Gemma3ForCausalLM", "GptOssForCausalLM"})
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


// --- Files that are not what their name says (issue 20) ---

// Loads the folder off the test's thread, so that a regression (open() blocking on a FIFO) fails
// the test instead of hanging it: after the deadline the FIFOs get a writer, which unblocks it.
std::string load_error_within(BadModelFolder& t, const std::vector<fs::path>& fifos) {
  auto result = std::async(std::launch::async, [&t] { return t.load_error(); });
  if (result.wait_for(std::chrono::seconds(20)) == std::future_status::ready) return result.get();
  for (const fs::path& f : fifos) {
    int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  result.wait();
  ADD_FAILURE() << "loading blocked on a FIFO";
  return "";
}

TEST_F(BadModelFolder, FifoAsWeights) {
  fs::remove(shard(1));
  ASSERT_EQ(::mkfifo(shard(1).c_str(), 0644), 0);
  std::string e = load_error_within(*this, {shard(1)});
  EXPECT_NE(e.find("model-00001-of-00002.safetensors: is a FIFO, not a regular file"), std::string::npos) << e;
}

TEST_F(BadModelFolder, FifoAsConfig) {
  fs::remove(dir_ / "config.json");
  ASSERT_EQ(::mkfifo((dir_ / "config.json").c_str(), 0644), 0);
  std::string e = load_error_within(*this, {dir_ / "config.json"});
  EXPECT_NE(e.find("config.json: is a FIFO, not a regular file"), std::string::npos) << e;
}

TEST_F(BadModelFolder, FifoAsTokenizer) {
  fs::remove(dir_ / "tokenizer.json");
  ASSERT_EQ(::mkfifo((dir_ / "tokenizer.json").c_str(), 0644), 0);
  auto result = std::async(std::launch::async, [this]() -> std::string {
    try {
      Tokenizer::from_folder(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  });
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    int fd = ::open((dir_ / "tokenizer.json").c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    ADD_FAILURE() << "loading blocked on a FIFO";
  }
  std::string e = result.get();
  EXPECT_NE(e.find("tokenizer.json: is a FIFO, not a regular file"), std::string::npos) << e;
}

TEST_F(BadModelFolder, DirectoryAsWeights) {
  fs::remove(shard(2));
  fs::create_directory(shard(2));
  std::string e = load_error();
  EXPECT_NE(e.find("model-00002-of-00002.safetensors: is a directory, not a regular file"), std::string::npos) << e;
}

TEST_F(BadModelFolder, DirectoryAsConfig) {
  fs::remove(dir_ / "config.json");
  fs::create_directory(dir_ / "config.json");
  std::string e = load_error();
  EXPECT_NE(e.find("config.json: is a directory, not a regular file"), std::string::npos) << e;
}

TEST_F(BadModelFolder, SymlinkLoop) {
  fs::remove(dir_ / "model.safetensors.index.json");
  fs::create_symlink("loop-b", dir_ / "model.safetensors.index.json");
  fs::create_symlink("model.safetensors.index.json", dir_ / "loop-b");
  std::string e = load_error();
  EXPECT_NE(e.find("model.safetensors.index.json: cannot be read: Too many levels of symbolic links"), std::string::npos)
      << e;
}

TEST_F(BadModelFolder, EmptyWeights) {
  fs::resize_file(shard(1), 0);
  std::string e = load_error();
  EXPECT_NE(e.find("truncated file: 0 bytes"), std::string::npos) << e;
}

TEST_F(BadModelFolder, EmptyConfig) {
  std::ofstream(dir_ / "config.json", std::ios::trunc).close();
  std::string e = load_error();
  EXPECT_NE(e.find("config.json: invalid JSON"), std::string::npos) << e;
}

TEST_F(BadModelFolder, UnreadableConfig) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  fs::permissions(dir_ / "config.json", fs::perms::none);
  std::string e = load_error();
  EXPECT_NE(e.find("config.json: cannot open: Permission denied"), std::string::npos) << e;
}

TEST_F(BadModelFolder, HugeHeaderLength) {
  std::string bytes;
  {
    std::ifstream in(shard(1), std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), {});
  }
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = '\xff';
  std::ofstream(shard(1), std::ios::binary | std::ios::trunc) << bytes;
  std::string e = load_error();
  EXPECT_NE(e.find("header length 18446744073709551615 exceeds the limit of 100000000 bytes"), std::string::npos) << e;
}

// --- Offsets that do not tile the data (issue 20) ---

// The first two tensors of a shard's header, by offset.
struct FirstTwo {
  std::string a, b;
};
FirstTwo first_two(const json& j) {
  std::vector<std::pair<uint64_t, std::string>> by_offset;
  for (auto& [name, v] : j.items())
    if (name != "__metadata__") by_offset.emplace_back(v["data_offsets"][0].get<uint64_t>(), name);
  std::sort(by_offset.begin(), by_offset.end());
  return {by_offset.at(0).second, by_offset.at(1).second};
}

TEST_F(BadModelFolder, OverlappingOffsets) {
  // Two tensors of one dtype and shape; the second's offsets are pointed at the first's bytes.
  // Before, this loaded and served one tensor's weights as the other's.
  edit_header(shard(2), [](std::string& h) {
    json j = json::parse(h);
    std::map<std::string, std::string> first_of_kind;  // dtype + shape -> a tensor
    for (auto& [name, v] : j.items()) {
      if (name == "__metadata__") continue;
      const std::string kind = v["dtype"].dump() + v["shape"].dump();
      auto [it, added] = first_of_kind.emplace(kind, name);
      if (!added) {
        // The later tensor takes the earlier one's bytes, so the overlap comes first in offset
        // order (before the gap it leaves).
        json& other = j[it->second];
        if (v["data_offsets"][0] > other["data_offsets"][0]) v["data_offsets"] = other["data_offsets"];
        else other["data_offsets"] = v["data_offsets"];
        h = j.dump();
        return;
      }
    }
    FAIL() << "no two tensors of one shape in the shard";
  });
  std::string e = load_error();
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("overlapping tensor"), std::string::npos) << e;
}

TEST_F(BadModelFolder, OffsetsEndBeforeTheyBegin) {
  edit_header(shard(2), [](std::string& h) {
    json j = json::parse(h);
    auto& off = j[first_two(j).a]["data_offsets"];
    off = {off[1], off[0]};
    h = j.dump();
  });
  std::string e = load_error();
  EXPECT_NE(e.find("that end before they begin"), std::string::npos) << e;
  EXPECT_EQ(e.find("past the end"), std::string::npos) << e;
}


std::string file_bytes(const std::string& header_json, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(uint64_t{header_json.size()} >> (8 * i));
  return out + header_json + std::string(data_bytes, '\x01');
}

std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "t.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SafetensorsFormat, AcceptsTiledTensorsInAnyOrder) {
  std::string f = file_bytes(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("z":{"dtype":"BF16","shape":[0],"data_offsets":[12,12]},)"
                             R"("__metadata__":{"format":"pt"}})",
                             12);
  EXPECT_EQ(parse_error(f), "");
  auto entries = parse_safetensors(reinterpret_cast<const unsigned char*>(f.data()), f.size(), "t");
  EXPECT_EQ(entries.at("b").end - entries.at("b").begin, 8u);
}

TEST(SafetensorsFormat, RefusesOverlapGapTrailingBytes) {
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                   8))
                .find("tensor 'b' has data offsets [4, 8] overlapping tensor 'a' (which ends at 8)"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                   12))
                .find("leaving bytes [4, 8) of the data unused"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8))
                .find("leaving bytes [0, 4)"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6))
                .find("the tensors end at data offset 4 but the data is 6 bytes long"),
            std::string::npos);
}

TEST(SafetensorsFormat, NamesEachBadField) {
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4))
                .find("tensor 'a' has data offsets [4, 0] that end before they begin"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,4]}})", 4))
                .find("whose size overflows"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)).find("bad shape"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes(R"({"__metadata__":{"n":1}})", 0)).find("__metadata__ must map names to strings"),
            std::string::npos);
  EXPECT_NE(parse_error(file_bytes("[]", 0)).find("not a JSON object"), std::string::npos);
  EXPECT_NE(parse_error(std::string("\x01\x00", 2)).find("too short for a safetensors header"), std::string::npos);
}

TEST(SafetensorsFormat, MisalignedTensorIsCopied) {
  // Data offsets are byte offsets; nothing in the format aligns them. An F32 at an odd address
  // still reads right (through an aligned copy).
  fs::path p = fs::temp_directory_path() / ("vllm-st-misaligned-" + std::to_string(getpid()) + ".safetensors");
  std::string header = R"({"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  while ((8 + header.size()) % 8) header += ' ';
  std::string f = file_bytes(header, 0);
  const float v = 2.5f;
  f += '\0';
  f.append(reinterpret_cast<const char*>(&v), 4);
  std::ofstream(p, std::ios::binary) << f;
  SafetensorsFile file(p.string());
  EXPECT_EQ(file.get("x").get_float(0), 2.5f);
  fs::remove(p);
}

// --- config.json and generation_config.json values (issue 20) ---

std::string config_error(const std::function<void(json&)>& edit, const char* model = "tiny-llama3") {
  json c = json::parse(std::ifstream(std::string(VLLM_TEST_DATA_DIR) + "/models/" + model + "/config.json"));
  edit(c);
  try {
    ModelConfig::from_json(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigValidation, RefusesValuesNoRequestCouldRunWith) {
  EXPECT_EQ(config_error([](json&) {}), "");
  EXPECT_EQ(config_error([](json& c) { c["max_position_embeddings"] = -5; }),
            "config.json: key 'max_position_embeddings' must be positive, not -5");
  EXPECT_EQ(config_error([](json& c) { c["max_position_embeddings"] = 0; }),
            "config.json: key 'max_position_embeddings' must be positive, not 0");
  EXPECT_EQ(config_error([](json& c) { c["vocab_size"] = 0; }), "config.json: key 'vocab_size' must be positive, not 0");
  EXPECT_EQ(config_error([](json& c) { c["vocab_size"] = 1ll << 40; }),
            "config.json: key 'vocab_size' is too large: 1099511627776");
  EXPECT_EQ(config_error([](json& c) {
              c["num_attention_heads"] = 4;
              c["num_key_value_heads"] = 3;
            }),
            "config.json: key 'num_key_value_heads' (3) must divide num_attention_heads (4)");
  EXPECT_EQ(config_error([](json& c) { c["num_key_value_heads"] = 4; }),
            "config.json: key 'num_key_value_heads' (4) must divide num_attention_heads (2)");
  EXPECT_EQ(config_error([](json& c) { c["hidden_size"] = 65; }),
            "config.json: key 'hidden_size' (65) must be divisible by num_attention_heads (2)");
  EXPECT_EQ(config_error([](json& c) { c["rope_theta"] = 0; }), "config.json: key 'rope_theta' must be a positive number, not 0.0");
  EXPECT_EQ(config_error([](json& c) { c["rms_norm_eps"] = -1e-5; }),
            "config.json: key 'rms_norm_eps' must be a positive number, not -1e-05");
  EXPECT_EQ(config_error([](json& c) { c["rope_scaling"]["factor"] = 0; }),
            "config.json: key 'rope_scaling.factor' must be a positive number, not 0.0");
  EXPECT_EQ(config_error([](json& c) { c["rope_scaling"]["high_freq_factor"] = 1.0; }),
            "config.json: key 'rope_scaling.high_freq_factor' (1.0) must be greater than low_freq_factor (1.0)");
  EXPECT_EQ(config_error([](json& c) { c["eos_token_id"] = 1ll << 32; }),
            "config.json: key 'eos_token_id' is out of range: 4294967296");
  EXPECT_EQ(config_error([](json& c) { c["num_hidden_layers"] = 2.5; }),
            "config.json: key 'num_hidden_layers' must be an integer");
}

// The family options of Gemma 2/3 and GPT-OSS, from their config (what the loader and the weight
// tool both read first): the error for a bad value, or "".
std::string family_error(const char* model, const std::function<void(json&)>& edit) {
  json c = json::parse(std::ifstream(std::string(VLLM_TEST_DATA_DIR) + "/models/" + model + "/config.json"));
  edit(c);
  try {
    const ModelConfig config = ModelConfig::from_json(c);
    find_architecture(config.architecture).parameters(config);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigValidation, SlidingWindowLayersAndSoftcaps) {
  for (const char* m : {"tiny-gemma3", "tiny-gemma2", "tiny-gptoss"}) EXPECT_EQ(family_error(m, [](json&) {}), "") << m;
  EXPECT_EQ(family_error("tiny-gptoss", [](json& c) { c["layer_types"][1] = "chunked_attention"; }),
            "config.json: layer type 'chunked_attention' is not supported for GptOssForCausalLM (supported: "
            "sliding_attention, full_attention)");
  EXPECT_EQ(family_error("tiny-gptoss", [](json& c) { c["layer_types"].erase(1); }),
            "config.json: key 'layer_types' must list one type per layer (2)");
  EXPECT_EQ(family_error("tiny-gemma2", [](json& c) { c["sliding_window"] = nullptr; }),
            "config.json: key 'sliding_window' must be a positive integer for Gemma2ForCausalLM (it has sliding-window "
            "layers)");
  EXPECT_EQ(family_error("tiny-gemma3", [](json& c) { c["sliding_window_pattern"] = 0; }),
            "config.json: key 'sliding_window_pattern' must be a positive integer, not 0");
  EXPECT_EQ(family_error("tiny-gemma2", [](json& c) { c["attn_logit_softcapping"] = -50.0; }),
            "config.json: key 'attn_logit_softcapping' must be a positive number, not -50.0");
  EXPECT_EQ(family_error("tiny-gemma3", [](json& c) { c["query_pre_attn_scalar"] = "48"; }),
            "config.json: key 'query_pre_attn_scalar' must be a positive number, not \"48\"");
  EXPECT_EQ(family_error("tiny-gemma3", [](json& c) { c["use_bidirectional_attention"] = true; }),
            "config.json: use_bidirectional_attention is not supported for Gemma3ForCausalLM");
  EXPECT_EQ(family_error("tiny-gemma3", [](json& c) { c["use_bidirectional_attention"] = "no"; }),
            "config.json: key 'use_bidirectional_attention' must be true or false, not \"no\"");
  EXPECT_EQ(family_error("tiny-gptoss", [](json& c) { c["swiglu_limit"] = "7"; }),
            "config.json: key 'swiglu_limit' must be a positive number, not \"7\"");
  EXPECT_EQ(family_error("tiny-gemma3", [](json& c) { c["hidden_activation"] = "relu"; }), "");  // checked at load
}

TEST(ConfigValidation, YarnAndPerLayerTypeRope) {
  json gptoss = json::parse(std::ifstream(std::string(VLLM_TEST_DATA_DIR) + "/models/tiny-gptoss/config.json"));
  ModelConfig c = ModelConfig::from_json(gptoss);
  EXPECT_EQ(c.rope.type, "yarn");
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);  // max_position_embeddings / original_max_position_embeddings
  EXPECT_DOUBLE_EQ(c.rope.attention_factor, 0.1 * std::log(32.0) + 1.0);
  EXPECT_FALSE(c.rope.truncate);
  EXPECT_EQ(config_error([](json& c) { c["rope_scaling"].erase("factor"); }, "tiny-gptoss"),
            "config.json: rope_scaling: key 'factor' is missing (needed by yarn rope scaling)");
  EXPECT_EQ(config_error([](json& c) { c["rope_scaling"]["beta_slow"] = -1.0; }, "tiny-gptoss"),
            "config.json: key 'rope_scaling.beta_slow' must be a positive number, not -1.0");

  // transformers v5 writes Gemma 3's ropes keyed by layer type.
  json gemma = json::parse(std::ifstream(std::string(VLLM_TEST_DATA_DIR) + "/models/tiny-gemma3/config.json"));
  gemma.erase("rope_scaling");
  gemma["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
                              {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  c = ModelConfig::from_json(gemma);
  EXPECT_EQ(c.rope.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  ASSERT_EQ(c.layer_type_rope.count("sliding_attention"), 1u);
  EXPECT_DOUBLE_EQ(c.layer_type_rope.at("sliding_attention").theta, 1e4);
  gemma["rope_parameters"]["sliding_attention"]["rope_theta"] = 0;
  try {
    ModelConfig::from_json(gemma);
    ADD_FAILURE() << "accepted rope_theta 0";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "config.json: key 'rope_parameters.sliding_attention.rope_theta' must be a positive number, not 0.0");
  }
}

TEST(ConfigValidation, GenerationConfigDefaultsMustBeValidParams) {
  auto error = [](const json& j) -> std::string {
    try {
      GenerationConfig::from_json(j);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error({{"temperature", 0.7}, {"top_p", 0.9}, {"top_k", 50}, {"max_new_tokens", 32}}), "");
  EXPECT_EQ(error({{"temperature", -1}}),
            "generation_config.json: key 'temperature' must be a non-negative number, not -1");
  EXPECT_EQ(error({{"top_p", 0}}), "generation_config.json: key 'top_p' must be in (0, 1], not 0");
  EXPECT_EQ(error({{"top_k", -2}}), "generation_config.json: key 'top_k' must be -1 or 0 (disabled), or at least 1, not -2");
  EXPECT_EQ(error({{"max_new_tokens", 0}}), "generation_config.json: key 'max_new_tokens' must be at least 1, not 0");
  EXPECT_EQ(error({{"repetition_penalty", 0}}),
            "generation_config.json: key 'repetition_penalty' must be a positive number, not 0");
}

TEST_F(BadModelFolder, NumberOutOfRangeIsInvalidJson) {
  std::ofstream(dir_ / "config.json", std::ios::trunc) << R"({"rope_theta": 1e999})";
  std::string e = load_error();
  EXPECT_NE(e.find("config.json: invalid JSON"), std::string::npos) << e;
  edit_header(shard(1), [](std::string& h) { h = R"({"__metadata__": {"x": "y"}, "n": 1e999})"; });
  try {
    SafetensorsFile f(shard(1).string());
    ADD_FAILURE() << "loaded";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("bad safetensors header: invalid JSON"), std::string::npos) << err.what();
  }
}

TEST_F(BadModelFolder, ConfigValueFailsTheLoad) {
  json c = read_json("config.json");
  c["max_position_embeddings"] = -5;
  write_json("config.json", c);
  std::string e = load_error();
  EXPECT_NE(e.find("config.json: key 'max_position_embeddings' must be positive, not -5"), std::string::npos) << e;
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
