#include "vllm/engine/llm_engine.h"

#include <chrono>
#include <filesystem>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/core/logging.h"
#include "vllm/gguf/gguf_tokenizer.h"
#include "vllm/models/gguf_loader.h"

namespace vllm {

namespace fs = std::filesystem;

std::shared_ptr<const Tokenizer> load_tokenizer_if_present(const std::string& dir) {
  // path_type never throws: a symlink loop or an overlong name reaches the tokenizer's own
  // one-line error instead of a filesystem exception.
  if (path_type((fs::path(dir) / "tokenizer.json").string()) == PathType::kMissing &&
      path_type((fs::path(dir) / "vocab.json").string()) == PathType::kMissing)
    return nullptr;
  return Tokenizer::from_folder(dir);
}

std::shared_ptr<const Tokenizer> load_model_tokenizer(const std::string& model, const std::string& tokenizer) {
  if (!tokenizer.empty()) return load_tokenizer_if_present(tokenizer);
  if (is_gguf_file(model)) {
    // Without --tokenizer, the GGUF's own tokenizer metadata (as vLLM does).
    const gguf::GgufFile f = gguf::GgufFile::open(model);
    if (!gguf::has_tokenizer(f)) return nullptr;
    return Tokenizer::from_json(gguf::tokenizer_json(f).dump(), gguf::tokenizer_config_json(f).dump(),
                                model + " (GGUF tokenizer metadata)");
  }
  return load_tokenizer_if_present(model);
}

LLMEngine::LLMEngine(const EngineConfig& config) {
  core_ = std::make_unique<EngineCore>(config);
  tokenizer_ = load_model_tokenizer(config.model, config.tokenizer);
  if (!tokenizer_) VLLM_LOG_WARN("no tokenizer files in {}: only token-id prompts work", config.model);
  if (tokenizer_ && tokenizer_->eos_token_id()) core_->set_eos_token_id(tokenizer_->eos_token_id());
  processor_ = std::make_unique<OutputProcessor>(tokenizer_);
  if (tokenizer_) grammars_ = std::make_unique<structured::GrammarCompiler>(tokenizer_);
}

std::shared_ptr<const structured::CompiledGrammar> LLMEngine::compile_structured_outputs(const nlohmann::json& so) const {
  if (!grammars_) throw Error("structured outputs need the model's tokenizer, and this model has none");
  return grammars_->compile(structured::StructuredOutputsParams::from_json(so));
}

std::vector<int32_t> LLMEngine::tokenize(const PromptInput& prompt) const {
  if (!prompt.text) return prompt.token_ids;
  if (!tokenizer_) throw Error("this model has no tokenizer; give prompts as token ids");
  return tokenizer_->encode(*prompt.text, prompt.add_special_tokens);
}

namespace {
// vLLM's bad-words rule: each word as given and with a leading space, when that differs.
std::vector<std::vector<int32_t>> bad_words_ids(const Tokenizer& tok, const std::vector<std::string>& words) {
  std::vector<std::vector<int32_t>> out;
  for (const std::string& word : words) {
    std::string stripped = word.substr(std::min(word.find_first_not_of(" \t\n"), word.size()));
    std::vector<int32_t> plain = tok.encode(stripped, false);
    if (!plain.empty()) out.push_back(plain);
    std::vector<int32_t> spaced = tok.encode(" " + stripped, false);
    if (!spaced.empty() && !plain.empty() && spaced[0] != plain[0] && spaced.size() == plain.size()) out.push_back(spaced);
  }
  return out;
}
}  // namespace

void LLMEngine::add_request(const std::string& request_id, const PromptInput& prompt, SamplingParams params,
                            const AddRequestOptions& options) {
  if (processor_->has(request_id)) throw Error("a request with id '" + request_id + "' is already running");
  std::vector<int32_t> ids = tokenize(prompt);
  params.finalize();
  if (!params.bad_words.empty()) {
    if (!tokenizer_) throw Error("bad_words need a tokenizer");
    params.bad_words_token_ids = bad_words_ids(*tokenizer_, params.bad_words);
  }
  if (!params.stop.empty() && (!tokenizer_ || !params.detokenize))
    throw Error("stop strings need detokenized output (a tokenizer and detokenize=True)");
  params.update_from_generation_config(core_->generation_config().eos_token_ids, core_->eos_token_id());
  std::shared_ptr<const structured::CompiledGrammar> grammar = options.grammar;
  if (params.structured_outputs && !grammar) grammar = compile_structured_outputs(*params.structured_outputs);

  const int n = params.n;
  const int total = params.best_of ? std::max(*params.best_of, n) : n;
  SamplingParams child = params;
  child.n = 1;
  child.best_of.reset();
  // Choosing the best_of best needs each sequence's log-probability.
  if (total > n && !child.logprobs) child.logprobs = 0;
  child.validate(core_->config().max_logprobs, core_->model_config().vocab_size);

  const double arrival = options.arrival_time > 0
                             ? options.arrival_time
                             : std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  // One core request: its prompt is computed once, and at its first sampled token it forks into
  // the other total - 1 sequences, which share the prompt's KV blocks.
  auto sequence_params = [&](int i) {
    SamplingParams p = child;
    if (params.seed) p.seed = *params.seed + i;  // vLLM's per-child seeds
    return p;
  };
  auto sequence_id = [&](int i) { return total == 1 ? request_id : std::to_string(i) + "_" + request_id; };
  EngineCoreRequest req;
  req.request_id = sequence_id(0);
  req.prompt_token_ids = ids;
  req.params = sequence_params(0);
  req.priority = options.priority;
  req.cache_salt = options.cache_salt;
  req.grammar = grammar;
  for (int i = 1; i < total; ++i) req.branches.push_back({0, sequence_id(i), sequence_params(i)});
  std::vector<uint64_t> branch_ids;
  std::vector<uint64_t> seq_ids{core_->add_request(std::move(req), &branch_ids)};
  seq_ids.insert(seq_ids.end(), branch_ids.begin(), branch_ids.end());
  SamplingParams visible = params;
  if (total > n && !params.logprobs) visible.logprobs.reset();
  processor_->add_request(request_id, prompt.text, std::move(ids), visible, seq_ids, arrival);
  seqs_of_[request_id] = seq_ids;
}

std::optional<RequestOutput> LLMEngine::abort_request(const std::string& request_id) {
  std::vector<uint64_t> seqs;
  auto out = processor_->abort(request_id, &seqs);
  for (uint64_t s : seqs) core_->abort_request(s);
  seqs_of_.erase(request_id);
  return out;
}

void LLMEngine::set_output_paused(const std::string& request_id, bool paused) {
  auto it = seqs_of_.find(request_id);
  if (it == seqs_of_.end()) return;
  for (uint64_t s : it->second) core_->set_output_paused(s, paused);
}

std::vector<RequestOutput> LLMEngine::step() {
  std::vector<uint64_t> to_abort;
  std::vector<RequestOutput> outs = processor_->process(core_->step(), &to_abort);
  for (uint64_t s : to_abort) core_->abort_request(s);
  for (const auto& o : outs)
    if (o.finished) seqs_of_.erase(o.request_id);
  return outs;
}

std::vector<BeamSearchResult> LLMEngine::beam_search(const std::vector<PromptInput>& prompts,
                                                     const BeamSearchParams& params) {
  params.validate();
  if (has_unfinished())
    throw Error("beam search needs an idle engine: finish or abort the running requests first");
  std::vector<std::vector<int32_t>> ids;
  for (const PromptInput& p : prompts) ids.push_back(tokenize(p));
  std::vector<BeamSearchResult> results = run_beam_search(*core_, ids, params, core_->eos_token_id());
  if (tokenizer_)
    for (BeamSearchResult& r : results)
      for (BeamSequence& s : r.sequences) s.text = tokenizer_->decode(s.tokens);
  return results;
}

}  // namespace vllm
