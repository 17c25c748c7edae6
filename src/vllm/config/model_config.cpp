#include "vllm/config/model_config.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "vllm/core/error.h"
#include "vllm/core/files.h"

namespace vllm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json_file(const std::string& path) {
  try {
    return json::parse(read_regular_file(path));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw Error(path + ": invalid JSON: " + e.what(), ErrorKind::kModelLoad);
  }
}

// Typed accessors that name the file and key on error.
struct Reader {
  const json& j;
  const std::string& source;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(source + ": key '" + key + "' " + what, ErrorKind::kModelLoad);
  }
  bool has(const std::string& key) const { return j.contains(key) && !j.at(key).is_null(); }
  int64_t integer(const std::string& key) const {
    if (!has(key)) fail(key, "is missing");
    const json& v = j.at(key);
    if (!v.is_number_integer()) fail(key, "must be an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) fail(key, "is out of range: " + v.dump());
    return v.get<int64_t>();
  }
  int64_t integer_or(const std::string& key, int64_t dflt) const { return has(key) ? integer(key) : dflt; }
  double number_or(const std::string& key, double dflt) const {
    if (!has(key)) return dflt;
    const json& v = j.at(key);
    if (!v.is_number()) fail(key, "must be a number");
    return v.get<double>();
  }
  bool boolean_or(const std::string& key, bool dflt) const {
    if (!has(key)) return dflt;
    const json& v = j.at(key);
    if (!v.is_boolean()) fail(key, "must be true or false");
    return v.get<bool>();
  }
  std::string string_or(const std::string& key, const std::string& dflt) const {
    if (!has(key)) return dflt;
    const json& v = j.at(key);
    if (!v.is_string()) fail(key, "must be a string");
    return v.get<std::string>();
  }
  // An id or a list of ids (eos_token_id may be either).
  std::vector<int32_t> ids(const std::string& key) const {
    std::vector<int32_t> out;
    if (!has(key)) return out;
    const json& v = j.at(key);
    auto id = [&](const json& e) {
      if (!e.is_number_integer()) fail(key, "must be an integer or a list of integers");
      // Token ids are int32 everywhere; a larger value must not wrap into another token.
      if (e.is_number_unsigned() ? e.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)
                                 : (e.get<int64_t>() < INT32_MIN || e.get<int64_t>() > INT32_MAX))
        fail(key, "is out of range: " + e.dump());
      return static_cast<int32_t>(e.get<int64_t>());
    };
    if (v.is_number_integer()) {
      out.push_back(id(v));
    } else if (v.is_array()) {
      for (const json& e : v) out.push_back(id(e));
    } else {
      fail(key, "must be an integer or a list of integers");
    }
    return out;
  }
};

