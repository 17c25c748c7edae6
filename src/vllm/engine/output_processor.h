// Turns the engine core's token outputs into RequestOutputs: incremental detokenization, stop
// strings (held back while they could still match), cumulative log-probs, and the fan-in of the
// n (or best_of) sequences of one request. Runs on the thread that drives the engine core.
#pragma once

#include <map>
#include <memory>
#include <unordered_map>

#include "vllm/engine/outputs.h"
#include "vllm/sampling/stop_checker.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm {

class OutputProcessor {
 public:
  explicit OutputProcessor(std::shared_ptr<const Tokenizer> tokenizer) : tokenizer_(std::move(tokenizer)) {}

  // A request with `n` sequences, each already added to the core under its seq id.
  void add_request(const std::string& request_id, std::optional<std::string> prompt, std::vector<int32_t> prompt_ids,
                   const SamplingParams& params, const std::vector<uint64_t>& seq_ids, double arrival_time);

  // Applies one step's core outputs. Sequences that hit a stop string are listed in
  // `to_abort` (the caller aborts them in the core). Returns the outputs due now.
  std::vector<RequestOutput> process(const std::vector<EngineCoreOutput>& outputs, std::vector<uint64_t>* to_abort);

  // Marks every sequence of a request aborted; returns its final output (if it was known).
  std::optional<RequestOutput> abort(const std::string& request_id, std::vector<uint64_t>* seq_ids);
  bool has(const std::string& request_id) const { return requests_.count(request_id) > 0; }
  size_t num_requests() const { return requests_.size(); }

 private:
  struct Sequence {
    int index = 0;
    std::vector<int32_t> token_ids;
    std::vector<TokenLogprobs> logprobs;
    double cumulative_logprob = 0;
    std::unique_ptr<IncrementalDetokenizer> detok;
    std::unique_ptr<StopChecker> stop;
    std::optional<FinishReason> finish_reason;
    StopReason stop_reason;
    size_t sent_tokens = 0;  // for DELTA outputs
  };
  struct RequestState {
    std::string request_id;
    std::optional<std::string> prompt;
    std::vector<int32_t> prompt_ids;
    SamplingParams params;
    std::vector<std::optional<TokenLogprobs>> prompt_logprobs;
    size_t sent_prompt_logprobs = 0;
    std::vector<Sequence> seqs;
    int num_finished = 0;
    int64_t num_cached_tokens = 0;
    RequestMetrics metrics;
  };
  RequestOutput make_output(RequestState& r, bool final);

  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unordered_map<std::string, std::unique_ptr<RequestState>> requests_;
  std::unordered_map<uint64_t, std::pair<RequestState*, int>> by_seq_;  // seq id -> (request, sequence index)
};

}  // namespace vllm
