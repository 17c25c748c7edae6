// EngineCore::sample: turns the step's logits rows into tokens, log-probs and prompt log-probs.
// INTERIM: greedy only, until the batched sampler (sampling/sampler.h) is wired in.
#include <algorithm>
#include <cmath>

#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"

namespace vllm {

namespace {

// log_softmax of one row in double, the top-k, and the rank/logprob of `token`.
TokenLogprobs row_logprobs(const float* row, int64_t V, int32_t token, int k) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < V; ++i) mx = std::max<double>(mx, row[i]);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i]) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprobs out;
  out.token = token;
  out.logprob = static_cast<float>(row[token] - lse);
  int64_t rank = 1;
  for (int64_t i = 0; i < V; ++i)
    if (row[i] > row[token] || (row[i] == row[token] && i < token)) ++rank;
  out.rank = rank;
  if (k > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    const size_t kk = std::min<size_t>(static_cast<size_t>(k), idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (size_t i = 0; i < kk; ++i) out.top.emplace_back(idx[i], static_cast<float>(row[idx[i]] - lse));
  }
  return out;
}

int32_t argmax(const float* row, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (row[i] > row[best]) best = i;
  return static_cast<int32_t>(best);
}

}  // namespace

void EngineCore::sample(const LogitsPlan& plan, Tensor& logits, std::vector<EngineCoreOutput>* outputs) {
  const int64_t V = model_config_.vocab_size;
  for (const auto& e : plan.entries) {
    Request& r = *e.request;
    EngineCoreOutput out;
    out.seq_id = r.seq_id;
    out.request_id = r.request_id;
    out.num_prompt_tokens = r.num_prompt_tokens;
    out.num_cached_tokens = std::max<int64_t>(0, r.num_cached_tokens);
    if (e.num_prompt_rows > 0) {
      out.first_prompt_logprob_pos = e.first_prompt_pos;
      for (int64_t i = 0; i < e.num_prompt_rows; ++i) {
        const int64_t pos = e.first_prompt_pos + i;
        out.new_prompt_logprobs.push_back(row_logprobs(logits.data<float>() + (e.row + i) * V, V,
                                                       r.token_ids[static_cast<size_t>(pos)], *r.params.prompt_logprobs));
      }
      r.next_prompt_logprob_pos = e.first_prompt_pos + e.num_prompt_rows;
    }
    if (e.sample) {
      const float* row = logits.data<float>() + (e.row + e.num_prompt_rows) * V;
      int32_t token = argmax(row, V);
      if (r.params.logprobs) out.new_logprobs.push_back(row_logprobs(row, V, token, *r.params.logprobs));
      out.new_token_ids.push_back(token);
      if (append_and_check_stop(r, token)) {
        out.finished = true;
        out.finish_reason = r.finish_reason;
        out.stop_reason = r.stop_reason;
        scheduler_->finish(r.seq_id, *r.finish_reason);
        request_generators_.erase(out.seq_id);
      }
    }
    outputs->push_back(std::move(out));
  }
}

}  // namespace vllm