// The rope of one object of rope fields (rope_scaling, rope_parameters or one layer type's).
RopeConfig read_rope_object(const json& j, const json& rs, const std::string& full, double theta) {
  RopeConfig rope;
  Reader top{j, full};
  rope.theta = theta;
  Reader rk{rs, full};
  rope.type = rk.string_or("rope_type", rk.string_or("type", "default"));
  rope.theta = rk.number_or("rope_theta", rope.theta);
  rope.factor = rk.number_or("factor", 1.0);
  rope.low_freq_factor = rk.number_or("low_freq_factor", 1.0);
  rope.high_freq_factor = rk.number_or("high_freq_factor", 4.0);
  rope.original_max_position_embeddings = rk.integer_or("original_max_position_embeddings", 8192);
  if (rope.type != "default" && rope.type != "linear" && rope.type != "llama3" && rope.type != "longrope" &&
      rope.type != "yarn")
    throw Error(full + ": rope type '" + rope.type +
                    "' is not supported (supported: default, linear, llama3, longrope, yarn)",
                ErrorKind::kUnsupported);
  if (rope.type == "yarn") {
    // transformers: with original_max_position_embeddings the factor is the ratio of the two
    // context lengths; the attention factor defaults to 0.1 ln(factor) + 1 (or DeepSeek's ratio of
    // two such terms when mscale and mscale_all_dim are given).
    const int64_t max_pos = top.integer_or("max_position_embeddings", 2048);
    double factor = rk.number_or("factor", 1.0);
    if (!rk.has("factor")) rk.fail("factor", "is missing (needed by yarn rope scaling)");
    if (rk.has("original_max_position_embeddings")) {
      rope.original_max_position_embeddings = rk.integer("original_max_position_embeddings");
      if (rope.original_max_position_embeddings <= 0) rk.fail("original_max_position_embeddings", "must be positive");
      factor = static_cast<double>(max_pos) / static_cast<double>(rope.original_max_position_embeddings);
    } else {
      rope.original_max_position_embeddings = max_pos;
    }
    rope.factor = factor;
    auto mscale = [&](double m) { return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; };
    const double ms = rk.number_or("mscale", 0.0), ms_all = rk.number_or("mscale_all_dim", 0.0);
    rope.attention_factor = rk.number_or("attention_factor", ms != 0 && ms_all != 0 ? mscale(ms) / mscale(ms_all) : mscale(1.0));
    // transformers reads these with `or`: 0 means the default too.
    rope.beta_fast = rk.number_or("beta_fast", 32.0);
    if (rope.beta_fast == 0) rope.beta_fast = 32.0;
    rope.beta_slow = rk.number_or("beta_slow", 1.0);
    if (rope.beta_slow == 0) rope.beta_slow = 1.0;
    rope.truncate = rk.boolean_or("truncate", true);
  }
  if (rope.type == "longrope") {
    auto factors = [&](const char* k) {
      if (!rk.has(k) || !rs.at(k).is_array()) rk.fail(k, "is missing or not a list of numbers (needed by longrope)");
      std::vector<double> out;
      for (const json& v : rs.at(k)) {
        if (!v.is_number()) rk.fail(k, "must be a list of numbers");
        out.push_back(v.get<double>());
      }
      return out;
    };
    rope.short_factor = factors("short_factor");
    rope.long_factor = factors("long_factor");
    // transformers: Phi-3 keeps original_max_position_embeddings at the top level, and then the
    // scaling factor is the ratio of the two context lengths; otherwise rope_scaling's.
    const int64_t max_pos = top.integer_or("max_position_embeddings", 2048);
    double factor = rk.number_or("factor", 1.0);
    if (top.has("original_max_position_embeddings")) {
      rope.original_max_position_embeddings = top.integer("original_max_position_embeddings");
      factor = static_cast<double>(max_pos) / static_cast<double>(rope.original_max_position_embeddings);
    } else {
      rope.original_max_position_embeddings = rk.integer_or("original_max_position_embeddings", max_pos);
    }
    rope.factor = factor;
    rope.attention_factor =
        rk.number_or("attention_factor", factor <= 1.0 ? 1.0
                                                       : std::sqrt(1.0 + std::log(factor) /
                                                                             std::log(static_cast<double>(
                                                                                 rope.original_max_position_embeddings))));
  }
  if (rope.type == "llama3" && !rk.has("factor")) rk.fail("factor", "is missing (needed by llama3 rope scaling)");
  return rope;
}

// Whether a rope_parameters object is keyed by layer type (every value an object).
bool keyed_by_layer_type(const json& rs) {
  if (rs.empty()) return false;
  for (const auto& [k, v] : rs.items())
    if (!v.is_object() && !v.is_null()) return false;
  return true;
}

RopeConfig read_rope(const json& j, const std::string& source, std::map<std::string, RopeConfig>* per_type) {
  Reader top{j, source};
  const double theta = top.number_or("rope_theta", 10000.0);
  // transformers v5 keeps every rope field in "rope_parameters"; v4 has "rope_scaling".
  const char* key = top.has("rope_parameters") ? "rope_parameters" : (top.has("rope_scaling") ? "rope_scaling" : nullptr);
  if (!key) {
    RopeConfig rope;
    rope.theta = theta;
    return rope;
  }
  const json& rs = j.at(key);
  if (!rs.is_object()) top.fail(key, "must be an object");
  const std::string full = source + ": " + key;
  if (std::string(key) == "rope_parameters" && keyed_by_layer_type(rs)) {
    for (const auto& [type, sub] : rs.items()) {
      if (sub.is_null()) continue;
      (*per_type)[type] = read_rope_object(j, sub, full + "." + type, theta);
    }
    if (!per_type->count("full_attention"))
      top.fail(key, "is keyed by layer type but has no 'full_attention' entry");
    return per_type->at("full_attention");
  }
  return read_rope_object(j, rs, full, theta);
}

