#include "vllm/gguf/gguf_model.h"

#include <cmath>
#include <map>
#include <optional>

#include "vllm/core/error.h"

namespace vllm::gguf {

namespace {

struct ArchPair {
  const char* hf;
  const char* gguf;
  const char* model_type;
};
// The first entry of a GGUF name is the architecture a file of that name loads as.
constexpr ArchPair kArchitectures[] = {
    {"LlamaForCausalLM", "llama", "llama"},
    {"MistralForCausalLM", "llama", "llama"},
    {"Qwen2ForCausalLM", "qwen2", "qwen2"},
    {"Qwen3ForCausalLM", "qwen3", "qwen3"},
    {"PhiForCausalLM", "phi2", "phi"},
};

std::string list_of(bool gguf_names) {
  std::string out;
  for (const ArchPair& a : kArchitectures) {
    const std::string n = gguf_names ? a.gguf : a.hf;
    if (out.find(n) == std::string::npos) out += (out.empty() ? "" : ", ") + n;
  }
  return out;
}

const ArchPair& by_gguf(const std::string& name) {
  for (const ArchPair& a : kArchitectures)
    if (name == a.gguf) return a;
  throw Error("GGUF architecture '" + name + "' is not supported (supported: " + list_of(true) + ")",
              ErrorKind::kUnsupported);
}

// transformers module path -> GGUF name (gguf-py's TensorNameMap, for the families above).
const std::map<std::string, std::string>& top_level_names() {
  static const std::map<std::string, std::string> m = {
      {"model.embed_tokens", "token_embd"},
      {"model.norm", "output_norm"},
      {"model.final_layernorm", "output_norm"},
      {"lm_head", "output"},
  };
  return m;
}
const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> m = {
      {"input_layernorm", "attn_norm"},
      {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},
      {"self_attn.dense", "attn_output"},  // Phi
      {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},
      {"mlp.gate_proj", "ffn_gate"},
      {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
      {"mlp.fc1", "ffn_up"},    // Phi
      {"mlp.fc2", "ffn_down"},  // Phi
  };
  return m;
}

[[noreturn]] void metadata_error(const GgufFile& f, const std::string& what) {
  throw Error(f.path() + ": " + what, ErrorKind::kModelLoad);
}

std::optional<int64_t> opt_int(const GgufFile& f, const std::string& key) {
  const Value* v = f.find(key);
  if (!v) return std::nullopt;
  return v->as_int(key);
}
int64_t req_int(const GgufFile& f, const std::string& key) {
  auto v = opt_int(f, key);
  if (!v) metadata_error(f, "GGUF metadata has no '" + key + "' (needed for " + f.get("general.architecture").as_string("general.architecture") + ")");
  return *v;
}
std::optional<double> opt_double(const GgufFile& f, const std::string& key) {
  const Value* v = f.find(key);
  if (!v) return std::nullopt;
  return v->as_double(key);
}

// The dtype a GGUF's float matrices are stored in, as config.json's torch_dtype; quantized (or
// float32) files compute in float32.
std::string stored_dtype(const GgufFile& f) {
  for (const TensorInfo& t : f.tensors()) {
    if (t.dims.size() < 2) continue;
    if (t.type == GgmlType::kBF16) return "bfloat16";
    if (t.type == GgmlType::kF16) return "float16";
    return "float32";
  }
  return "float32";
}

}  // namespace

std::string gguf_architecture(const std::string& hf) {
  for (const ArchPair& a : kArchitectures)
    if (hf == a.hf) return a.gguf;
  throw Error("architecture '" + hf + "' cannot be written as GGUF (supported: " + list_of(false) + ")",
              ErrorKind::kUnsupported);
}

std::string hf_architecture(const std::string& gguf) { return by_gguf(gguf).hf; }

std::string gguf_tensor_name(const std::string& hf_name) {
  // "<module>.weight|bias", the module a top-level one or "model.layers.<i>.<name in the layer>".
  const size_t dot = hf_name.rfind('.');
  const std::string kind = dot == std::string::npos ? "" : hf_name.substr(dot + 1);
  if (kind == "weight" || kind == "bias") {
    const std::string module = hf_name.substr(0, dot);
    auto top = top_level_names().find(module);
    if (top != top_level_names().end()) return top->second + "." + kind;
    const std::string layers = "model.layers.";
    const size_t index_end = module.find('.', layers.size());
    if (module.rfind(layers, 0) == 0 && index_end != std::string::npos && index_end > layers.size()) {
      const std::string index = module.substr(layers.size(), index_end - layers.size());
      const bool digits = index.find_first_not_of("0123456789") == std::string::npos;
      auto it = layer_names().find(module.substr(index_end + 1));
      if (digits && it != layer_names().end()) return "blk." + index + "." + it->second + "." + kind;
    }
  }
  throw Error("tensor '" + hf_name + "' has no GGUF name", ErrorKind::kUnsupported);
}

int64_t permutation_heads(const std::string& gguf_arch, const std::string& hf_name, const ModelConfig& c) {
  if (gguf_arch != "llama") return 0;
  auto ends_with = [&](const std::string& s) {
    return hf_name.size() >= s.size() && hf_name.compare(hf_name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with("self_attn.q_proj.weight") || ends_with("self_attn.q_proj.bias")) return c.num_attention_heads;
  if (ends_with("self_attn.k_proj.weight") || ends_with("self_attn.k_proj.bias")) return c.num_key_value_heads;
  return 0;
}

int64_t permuted_source_row(int64_t gguf_row, int64_t rows, int64_t heads) {
  const int64_t hd = rows / heads, half = hd / 2;
  const int64_t h = gguf_row / hd, within = gguf_row % hd;
  const int64_t i = within / 2, s = within % 2;
  return h * hd + s * half + i;
}

void write_model_metadata(GgufWriter& w, const ModelConfig& c) {
  const std::string a = gguf_architecture(c.architecture);
  auto u32 = [](int64_t v) { return Value::u32(static_cast<uint32_t>(v)); };
  auto f32 = [](double v) { return Value::f32(static_cast<float>(v)); };
  w.set("general.architecture", Value::string(a));
  w.set(a + ".context_length", u32(c.max_position_embeddings));
  w.set(a + ".embedding_length", u32(c.hidden_size));
  w.set(a + ".feed_forward_length", u32(c.intermediate_size));
  w.set(a + ".block_count", u32(c.num_hidden_layers));
  w.set(a + ".attention.head_count", u32(c.num_attention_heads));
  w.set(a + ".attention.head_count_kv", u32(c.num_key_value_heads));
  w.set(a + ".rope.freq_base", f32(c.rope.theta));
  w.set(a + ".rope.dimension_count", u32(c.rotary_dim()));
  if (a == "phi2") {
    w.set(a + ".attention.layer_norm_epsilon", f32(c.norm_eps));
  } else {
    w.set(a + ".attention.layer_norm_rms_epsilon", f32(c.norm_eps));
  }
  if (c.raw.contains("head_dim") || c.head_dim * c.num_attention_heads != c.hidden_size) {
    w.set(a + ".attention.key_length", u32(c.head_dim));
    w.set(a + ".attention.value_length", u32(c.head_dim));
  }
  if (a == "llama") w.set(a + ".vocab_size", u32(c.vocab_size));
  if (c.rope.type == "linear") {
    w.set(a + ".rope.scaling.type", Value::string("linear"));
    w.set(a + ".rope.scaling.factor", f32(c.rope.factor));
  } else if (c.rope.type != "default" && c.rope.type != "llama3") {
    throw Error("rope scaling '" + c.rope.type + "' cannot be written as GGUF yet", ErrorKind::kUnsupported);
  }
}

std::vector<std::pair<std::string, std::vector<float>>> extra_tensors(const ModelConfig& c) {
  if (c.rope.type != "llama3") return {};
  // convert_hf_to_gguf's rope factors: inv_freq is divided by each (1 for short wavelengths,
  // `factor` for long ones, a blend between), computed in float64 from float32 frequencies.
  const RopeConfig& r = c.rope;
  const int64_t dim = c.rotary_dim();
  const double low_wavelen = static_cast<double>(r.original_max_position_embeddings) / r.low_freq_factor;
  const double high_wavelen = static_cast<double>(r.original_max_position_embeddings) / r.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float freq = 1.0f / std::pow(static_cast<float>(r.theta), static_cast<float>(2 * i) / static_cast<float>(dim));
    const double wavelen = 2 * M_PI / freq;
    double f;
    if (wavelen < high_wavelen) {
      f = 1.0;
    } else if (wavelen > low_wavelen) {
      f = r.factor;
    } else {
      const double smooth = (static_cast<double>(r.original_max_position_embeddings) / wavelen - r.low_freq_factor) /
                            (r.high_freq_factor - r.low_freq_factor);
      f = 1.0 / ((1 - smooth) / r.factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return {{"rope_freqs.weight", std::move(factors)}};
}

nlohmann::json config_json(const GgufFile& f) {
  const std::string a = f.get("general.architecture").as_string("general.architecture");
  const ArchPair& arch = by_gguf(a);
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->dims.size() != 2) metadata_error(f, "GGUF file has no 2-D tensor 'token_embd.weight'");
  const int64_t hidden = req_int(f, a + ".embedding_length");
  const int64_t heads = req_int(f, a + ".attention.head_count");
  if (heads <= 0) metadata_error(f, a + ".attention.head_count must be positive, not " + std::to_string(heads));
  const int64_t head_dim = opt_int(f, a + ".attention.key_length").value_or(hidden / heads);
  nlohmann::json j = {
      {"architectures", {arch.hf}},
      {"model_type", arch.model_type},
      {"vocab_size", embd->dims[1]},
      {"hidden_size", hidden},
      {"intermediate_size", req_int(f, a + ".feed_forward_length")},
      {"num_hidden_layers", req_int(f, a + ".block_count")},
      {"num_attention_heads", heads},
      {"num_key_value_heads", opt_int(f, a + ".attention.head_count_kv").value_or(heads)},
      {"head_dim", head_dim},
      {"max_position_embeddings", req_int(f, a + ".context_length")},
      {"rope_theta", opt_double(f, a + ".rope.freq_base").value_or(10000.0)},
      {"tie_word_embeddings", f.find_tensor("output.weight") == nullptr},
      {"torch_dtype", stored_dtype(f)},
  };
  if (a == "phi2") {
    j["hidden_act"] = "gelu_new";
    j["layer_norm_eps"] = opt_double(f, a + ".attention.layer_norm_epsilon").value_or(1e-5);
    const int64_t rot = opt_int(f, a + ".rope.dimension_count").value_or(head_dim);
    j["partial_rotary_factor"] = static_cast<double>(rot) / static_cast<double>(head_dim);
  } else {
    j["hidden_act"] = "silu";
    j["rms_norm_eps"] = opt_double(f, a + ".attention.layer_norm_rms_epsilon").value_or(1e-5);
    if (const auto rot = opt_int(f, a + ".rope.dimension_count"); rot && *rot != head_dim)
      metadata_error(f, a + ".rope.dimension_count " + std::to_string(*rot) + " differs from the head size " +
                            std::to_string(head_dim) + " (partial rotary is not supported for " + a + ")");
    j["attention_bias"] = f.find_tensor("blk.0.attn_q.bias") != nullptr;
    j["mlp_bias"] = f.find_tensor("blk.0.ffn_gate.bias") != nullptr;
  }
  if (const Value* st = f.find(a + ".rope.scaling.type")) {
    const std::string type = st->as_string(a + ".rope.scaling.type");
    if (type == "linear") {
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", opt_double(f, a + ".rope.scaling.factor").value_or(1.0)}};
    } else if (type != "none") {
      throw Error(f.path() + ": GGUF rope scaling '" + type + "' is not supported (supported: none, linear)",
                  ErrorKind::kUnsupported);
    }
  }
  if (auto bos = opt_int(f, "tokenizer.ggml.bos_token_id")) j["bos_token_id"] = *bos;
  if (auto eos = opt_int(f, "tokenizer.ggml.eos_token_id")) j["eos_token_id"] = *eos;
  return j;
}

ModelConfig model_config(const GgufFile& f) {
  ModelConfig c = ModelConfig::from_json(config_json(f), f.path());
  if (const TensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    const Tensor factors = f.dequantize(*rf);
    if (factors.numel() != c.rotary_dim() / 2)
      metadata_error(f, "tensor 'rope_freqs.weight' has " + std::to_string(factors.numel()) +
                            " factors, the rotary dimension " + std::to_string(c.rotary_dim()) + " needs " +
                            std::to_string(c.rotary_dim() / 2));
    for (float v : factors.to_floats()) {
      if (!std::isfinite(v) || v <= 0)
        metadata_error(f, "tensor 'rope_freqs.weight' holds " + std::to_string(v) + ", not a positive factor");
      c.rope.freq_factors.push_back(v);
    }
  }
  return c;
}

}  // namespace vllm::gguf
