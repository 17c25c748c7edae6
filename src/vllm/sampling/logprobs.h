// Logprobs as vLLM v1 reports them by default (logprobs_mode "raw_logprobs"): log_softmax of
// the model's raw logits, before any processor, penalty or temperature. Per token: its
// logprob, its rank (vLLM's count of tokens whose logprob is >= its own, so 1 for the best
// and ties share the worse rank) and the top-N tokens.
#pragma once

#include <cstdint>
#include <vector>

namespace vllm {

struct TokenLogprob {
  int32_t token_id;
  float logprob;
  bool operator==(const TokenLogprob&) const = default;
};

// The logprob of the chosen token at one position, its rank, and the top-N alternatives.
struct LogprobsOfToken {
  float logprob = 0.0f;
  int32_t rank = 0;
  // The num_logprobs best tokens, best first (ties: lower id first), followed by the chosen
  // token when it is not among them. num_logprobs -1: the whole vocabulary; 0: just the
  // chosen token.
  std::vector<TokenLogprob> top;
};

// log(sum(exp(row))) accumulated in double (float exps, each within 2 ulp), so logprobs stay
// within ~1e-6 of a float64 computation for logits of magnitude ~10. `scratch` gets the
// vocabulary's exps.
double log_sum_exp(const float* row, int64_t vocab, std::vector<float>& scratch);

// Logprob, rank and top-N of `token` in the raw `row`.
LogprobsOfToken gather_logprobs(const float* row, int64_t vocab, int32_t token, int num_logprobs,
                                std::vector<float>& scratch);

}  // namespace vllm
