// GGUF files in the engine (vllm serve x.gguf): a float GGUF computes what the same weights compute
// from a model folder; a quantized GGUF (weights kept in their blocks, int8 activations) agrees
// with a float GGUF of its own weights dequantized, the only difference being the activations'
// quantization; batching never changes a result; the GGUF's tokenizer metadata tokenizes as the
// model's tokenizer.json does; bad files are clear errors. With VLLM_TEST_DEVICE=cuda,
// GgufOnTheGpu runs quantized GGUFs on the GPU (blocks kept on the device) against the CPU's
// float32 run of their dequantized weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <fstream>
#include <map>
#include <tuple>

#include "golden.h"
#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"
#include "vllm/engine/llm_engine.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/gguf_file.h"
#include "vllm/gguf/gguf_model.h"
#include "vllm/gguf/gguf_tokenizer.h"
#include "vllm/gguf/gguf_writer.h"
#include "vllm/models/gguf_export.h"
#include "vllm/models/random_weights.h"
#include "vllm/tokenizer/tokenizer.h"

using namespace vllm;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {


json model_json(const std::string& model) {
  return json::parse(std::ifstream(test::data_dir() + "/models/" + model + "/config.json"));
}

// A config file for `j` in the scratch folder.
std::string write_config(const json& j, const std::string& name) {
  const fs::path p = test::scratch_dir("gguf-engine") / (name + ".json");
  std::ofstream(p) << j.dump(2);
  return p.string();
}

// The recipe weights of config `config_path` as a GGUF file of `scheme`.
std::string recipe_gguf(const std::string& config_path, const std::string& scheme, uint64_t seed, DType dtype,
                        const std::string& name, const std::string& tokenizer = "") {
  const fs::path out = test::scratch_dir("gguf-engine") / (name + "-" + scheme + ".gguf");
  if (!fs::exists(out)) {
    GgufExportOptions o;
    o.quantize = scheme;
    o.seed = seed;
    o.dtype = dtype;
    o.tokenizer.dir = tokenizer;
    write_recipe_gguf(config_path, out.string(), o);
  }
  return out.string();
}

// A float32 GGUF of the weights `scheme` stores, dequantized: each matrix quantized to the type
// the scheme gives it and back (rows are quantized one by one, so this commutes with the llama
// q/k row permutation), vectors as they are.
std::string dequantized_gguf(const std::string& config_path, const std::string& scheme, uint64_t seed, DType dtype,
                             const std::string& name) {
  const fs::path out = test::scratch_dir("gguf-engine") / (name + "-" + scheme + "-dequantized.gguf");
  const ModelConfig c = ModelConfig::from_json(json::parse(std::ifstream(config_path)), config_path);
  GgufExportOptions o;
  o.quantize = "f32";
  write_model_gguf(
      c,
      [&](const ParamSpec& p) {
        Tensor t = recipe_tensor(p.name, p.shape, seed, dtype).to_dtype(DType::F32);
        if (p.shape.size() < 2) return t;
        const gguf::GgmlType type = gguf_tensor_type(scheme, gguf::gguf_tensor_name(p.name), p.shape, c);
        const int64_t cols = p.shape[1];
        std::vector<uint8_t> row(gguf::ggml_row_bytes(type, cols));
        for (int64_t r = 0; r < p.shape[0]; ++r) {
          gguf::quantize_row(type, t.data<float>() + r * cols, row.data(), cols);
          gguf::dequantize_row(type, row.data(), t.data<float>() + r * cols, cols);
        }
        return t;
      },
      out.string(), o);
  return out.string();
}

EngineConfig engine_config(const std::string& model) {
  EngineConfig c;
  c.model = model;
  c.dtype = "float32";
  c.num_kv_blocks = 512;
  return c;
}

std::vector<std::vector<int32_t>> golden_prompts(const std::string& model) {
  std::vector<std::vector<int32_t>> out;
  const json golden = test::load_golden(model);
  for (const auto& g : golden["generation"]) out.push_back(g["prompt_ids"].get<std::vector<int32_t>>());
  return out;
}

std::vector<std::vector<int32_t>> random_prompts(int64_t vocab, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(3 + 9 * i));
    for (auto& t : p) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    out.push_back(p);
  }
  return out;
}

