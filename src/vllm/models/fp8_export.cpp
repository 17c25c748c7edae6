#include "vllm/models/fp8_export.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "vllm/config/model_config.h"
#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/loader/fp8_weights.h"
#include "vllm/loader/quantization_config.h"
#include "vllm/loader/safetensors.h"
#include "vllm/models/model.h"
#include "vllm/models/random_weights.h"

namespace vllm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* const kSchemes[] = {"fp8", "fp8-channel", "fp8-block"};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The per-expert checkpoint names of an architecture whose recipe experts are fused tensors.
struct PerExpertNames {
  std::string moe, gate, up, down;  // "<layer>.<moe>experts.<e>.<gate>.weight", router "<layer>.<moe>gate.weight"
};
std::optional<PerExpertNames> per_expert_names(const std::string& architecture) {
  if (architecture == "MixtralForCausalLM") return PerExpertNames{"block_sparse_moe.", "w1", "w3", "w2"};
  if (architecture == "Qwen3MoeForCausalLM") return PerExpertNames{"mlp.", "gate_proj", "up_proj", "down_proj"};
  return std::nullopt;  // GPT-OSS keeps its [E, H, 2I] experts (no per-expert layout): they stay float
}

// A parameter in checkpoint layout: fused experts "model.layers.<i>.mlp.experts.{gate_up_proj,
// down_proj}" become per-expert matrices and the router moves to the family's name.
std::vector<std::pair<std::string, Tensor>> checkpoint_tensors(const std::string& name, const Tensor& t,
                                                               const std::optional<PerExpertNames>& pe) {
  const std::string prefix = "model.layers.";
  const size_t layer_end = name.rfind(prefix, 0) == 0 ? name.find('.', prefix.size()) : std::string::npos;
  if (!pe || layer_end == std::string::npos) return {{name, t}};
  const std::string layer = name.substr(0, layer_end + 1), rest = name.substr(layer_end + 1);
  if (rest == "mlp.gate.weight") return {{layer + pe->moe + "gate.weight", t}};
  const bool down = rest == "mlp.experts.down_proj";
  if (!down && rest != "mlp.experts.gate_up_proj") return {{name, t}};
  const int64_t E = t.size(0), rows = t.size(1), cols = t.size(2);
  const Tensor flat = t.view({E * rows, cols});
  std::vector<std::pair<std::string, Tensor>> out;
  for (int64_t e = 0; e < E; ++e) {
    const std::string ep = layer + pe->moe + "experts." + std::to_string(e) + ".";
    if (down) {
      out.emplace_back(ep + pe->down + ".weight", flat.slice_rows(e * rows, (e + 1) * rows));
    } else {
      out.emplace_back(ep + pe->gate + ".weight", flat.slice_rows(e * rows, e * rows + rows / 2));
      out.emplace_back(ep + pe->up + ".weight", flat.slice_rows(e * rows + rows / 2, (e + 1) * rows));
    }
  }
  return out;
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string(".^$|()[]{}*+?\\").find(c) != std::string::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

json quantization_config(const std::string& scheme, const std::vector<std::string>& unquantized_modules) {
  if (scheme == "fp8-block") {
    return {{"quant_method", "fp8"},
            {"fmt", "e4m3"},
            {"activation_scheme", "dynamic"},
            {"weight_block_size", json::array({128, 128})},
            {"modules_to_not_convert", unquantized_modules}};
  }
  // compressed-tensors as llm-compressor writes it: the LM head by name, the routers (one per
  // layer) by a regular expression per distinct name ("re:.*mlp\.gate$").
  json ignore = json::array();
  std::set<std::string> patterns;
  for (const std::string& m : unquantized_modules)
    if (m == "lm_head") ignore.push_back(m);  // first, as llm-compressor's recipes list it
  for (const std::string& m : unquantized_modules) {
    if (m == "lm_head") continue;
    const size_t layer_end = m.rfind("model.layers.", 0) == 0 ? m.find('.', 13) : std::string::npos;
    const std::string pattern = layer_end == std::string::npos ? m : "re:.*" + regex_escape(m.substr(layer_end + 1)) + "$";
    if (patterns.insert(pattern).second) ignore.push_back(pattern);
  }
  const json weights = {{"num_bits", 8},  {"type", "float"},       {"symmetric", true},
                        {"dynamic", false}, {"strategy", scheme == "fp8" ? "tensor" : "channel"},
                        {"group_size", nullptr}, {"block_structure", nullptr}, {"actorder", nullptr},
                        {"observer", "minmax"}};
  const json activations = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"dynamic", true},
                            {"strategy", "token"}, {"group_size", nullptr}, {"observer", nullptr}};
  return {{"quant_method", "compressed-tensors"},
          {"format", "float-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups",
           {{"group_0",
             {{"targets", json::array({"Linear"})}, {"weights", weights}, {"input_activations", activations}, {"output_activations", nullptr}}}}},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"sparsity_config", json::object()}};
}

}  // namespace

