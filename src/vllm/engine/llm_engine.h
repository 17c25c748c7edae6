// The synchronous engine behind `vllm generate`, the Python LLM class and the async server
// engine: text or token prompts in, RequestOutputs out. It validates and tokenizes prompts,
// fans a request with n > 1 (or best_of) out into sequences, drives the engine core one step at
// a time, and turns token outputs into text through the OutputProcessor.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "vllm/engine/beam_search.h"
#include "vllm/engine/engine_core.h"
#include "vllm/engine/output_processor.h"
#include "vllm/structured/grammar_compiler.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm {

// A prompt: text (tokenized with the model's tokenizer) or token ids.
struct PromptInput {
  std::optional<std::string> text;
  std::vector<int32_t> token_ids;  // used when text is unset
  bool add_special_tokens = true;

  static PromptInput from_text(std::string t) { return {std::move(t), {}, true}; }
  static PromptInput from_ids(std::vector<int32_t> ids) { return {std::nullopt, std::move(ids), true}; }
};

struct AddRequestOptions {
  int priority = 0;
  std::optional<std::string> cache_salt;
  double arrival_time = 0;
  // params.structured_outputs compiled by the caller (the server compiles on its request
  // threads, so that the engine thread never does); unset: add_request compiles it.
  std::shared_ptr<const structured::CompiledGrammar> grammar;
};

class LLMEngine {
 public:
  explicit LLMEngine(const EngineConfig& config);

  // Validates and queues a request (params is finalized here). Throws vllm::Error for bad input
  // (empty or too long prompt, token ids out of vocabulary, bad parameters); nothing is queued then.
  void add_request(const std::string& request_id, const PromptInput& prompt, SamplingParams params,
                   const AddRequestOptions& options = {});
  // Aborts a request; returns its final output if it was still running.
  std::optional<RequestOutput> abort_request(const std::string& request_id);
  std::vector<RequestOutput> step();
  // vLLM's LLM.beam_search over these prompts, run to the end (see beam_search.h). The engine
  // must be idle (it runs nothing else meanwhile). Throws vllm::Error for bad input.
  std::vector<BeamSearchResult> beam_search(const std::vector<PromptInput>& prompts, const BeamSearchParams& params);
  bool has_unfinished() const { return core_->has_unfinished() || processor_->num_requests() > 0; }
  bool has_request(const std::string& request_id) const { return processor_->has(request_id); }
  // Backpressure: a paused request (all its sequences) is not scheduled until resumed; it
  // keeps its place and blocks unless waiting requests need them. Unknown ids are ignored.
  void set_output_paused(const std::string& request_id, bool paused);
  // Whether step() may make progress (some unfinished request is not paused).
  bool has_runnable() const { return core_->scheduler().has_runnable(); }

  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }
  EngineCore& core() { return *core_; }
  const ModelConfig& model_config() const { return core_->model_config(); }
  int64_t max_model_len() const { return core_->max_model_len(); }

  // Token ids of a prompt as the engine would see them (for /tokenize and tests).
  std::vector<int32_t> tokenize(const PromptInput& prompt) const;

  // Compiles a request's structured_outputs (SamplingParams' JSON form) for this model's
  // tokenizer, through the shared grammar cache. Thread-safe. Throws vllm::Error
  // (kInvalidArgument) for an invalid constraint or when the model has no tokenizer.
  std::shared_ptr<const structured::CompiledGrammar> compile_structured_outputs(const nlohmann::json& so) const;
  structured::GrammarCompiler* grammar_compiler() const { return grammars_.get(); }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<EngineCore> core_;
  std::unique_ptr<OutputProcessor> processor_;
  std::unique_ptr<structured::GrammarCompiler> grammars_;  // null without a tokenizer
  std::unordered_map<std::string, std::vector<uint64_t>> seqs_of_;  // request id -> core seq ids
};

// Loads the tokenizer of a model folder, or returns null when the folder has no tokenizer
// files (token-id-only use).
std::shared_ptr<const Tokenizer> load_tokenizer_if_present(const std::string& dir);
// The tokenizer of a model: the `tokenizer` folder when given, else the model folder's, or a GGUF
// file's tokenizer metadata; null when there is none.
std::shared_ptr<const Tokenizer> load_model_tokenizer(const std::string& model, const std::string& tokenizer);

}  // namespace vllm
