// What callers get back: vLLM's RequestOutput and CompletionOutput.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vllm/engine/engine_core.h"

namespace vllm {

struct CompletionOutput {
  int index = 0;
  std::string text;                 // whole text, or the new part for DELTA requests
  std::vector<int32_t> token_ids;   // likewise
  std::optional<double> cumulative_logprob;  // when logprobs were requested
  std::vector<TokenLogprobs> logprobs;       // one per token in token_ids, when requested
  std::optional<FinishReason> finish_reason;
  StopReason stop_reason;
  bool finished() const { return finish_reason.has_value(); }
};

struct RequestMetrics {
  double arrival_time = 0;
  double first_scheduled_time = 0;
  double first_token_time = 0;
  double last_token_time = 0;
  double finished_time = 0;
};

struct RequestOutput {
  std::string request_id;
  std::optional<std::string> prompt;
  std::vector<int32_t> prompt_token_ids;
  // Index i: the prompt token i's log-prob (index 0 has none); when prompt_logprobs was asked.
  std::vector<std::optional<TokenLogprobs>> prompt_logprobs;
  std::vector<CompletionOutput> outputs;
  bool finished = false;
  int64_t num_cached_tokens = 0;
  RequestMetrics metrics;
};

}  // namespace vllm