std::string fp8_export_schemes() {
  std::string out;
  for (const char* s : kSchemes) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

bool is_fp8_export_scheme(const std::string& scheme) {
  for (const char* s : kSchemes)
    if (scheme == s) return true;
  return false;
}

void write_recipe_fp8(const std::string& config_path, const std::string& out_dir, const Fp8ExportOptions& o) {
  if (!is_fp8_export_scheme(o.quantize))
    throw Error("unknown FP8 scheme '" + o.quantize + "' (supported: " + fp8_export_schemes() + ")");
  json j;
  try {
    j = json::parse(read_regular_file(config_path));
  } catch (const json::exception& e) {
    throw Error(config_path + ": invalid JSON: " + e.what());
  }
  const ModelConfig config = ModelConfig::from_json(j, config_path);
  if (j.contains("quantization_config")) throw Error(config_path + " is already quantized (it has a quantization_config)");
  const DType dtype = o.dtype.value_or(config.torch_dtype.value_or(DType::BF16));
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error("weights must be float32, float16 or bfloat16");
  Fp8WeightLayout layout;
  if (o.quantize == "fp8-channel") layout.scales = Fp8ScaleLayout::kPerChannel;
  if (o.quantize == "fp8-block") layout.scales = Fp8ScaleLayout::kBlock;
  const std::string scale_suffix = o.quantize == "fp8-block" ? ".weight_scale_inv" : ".weight_scale";
  const std::optional<PerExpertNames> pe = per_expert_names(config.architecture);

  std::vector<std::pair<std::string, Tensor>> fp8_tensors, float_tensors;
  std::set<std::string> e4m3;
  std::vector<std::string> unquantized;  // linear layers left float (module names)
  for (const ParamSpec& p : find_architecture(config.architecture).parameters(config)) {
    const Tensor recipe = recipe_tensor(p.name, p.shape, o.seed, dtype);
    for (const auto& [name, t] : checkpoint_tensors(p.name, recipe, pe)) {
      const bool linear = t.shape().size() == 2 && ends_with(name, ".weight");
      const std::string module = linear ? name.substr(0, name.size() - 7) : "";
      if (!linear || fp8_leaves_unquantized(name)) {
        if (linear && module != "model.embed_tokens") unquantized.push_back(module);
        fp8_tensors.emplace_back(name, t);
        float_tensors.emplace_back(name, t.to_dtype(DType::F32));
        continue;
      }
      const Fp8Quantized q = quantize_fp8(t, layout);
      fp8_tensors.emplace_back(name, q.weight);
      fp8_tensors.emplace_back(module + scale_suffix, q.scale);
      e4m3.insert(name);
      float_tensors.emplace_back(name, dequantize_fp8(q.weight, Float8Format::kE4M3, q.scale, layout, module + scale_suffix));
    }
  }

  auto write_folder = [&](const std::string& dir, const json& cfg, const std::vector<std::pair<std::string, Tensor>>& tensors,
                          const std::set<std::string>& f8) {
    fs::create_directories(dir);
    std::ofstream(fs::path(dir) / "config.json") << cfg.dump(2) << "\n";
    write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}}, f8);
  };
  json quantized = j;
  quantized["quantization_config"] = quantization_config(o.quantize, unquantized);
  quantized["torch_dtype"] = std::string(dtype_name(dtype));
  write_folder(out_dir, quantized, fp8_tensors, e4m3);
  if (!o.dequantized_out.empty()) {
    json plain = j;
    plain["torch_dtype"] = "float32";
    write_folder(o.dequantized_out, plain, float_tensors, {});
  }
}

}  // namespace vllm
