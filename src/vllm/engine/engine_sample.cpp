// EngineCore::sample: turns the step's logits rows into prompt log-probs, sampled tokens and
// their log-probs, then applies the stop rules.
#include <algorithm>
#include <array>
#include <cstring>

#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"
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

  // Who samples from which logits row. A request with pending branches (n > 1) forks them now,
  // its prompt done: each branch samples its first token from the parent's row, with its own
  // parameters, and shares the parent's blocks from here on.
  struct Target {
    Request* request;
    size_t entry;     // the plan entry whose row it samples
    int64_t src_row;  // that row
  };
  std::vector<Target> targets;
  bool forked = false;
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const auto& e = plan.entries[i];
    if (!e.sample) continue;
    Request& r = *e.request;
    const int64_t src = e.row + e.num_prompt_rows;
    targets.push_back({&r, i, src});
    std::vector<PendingBranch> branches = std::move(r.pending_branches);
    r.pending_branches.clear();
    Request* last = &r;  // the branches run in their order, after the parent
    for (PendingBranch& b : branches) {
      parent_of_pending_branch_.erase(b.seq_id);
      last = &fork(r, b.seq_id, std::move(b.request_id), std::move(b.params), *last);
      targets.push_back({last, i, src});
      forked = true;
    }
  }

  // The rows to sample, contiguous: compacted in place (prompt rows may sit between them), or
  // gathered into a new buffer when branches sample one row several times.
  const int64_t n = static_cast<int64_t>(targets.size());
  std::vector<float> gathered;
  float* sample_rows = rows;
  if (forked) {
    gathered.resize(static_cast<size_t>(n * V));
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(gathered.data() + k * V, rows + targets[static_cast<size_t>(k)].src_row * V,
                  static_cast<size_t>(V) * sizeof(float));
    sample_rows = gathered.data();
  } else {
    for (int64_t k = 0; k < n; ++k) {
      const int64_t src = targets[static_cast<size_t>(k)].src_row;
      if (src != k) std::memmove(rows + k * V, rows + src * V, static_cast<size_t>(V) * sizeof(float));
    }
  }
  std::vector<SamplingRow> srows;
  std::array<int32_t, 1> eos{};
  if (eos_token_id_) eos[0] = *eos_token_id_;
  for (const Target& t : targets) {
    Request& r = *t.request;
    SamplingRow row;
    row.params = &r.params;
    row.prompt_token_ids = std::span<const int32_t>(r.token_ids.data(), static_cast<size_t>(r.num_prompt_tokens));
    row.output_token_ids =
        std::span<const int32_t>(r.token_ids.data() + r.num_prompt_tokens, static_cast<size_t>(r.num_output_tokens()));
    if (eos_token_id_) row.eos_token_ids = std::span<const int32_t>(eos.data(), 1);
    row.sequence_id = r.seq_id;
    row.draw_index = r.num_output_tokens();
    srows.push_back(row);
  }
  // Structured outputs: each constrained row's allowed tokens, filled while the forward ran (see
  // StepMasks). A branch forked this step has its parent's matcher state, so its parent's mask.
  for (size_t k = 0; k < targets.size(); ++k)
    if (targets[k].request->matcher) {
      const uint32_t* mask = step_masks_->mask_of(plan.entries[targets[k].entry].request);
      VLLM_CHECK(mask, "a constrained row that samples has no token mask");
      srows[k].token_bitmask = mask;
    }
  std::vector<SampleResult> sampled = n > 0 ? sampler_.sample(sample_rows, n, V, srows) : std::vector<SampleResult>{};

  auto base_output = [](const Request& r) {
    EngineCoreOutput out;
    out.seq_id = r.seq_id;
    out.request_id = r.request_id;
    out.num_prompt_tokens = r.num_prompt_tokens;
    out.num_cached_tokens = std::max<int64_t>(0, r.num_cached_tokens);
    return out;
  };
  auto append_sampled = [&](Request& r, const SampleResult& s, EngineCoreOutput& out) {
    if (s.has_logprobs) out.new_logprobs.push_back(to_logprobs(s));
    out.new_token_ids.push_back(s.token_id);
    if (append_and_check_stop(r, s.token_id)) {
      out.finished = true;
      out.finish_reason = r.finish_reason;
      out.stop_reason = r.stop_reason;
      scheduler_->finish(r.seq_id, *r.finish_reason);
    }
  };
  size_t k = 0;  // next target
  for (size_t i = 0; i < plan.entries.size(); ++i) {
    const auto& e = plan.entries[i];
    Request& r = *e.request;
    EngineCoreOutput out = base_output(r);
    if (e.num_prompt_rows > 0) {
      out.first_prompt_logprob_pos = e.first_prompt_pos;
      out.new_prompt_logprobs = std::move(prompt_lps[i]);
      r.next_prompt_logprob_pos = e.first_prompt_pos + e.num_prompt_rows;
    }
    // The entry's own sample, then those of the branches forked from it (finish() may free r).
    std::vector<EngineCoreOutput> branch_outputs;
    for (bool own = true; k < targets.size() && targets[k].entry == i; ++k, own = false) {
      if (own) {
        append_sampled(r, sampled[k], out);
      } else {
        EngineCoreOutput b = base_output(*targets[k].request);
        append_sampled(*targets[k].request, sampled[k], b);
        branch_outputs.push_back(std::move(b));
      }
    }
    outputs->push_back(std::move(out));
    for (auto& b : branch_outputs) outputs->push_back(std::move(b));
  }
}

}  // namespace vllm
