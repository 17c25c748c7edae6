#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <optional>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"
#include "vllm/loader/quantization_config.h"
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

std::vector<int64_t> layer_sliding_windows(const ModelConfig& config) {
  const Architecture& arch = find_architecture(config.architecture);
  if (arch.layer_sliding_windows) return arch.layer_sliding_windows(config);
  return std::vector<int64_t>(static_cast<size_t>(config.num_hidden_layers), 0);
}

std::unique_ptr<CausalLM> load_model(const std::string& dir, const ModelConfig& config, Backend& backend) {
  find_architecture(config.architecture);  // an unsupported one fails before any file is read
  return load_model(WeightStore::open_folder(dir), config, backend);
}

namespace {

// The store as a tensor-parallel rank reads it: each tensor cut to the rank's slice by the
// family's rules (the store itself when the backend is the only rank).
WeightStore rank_view(const WeightStore& store, const Architecture& arch, const ModelConfig& config, Backend& backend) {
  if (backend.tp_size() == 1) return store;
  if (!arch.shard_rules)
    throw Error("--tensor-parallel-size " + std::to_string(backend.tp_size()) + " is not supported for " + arch.name +
                    " yet",
                ErrorKind::kUnsupported);
  auto shard = std::make_shared<TensorShard>();
  shard->rank = backend.tp_rank();
  shard->world_size = backend.tp_size();
  shard->rules = arch.shard_rules(config);
  WeightStore view = store;
  view.set_shard(std::move(shard));
  return view;
}

std::unique_ptr<CausalLM> create_model(const WeightStore& whole, const ModelConfig& config, Backend& backend) {
  const Architecture& arch = find_architecture(config.architecture);
  const WeightStore store = rank_view(whole, arch, config, backend);
  // An FP8 checkpoint's weights are dequantized as they are read; --quantization fp8 quantizes
  // float weights online (the WeightLoader). Model files see float weights either way.
  const std::string method = resolve_quantization(config.raw, config.quantization, "config.json");
  if (method.empty()) return arch.create(config, store, backend);
  WeightStore quantized = store;
  if (auto checkpoint = parse_quantization_config(config.raw, "config.json")) {
    quantized.set_fp8_checkpoint(std::move(*checkpoint));
  } else {
    quantized.set_online_quantization(method);
  }
  return arch.create(config, quantized, backend);
}

// The single number `name` holds, checked as a KV cache scale.
float kv_scale_value(const WeightStore& store, const std::string& name) {
  Tensor t = store.get(name);
  if (t.numel() != 1)
    throw Error("KV cache scale " + name + " must hold one number (a per-tensor scale), not " + std::to_string(t.numel()) +
                " (in " + store.folder() + ")");
  if (t.dtype() != DType::F32) t = t.to_dtype(DType::F32);
  const float v = t.data<float>()[0];
  if (!(std::isfinite(v) && v > 0))
    throw Error("KV cache scale " + name + " must be positive and finite, not " + std::to_string(v) + " (in " +
                store.folder() + ")");
  return v;
}

// The first of `suffixes` under `prefix` that the store holds, read; nullopt if none.
std::optional<float> find_kv_scale(const WeightStore& store, const std::string& prefix,
                                   std::initializer_list<const char*> suffixes) {
  for (const char* suffix : suffixes)
    if (store.contains(prefix + suffix)) return kv_scale_value(store, prefix + suffix);
  return std::nullopt;
}

}  // namespace

std::vector<KVScales> read_kv_scales(const WeightStore& store, const ModelConfig& config) {
  std::vector<KVScales> scales(static_cast<size_t>(std::max<int64_t>(0, config.num_hidden_layers)));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".self_attn.";
    std::optional<float> k = find_kv_scale(store, p, {"k_scale", "attn.k_scale", "k_proj.k_scale", "k_proj.output_scale"});
    std::optional<float> v = find_kv_scale(store, p, {"v_scale", "attn.v_scale", "v_proj.v_scale", "v_proj.output_scale"});
    if (!k && !v) k = v = find_kv_scale(store, p, {"kv_scale"});
    KVScales& s = scales[static_cast<size_t>(i)];
    if (k && v) s = {*k, *v};
    else if (k || v) s.k = s.v = k ? *k : *v;  // vLLM: one scale alone serves for both
  }
  return scales;
}

std::unique_ptr<CausalLM> load_model(const WeightStore& store, const ModelConfig& config, Backend& backend) {
  std::unique_ptr<CausalLM> model = create_model(store, config, backend);
  if (backend.fp8_kv_cache()) {
    std::vector<KVScales> scales = read_kv_scales(store, config);
    const bool all_one = std::all_of(scales.begin(), scales.end(), [](const KVScales& s) { return s.k == 1.0f && s.v == 1.0f; });
    VLLM_LOG_INFO("FP8 KV cache: {}", all_one ? "no KV scales in the checkpoint, k_scale = v_scale = 1.0"
                                              : "per-layer k_scale / v_scale from the checkpoint");
    model->set_kv_scales(std::move(scales));
  }
  return model;
}

}  // namespace vllm
