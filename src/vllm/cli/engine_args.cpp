#include <algorithm>
#include <filesystem>

#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/hub/resolve_hub_model.h"
#include "vllm/models/gguf_loader.h"

namespace vllm::cli {

void add_engine_args(CLI::App* app, EngineConfig& c) {
  app->add_option("--tokenizer", c.tokenizer, "Tokenizer folder (default: the model's)");
  app->add_option("--dtype", c.dtype, "Compute dtype: auto, float32, bfloat16, float16")->capture_default_str();
  app->add_option("--device", c.device, "auto, cpu or cuda")->capture_default_str();
  app->add_option("--tensor-parallel-size", c.tensor_parallel_size,  // and -tp (main.cpp)
                  "Split every layer over this many ranks (CPU: threads sharing the cores and memory)")
      ->capture_default_str();
  app->add_option("--block-size", c.block_size, "Tokens per KV cache block")->capture_default_str();
  app->add_option("--kv-cache-space", c.kv_cache_space_gib, "KV cache size on the CPU, in GiB")->capture_default_str();
  app->add_option("--gpu-memory-utilization", c.gpu_memory_utilization, "Fraction of GPU memory to use")
      ->capture_default_str();
  app->add_option("--num-gpu-blocks-override,--num-kv-blocks", c.num_kv_blocks, "Number of KV cache blocks");
  app->add_option("--max-num-seqs", c.max_num_seqs, "Most sequences in one step")->capture_default_str();
  app->add_option("--max-num-batched-tokens", c.max_num_batched_tokens, "Token budget of one step");
  app->add_option("--max-model-len", c.max_model_len, "Context length (default: the model's)");
  app->add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", c.enable_chunked_prefill,
                "Split long prompts across steps");
  app->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", c.enable_prefix_caching,
                "Reuse the KV cache of shared prompt prefixes");
  app->add_option("--scheduling-policy", c.scheduling_policy, "fcfs or priority")->capture_default_str();
  app->add_option("--seed", c.seed, "Seed of the engine's random generator")->capture_default_str();
  app->add_option("--max-logprobs", c.max_logprobs, "Most log-probs a request may ask for")->capture_default_str();
  app->add_option("--generation-config", c.generation_config, "auto (the model's defaults) or vllm")->capture_default_str();
  app->add_flag("--enforce-eager", c.enforce_eager, "Never use CUDA graphs");
  app->add_option("--load-format", c.load_format,
                  "auto or safetensors (the folder's weights), or dummy (random weights from the recipe, made in "
                  "memory: the folder needs only config.json)")
      ->capture_default_str();
  app->add_option("--quantization,-q", c.quantization,
                  "fp8: quantize a float checkpoint's linear layers to FP8 (per-tensor scales) at load; default: "
                  "the checkpoint's own quantization_config (compressed-tensors or fp8)");
  app->add_option("--kv-cache-dtype", c.kv_cache_dtype, "KV cache dtype: auto (the compute dtype), or fp8 / fp8_e4m3 (CUDA: e4m3 with the checkpoint's per-layer k_scale / v_scale, else 1)")->capture_default_str();
  app->add_option("--kv-events-config", c.kv_events_config,
                  "Publish KV cache events for routers, as vLLM: a JSON object such as "
                  "'{\"enable_kv_cache_events\": true, \"publisher\": \"zmq\", \"endpoint\": \"tcp://*:5557\", "
                  "\"topic\": \"kv-events\"}' (docs/kv_events.md)");
}

namespace {
// The model argument as messages quote it: whole, unless it is too long for one line.
std::string shown_model(const std::string& model) {
  if (model.size() <= 160) return "'" + model + "'";
  return "'" + model.substr(0, 120) + "...' (" + std::to_string(model.size()) + " characters)";
}
}  // namespace

std::string resolve_model_folder(const std::string& model, const std::string& revision, const std::string& download_dir) {
  namespace fs = std::filesystem;
  if (model.empty()) {
    // The trained model the repository ships (models/default, see its MODEL_CARD.md).
    const char* env = std::getenv("VLLM_DEFAULT_MODEL");
    fs::path def = env ? fs::path(env) : fs::path(VLLM_SOURCE_DIR) / "models" / "default";
    if (path_type(def.string()) == PathType::kDirectory) return def.string();
    throw Error("no model given and the default model " + def.string() + " is missing (it is part of the repository: check out models/default)",
                ErrorKind::kNotFound);
  }
  // What sits at the path decides first, as in vLLM (a local folder wins over a Hub id of the
  // same name). path_type never throws: an overlong name or a symlink loop is a reason, not an
  // exception.
  std::string why;
  const PathType type = path_type(model, &why);
  if (type == PathType::kDirectory) return model;
  if (type == PathType::kRegular && is_gguf_file(model)) return model;  // a GGUF file is a whole model
  if (type == PathType::kRegular)
    throw Error("model " + shown_model(model) + " is a file, not a model folder (a folder with config.json and the weights) nor a GGUF file",
                ErrorKind::kNotFound);
  // Something that is not a folder but reads as a Hub id (org/name or name) is fetched from the Hub
  // (or its cache), as vLLM does; anything else is a mistyped path.
  if (type == PathType::kMissing && hub::is_valid_repo_id(model)) {
    try {
      return hub::resolve_hub_model(model, revision, download_dir);
    } catch (const Error& e) {
      // Say both readings: the argument may be a mistyped local path rather than a Hub id.
      throw Error("model " + shown_model(model) + " is not a local folder, and as a Hugging Face model id: " + e.what(), e.kind());
    }
  }
  std::string msg = "model " + shown_model(model) + " is not a model folder (" +
                    (type == PathType::kMissing ? std::string("no such folder") : why) + ")";
  // A name that could have been meant as a Hub id (not an absolute, home or dotted path) also
  // gets huggingface_hub's reason for refusing it, as vLLM passes it to huggingface_hub.
  const bool hub_like = model[0] != '/' && model[0] != '.' && model[0] != '~';
  if (hub_like) {
    std::string hub_why = hub::repo_id_error(model);
    if (model.size() > 160) {
      // Its message quotes the whole id; keep the line short.
      const size_t q = hub_why.find(": '");
      if (q != std::string::npos) hub_why = hub_why.substr(0, q);
    }
    if (!hub_why.empty()) msg += ", and not a Hugging Face model id: " + hub_why;
  }
  throw Error(msg, ErrorKind::kNotFound);
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string closest_flag(const CLI::App& app, const std::string& unknown) {
  std::string best;
  size_t best_d = std::max<size_t>(3, unknown.size() / 3) + 1;
  for (const CLI::Option* opt : app.get_options()) {
    for (const std::string& name : opt->get_lnames()) {
      size_t d = edit_distance(unknown, "--" + name);
      if (d < best_d) best_d = d, best = "--" + name;
    }
  }
  return best;
}

}  // namespace vllm::cli