// Every size and factor the engine computes with, checked once here, so that a bad config.json
// fails the start with a message naming the key and value (a server must never start with a
// model whose every request then fails, and no size may overflow the arithmetic that follows).
void validate(const ModelConfig& c, const std::string& source) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(source + ": key '" + key + "' " + what, ErrorKind::kModelLoad);
  };
  // Sizes index int32 token ids and tensor dimensions; 2^31 - 1 bounds every one of them so
  // that products of two stay far from overflowing int64.
  auto size = [&](const char* key, int64_t v) {
    if (v <= 0) fail(key, "must be positive, not " + std::to_string(v));
    if (v > INT32_MAX) fail(key, "is too large: " + std::to_string(v));
  };
  size("vocab_size", c.vocab_size);
  size("hidden_size", c.hidden_size);
  size("intermediate_size", c.intermediate_size);
  size("num_hidden_layers", c.num_hidden_layers);
  size("num_attention_heads", c.num_attention_heads);
  size("num_key_value_heads", c.num_key_value_heads);
  size("head_dim", c.head_dim);
  size("max_position_embeddings", c.max_position_embeddings);
  if (c.num_key_value_heads > c.num_attention_heads || c.num_attention_heads % c.num_key_value_heads != 0)
    fail("num_key_value_heads",
         fmt::format("({}) must divide num_attention_heads ({})", c.num_key_value_heads, c.num_attention_heads));
  auto positive_number = [&](const std::string& key, double v) {
    if (!std::isfinite(v) || v <= 0) fail(key, "must be a positive number, not " + json(v).dump());
  };
  if (!std::isfinite(c.partial_rotary_factor) || c.partial_rotary_factor <= 0 || c.partial_rotary_factor > 1)
    fail("partial_rotary_factor", "must be in (0, 1], not " + json(c.partial_rotary_factor).dump());
  if (c.rotary_dim() < 2 || c.rotary_dim() % 2 != 0)
    fail("partial_rotary_factor", "must give an even rotary dimension of at least 2 (head_dim " + std::to_string(c.head_dim) + " x " +
                                      json(c.partial_rotary_factor).dump() + " = " + std::to_string(c.rotary_dim()) + ")");
  positive_number(c.raw.contains("rms_norm_eps") ? "rms_norm_eps" : "layer_norm_eps", c.norm_eps);
  auto check_rope = [&](const RopeConfig& r, const std::string& rope) {
    positive_number(rope + "rope_theta", r.theta);
    if (r.type == "default") return;
    positive_number(rope + "factor", r.factor);
    if (r.type == "llama3") {
      positive_number(rope + "low_freq_factor", r.low_freq_factor);
      positive_number(rope + "high_freq_factor", r.high_freq_factor);
      // llama3 scaling interpolates between the two wavelengths they define.
      if (r.high_freq_factor <= r.low_freq_factor)
        fail(rope + "high_freq_factor", fmt::format("({}) must be greater than low_freq_factor ({})",
                                                    json(r.high_freq_factor).dump(), json(r.low_freq_factor).dump()));
      const std::string key = rope + "original_max_position_embeddings";
      size(key.c_str(), r.original_max_position_embeddings);
    }
    if (r.type == "longrope") {
      const size_t half = static_cast<size_t>(c.rotary_dim() / 2);
      for (const auto& [key, f] : {std::pair{"short_factor", &r.short_factor}, std::pair{"long_factor", &r.long_factor}}) {
        if (f->size() != half)
          fail(rope + key, fmt::format("has {} entries; longrope needs rotary_dim / 2 = {}", f->size(), half));
        for (double v : *f) positive_number(rope + key, v);
      }
      positive_number(rope + "attention_factor", r.attention_factor);
      size("original_max_position_embeddings", r.original_max_position_embeddings);
    }
    if (r.type == "yarn") {
      positive_number(rope + "attention_factor", r.attention_factor);
      positive_number(rope + "beta_fast", r.beta_fast);
      positive_number(rope + "beta_slow", r.beta_slow);
      const std::string key = rope + "original_max_position_embeddings";
      size(key.c_str(), r.original_max_position_embeddings);
    }
  };
  // rope_theta sits at the top level in v4 configs; the scaling fields in rope_scaling (v4) or
  // rope_parameters (v5), which may be keyed by layer type.
  const std::string scaling = c.raw.contains("rope_parameters") ? "rope_parameters." : "rope_scaling.";
  if (c.layer_type_rope.empty()) {
    positive_number("rope_theta", c.rope.theta);
    check_rope(c.rope, scaling);
  }
  for (const auto& [type, r] : c.layer_type_rope) check_rope(r, scaling + type + ".");
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": must be a JSON object", ErrorKind::kModelLoad);
  Reader r{j, source};
  ModelConfig c;
  c.raw = j;
  if (!r.has("architectures") || !j.at("architectures").is_array() || j.at("architectures").empty() ||
      !j.at("architectures")[0].is_string())
    r.fail("architectures", "is missing or not a list of names");
  c.architecture = j.at("architectures")[0].get<std::string>();
  c.model_type = r.string_or("model_type", "");
  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer_or("num_key_value_heads", c.num_attention_heads);
  if (c.num_attention_heads <= 0) r.fail("num_attention_heads", "must be positive, not " + std::to_string(c.num_attention_heads));
  // transformers' default head_dim, which needs hidden_size to split evenly into the heads.
  if (!r.has("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    r.fail("hidden_size",
           fmt::format("({}) must be divisible by num_attention_heads ({})", c.hidden_size, c.num_attention_heads));
  c.head_dim = r.integer_or("head_dim", c.hidden_size / c.num_attention_heads);
  c.partial_rotary_factor = r.number_or("partial_rotary_factor", 1.0);
  c.rope = read_rope(j, source, &c.layer_type_rope);
  if (r.has("rope_parameters")) {
    c.partial_rotary_factor = Reader{j.at("rope_parameters"), source}.number_or("partial_rotary_factor",
                                                                                 c.partial_rotary_factor);
  }
  c.norm_eps = r.has("rms_norm_eps") ? r.number_or("rms_norm_eps", 1e-6) : r.number_or("layer_norm_eps", 1e-5);
  c.hidden_act = r.string_or("hidden_act", r.string_or("hidden_activation", "silu"));
  // transformers' default when the key is absent: Gemma's configs keep PretrainedConfig's True (the
  // Hub's gemma-3-1b config.json leaves it out), the other families set False.
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", c.architecture.rfind("Gemma", 0) == 0);
  c.attention_bias = r.boolean_or("attention_bias", false);
  c.mlp_bias = r.boolean_or("mlp_bias", false);
  c.max_position_embeddings = r.integer_or("max_position_embeddings", 2048);
  std::string dt = r.string_or("torch_dtype", r.string_or("dtype", ""));
  if (!dt.empty()) {
    try {
      c.torch_dtype = parse_dtype(dt);
    } catch (const Error&) {
      r.fail("torch_dtype", "names an unknown dtype '" + dt + "'");
    }
  }
  c.eos_token_ids = r.ids("eos_token_id");
  auto bos = r.ids("bos_token_id");
  if (!bos.empty()) c.bos_token_id = bos[0];

  validate(c, source);
  return c;
}

