#include "golden.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "vllm/core/error.h"
#include "vllm/kv_cache/kv_cache_layout.h"
#include "vllm/models/model.h"
#include "vllm/models/random_weights.h"

namespace vllm::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string data_dir() {
  const char* env = std::getenv("VLLM_TEST_DATA_DIR");
  return env ? env : VLLM_TEST_DATA_DIR;
}

namespace {
struct ScratchDirs {
  std::mutex mutex;
  std::map<std::string, fs::path> dirs;
  ~ScratchDirs() {
    for (const auto& [name, dir] : dirs) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};
}  // namespace

fs::path scratch_dir(const std::string& name) {
  static ScratchDirs scratch;  // destroyed, and its folders removed, at exit
  std::lock_guard<std::mutex> lock(scratch.mutex);
  auto it = scratch.dirs.find(name);
  if (it == scratch.dirs.end())
    it = scratch.dirs.emplace(name, fs::temp_directory_path() / ("vllm-" + name + "-" + std::to_string(getpid()))).first;
  fs::create_directories(it->second);
  return it->second;
}

json load_golden(const std::string& model) {
  std::ifstream in(fs::path(data_dir()) / "models" / model / "golden.json");
  if (!in) throw Error("no golden.json for " + model);
  return json::parse(in);
}

std::string materialize_model(const std::string& model, int shards) {
  fs::path src = fs::path(data_dir()) / "models" / model;
  fs::path tok = fs::path(data_dir()) / "tokenizers" / model;
  fs::path out = fs::temp_directory_path() / ("vllm-test-models-" + std::to_string(getuid())) /
                 (model + "-s" + std::to_string(shards));
  json golden = load_golden(model);
  const auto& w = golden["weights"];
  fs::path stamp = out / ".complete";
  if (!fs::exists(stamp)) {
    fs::remove_all(out);
    fs::create_directories(out);
    RandomModelOptions opts;
    opts.seed = w["seed"].get<uint64_t>();
    opts.dtype = parse_dtype(w["dtype"].get<std::string>());
    opts.num_shards = shards;
    write_random_model((src / "config.json").string(), out.string(), opts);
    for (const char* f : {"generation_config.json", "tokenizer_config.json"})
      if (fs::exists(src / f)) fs::copy_file(src / f, out / f, fs::copy_options::overwrite_existing);
    if (fs::exists(tok))
      for (const auto& e : fs::directory_iterator(tok)) fs::copy_file(e.path(), out / e.path().filename(), fs::copy_options::overwrite_existing);
    std::ofstream(stamp) << "ok\n";
  }
  return out.string();
}

int64_t kv_pool_blocks(const std::string& dir, int64_t tokens, int block_size, int64_t chunk) {
  int64_t blocks = 0;
  for (int64_t window : plan_kv_cache_layout(layer_sliding_windows(ModelConfig::from_folder(dir))).group_windows) {
    const int64_t held = window == 0 ? tokens : std::min(tokens, window + chunk);
    blocks += (held + block_size - 1) / block_size + (window == 0 ? 0 : 1);
  }
  return blocks;
}

std::string unsupported_on_test_device(const std::string& dir) {
  const char* device = std::getenv("VLLM_TEST_DEVICE");
  if (!device || !*device || std::string(device) == "cpu") return "";
  EngineConfig c;
  c.model = dir;
  c.device = device;
  c.num_kv_blocks = 64;
  try {
    EngineCore engine(c);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUnsupported) return e.what();
    throw;
  }
  return "";
}

std::vector<GenerationResult> run_greedy(EngineConfig config, const std::vector<std::vector<int32_t>>& prompts,
                                         int max_tokens, int logprobs, int prompt_logprobs,
                                         int64_t* num_preemptions) {
  // VLLM_TEST_DEVICE=cuda runs the engine tests on the GPU backend.
  if (const char* device = std::getenv("VLLM_TEST_DEVICE"); device && *device) config.device = device;
  return run_greedy_on(std::move(config), prompts, max_tokens, logprobs, prompt_logprobs, num_preemptions);
}

std::vector<GenerationResult> run_greedy_on(EngineConfig config, const std::vector<std::vector<int32_t>>& prompts,
                                            int max_tokens, int logprobs, int prompt_logprobs,
                                            int64_t* num_preemptions) {
  EngineCore engine(config);
  std::map<uint64_t, size_t> index;
  std::vector<GenerationResult> results(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EngineCoreRequest req;
    req.request_id = "req-" + std::to_string(i);
    req.prompt_token_ids = prompts[i];
    req.params.temperature = 0;
    req.params.max_tokens = max_tokens;
    req.params.ignore_eos = true;
    if (logprobs > 0) req.params.logprobs = logprobs;
    if (prompt_logprobs > 0) req.params.prompt_logprobs = prompt_logprobs;
    req.params.finalize();
    index[engine.add_request(req)] = i;
  }
  while (engine.has_unfinished()) {
    for (auto& out : engine.step()) {
      GenerationResult& r = results[index.at(out.seq_id)];
      r.ids.insert(r.ids.end(), out.new_token_ids.begin(), out.new_token_ids.end());
      r.logprobs.insert(r.logprobs.end(), out.new_logprobs.begin(), out.new_logprobs.end());
      r.prompt_logprobs.insert(r.prompt_logprobs.end(), out.new_prompt_logprobs.begin(), out.new_prompt_logprobs.end());
      if (out.finished) r.finish_reason = std::string(finish_reason_name(*out.finish_reason));
    }
  }
  if (num_preemptions) *num_preemptions = engine.scheduler().stats().num_preemptions_total;
  EXPECT_EQ(engine.kv_cache().usage(), 0.0) << "blocks leaked";
  return results;
}

std::string check_logprobs_close(const std::vector<int32_t>& ref_ids,
                                 const std::vector<std::vector<std::pair<int32_t, double>>>& ref_top,
                                 const GenerationResult& ours, size_t* first_divergence) {
  const size_t n = std::min(ref_ids.size(), ours.ids.size());
  *first_divergence = n;
  if (ours.ids.size() != ref_ids.size())
    return "generated " + std::to_string(ours.ids.size()) + " tokens, expected " + std::to_string(ref_ids.size());
  for (size_t i = 0; i < n; ++i) {
    if (ref_ids[i] == ours.ids[i]) continue;
    *first_divergence = i;
    bool ours_in_ref = false, ref_in_ours = false;
    for (const auto& [id, lp] : ref_top[i]) ours_in_ref |= id == ours.ids[i];
    for (const auto& t : ours.logprobs.at(i).top) ref_in_ours |= t.token_id == ref_ids[i];
    if (!ours_in_ref || !ref_in_ours)
      return "step " + std::to_string(i) + ": token " + std::to_string(ours.ids[i]) + " vs reference " +
             std::to_string(ref_ids[i]) + ", not in each other's top-k";
    return "";
  }
  return "";
}

}  // namespace vllm::test
