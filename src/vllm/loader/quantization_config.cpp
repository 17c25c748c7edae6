#include "vllm/loader/quantization_config.h"

#include <stdexcept>

#include "vllm/core/error.h"
#include "vllm/tokenizer/regex.h"

namespace vllm {

using json = nlohmann::json;

namespace {

// Errors name the file and the field's path, e.g. "quantization_config.config_groups.group_0.weights.num_bits".
struct Field {
  const std::string& source;
  std::string path;

  Field at(const std::string& key) const { return {source, path + "." + key}; }
  [[noreturn]] void malformed(const std::string& what) const {
    throw Error(source + ": " + path + " " + what, ErrorKind::kModelLoad);
  }
  [[noreturn]] void unsupported(const json& value, const std::string& what) const {
    throw Error(source + ": " + path + " is " + value.dump() + ": " + what, ErrorKind::kUnsupported);
  }
};

const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& j, const char* key, const Field& f, const std::string& dflt) {
  const json* v = find(j, key);
  if (!v) return dflt;
  if (!v->is_string()) f.at(key).malformed("must be a string, not " + v->dump());
  return v->get<std::string>();
}

std::vector<std::string> string_list(const json& j, const char* key, const Field& f) {
  const json* v = find(j, key);
  if (!v) return {};
  if (!v->is_array()) f.at(key).malformed("must be a list of strings, not " + v->dump());
  std::vector<std::string> out;
  for (const json& e : *v) {
    if (!e.is_string()) f.at(key).malformed("must be a list of strings, not " + v->dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

// compressed-tensors' QuantizationArgs of a group's weights.
Fp8WeightLayout weight_args(const json& w, const Field& f) {
  if (!w.is_object()) f.malformed("must be an object, not " + w.dump());
  const json* bits = find(w, "num_bits");
  if (!bits || !bits->is_number_integer()) f.at("num_bits").malformed("must be an integer");
  if (bits->get<int64_t>() != 8)
    f.at("num_bits").unsupported(*bits, "only 8-bit float (FP8) weights are supported");
  const std::string type = string_field(w, "type", f, "int");
  if (type != "float") f.at("type").unsupported(type, "only float (FP8) weights are supported, not integer quantization");
  const json* sym = find(w, "symmetric");
  if (sym && !sym->is_boolean()) f.at("symmetric").malformed("must be true or false");
  if (sym && !sym->get<bool>()) f.at("symmetric").unsupported(*sym, "asymmetric (zero-point) weights are not supported");
  const json* dyn = find(w, "dynamic");
  if (dyn && !dyn->is_boolean()) f.at("dynamic").malformed("must be true or false");
  if (dyn && dyn->get<bool>()) f.at("dynamic").unsupported(*dyn, "weights must have static scales");
  if (const json* order = find(w, "actorder"); order && !(order->is_boolean() && !order->get<bool>()))
    f.at("actorder").unsupported(*order, "activation ordering is not supported");
  const std::string strategy = string_field(w, "strategy", f, "tensor");
  Fp8WeightLayout layout;
  if (strategy == "tensor") {
    layout.scales = Fp8ScaleLayout::kPerTensor;
  } else if (strategy == "channel") {
    layout.scales = Fp8ScaleLayout::kPerChannel;
  } else if (strategy == "block") {
    layout.scales = Fp8ScaleLayout::kBlock;
    const json* bs = find(w, "block_structure");
    if (!bs || !bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() || !(*bs)[1].is_number_integer() ||
        (*bs)[0].get<int64_t>() <= 0 || (*bs)[1].get<int64_t>() <= 0)
      f.at("block_structure").malformed("must be [rows, cols] of positive integers for strategy \"block\"");
    layout.block_rows = (*bs)[0].get<int64_t>();
    layout.block_cols = (*bs)[1].get<int64_t>();
  } else {
    f.at("strategy").unsupported(strategy, "FP8 weights must have strategy \"tensor\", \"channel\" or \"block\"");
  }
  return layout;
}

Fp8ActivationScheme activation_args(const json& a, const Field& f, const Fp8WeightLayout& weights) {
  if (!a.is_object()) f.malformed("must be an object or null, not " + a.dump());
  const json* bits = find(a, "num_bits");
  if (bits && !(bits->is_number_integer() && bits->get<int64_t>() == 8))
    f.at("num_bits").unsupported(*bits, "only 8-bit float (FP8) activations are supported");
  const std::string type = string_field(a, "type", f, "float");
  if (type != "float") f.at("type").unsupported(type, "only float (FP8) activations are supported");
  const json* sym = find(a, "symmetric");
  if (sym && !(sym->is_boolean() && sym->get<bool>()))
    f.at("symmetric").unsupported(*sym, "asymmetric activations are not supported");
  const json* dyn = find(a, "dynamic");
  if (dyn && !dyn->is_boolean()) f.at("dynamic").malformed("must be true or false");
  const bool dynamic = dyn && dyn->get<bool>();
  const std::string strategy = string_field(a, "strategy", f, "tensor");
  if (dynamic) {
    if (strategy == "token") return Fp8ActivationScheme::kDynamicPerToken;
    if (strategy == "tensor") return Fp8ActivationScheme::kDynamicPerTensor;
    if (strategy == "group" && weights.scales == Fp8ScaleLayout::kBlock) return Fp8ActivationScheme::kDynamicPerTokenGroup;
    f.at("strategy").unsupported(strategy, "dynamic FP8 activations must have strategy \"token\" or \"tensor\" "
                                           "(or \"group\" with block weights)");
  }
  if (strategy != "tensor")
    f.at("strategy").unsupported(strategy, "static FP8 activations must have strategy \"tensor\" (<module>.input_scale)");
  return Fp8ActivationScheme::kStaticPerTensor;
}

Fp8CheckpointConfig compressed_tensors(const json& q, const Field& f) {
  Fp8CheckpointConfig c;
  c.method = "compressed-tensors";
  const std::string format = string_field(q, "format", f, "");
  auto check_format = [](const std::string& fmt, const Field& ff) {
    // naive-quantized stores the quantized values uncompressed: fine when they are float8 (the
    // weights' num_bits and type are checked per group); int8 etc. fail there.
    if (!fmt.empty() && fmt != "float-quantized" && fmt != "naive-quantized")
      ff.unsupported(fmt, "supported compressed-tensors formats: float-quantized, naive-quantized (float8 weights)");
  };
  check_format(format, f.at("format"));
  if (const json* sparsity = find(q, "sparsity_config"); sparsity && sparsity->is_object() && !sparsity->empty()) {
    const std::string sf = string_field(*sparsity, "format", f.at("sparsity_config"), "dense");
    if (sf != "dense") f.at("sparsity_config").at("format").unsupported(sf, "sparse checkpoints are not supported");
  }
  c.has_kv_cache_scheme = find(q, "kv_cache_scheme") != nullptr;
  const json* groups = find(q, "config_groups");
  if (!groups || !groups->is_object() || groups->empty())
    f.at("config_groups").malformed("must be an object of one or more groups");
  for (auto it = groups->begin(); it != groups->end(); ++it) {
    const Field g = f.at("config_groups").at(it.key());
    const json& group = it.value();
    if (!group.is_object()) g.malformed("must be an object, not " + group.dump());
    check_format(string_field(group, "format", g, ""), g.at("format"));
    Fp8Scheme s;
    s.targets = string_list(group, "targets", g);
    if (s.targets.empty()) g.at("targets").malformed("must list the layers the group quantizes");
    for (const std::string& t : s.targets) {
      if (t.rfind("re:", 0) != 0) continue;
      try {
        tok::Regex check(t.substr(3));
      } catch (const std::exception& e) {
        g.at("targets").malformed("entry \"" + t + "\" is not a valid regular expression: " + e.what());
      }
    }
    const json* weights = find(group, "weights");
    if (!weights) g.at("weights").malformed("is missing (weight-only or weight-and-activation schemes only)");
    s.weights = weight_args(*weights, g.at("weights"));
    if (const json* acts = find(group, "input_activations")) s.activations = activation_args(*acts, g.at("input_activations"), s.weights);
    if (const json* outs = find(group, "output_activations"))
      g.at("output_activations").unsupported(*outs, "output activation quantization is not supported");
    c.schemes.push_back(std::move(s));
  }
  for (const std::string& entry : string_list(q, "ignore", f)) c.add_ignore(entry, f.at("ignore").path);
  return c;
}

Fp8CheckpointConfig native_fp8(const json& q, const Field& f) {
  Fp8CheckpointConfig c;
  c.method = "fp8";
  const std::string fmt = string_field(q, "fmt", f, "e4m3");
  if (fmt != "e4m3") f.at("fmt").unsupported(fmt, "only e4m3 FP8 checkpoints are supported");
  const std::string act = string_field(q, "activation_scheme", f, "dynamic");
  if (act != "dynamic" && act != "static")
    f.at("activation_scheme").unsupported(act, "activation_scheme must be \"dynamic\" or \"static\"");
  Fp8Scheme s;
  s.targets = {"Linear"};
  if (const json* bs = find(q, "weight_block_size")) {
    if (!bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() || !(*bs)[1].is_number_integer() ||
        (*bs)[0].get<int64_t>() <= 0 || (*bs)[1].get<int64_t>() <= 0)
      f.at("weight_block_size").malformed("must be [rows, cols] of positive integers, not " + bs->dump());
    if (act != "dynamic")
      f.at("activation_scheme").unsupported(act, "block-quantized (weight_block_size) checkpoints need \"dynamic\"");
    s.weights.scales = Fp8ScaleLayout::kBlock;
    s.weights.block_rows = (*bs)[0].get<int64_t>();
    s.weights.block_cols = (*bs)[1].get<int64_t>();
    s.activations = Fp8ActivationScheme::kDynamicPerTokenGroup;
    c.weight_scale_suffix = "weight_scale_inv";
  } else {
    s.weights.scales = Fp8ScaleLayout::kPerTensor;
    s.activations = act == "static" ? Fp8ActivationScheme::kStaticPerTensor : Fp8ActivationScheme::kDynamicPerTensor;
  }
  c.schemes.push_back(s);
  // vLLM reads ignored_layers, else modules_to_not_convert.
  const bool has_ignored_layers = find(q, "ignored_layers") != nullptr;
  const char* key = has_ignored_layers ? "ignored_layers" : "modules_to_not_convert";
  for (const std::string& entry : string_list(q, key, f)) c.add_ignore(entry, f.at(key).path);
  return c;
}

const char* const kSupported[] = {"fp8", "compressed-tensors"};

}  // namespace

bool quantization_target_matches(const std::string& entry, const std::string& name) {
  if (entry.rfind("re:", 0) != 0) return entry == name;
  const tok::Regex re(entry.substr(3));
  size_t ms = 0, me = 0;
  // The leftmost match starts at 0 exactly when a match anchored at the start exists.
  return re.match_from(name, 0, &ms, &me) && ms == 0;
}

void Fp8CheckpointConfig::add_ignore(const std::string& entry, const std::string& field) {
  if (entry.rfind("re:", 0) != 0) {
    ignore_exact_.push_back(entry);
    return;
  }
  try {
    ignore_patterns_.push_back(std::make_shared<const tok::Regex>(entry.substr(3)));
  } catch (const std::exception& e) {
    throw Error(field + " entry \"" + entry + "\" is not a valid regular expression: " + e.what(), ErrorKind::kModelLoad);
  }
}

bool Fp8CheckpointConfig::ignored(const std::string& module) const {
  for (const std::string& e : ignore_exact_)
    if (e == module) return true;
  for (const auto& re : ignore_patterns_) {
    size_t ms = 0, me = 0;
    if (re->match_from(module, 0, &ms, &me) && ms == 0) return true;
  }
  return false;
}

const Fp8Scheme* Fp8CheckpointConfig::scheme_for(const std::string& module) const {
  for (const Fp8Scheme& s : schemes)
    for (const std::string& t : s.targets)
      // Every tensor the loader dequantizes is a Linear layer's weight (embeddings and norms are
      // never float8), so the class target "Linear" covers them all.
      if (t == "Linear" || quantization_target_matches(t, module)) return &s;
  return nullptr;
}

std::optional<Fp8CheckpointConfig> parse_quantization_config(const json& config, const std::string& source) {
  const json* q = config.is_object() ? find(config, "quantization_config") : nullptr;
  if (!q) return std::nullopt;
  const Field f{source, "quantization_config"};
  if (!q->is_object()) f.malformed("must be an object, not " + q->dump());
  const json* method = find(*q, "quant_method");
  if (!method || !method->is_string()) f.at("quant_method").malformed("is missing or not a string");
  const std::string m = method->get<std::string>();
  if (m == "compressed-tensors") return compressed_tensors(*q, f);
  if (m == "fp8") return native_fp8(*q, f);
  f.at("quant_method").unsupported(m, "supported quantization methods: " + supported_quantization_methods() +
                                          " (FP8 checkpoints); GGUF files load as they are");
}

bool fp8_leaves_unquantized(const std::string& weight_name) {
  std::string module = weight_name;
  const std::string suffix = ".weight";
  if (module.size() > suffix.size() && module.compare(module.size() - suffix.size(), suffix.size(), suffix) == 0)
    module.resize(module.size() - suffix.size());
  const size_t dot = module.rfind('.');
  const std::string last = dot == std::string::npos ? module : module.substr(dot + 1);
  return last == "lm_head" || last == "embed_tokens" || last == "gate" || last == "router";
}

std::string supported_quantization_methods() {
  std::string out;
  for (const char* m : kSupported) out += (out.empty() ? "" : ", ") + std::string(m);
  return out;
}

std::string resolve_quantization(const json& config, const std::string& requested, const std::string& source) {
  const std::optional<Fp8CheckpointConfig> checkpoint = parse_quantization_config(config, source);
  if (checkpoint) {
    if (!requested.empty() && requested != checkpoint->method)
      throw Error("Quantization method specified in the model config (" + checkpoint->method +
                      ") does not match the quantization method specified in the `quantization` argument (" +
                      requested + ").",
                  ErrorKind::kInvalidArgument);
    return checkpoint->method;
  }
  if (requested.empty()) return "";
  bool known = false;
  for (const char* m : kSupported) known = known || requested == m;
  if (!known)
    throw Error("--quantization '" + requested + "' is not supported (supported: " + supported_quantization_methods() + ")",
                ErrorKind::kUnsupported);
  if (requested != "fp8")
    throw Error("--quantization " + requested + " needs a checkpoint with a " + requested +
                    " quantization_config; " + source + " has none (online quantization: --quantization fp8)",
                ErrorKind::kInvalidArgument);
  return requested;
}

}  // namespace vllm