ModelConfig ModelConfig::from_folder(const std::string& dir) {
  std::string path = (fs::path(dir) / "config.json").string();
  if (path_type(path) == PathType::kMissing) throw Error("model folder " + dir + " has no config.json", ErrorKind::kModelLoad);
  return from_json(read_json_file(path), path);
}

GenerationConfig GenerationConfig::from_folder(const std::string& dir) {
  std::string path = (fs::path(dir) / "generation_config.json").string();
  if (path_type(path) == PathType::kMissing) return GenerationConfig();
  return from_json(read_json_file(path), path);
}

GenerationConfig GenerationConfig::from_json(const json& j, const std::string& path) {
  GenerationConfig g;
  if (!j.is_object()) throw Error(path + ": must be a JSON object", ErrorKind::kModelLoad);
  Reader r{j, path};
  g.eos_token_ids = r.ids("eos_token_id");
  auto bos = r.ids("bos_token_id");
  if (!bos.empty()) g.bos_token_id = bos[0];
  for (const char* key : {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"}) {
    if (r.has(key)) g.sampling_defaults[key] = j.at(key);
  }
  // These become every request's defaults: a value SamplingParams refuses (vLLM's rules) would
  // make every request fail, so it fails the start instead.
  auto bad = [&](const char* key, const std::string& rule) {
    r.fail(key, rule + ", not " + j.at(key).dump());
  };
  if (r.has("temperature") && !(r.number_or("temperature", 0) >= 0 && std::isfinite(r.number_or("temperature", 0))))
    bad("temperature", "must be a non-negative number");
  if (r.has("top_p") && !(r.number_or("top_p", 1) > 0 && r.number_or("top_p", 1) <= 1)) bad("top_p", "must be in (0, 1]");
  if (r.has("top_k") && r.integer("top_k") < -1) bad("top_k", "must be -1 or 0 (disabled), or at least 1");
  if (r.has("min_p") && !(r.number_or("min_p", 0) >= 0 && r.number_or("min_p", 0) <= 1)) bad("min_p", "must be in [0, 1]");
  if (r.has("repetition_penalty") &&
      !(r.number_or("repetition_penalty", 1) > 0 && std::isfinite(r.number_or("repetition_penalty", 1))))
    bad("repetition_penalty", "must be a positive number");
  if (r.has("max_new_tokens") && r.integer("max_new_tokens") < 1) bad("max_new_tokens", "must be at least 1");
  return g;
}

}  // namespace vllm
