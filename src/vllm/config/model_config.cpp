#include "vllm/config/model_config.h"

#include <filesystem>
#include <fstream>

#include "vllm/core/error.h"

namespace vllm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path, ErrorKind::kModelLoad);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
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
    if (v.is_number_integer()) {
      out.push_back(v.get<int32_t>());
    } else if (v.is_array()) {
      for (const json& e : v) {
        if (!e.is_number_integer()) fail(key, "must be an integer or a list of integers");
        out.push_back(e.get<int32_t>());
      }
    } else {
      fail(key, "must be an integer or a list of integers");
    }
    return out;
  }
};

RopeConfig read_rope(const json& j, const std::string& source) {
  RopeConfig rope;
  Reader top{j, source};
  rope.theta = top.number_or("rope_theta", 10000.0);
  // transformers v5 keeps every rope field in "rope_parameters"; v4 has "rope_scaling".
  const char* key = top.has("rope_parameters") ? "rope_parameters" : (top.has("rope_scaling") ? "rope_scaling" : nullptr);
  if (!key) return rope;
  const json& rs = j.at(key);
  if (!rs.is_object()) top.fail(key, "must be an object");
  std::string full = source + ": " + key;
  Reader rk{rs, full};
  rope.type = rk.string_or("rope_type", rk.string_or("type", "default"));
  rope.theta = rk.number_or("rope_theta", rope.theta);
  rope.factor = rk.number_or("factor", 1.0);
  rope.low_freq_factor = rk.number_or("low_freq_factor", 1.0);
  rope.high_freq_factor = rk.number_or("high_freq_factor", 4.0);
  rope.original_max_position_embeddings = rk.integer_or("original_max_position_embeddings", 8192);
  if (rope.type != "default" && rope.type != "linear" && rope.type != "llama3")
    throw Error(full + ": rope type '" + rope.type + "' is not supported (supported: default, linear, llama3)",
                ErrorKind::kUnsupported);
  if (rope.type == "llama3" && !rk.has("factor")) rk.fail("factor", "is missing (needed by llama3 rope scaling)");
  return rope;
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
  if (c.num_attention_heads <= 0) r.fail("num_attention_heads", "must be positive");
  c.head_dim = r.integer_or("head_dim", c.hidden_size / c.num_attention_heads);
  c.partial_rotary_factor = r.number_or("partial_rotary_factor", 1.0);
  c.rope = read_rope(j, source);
  if (r.has("rope_parameters")) {
    c.partial_rotary_factor = Reader{j.at("rope_parameters"), source}.number_or("partial_rotary_factor",
                                                                                 c.partial_rotary_factor);
  }
  c.norm_eps = r.has("rms_norm_eps") ? r.number_or("rms_norm_eps", 1e-6) : r.number_or("layer_norm_eps", 1e-5);
  c.hidden_act = r.string_or("hidden_act", r.string_or("hidden_activation", "silu"));
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
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

  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) r.fail(key, "must be positive");
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("intermediate_size", c.intermediate_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_key_value_heads", c.num_key_value_heads);
  positive("head_dim", c.head_dim);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", "must divide num_attention_heads (" + std::to_string(c.num_attention_heads) + ")");
  if (c.partial_rotary_factor <= 0 || c.partial_rotary_factor > 1) r.fail("partial_rotary_factor", "must be in (0, 1]");
  if (c.rotary_dim() % 2 != 0) r.fail("partial_rotary_factor", "must give an even rotary dimension");
  return c;
}

ModelConfig ModelConfig::from_folder(const std::string& dir) {
  std::string path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(path)) throw Error("model folder " + dir + " has no config.json", ErrorKind::kModelLoad);
  return from_json(read_json_file(path), path);
}

GenerationConfig GenerationConfig::from_folder(const std::string& dir) {
  GenerationConfig g;
  std::string path = (fs::path(dir) / "generation_config.json").string();
  if (!fs::exists(path)) return g;
  json j = read_json_file(path);
  if (!j.is_object()) throw Error(path + ": must be a JSON object", ErrorKind::kModelLoad);
  Reader r{j, path};
  g.eos_token_ids = r.ids("eos_token_id");
  auto bos = r.ids("bos_token_id");
  if (!bos.empty()) g.bos_token_id = bos[0];
  for (const char* key : {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"}) {
    if (r.has(key)) g.sampling_defaults[key] = j.at(key);
  }
  return g;
}

}  // namespace vllm
