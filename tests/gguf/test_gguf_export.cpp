// Models written as GGUF (vllm-make-model --quantize): llama.cpp's tensor names, metadata, q/k
// permutation and per-tensor types, and the config and tensors read back from the file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/gguf_file.h"
#include "vllm/gguf/gguf_model.h"
#include "vllm/models/gguf_export.h"
#include "vllm/models/layers.h"
#include "vllm/models/random_weights.h"

using namespace vllm;
using namespace vllm::gguf;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string data_dir() {
  const char* env = std::getenv("VLLM_TEST_DATA_DIR");
  return env ? env : VLLM_TEST_DATA_DIR;
}
std::string config_path(const std::string& model) { return data_dir() + "/models/" + model + "/config.json"; }
std::string tokenizer_dir(const std::string& model) { return data_dir() + "/tokenizers/" + model; }
json read_json(const std::string& path) { return json::parse(std::ifstream(path)); }
uint64_t seed_of(const std::string& model) {
  return read_json(data_dir() + "/models/" + model + "/golden.json")["weights"]["seed"].get<uint64_t>();
}

class TempFile {
 public:
  explicit TempFile(const std::string& tag)
      : path_((fs::temp_directory_path() / ("vllm-gguf-export-" + std::to_string(getpid()) + "-" + tag + ".gguf")).string()) {}
  ~TempFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The recipe tensor as the exporter quantizes it: rounded to the checkpoint dtype, as float32.
std::vector<float> recipe_floats(const std::string& name, const Shape& shape, uint64_t seed, DType dtype) {
  return recipe_tensor(name, shape, seed, dtype).to_floats();
}

std::vector<uint8_t> quantize_all(GgmlType type, const std::vector<float>& v, int64_t cols) {
  const size_t rb = ggml_row_bytes(type, cols);
  std::vector<uint8_t> out(rb * v.size() / static_cast<size_t>(cols));
  for (size_t r = 0; r < v.size() / static_cast<size_t>(cols); ++r)
    quantize_row(type, v.data() + r * static_cast<size_t>(cols), out.data() + r * rb, cols);
  return out;
}

}  // namespace

TEST(GgufNames, TransformersToLlamaCpp) {
  EXPECT_EQ(gguf_tensor_name("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(gguf_tensor_name("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(gguf_tensor_name("lm_head.weight"), "output.weight");
  EXPECT_EQ(gguf_tensor_name("lm_head.bias"), "output.bias");
  EXPECT_EQ(gguf_tensor_name("model.final_layernorm.bias"), "output_norm.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.12.self_attn.q_proj.weight"), "blk.12.attn_q.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.0.self_attn.k_proj.bias"), "blk.0.attn_k.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.self_attn.v_proj.weight"), "blk.1.attn_v.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.self_attn.o_proj.weight"), "blk.1.attn_output.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.self_attn.dense.bias"), "blk.1.attn_output.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.self_attn.q_norm.weight"), "blk.1.attn_q_norm.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.gate_proj.weight"), "blk.1.ffn_gate.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.up_proj.weight"), "blk.1.ffn_up.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.down_proj.weight"), "blk.1.ffn_down.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.fc1.bias"), "blk.1.ffn_up.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.mlp.fc2.weight"), "blk.1.ffn_down.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.input_layernorm.weight"), "blk.1.attn_norm.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.1.post_attention_layernorm.weight"), "blk.1.ffn_norm.weight");
  EXPECT_THROW(gguf_tensor_name("model.layers.1.mlp.experts.gate_up_proj"), Error);
  EXPECT_EQ(gguf_architecture("LlamaForCausalLM"), "llama");
  EXPECT_EQ(gguf_architecture("PhiForCausalLM"), "phi2");
  EXPECT_EQ(hf_architecture("qwen3"), "Qwen3ForCausalLM");
  EXPECT_THROW(gguf_architecture("MixtralForCausalLM"), Error);
  EXPECT_THROW(hf_architecture("gemma3"), Error);
}

// convert_hf_to_gguf's permute: w.reshape(heads, 2, hd / 2, cols).swapaxes(1, 2): GGUF row
// (h, i, s) is transformers row (h, s, i).
TEST(GgufNames, LlamaPermutationIsConvertsReshape) {
  for (int64_t heads : {1, 2, 4}) {
    for (int64_t hd : {2, 8, 64}) {
      const int64_t rows = heads * hd;
      std::set<int64_t> seen;
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < hd / 2; ++i)
          for (int64_t s = 0; s < 2; ++s) {
            const int64_t gguf_row = (h * (hd / 2) + i) * 2 + s;
            const int64_t hf_row = (h * 2 + s) * (hd / 2) + i;
            EXPECT_EQ(permuted_source_row(gguf_row, rows, heads), hf_row);
            seen.insert(permuted_source_row(gguf_row, rows, heads));
          }
      EXPECT_EQ(static_cast<int64_t>(seen.size()), rows);
    }
  }
}

