// vllm generate: offline generation from token ids (text prompts once a tokenizer is loaded),
// all prompts batched in one engine; plain or JSON-lines output.
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/engine/llm_engine.h"

namespace vllm::cli {

namespace {

struct GenerateArgs {
  EngineConfig engine;
  std::vector<std::string> prompts;
  std::vector<std::string> prompt_ids;
  std::optional<int64_t> seed;
  int max_tokens = 16;
  bool ignore_eos = false;
  std::optional<int> logprobs, prompt_logprobs;
  double temperature = 0.0;
  double top_p = 1.0;
  int top_k = 0;
  bool json = false;
  // Structured outputs: at most one (vLLM's one-constraint rule).
  std::string json_schema_file, regex, choice, grammar_file;
};

std::string read_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(std::string(flag) + ": cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The structured_outputs JSON form of the constraint flags, or nothing.
std::optional<nlohmann::json> structured_outputs_of(const GenerateArgs& a) {
  nlohmann::json so = nlohmann::json::object();
  if (!a.json_schema_file.empty()) {
    std::string text = read_file(a.json_schema_file, "--json-schema");
    if (!nlohmann::ordered_json::accept(text)) throw Error("--json-schema: '" + a.json_schema_file + "' is not JSON");
    so["json"] = std::move(text);
  }
  if (!a.regex.empty()) so["regex"] = a.regex;
  if (!a.choice.empty()) {
    std::vector<std::string> choices;
    std::stringstream ss(a.choice);
    for (std::string item; std::getline(ss, item, ',');) choices.push_back(item);
    so["choice"] = choices;
  }
  if (!a.grammar_file.empty()) so["grammar"] = read_file(a.grammar_file, "--grammar");
  if (so.empty()) return std::nullopt;
  return so;
}

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
  if (a.prompts.empty() && a.prompt_ids.empty()) throw Error("give at least one prompt with --prompt or --prompt-ids");
  LLMEngine engine(a.engine);
  std::vector<PromptInput> inputs;
  for (const auto& p : a.prompts) inputs.push_back(PromptInput::from_text(p));
  for (const auto& p : a.prompt_ids) inputs.push_back(PromptInput::from_ids(parse_ids(p)));
  const std::optional<nlohmann::json> structured = structured_outputs_of(a);
  for (size_t i = 0; i < inputs.size(); ++i) {
    SamplingParams params;
    params.temperature = a.temperature;
    params.top_p = a.top_p;
    params.top_k = a.top_k;
    params.max_tokens = a.max_tokens;
    params.ignore_eos = a.ignore_eos;
    params.logprobs = a.logprobs;
    params.prompt_logprobs = a.prompt_logprobs;
    params.detokenize = engine.tokenizer() != nullptr;
    if (a.seed) params.seed = *a.seed;
    params.structured_outputs = structured;
    engine.add_request(std::to_string(i), inputs[i], params);
  }
  std::vector<RequestOutput> results(inputs.size());
  while (engine.has_unfinished())
    for (auto& out : engine.step())
      if (out.finished) results[std::stoul(out.request_id)] = std::move(out);
  for (const auto& r : results) {
    const CompletionOutput& c = r.outputs.at(0);
    const std::string reason(c.finish_reason ? finish_reason_name(*c.finish_reason) : "");
    if (a.json) {
      nlohmann::json j = {{"prompt_token_ids", r.prompt_token_ids}, {"token_ids", c.token_ids}, {"text", c.text},
                          {"finish_reason", reason}};
      if (r.prompt) j["prompt"] = *r.prompt;
      if (a.logprobs) {
        j["logprobs"] = nlohmann::json::array();
        for (const auto& lp : c.logprobs) j["logprobs"].push_back(logprobs_json(lp));
      }
      if (a.prompt_logprobs) {
        j["prompt_logprobs"] = nlohmann::json::array();
        for (const auto& lp : r.prompt_logprobs) j["prompt_logprobs"].push_back(lp ? logprobs_json(*lp) : nlohmann::json());
      }
      std::cout << j.dump() << "\n";
    } else if (r.prompt) {
      std::cout << "Prompt: " << nlohmann::json(*r.prompt).dump() << ", Generated text: " << nlohmann::json(c.text).dump()
                << "\n";
    } else {
      std::cout << "prompt ids: " << nlohmann::json(r.prompt_token_ids).dump()
                << "\noutput ids: " << nlohmann::json(c.token_ids).dump() << "\nfinish reason: " << reason << "\n";
    }
  }
  return 0;
}

}  // namespace

Runner add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand("generate", "Generate from prompts, offline");
  sub->add_option("--model,-m", a->engine.model, "Model folder (default: models/default)");
  sub->add_option("--prompt,-p", a->prompts, "A text prompt (repeat for a batch)");
  sub->add_option("--sampling-seed", a->seed, "Seed of each request's generator");
  sub->add_option("--prompt-ids", a->prompt_ids, "A prompt as comma-separated token ids (repeat for a batch)");
  sub->add_option("--max-tokens", a->max_tokens, "Tokens to generate per prompt")->capture_default_str();
  sub->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at the end-of-sequence token");
  sub->add_option("--logprobs", a->logprobs, "Top log-probs per generated token");
  sub->add_option("--prompt-logprobs", a->prompt_logprobs, "Top log-probs per prompt token");
  sub->add_option("--temperature", a->temperature, "0 for greedy")->capture_default_str();
  sub->add_option("--top-p", a->top_p, "Nucleus sampling: the smallest set of tokens this likely")->capture_default_str();
  sub->add_option("--top-k", a->top_k, "Sample from the k most likely tokens (0: all)")->capture_default_str();
  sub->add_flag("--json", a->json, "One JSON object per prompt and line");
  sub->add_option("--json-schema", a->json_schema_file, "Constrain the output to JSON matching the schema in FILE");
  sub->add_option("--regex", a->regex, "Constrain the output to match the regex (whole output)");
  sub->add_option("--choice", a->choice, "Constrain the output to one of these comma-separated strings");
  sub->add_option("--grammar", a->grammar_file, "Constrain the output to the GBNF grammar in FILE (start rule root)");
  add_engine_args(sub, a->engine);
  return [a] { return run_generate(*a); };
}

}  // namespace vllm::cli