// Largest |difference| of the log-probs two runs give the same tokens, over the steps where their
// greedy tokens agree (after a divergence the continuations differ).
double max_logprob_diff(const test::GenerationResult& a, const test::GenerationResult& b) {
  double worst = 0;
  for (size_t i = 0; i < a.ids.size() && i < b.ids.size(); ++i) {
    std::map<int32_t, double> mine;
    for (const auto& t : a.logprobs[i].top) mine[t.token_id] = t.logprob;
    for (const auto& t : b.logprobs[i].top)
      if (mine.count(t.token_id)) worst = std::max(worst, std::fabs(mine[t.token_id] - t.logprob));
    if (a.ids[i] != b.ids[i]) break;
  }
  return worst;
}

// vLLM's check_logprobs_close between two runs, each side the other's reference, and top-5
// log-probs within tol on the steps before the first divergence.
void expect_close(const std::vector<test::GenerationResult>& ref, const std::vector<test::GenerationResult>& ours,
                  double tol, const std::string& label) {
  ASSERT_EQ(ref.size(), ours.size());
  for (size_t p = 0; p < ref.size(); ++p) {
    std::vector<std::vector<std::pair<int32_t, double>>> ref_top;
    for (const auto& step : ref[p].logprobs) {
      std::vector<std::pair<int32_t, double>> s;
      for (const auto& t : step.top) s.emplace_back(t.token_id, t.logprob);
      ref_top.push_back(s);
    }
    size_t diverge = 0;
    EXPECT_EQ(test::check_logprobs_close(ref[p].ids, ref_top, ours[p], &diverge), "") << label << " prompt " << p;
    const double diff = max_logprob_diff(ref[p], ours[p]);
    EXPECT_LE(diff, tol) << label << " prompt " << p;
    std::printf("%s prompt %zu: identical greedy steps %zu of %zu, max top-5 log-prob difference %.2e\n", label.c_str(),
                p, diverge, ref[p].ids.size(), diff);
  }
}

// tiny-llama3 at widths the k-quants' 256-wide super-blocks divide (so that Q4_K is Q4_K, not the
// Q8_0 fallback), with a small vocabulary.
json wide_llama() {
  json j = model_json("tiny-llama3");
  j["hidden_size"] = 256;
  j["intermediate_size"] = 512;
  j["num_attention_heads"] = 4;
  j["num_key_value_heads"] = 2;
  j["vocab_size"] = 1024;
  j["num_hidden_layers"] = 3;
  return j;
}
json wide_phi() {
  json j = model_json("tiny-phi");
  j["hidden_size"] = 256;
  j["intermediate_size"] = 1024;
  j["num_attention_heads"] = 4;
  j["num_key_value_heads"] = 4;
  j["vocab_size"] = 768;
  return j;
}

}  // namespace

// A float GGUF of the recipe weights computes what the model folder computes (the metadata's
// float32 epsilons and llama3's rope as explicit frequency divisors differ in the last bits).
TEST(GgufEngine, FloatGgufMatchesTheModelFolder) {
  for (const std::string model : {"tiny-llama3", "tiny-qwen3", "tiny-qwen2", "tiny-phi"}) {
    const json golden = test::load_golden(model);
    const uint64_t seed = golden["weights"]["seed"].get<uint64_t>();
    const DType dtype = parse_dtype(golden["weights"]["dtype"].get<std::string>());
    const std::string gguf_path =
        recipe_gguf(test::data_dir() + "/models/" + model + "/config.json", "f32", seed, dtype, model);
    std::vector<std::vector<int32_t>> prompts = golden_prompts(model);
    prompts.resize(4);
    const auto folder = test::run_greedy(engine_config(test::materialize_model(model, 1)), prompts, 12, 5, 0);
    const auto gguf = test::run_greedy(engine_config(gguf_path), prompts, 12, 5, 0);
    for (size_t p = 0; p < prompts.size(); ++p) {
      EXPECT_EQ(folder[p].ids, gguf[p].ids) << model << " prompt " << p;
      EXPECT_LE(max_logprob_diff(folder[p], gguf[p]), 1e-4) << model << " prompt " << p;
    }
  }
}