TEST(GgufExport, TensorTypesOfTheSchemes) {
  ModelConfig c = ModelConfig::from_json(read_json(config_path("tiny-llama3")));
  c.num_hidden_layers = 16;
  // Rows of 512 take every type; the tied embedding is the output matrix.
  EXPECT_EQ(gguf_tensor_type("q8_0", "blk.0.attn_q.weight", {512, 512}, c), GgmlType::kQ8_0);
  EXPECT_EQ(gguf_tensor_type("q8_0", "token_embd.weight", {512, 512}, c), GgmlType::kQ8_0);
  EXPECT_EQ(gguf_tensor_type("q4_k", "blk.0.attn_q.weight", {512, 512}, c), GgmlType::kQ4_K);
  EXPECT_EQ(gguf_tensor_type("q4_k", "token_embd.weight", {512, 512}, c), GgmlType::kQ6_K);
  EXPECT_EQ(gguf_tensor_type("q4_0", "output.weight", {512, 512}, c), GgmlType::kQ6_K);
  EXPECT_EQ(gguf_tensor_type("q4_k", "blk.0.attn_norm.weight", {512}, c), GgmlType::kF32);
  EXPECT_EQ(gguf_tensor_type("f16", "blk.0.ffn_down.weight", {512, 512}, c), GgmlType::kF16);
  EXPECT_EQ(gguf_tensor_type("bf16", "blk.0.ffn_down.weight", {512, 512}, c), GgmlType::kBF16);
  // Q4_K_M: attn_v and ffn_down get Q6_K in layers 0, 1, 4, 7, 10, 13, 14, 15 of 16.
  std::vector<int> more;
  for (int l = 0; l < 16; ++l)
    if (gguf_tensor_type("q4_k_m", "blk." + std::to_string(l) + ".ffn_down.weight", {512, 512}, c) == GgmlType::kQ6_K)
      more.push_back(l);
  EXPECT_EQ(more, (std::vector<int>{0, 1, 4, 7, 10, 13, 14, 15}));
  EXPECT_EQ(gguf_tensor_type("q4_k_m", "blk.4.attn_v.weight", {512, 512}, c), GgmlType::kQ6_K);
  EXPECT_EQ(gguf_tensor_type("q4_k_m", "blk.4.attn_q.weight", {512, 512}, c), GgmlType::kQ4_K);
  EXPECT_EQ(gguf_tensor_type("q4_k", "blk.4.ffn_down.weight", {512, 512}, c), GgmlType::kQ4_K);
  // Rows that are not whole super-blocks: Q8_0, or F16 when not whole Q8_0 blocks either.
  EXPECT_EQ(gguf_tensor_type("q4_k", "blk.0.attn_q.weight", {512, 64}, c), GgmlType::kQ8_0);
  EXPECT_EQ(gguf_tensor_type("q4_k", "token_embd.weight", {512, 64}, c), GgmlType::kQ8_0);
  EXPECT_EQ(gguf_tensor_type("q4_k", "blk.0.attn_q.weight", {512, 40}, c), GgmlType::kF16);
  EXPECT_EQ(gguf_tensor_type("q8_0", "blk.0.attn_q.weight", {512, 40}, c), GgmlType::kF16);
  EXPECT_THROW(gguf_tensor_type("q3_k", "blk.0.attn_q.weight", {512, 512}, c), Error);
}

