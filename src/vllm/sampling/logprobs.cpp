#include "vllm/sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "vllm/sampling/selection.h"
#include "vllm/sampling/vec_math.h"

namespace vllm {

double log_sum_exp(const float* row, int64_t vocab, std::vector<float>& scratch) {
  float m = vecmath::row_max(row, vocab);
  if (!(m > -std::numeric_limits<float>::infinity())) return -std::numeric_limits<double>::infinity();
  scratch.resize(static_cast<size_t>(vocab));
  double sum = vecmath::exp_shifted(row, vocab, m, 1.0f, scratch.data());
  return static_cast<double>(m) + std::log(sum);
}

LogprobsOfToken gather_logprobs(const float* row, int64_t vocab, int32_t token, int num_logprobs,
                                std::vector<float>& scratch) {
  LogprobsOfToken out;
  const double lse = log_sum_exp(row, vocab, scratch);
  auto logprob = [&](float logit) { return static_cast<float>(static_cast<double>(logit) - lse); };
  const float value = row[token];
  out.logprob = logprob(value);
  // log_softmax is monotone, so counting raw logits >= the token's is vLLM's rank.
  int64_t rank = 0;
  for (int64_t i = 0; i < vocab; ++i) rank += row[i] >= value;
  out.rank = static_cast<int32_t>(rank);

  std::vector<selection::ScoredToken> best;
  if (num_logprobs == 0) {
    // Only the chosen token (vLLM's gather with k = 0 still returns it).
  } else if (num_logprobs < 0 || num_logprobs >= vocab) {
    // The whole vocabulary was asked for: the one case where sorting it is the job.
    best.resize(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i)
      best[static_cast<size_t>(i)] = {std::isnan(row[i]) ? -std::numeric_limits<float>::infinity() : row[i],
                                      static_cast<int32_t>(i)};
    std::sort(best.begin(), best.end(), selection::ranks_before);
  } else {
    selection::top_n(row, vocab, num_logprobs, best);
  }
  out.top.reserve(best.size() + 1);
  bool token_listed = false;
  for (const auto& t : best) {
    out.top.push_back({t.id, logprob(t.value)});
    token_listed |= t.id == token;
  }
  if (!token_listed) out.top.push_back({token, out.logprob});
  return out;
}

}  // namespace vllm