// Quantized GGUFs against float GGUFs of the same (dequantized) weights: greedy tokens by the
// check_logprobs_close rule, and top-5 log-probs as close as the activations' int8 quantization
// allows. How far that moves these random-weight models' log-probs depends on the model (their
// distributions are peaky or flat, and errors grow through the layers), so the yardstick is
// measured on the same model: running its float weights with bfloat16 compute (activations rounded
// to 8 bits of mantissa) instead of float32. int8 activations must stay within 3 times that (plus
// 0.02). The quantized products themselves are checked exactly in tests/cpu_kernels.
TEST(GgufEngine, QuantizedGgufMatchesItsDequantizedWeights) {
  struct Case {
    std::string name, config_path, scheme;
    uint64_t seed;
    DType dtype;
    std::vector<std::vector<int32_t>> prompts;
  };
  const std::string llama3 = test::data_dir() + "/models/tiny-llama3/config.json";
  const std::string qwen3 = test::data_dir() + "/models/tiny-qwen3/config.json";
  std::vector<std::vector<int32_t>> llama3_prompts = golden_prompts("tiny-llama3"), qwen3_prompts = golden_prompts("tiny-qwen3");
  const std::vector<Case> cases = {
      {"tiny-llama3", llama3, "q8_0", 13, DType::BF16, llama3_prompts},
      {"tiny-qwen3", qwen3, "q4_k", 14, DType::BF16, qwen3_prompts},
      {"wide-llama", write_config(wide_llama(), "wide-llama"), "q4_k_m", 5, DType::BF16, random_prompts(1024, 6, 1)},
      {"wide-llama", write_config(wide_llama(), "wide-llama"), "q5_k", 5, DType::BF16, random_prompts(1024, 6, 1)},
      {"wide-llama", write_config(wide_llama(), "wide-llama"), "q4_0", 5, DType::BF16, random_prompts(1024, 6, 1)},
      {"wide-phi", write_config(wide_phi(), "wide-phi"), "q4_k", 6, DType::F16, random_prompts(768, 6, 2)},
  };
  for (const Case& k : cases) {
    const std::string q = recipe_gguf(k.config_path, k.scheme, k.seed, k.dtype, k.name);
    const std::string d = dequantized_gguf(k.config_path, k.scheme, k.seed, k.dtype, k.name);
    const auto ref = test::run_greedy(engine_config(d), k.prompts, 16, 5, 0);
    EngineConfig bf16 = engine_config(d);
    bf16.dtype = "bfloat16";
    const auto yardstick = test::run_greedy(bf16, k.prompts, 16, 5, 0);
    double bf16_diff = 0;
    for (size_t p = 0; p < ref.size(); ++p) bf16_diff = std::max(bf16_diff, max_logprob_diff(ref[p], yardstick[p]));
    std::printf("%s %s: bfloat16 compute moves top-5 log-probs by up to %.3f\n", k.name.c_str(), k.scheme.c_str(), bf16_diff);
    const auto ours = test::run_greedy(engine_config(q), k.prompts, 16, 5, 0);
    expect_close(ref, ours, 3 * bf16_diff + 0.02, k.name + " " + k.scheme);
  }
}

// Batching, chunked prefill and the KV block size never change a quantized model's results.
TEST(GgufEngine, BatchInvariance) {
  const std::string q = recipe_gguf(write_config(wide_llama(), "wide-llama"), "q4_k_m", 5, DType::BF16, "wide-llama");
  const auto prompts = random_prompts(1024, 5, 3);
  const auto batched = test::run_greedy(engine_config(q), prompts, 8, 5, 0);
  EngineConfig chunked = engine_config(q);
  chunked.enable_chunked_prefill = true;
  chunked.max_num_batched_tokens = 16;
  chunked.block_size = 8;
  const auto other = test::run_greedy(chunked, prompts, 8, 5, 0);
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto alone = test::run_greedy(engine_config(q), {prompts[p]}, 8, 5, 0);
    for (const auto* r : {&alone[0], &other[p]}) {
      EXPECT_EQ(r->ids, batched[p].ids) << p;
      ASSERT_EQ(r->logprobs.size(), batched[p].logprobs.size());
      for (size_t i = 0; i < r->logprobs.size(); ++i)
        for (size_t t = 0; t < r->logprobs[i].top.size(); ++t)
          EXPECT_EQ(r->logprobs[i].top[t].logprob, batched[p].logprobs[i].top[t].logprob) << p << " step " << i;
    }
  }
}

