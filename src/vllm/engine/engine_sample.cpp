// EngineCore::sample: turns the step's logits rows into prompt log-probs, sampled tokens and
// their log-probs, then applies the stop rules.
#include <algorithm>
#include <array>
#include <cstring>

#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"

namespace vllm {

namespace {
TokenLogprobs to_logprobs(const SampleResult& r) {
  return {r.token_id, r.logprob, r.rank, r.top_logprobs};
}
}  // namespace

void EngineCore::sample(const LogitsPlan& plan, Tensor& logits, std::vector<EngineCoreOutput>* outputs) {
  const int64_t V = model_config_.vocab_size;
  float* rows = logits.data<float>();

  // Prompt log-probs come from the raw logits, before the sampler processes the rows.
  std::vector<std::vector<TokenLogprobs>> prompt_lps(plan.entries.size());
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const auto& e = plan.entries[i];
    if (e.num_prompt_rows == 0) continue;
    const Request& r = *e.request;
    std::span<const int32_t> next(r.token_ids.data() + e.first_prompt_pos, static_cast<size_t>(e.num_prompt_rows));
    for (const auto& res : compute_prompt_logprobs(rows + e.row * V, e.num_prompt_rows, V, next, *r.params.prompt_logprobs))
      prompt_lps[i].push_back(to_logprobs(res));
  }

  // The rows to sample, made contiguous when prompt rows sit between them.
  std::vector<SamplingRow> srows;
  std::vector<size_t> owner;  // entry index of each sampled row
  std::vector<std::array<int32_t, 1>> eos(plan.entries.size());
  int64_t n = 0;
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const auto& e = plan.entries[i];
    if (!e.sample) continue;
    Request& r = *e.request;
    const int64_t src = e.row + e.num_prompt_rows;
    if (src != n) std::memmove(rows + n * V, rows + src * V, static_cast<size_t>(V) * sizeof(float));
    SamplingRow row;
    row.params = &r.params;
    row.prompt_token_ids = std::span<const int32_t>(r.token_ids.data(), static_cast<size_t>(r.num_prompt_tokens));
    row.output_token_ids =
        std::span<const int32_t>(r.token_ids.data() + r.num_prompt_tokens, static_cast<size_t>(r.num_output_tokens()));
    if (eos_token_id_) {
      eos[i][0] = *eos_token_id_;
      row.eos_token_ids = std::span<const int32_t>(eos[i].data(), 1);
    }
    auto g = request_generators_.find(r.seq_id);
    row.generator = g == request_generators_.end() ? nullptr : &g->second;
    srows.push_back(row);
    owner.push_back(i);
    ++n;
  }
  std::vector<SampleResult> sampled = n > 0 ? sampler_.sample(rows, n, V, srows) : std::vector<SampleResult>{};

  std::vector<int64_t> sampled_of(plan.entries.size(), -1);
  for (size_t k = 0; k < owner.size(); ++k) sampled_of[owner[k]] = static_cast<int64_t>(k);
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const auto& e = plan.entries[i];
    Request& r = *e.request;
    EngineCoreOutput out;
    out.seq_id = r.seq_id;
    out.request_id = r.request_id;
    out.num_prompt_tokens = r.num_prompt_tokens;
    out.num_cached_tokens = std::max<int64_t>(0, r.num_cached_tokens);
    if (e.num_prompt_rows > 0) {
      out.first_prompt_logprob_pos = e.first_prompt_pos;
      out.new_prompt_logprobs = std::move(prompt_lps[i]);
      r.next_prompt_logprob_pos = e.first_prompt_pos + e.num_prompt_rows;
    }
    if (sampled_of[i] >= 0) {
      const SampleResult& s = sampled[static_cast<size_t>(sampled_of[i])];
      if (s.has_logprobs) out.new_logprobs.push_back(to_logprobs(s));
      out.new_token_ids.push_back(s.token_id);
      if (append_and_check_stop(r, s.token_id)) {
        out.finished = true;
        out.finish_reason = r.finish_reason;
        out.stop_reason = r.stop_reason;
        request_generators_.erase(r.seq_id);
        scheduler_->finish(r.seq_id, *r.finish_reason);
      }
    }
    outputs->push_back(std::move(out));
  }
}

}  // namespace vllm
