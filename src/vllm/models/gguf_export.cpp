#include "vllm/models/gguf_export.h"

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/gguf_model.h"
#include "vllm/gguf/gguf_writer.h"
#include "vllm/models/random_weights.h"

namespace vllm {

using gguf::GgmlType;

namespace {

struct Scheme {
  const char* name;
  GgmlType base;
  bool more_bits_mix;  // llama-quantize's _M mixes
  uint32_t file_type;  // general.file_type (llama.cpp's LlamaFileType)
};
constexpr Scheme kSchemes[] = {
    {"f32", GgmlType::kF32, false, 0},    {"f16", GgmlType::kF16, false, 1},    {"bf16", GgmlType::kBF16, false, 32},
    {"q8_0", GgmlType::kQ8_0, false, 7},  {"q4_0", GgmlType::kQ4_0, false, 2},  {"q4_k", GgmlType::kQ4_K, false, 14},
    {"q4_k_m", GgmlType::kQ4_K, true, 15}, {"q5_k", GgmlType::kQ5_K, false, 16}, {"q5_k_m", GgmlType::kQ5_K, true, 17},
    {"q6_k", GgmlType::kQ6_K, false, 18},
};

const Scheme& find_scheme(const std::string& name) {
  for (const Scheme& s : kSchemes)
    if (name == s.name) return s;
  std::string list;
  for (const Scheme& s : kSchemes) list += (list.empty() ? "" : ", ") + std::string(s.name);
  throw Error("unknown quantization '" + name + "' (supported: " + list + ")");
}

// llama-quantize's use_more_bits: the first and last eighth of the layers, and every third between.
bool use_more_bits(int64_t layer, int64_t layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t layer_of(const std::string& gguf_name) {
  if (gguf_name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(gguf_name.substr(4, gguf_name.find('.', 4) - 4));
}

// A float32 copy of `t` with the rows reordered by llama.cpp's q/k permutation.
std::vector<float> permuted_rows(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t heads) {
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = gguf::permuted_source_row(r, rows, heads);
    std::memcpy(&out[static_cast<size_t>(r * cols)], &v[static_cast<size_t>(src * cols)], static_cast<size_t>(cols) * 4);
  }
  return out;
}

// Rows of `cols` floats quantized to `type`, in parallel.
std::vector<uint8_t> quantize_rows(const std::vector<float>& v, int64_t cols, GgmlType type) {
  const int64_t rows = cols > 0 ? static_cast<int64_t>(v.size()) / cols : 0;
  const size_t row_bytes = gguf::ggml_row_bytes(type, cols);
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  ThreadPool::global().parallel_for(rows, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      gguf::quantize_row(type, v.data() + r * cols, out.data() + static_cast<size_t>(r) * row_bytes, cols);
  }, 16);
  return out;
}

}  // namespace

GgmlType gguf_tensor_type(const std::string& scheme_name, const std::string& gguf_name, const Shape& shape,
                          const ModelConfig& c) {
  const Scheme& scheme = find_scheme(scheme_name);
  if (shape.size() < 2) return GgmlType::kF32;
  GgmlType type = scheme.base;
  const bool block_scheme = gguf::ggml_type_is_quantized(type) && type != GgmlType::kQ8_0;
  const bool is_output = gguf_name == "output.weight" || (c.tie_word_embeddings && gguf_name == "token_embd.weight");
  if (block_scheme && is_output) type = GgmlType::kQ6_K;
  if (scheme.more_bits_mix && (ends_with(gguf_name, ".attn_v.weight") || ends_with(gguf_name, ".ffn_down.weight")) &&
      use_more_bits(layer_of(gguf_name), c.num_hidden_layers))
    type = GgmlType::kQ6_K;
  const int64_t row = shape.back();
  if (row % gguf::ggml_type_info(type).block_size != 0)
    type = row % 32 == 0 && gguf::ggml_type_is_quantized(type) && type != GgmlType::kQ8_0 ? GgmlType::kQ8_0
                                                                                        : GgmlType::kF16;
  return type;
}

void write_model_gguf(const ModelConfig& c, const ParameterSource& source, const std::string& out_path,
                      const GgufExportOptions& opts) {
  const Scheme& scheme = find_scheme(opts.quantize);
  const std::string arch = gguf::gguf_architecture(c.architecture);
  const std::vector<ParamSpec> params = find_architecture(c.architecture).parameters(c);

  gguf::GgufWriter w;
  gguf::write_model_metadata(w, c);
  if (!opts.name.empty()) w.set("general.name", gguf::Value::string(opts.name));
  w.set("general.file_type", gguf::Value::u32(scheme.file_type));
  w.set("general.quantization_version", gguf::Value::u32(2));
  if (!opts.tokenizer.dir.empty()) gguf::write_tokenizer_metadata(w, opts.tokenizer, c);

  for (const ParamSpec& p : params) {
    const std::string name = gguf::gguf_tensor_name(p.name);
    const GgmlType type = gguf_tensor_type(opts.quantize, name, p.shape, c);
    const int64_t heads = gguf::permutation_heads(arch, p.name, c);
    std::vector<int64_t> dims(p.shape.rbegin(), p.shape.rend());
    w.add_tensor(name, type, dims, [&source, p, type, heads]() {
      Tensor t = source(p);
      if (t.shape() != p.shape)
        throw Error("parameter '" + p.name + "' has shape " + shape_str(t.shape()) + ", expected " + shape_str(p.shape));
      std::vector<float> v = t.to_floats();
      const int64_t cols = p.shape.back(), rows = t.numel() / std::max<int64_t>(cols, 1);
      if (heads > 0) v = permuted_rows(v, rows, cols, heads);
      return quantize_rows(v, cols, type);
    });
  }
  for (auto& [name, values] : gguf::extra_tensors(c)) {
    const int64_t n = static_cast<int64_t>(values.size());
    w.add_tensor(name, GgmlType::kF32, {n}, quantize_rows(values, n, GgmlType::kF32));
  }
  w.write(out_path);
}

void write_recipe_gguf(const std::string& config_path, const std::string& out_path, const GgufExportOptions& opts) {
  std::ifstream in(config_path);
  if (!in) throw Error("cannot open " + config_path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(config_path + ": invalid JSON: " + e.what());
  }
  const ModelConfig c = ModelConfig::from_json(j, config_path);
  const DType dtype = opts.dtype.value_or(c.torch_dtype.value_or(DType::BF16));
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error("recipe weights must be float32, float16 or bfloat16");
  write_model_gguf(c, [&](const ParamSpec& p) { return recipe_tensor(p.name, p.shape, opts.seed, dtype); }, out_path,
                   opts);
}

}  // namespace vllm