// A quantized embedding table stays in its blocks: a tied Q4_K file's table (Q6_K, also the LM
// head's weight) is not held a second time as a float table.
TEST(GgufEngine, QuantizedEmbeddingIsHeldOnce) {
  json j = wide_llama();
  j["tie_word_embeddings"] = true;
  const std::string config = write_config(j, "wide-llama-tied");
  const std::string q = recipe_gguf(config, "q4_k", 5, DType::BF16, "wide-llama-tied");
  const int64_t V = j["vocab_size"].get<int64_t>(), H = j["hidden_size"].get<int64_t>();
  {
    EngineCore engine(engine_config(q));
    const size_t weights = engine.runner().model().weight_bytes();
    // The file's bytes, the tied table counted once more (for the LM head), and no float table.
    const size_t file = static_cast<size_t>(fs::file_size(q));
    const size_t table = static_cast<size_t>(V) * gguf::ggml_row_bytes(gguf::GgmlType::kQ6_K, H);
    std::printf("weights %zu bytes, file %zu, Q6_K table %zu, a float32 table would be %lld\n", weights, file, table,
                static_cast<long long>(V * H * 4));
    EXPECT_LE(weights, file + table);
  }
  // The rows gathered from the blocks are exact (tests/cpu_kernels:
  // QuantGemm.QuantizedEmbeddingGathersDequantizedRows); QuantizedGgufMatchesItsDequantizedWeights
  // runs quantized tables (untied Q4_K, Q8_0, ...) against float ones end to end.
  const auto ours = test::run_greedy(engine_config(q), random_prompts(V, 2, 7), 4, 5, 0);
  EXPECT_EQ(ours.size(), 2u);
}

// The tokenizer built from a GGUF's metadata encodes the golden texts as the model's
// tokenizer.json does (and the engine uses it when no --tokenizer is given).
TEST(GgufEngine, TokenizerFromGgufMetadata) {
  for (const std::string model : {"tiny-llama3", "tiny-qwen3", "tiny-phi"}) {
    const std::string tok_dir = test::data_dir() + "/tokenizers/" + model;
    if (!fs::exists(tok_dir)) GTEST_SKIP() << "tokenizer files not fetched";
    const json golden = test::load_golden(model);
    const fs::path out = test::scratch_dir("gguf-engine") / (model + "-tok.gguf");
    GgufExportOptions o;
    o.quantize = "q8_0";
    o.tokenizer.dir = tok_dir;
    o.tokenizer.config_path = test::data_dir() + "/models/" + model + "/tokenizer_config.json";
    write_recipe_gguf(test::data_dir() + "/models/" + model + "/config.json", out.string(), o);
    const gguf::GgufFile f = gguf::GgufFile::open(out.string());
    auto tok = Tokenizer::from_json(gguf::tokenizer_json(f).dump(), gguf::tokenizer_config_json(f).dump(), out.string());
    const auto ref = Tokenizer::from_folders(tok_dir, test::data_dir() + "/models/" + model);
    int cases = 0;
    for (const auto& c : golden["tokenizer"]["encode"]) {
      const std::string text = c["text"].get<std::string>();
      EXPECT_EQ(tok->encode(text, false), c["ids_no_special"].get<std::vector<int32_t>>()) << model << ": " << text;
      EXPECT_EQ(tok->encode(text, true), ref->encode(text, true)) << model << ": " << text;
      EXPECT_EQ(tok->decode(c["ids_no_special"].get<std::vector<int32_t>>(), true),
                ref->decode(c["ids_no_special"].get<std::vector<int32_t>>(), true))
          << model << ": " << text;
      ++cases;
    }
    EXPECT_GT(cases, 30);
    EXPECT_EQ(tok->eos_token_id(), ref->eos_token_id()) << model;
    EXPECT_EQ(tok->chat_template().has_value(), ref->chat_template().has_value()) << model;

    // The engine takes it when there is no --tokenizer, and --tokenizer when there is.
    EngineConfig c = engine_config(out.string());
    LLMEngine engine(c);
    ASSERT_NE(engine.tokenizer(), nullptr) << model;
    EXPECT_EQ(engine.tokenizer()->encode("Hello world", false), ref->encode("Hello world", false)) << model;
  }
}

