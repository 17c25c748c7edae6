// vllm generate: offline generation from token ids (text prompts once a tokenizer is loaded),
// all prompts batched in one engine; plain or JSON-lines output.
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"

namespace vllm::cli {

namespace {

struct GenerateArgs {
  EngineConfig engine;
  std::vector<std::string> prompt_ids;
  int max_tokens = 16;
  bool ignore_eos = false;
  std::optional<int> logprobs, prompt_logprobs;
  double temperature = 0.0;
  bool json = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument("bad");
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw Error("--prompt-ids: '" + item + "' is not a token id (expected comma-separated integers)");
    }
  }
  if (ids.empty()) throw Error("--prompt-ids: no token ids given");
  return ids;
}

nlohmann::json logprobs_json(const TokenLogprobs& lp) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : lp.top) top.push_back({t.token_id, t.logprob});
  return {{"token", lp.token}, {"logprob", lp.logprob}, {"rank", lp.rank}, {"top", top}};
}

int run_generate(GenerateArgs& a) {
  a.engine.model = resolve_model_folder(a.engine.model);
  if (a.prompt_ids.empty()) throw Error("give at least one prompt with --prompt-ids");
  EngineCore engine(a.engine);
  struct Result {
    std::vector<int32_t> prompt, ids;
    nlohmann::json logprobs = nlohmann::json::array(), prompt_logprobs = nlohmann::json::array();
    std::string finish_reason;
  };
  std::map<uint64_t, size_t> index;
  std::vector<Result> results(a.prompt_ids.size());
  for (size_t i = 0; i < a.prompt_ids.size(); ++i) {
    EngineCoreRequest req;
    req.request_id = std::to_string(i);
    req.prompt_token_ids = parse_ids(a.prompt_ids[i]);
    results[i].prompt = req.prompt_token_ids;
    req.params.temperature = a.temperature;
    req.params.max_tokens = a.max_tokens;
    req.params.ignore_eos = a.ignore_eos;
    req.params.logprobs = a.logprobs;
    req.params.prompt_logprobs = a.prompt_logprobs;
    req.params.finalize();
    index[engine.add_request(std::move(req))] = i;
  }
  while (engine.has_unfinished()) {
    for (const auto& out : engine.step()) {
      Result& r = results[index.at(out.seq_id)];
      r.ids.insert(r.ids.end(), out.new_token_ids.begin(), out.new_token_ids.end());
      for (const auto& lp : out.new_logprobs) r.logprobs.push_back(logprobs_json(lp));
      if (a.prompt_logprobs && r.prompt_logprobs.empty() && out.first_prompt_logprob_pos > 0)
        r.prompt_logprobs.push_back(nullptr);  // the first prompt token has no log-prob
      for (const auto& lp : out.new_prompt_logprobs) r.prompt_logprobs.push_back(logprobs_json(lp));
      if (out.finished) r.finish_reason = std::string(finish_reason_name(*out.finish_reason));
    }
  }
  for (const auto& r : results) {
    if (a.json) {
      nlohmann::json j = {{"prompt_token_ids", r.prompt}, {"token_ids", r.ids}, {"finish_reason", r.finish_reason}};
      if (a.logprobs) j["logprobs"] = r.logprobs;
      if (a.prompt_logprobs) j["prompt_logprobs"] = r.prompt_logprobs;
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "prompt ids: " << nlohmann::json(r.prompt).dump() << "\noutput ids: " << nlohmann::json(r.ids).dump()
                << "\nfinish reason: " << r.finish_reason << "\n";
    }
  }
  return 0;
}

}  // namespace

Runner add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand("generate", "Generate from prompts, offline");
  sub->add_option("--model,-m", a->engine.model, "Model folder")->required();
  sub->add_option("--prompt-ids", a->prompt_ids, "A prompt as comma-separated token ids (repeat for a batch)");
  sub->add_option("--max-tokens", a->max_tokens, "Tokens to generate per prompt")->capture_default_str();
  sub->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at the end-of-sequence token");
  sub->add_option("--logprobs", a->logprobs, "Top log-probs per generated token");
  sub->add_option("--prompt-logprobs", a->prompt_logprobs, "Top log-probs per prompt token");
  sub->add_option("--temperature", a->temperature, "0 for greedy")->capture_default_str();
  sub->add_flag("--json", a->json, "One JSON object per prompt and line");
  add_engine_args(sub, a->engine);
  return [a] { return run_generate(*a); };
}

}  // namespace vllm::cli