// tiny-llama3 at Q8_0 with its tokenizer: the metadata llama.cpp reads, every tensor under its
// GGUF name with the recipe's values quantized (q/k permuted), and the config read back.
TEST(GgufExport, TinyLlama3Q8_0) {
  if (!fs::exists(tokenizer_dir("tiny-llama3") + "/tokenizer.json")) GTEST_SKIP() << "tokenizer files not fetched";
  TempFile out("llama3");
  GgufExportOptions opts;
  opts.quantize = "q8_0";
  opts.seed = seed_of("tiny-llama3");
  opts.tokenizer.dir = tokenizer_dir("tiny-llama3");
  opts.tokenizer.config_path = data_dir() + "/models/tiny-llama3/tokenizer_config.json";
  write_recipe_gguf(config_path("tiny-llama3"), out.path(), opts);
  const GgufFile f = GgufFile::open(out.path());
  const ModelConfig c = ModelConfig::from_json(read_json(config_path("tiny-llama3")));

  EXPECT_EQ(f.get("general.architecture").as_string(""), "llama");
  EXPECT_EQ(f.get("llama.block_count").as_int(""), 2);
  EXPECT_EQ(f.get("llama.embedding_length").as_int(""), 64);
  EXPECT_EQ(f.get("llama.feed_forward_length").as_int(""), 192);
  EXPECT_EQ(f.get("llama.attention.head_count").as_int(""), 2);
  EXPECT_EQ(f.get("llama.attention.head_count_kv").as_int(""), 1);
  EXPECT_EQ(f.get("llama.context_length").as_int(""), 131072);
  EXPECT_EQ(f.get("llama.rope.dimension_count").as_int(""), 32);
  EXPECT_EQ(f.get("llama.vocab_size").as_int(""), 128256);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get("llama.rope.freq_base").as_double("")), 500000.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get("llama.attention.layer_norm_rms_epsilon").as_double("")), 1e-5f);
  EXPECT_EQ(f.get("general.file_type").as_int(""), 7);
  EXPECT_EQ(f.get("tokenizer.ggml.model").as_string(""), "gpt2");
  EXPECT_EQ(f.get("tokenizer.ggml.pre").as_string(""), "llama-bpe");
  const auto& tokens = f.get("tokenizer.ggml.tokens").as_strings("");
  ASSERT_EQ(tokens.size(), 128256u);
  EXPECT_EQ(tokens[128000], "<|begin_of_text|>");
  EXPECT_EQ(tokens[1], "\"");
  const auto types = f.get("tokenizer.ggml.token_type").as_ints("");
  EXPECT_EQ(types[128000], 3);  // CONTROL
  EXPECT_EQ(types[100], 1);     // NORMAL
  EXPECT_EQ(f.get("tokenizer.ggml.merges").as_strings("").size(), 280147u);
  EXPECT_EQ(f.get("tokenizer.ggml.merges").as_strings("")[0], "\xc4\xa0 \xc4\xa0");  // "Ġ Ġ"
  EXPECT_EQ(f.get("tokenizer.ggml.bos_token_id").as_int(""), 128000);
  EXPECT_EQ(f.get("tokenizer.ggml.eos_token_id").as_int(""), 128001);
  EXPECT_FALSE(f.get("tokenizer.ggml.add_bos_token").as_bool(""));
  EXPECT_NE(f.get("tokenizer.chat_template").as_string("").find("start_header_id"), std::string::npos);

  // Tied embeddings: no output.weight. llama3 scaling: rope_freqs.weight.
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  ASSERT_NE(f.find_tensor("rope_freqs.weight"), nullptr);
  std::set<std::string> names;
  for (const TensorInfo& t : f.tensors()) names.insert(t.name);
  EXPECT_EQ(names.size(), 2u * 9 + 3);  // 9 per layer, token_embd, output_norm, rope_freqs
  for (const ParamSpec& p : find_architecture("LlamaForCausalLM").parameters(c)) {
    const TensorInfo* t = f.find_tensor(gguf_tensor_name(p.name));
    ASSERT_NE(t, nullptr) << p.name;
    EXPECT_EQ(t->shape(), p.shape) << p.name;
    EXPECT_EQ(t->type, p.shape.size() == 1 ? GgmlType::kF32 : GgmlType::kQ8_0) << p.name;
    std::vector<float> v = recipe_floats(p.name, p.shape, opts.seed, DType::BF16);
    const int64_t heads = permutation_heads("llama", p.name, c);
    if (heads > 0) {
      std::vector<float> perm(v.size());
      const int64_t cols = p.shape[1];
      for (int64_t r = 0; r < p.shape[0]; ++r)
        std::memcpy(&perm[static_cast<size_t>(r * cols)],
                    &v[static_cast<size_t>(permuted_source_row(r, p.shape[0], heads) * cols)], static_cast<size_t>(cols) * 4);
      v = perm;
    }
    const std::vector<uint8_t> want = quantize_all(t->type, v, p.shape.back());
    ASSERT_EQ(t->nbytes, want.size()) << p.name;
    EXPECT_EQ(std::memcmp(f.tensor_data(*t), want.data(), want.size()), 0) << p.name;
  }

  // Read back: the same config, with llama3 scaling as explicit frequency divisors.
  const ModelConfig back = model_config(f);
  EXPECT_EQ(back.architecture, "LlamaForCausalLM");
  EXPECT_EQ(back.vocab_size, c.vocab_size);
  EXPECT_EQ(back.hidden_size, c.hidden_size);
  EXPECT_EQ(back.intermediate_size, c.intermediate_size);
  EXPECT_EQ(back.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(back.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(back.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(back.head_dim, c.head_dim);
  EXPECT_EQ(back.max_position_embeddings, c.max_position_embeddings);
  EXPECT_TRUE(back.tie_word_embeddings);
  EXPECT_FALSE(back.attention_bias);
  EXPECT_EQ(back.hidden_act, "silu");
  EXPECT_FLOAT_EQ(static_cast<float>(back.norm_eps), 1e-5f);
  EXPECT_EQ(back.bos_token_id, 128000);
  EXPECT_EQ(back.eos_token_ids, std::vector<int32_t>{128001});
  ASSERT_EQ(back.rope.freq_factors.size(), 16u);
  const std::vector<float> want_inv = rotary_inv_freq(c), got_inv = rotary_inv_freq(back);
  for (size_t i = 0; i < want_inv.size(); ++i) EXPECT_NEAR(got_inv[i], want_inv[i], want_inv[i] * 1e-6) << i;
}

TEST(GgufExport, TinyQwen3AndPhiConfigsReadBack) {
  for (const std::string model : {"tiny-qwen3", "tiny-phi", "tiny-qwen2"}) {
    TempFile out(model);
    GgufExportOptions opts;
    opts.quantize = "f16";
    write_recipe_gguf(config_path(model), out.path(), opts);
    const GgufFile f = GgufFile::open(out.path());
    const ModelConfig c = ModelConfig::from_json(read_json(config_path(model)));
    const ModelConfig back = model_config(f);
    EXPECT_EQ(back.architecture, c.architecture) << model;
    EXPECT_EQ(back.vocab_size, c.vocab_size) << model;
    EXPECT_EQ(back.hidden_size, c.hidden_size) << model;
    EXPECT_EQ(back.intermediate_size, c.intermediate_size) << model;
    EXPECT_EQ(back.num_key_value_heads, c.num_key_value_heads) << model;
    EXPECT_EQ(back.head_dim, c.head_dim) << model;
    EXPECT_EQ(back.rotary_dim(), c.rotary_dim()) << model;
    EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings) << model;
    EXPECT_EQ(back.hidden_act, c.hidden_act) << model;
    EXPECT_FLOAT_EQ(static_cast<float>(back.norm_eps), static_cast<float>(c.norm_eps)) << model;
    EXPECT_FLOAT_EQ(static_cast<float>(back.rope.theta), static_cast<float>(c.rope.theta)) << model;
    EXPECT_TRUE(back.rope.freq_factors.empty()) << model;
    EXPECT_EQ(back.torch_dtype, DType::F16) << model;
    // No permutation outside the llama architecture.
    const ParamSpec q{"model.layers.0.self_attn.q_proj.weight", {c.num_attention_heads * c.head_dim, c.hidden_size}};
    EXPECT_EQ(permutation_heads(gguf_architecture(c.architecture), q.name, c), 0);
  }
}

TEST(GgufExport, Tokenizers) {
  struct Case {
    std::string model, pre;
    int64_t control_id;
  };
  for (const Case& k : {Case{"tiny-qwen3", "qwen2", 151645}, Case{"tiny-phi", "gpt-2", 50256}}) {
    if (!fs::exists(tokenizer_dir(k.model))) GTEST_SKIP() << "tokenizer files not fetched";
    TempFile out(k.model + "-tok");
    GgufExportOptions opts;
    opts.quantize = "q8_0";
    opts.tokenizer.dir = tokenizer_dir(k.model);
    opts.tokenizer.config_path = data_dir() + "/models/" + k.model + "/tokenizer_config.json";
    write_recipe_gguf(config_path(k.model), out.path(), opts);
    const GgufFile f = GgufFile::open(out.path());
    const ModelConfig c = model_config(f);
    EXPECT_EQ(f.get("tokenizer.ggml.pre").as_string(""), k.pre) << k.model;
    const auto& tokens = f.get("tokenizer.ggml.tokens").as_strings("");
    EXPECT_EQ(static_cast<int64_t>(tokens.size()), c.vocab_size) << k.model;
    EXPECT_EQ(f.get("tokenizer.ggml.token_type").as_ints("")[static_cast<size_t>(k.control_id)], 3) << k.model;
    // Ids the tokenizer does not use are padding, as the converter writes them.
    EXPECT_EQ(tokens.back(), "[PAD" + std::to_string(c.vocab_size - 1) + "]") << k.model;
    EXPECT_EQ(f.get("tokenizer.ggml.token_type").as_ints("").back(), 5) << k.model;
  }
}

TEST(GgufExport, SentencePieceTokenizersAreRefusedClearly) {
  if (!fs::exists(tokenizer_dir("tiny-llama2"))) GTEST_SKIP() << "tokenizer files not fetched";
  TempFile out("llama2");
  GgufExportOptions opts;
  opts.tokenizer.dir = tokenizer_dir("tiny-llama2");
  try {
    write_recipe_gguf(config_path("tiny-llama2"), out.path(), opts);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("byte-level BPE"), std::string::npos) << e.what();
  }
}