TEST(GgufEngine, BadFilesAreClearErrors) {
  const std::string good = recipe_gguf(write_config(wide_llama(), "wide-llama"), "q4_k_m", 5, DType::BF16, "wide-llama");
  auto load_error = [](const std::string& path) -> std::string {
    try {
      EngineCore engine(engine_config(path));
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << path << " loaded";
    return "";
  };
  auto copy_with = [&](const std::string& name, const std::function<void(std::vector<char>&)>& edit) {
    std::ifstream in(good, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    edit(bytes);
    const fs::path p = test::scratch_dir("gguf-engine") / name;
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p.string();
  };
  // Truncated: the error names the file and says so.
  const std::string truncated = copy_with("truncated.gguf", [](std::vector<char>& b) { b.resize(b.size() / 2); });
  std::string e = load_error(truncated);
  EXPECT_NE(e.find(truncated), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  // An unknown tensor type, named with its tensor.
  const std::string unknown = copy_with("unknown-type.gguf", [](std::vector<char>& b) {
    const std::string name = "blk.1.ffn_up.weight";
    auto it = std::search(b.begin(), b.end(), name.begin(), name.end());
    const size_t type_at = static_cast<size_t>(it - b.begin()) + name.size() + 4 + 2 * 8;
    const uint32_t bad = 77;
    std::memcpy(&b[type_at], &bad, 4);
  });
  e = load_error(unknown);
  EXPECT_NE(e.find("tensor 'blk.1.ffn_up.weight' has unknown tensor type 77"), std::string::npos) << e;

  // An architecture without support, a missing tensor, a type this build cannot read.
  auto write = [&](const std::string& name, const std::function<void(gguf::GgufWriter&)>& edit) {
    const gguf::GgufFile f = gguf::GgufFile::open(good);
    gguf::GgufWriter w;
    for (const auto& [key, value] : f.metadata()) w.set(key, value);
    for (const auto& t : f.tensors())
      w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(f.tensor_data(t), f.tensor_data(t) + t.nbytes));
    edit(w);
    const fs::path p = test::scratch_dir("gguf-engine") / name;
    w.write(p.string());
    return p.string();
  };
  e = load_error(write("gemma.gguf", [](gguf::GgufWriter& w) { w.set("general.architecture", gguf::Value::string("gemma3")); }));
  EXPECT_NE(e.find("GGUF architecture 'gemma3' is not supported"), std::string::npos) << e;
  e = load_error(write("short.gguf", [](gguf::GgufWriter& w) { w.set("llama.block_count", gguf::Value::u32(4)); }));
  EXPECT_NE(e.find("no tensor 'blk.3.attn_q.weight'"), std::string::npos) << e;
  const std::string q2k = write("q2k.gguf", [](gguf::GgufWriter& w) {
    w.add_tensor("extra.weight", gguf::GgmlType::kQ2_K, {256, 1}, std::vector<uint8_t>(84, 0));
  });
  EXPECT_NO_THROW(EngineCore engine(engine_config(q2k)));  // unused tensors of any type are fine
  e = load_error(write("q2k-used.gguf", [&](gguf::GgufWriter& w) {
    const gguf::GgufFile f = gguf::GgufFile::open(good);
    gguf::GgufWriter copy;
    for (const auto& [key, value] : f.metadata()) copy.set(key, value);
    for (const auto& t : f.tensors()) {
      if (t.name == "blk.0.ffn_gate.weight")
        copy.add_tensor(t.name, gguf::GgmlType::kQ2_K, t.dims, std::vector<uint8_t>(static_cast<size_t>(t.numel() / 256 * 84), 0));
      else
        copy.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(f.tensor_data(t), f.tensor_data(t) + t.nbytes));
    }
    w = std::move(copy);
  }));
  EXPECT_NE(e.find("tensor 'blk.0.ffn_gate.weight' has type Q2_K, which this build cannot read"), std::string::npos) << e;
}

namespace {

bool on_gpu() {
  const char* device = std::getenv("VLLM_TEST_DEVICE");
  return device && std::string(device) == "cuda";
}

size_t weight_bytes(const EngineConfig& c) {
  EngineCore engine(c);
  return engine.runner().model().weight_bytes();
}

struct GpuCase {
  std::string name, scheme;
};
void PrintTo(const GpuCase& c, std::ostream* os) { *os << c.name << " " << c.scheme; }

// (case, compute dtype)
class GgufOnTheGpu : public ::testing::TestWithParam<std::tuple<GpuCase, std::string>> {};

}  // namespace

// VLLM_TEST_DEVICE=cuda: a quantized GGUF runs on the GPU with its weights in their blocks (the
// skinny product that dequantizes in registers at decode, the dequantized weight and cuBLASLt at
// prefill), against the CPU's float32 run of the same weights dequantized (a float GGUF): the GPU
// computes with exactly those weights, so in float32 the greedy tokens are the CPU's and the
// log-probs agree to float32 rounding; in bfloat16 the run stays within check_logprobs_close and
// within twice (plus 0.02) what bfloat16 compute of the float GGUF on the GPU moves the log-probs.
// Its weights take fewer bytes on the GPU than the float GGUF's.
TEST_P(GgufOnTheGpu, MatchesTheCpuOnItsDequantizedWeights) {
  if (!on_gpu()) GTEST_SKIP() << "runs on the GPU (VLLM_TEST_DEVICE=cuda)";
  const auto& [c, dtype] = GetParam();
  std::string config_path;
  uint64_t seed = 0;
  DType weights_dtype = DType::BF16;
  std::vector<std::vector<int32_t>> prompts;
  if (c.name == "wide-llama") {
    config_path = write_config(wide_llama(), "wide-llama");
    seed = 5;
    prompts = random_prompts(1024, 6, 1);
  } else if (c.name == "wide-phi") {
    config_path = write_config(wide_phi(), "wide-phi");
    seed = 6;
    weights_dtype = DType::F16;
    prompts = random_prompts(768, 6, 2);
  } else {
    // The seeds QuantizedGgufMatchesItsDequantizedWeights uses (recipe_gguf keeps one file a name).
    config_path = test::data_dir() + "/models/" + c.name + "/config.json";
    seed = c.name == "tiny-llama3" ? 13 : 14;
    prompts = golden_prompts(c.name);
  }
  const std::string q = recipe_gguf(config_path, c.scheme, seed, weights_dtype, c.name);
  const std::string d = dequantized_gguf(config_path, c.scheme, seed, weights_dtype, c.name);
  const std::string label = c.name + " " + c.scheme + " " + dtype + " on the GPU";

  EngineConfig cpu = engine_config(d);
  cpu.device = "cpu";
  const auto ref = test::run_greedy_on(cpu, prompts, 16, 5, 0);
  EngineConfig gpu = engine_config(q);
  gpu.device = "cuda";
  gpu.dtype = dtype;
  const auto ours = test::run_greedy_on(gpu, prompts, 16, 5, 0);
  if (dtype == "float32") {
    expect_close(ref, ours, 1e-3, label);
    for (size_t p = 0; p < prompts.size(); ++p) {
      EXPECT_EQ(ours[p].ids, ref[p].ids) << label << " prompt " << p;
    }
  } else {
    EngineConfig plain = engine_config(d);
    plain.device = "cuda";
    plain.dtype = dtype;
    const auto yardstick = test::run_greedy_on(plain, prompts, 16, 5, 0);
    double diff = 0;
    for (size_t p = 0; p < ref.size(); ++p) diff = std::max(diff, max_logprob_diff(ref[p], yardstick[p]));
    std::printf("%s: %s compute of the float GGUF on the GPU moves top-5 log-probs by up to %.3f\n", label.c_str(),
                dtype.c_str(), diff);
    expect_close(ref, ours, 2 * diff + 0.02, label);
  }

  EngineConfig dense = engine_config(d);
  dense.device = "cuda";
  dense.dtype = dtype;
  const size_t quantized_bytes = weight_bytes(gpu), dense_bytes = weight_bytes(dense);
  EXPECT_LT(quantized_bytes, dense_bytes) << label << ": the GGUF blocks were not kept";
  std::printf("%s: weights %zu bytes, %zu for the float GGUF in %s\n", label.c_str(), quantized_bytes, dense_bytes,
              dtype.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Files, GgufOnTheGpu,
    ::testing::Combine(::testing::Values(GpuCase{"tiny-llama3", "q8_0"}, GpuCase{"tiny-qwen3", "q4_k"},
                                         GpuCase{"wide-llama", "q4_k_m"}, GpuCase{"wide-llama", "q5_k"},
                                         GpuCase{"wide-llama", "q4_0"}, GpuCase{"wide-phi", "q4_k"}),
                       ::testing::Values("float32", "bfloat16")),
    [](const ::testing::TestParamInfo<std::tuple<GpuCase, std::string>>& info) {
      std::string name = std::get<0>(info.param).name + "_" + std::get<0>(info.param).scheme + "_" + std::get<1>(info.param);
      for (char& ch : name)
        if (ch == '-') ch = '_';
      return name;
    });
