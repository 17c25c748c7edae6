// EngineCore::sample: turns the step's logits rows into prompt log-probs, sampled tokens and
// their log-probs, then applies the stop rules.
#include <algorithm>
#include <array>
#include <chrono>
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

namespace {
// Whether the backend's own sampler covers a row with these parameters, `num_output_tokens` into
// its output (DeviceSamplingRow's rule): what needs the whole distribution on the host (log-probs)
// or the token history (penalties, bad words, a pending min_tokens) stays there. The choice is
// the row's alone, never its batch's, so a seeded request draws the same in any batch.
bool backend_can_sample(const SamplingParams& p, int64_t num_output_tokens) {
  return !p.logprobs && !p.prompt_logprobs && p.repetition_penalty == 1.0 && p.frequency_penalty == 0.0 &&
         p.presence_penalty == 0.0 && p.logit_bias.empty() && !p.allowed_token_ids && p.bad_words_token_ids.empty() &&
         p.min_tokens <= num_output_tokens;
}
}  // namespace

std::vector<SampleResult> EngineCore::sample_on_backend(const Tensor& logits, std::span<const int64_t> src_rows,
                                                        std::span<const SamplingRow> srows) {
  const int64_t V = model_config_.vocab_size;
  std::vector<DeviceSamplingRow> rows(srows.size());
  // The masks go as StepMasks filled them (in page-locked memory on a GPU): no copy on the host.
  const std::span<const uint32_t> masks = step_masks_->all();
  const int64_t words = static_cast<int64_t>(step_masks_->words());
  for (size_t k = 0; k < srows.size(); ++k) {
    const SamplingRow& r = srows[k];
    const SamplingParams& p = *r.params;
    DeviceSamplingRow& d = rows[k];
    d.logits_row = src_rows[k];
    if (r.token_bitmask) {
      const int64_t offset = r.token_bitmask - masks.data();
      VLLM_CHECK(offset >= 0 && offset < static_cast<int64_t>(masks.size()) && offset % words == 0,
                 "a constrained row's mask is not one of the step's masks");
      d.mask_row = offset / words;
    }
    d.greedy = p.is_greedy() ? 1 : 0;
    if (d.greedy) continue;
    const SamplingDraw draw = sampling_draw(r, sampler_.engine_seed());
    d.u = philox_uniform(draw.key, draw.stream, draw.index);
    d.inv_temperature = static_cast<float>(1.0 / p.temperature);
    d.top_p = static_cast<float>(p.top_p);
    d.min_p = static_cast<float>(p.min_p);
    d.top_k = p.top_k > 0 && p.top_k < V ? p.top_k : 0;
  }
  const auto started = std::chrono::steady_clock::now();
  const std::vector<int32_t> tokens = runner_->backend().sample_tokens(logits, rows, masks, words);
  if (time_steps_) step_times_.device_wait += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::vector<SampleResult> results(tokens.size());
  for (size_t k = 0; k < tokens.size(); ++k) results[k].token_id = tokens[k];
  return results;
}

void EngineCore::sample(const LogitsPlan& plan, Tensor& step_logits, std::vector<EngineCoreOutput>* outputs) {
  const int64_t V = model_config_.vocab_size;

  // Who samples from which logits row. A request with pending branches (n > 1) forks them now,
  // its prompt done: each branch samples its first token from the parent's row, with its own
  // parameters, and shares the parent's blocks from here on.
  struct Target {
    Request* request;
    size_t entry;     // the plan entry whose row it samples
    int64_t src_row;  // that row
  };
  std::vector<Target> targets;
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
    }
  }
  const int64_t n = static_cast<int64_t>(targets.size());
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

  // Which rows the backend's own sampler takes (a GPU's: the logits stay there); the rest, and
  // prompt log-probs, need the logits on the host.
  std::vector<int64_t> on_backend, on_host;
  for (int64_t k = 0; k < n; ++k) {
    const Request& r = *targets[static_cast<size_t>(k)].request;
    (backend_sampler_ && backend_can_sample(r.params, r.num_output_tokens()) ? on_backend : on_host).push_back(k);
  }
  bool need_host = !on_host.empty();
  for (const auto& e : plan.entries) need_host |= e.num_prompt_rows > 0;
  const auto download_started = std::chrono::steady_clock::now();
  Tensor host_logits = need_host ? runner_->backend().download_f32(step_logits) : Tensor();
  if (time_steps_)
    step_times_.device_wait += std::chrono::duration<double>(std::chrono::steady_clock::now() - download_started).count();
  float* rows = need_host ? host_logits.data<float>() : nullptr;

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

  std::vector<SampleResult> sampled(static_cast<size_t>(n));
  if (!on_host.empty()) {
    // The host's rows, contiguous: compacted in place when they are all the rows and each has its
    // own (prompt rows may sit between them), else gathered into a new buffer.
    const int64_t h = static_cast<int64_t>(on_host.size());
    bool in_place = h == n;
    for (int64_t k = 1; k < n && in_place; ++k)
      in_place = targets[static_cast<size_t>(k)].src_row != targets[static_cast<size_t>(k - 1)].src_row;
    std::vector<float> gathered;
    float* sample_rows = rows;
    if (in_place) {
      for (int64_t k = 0; k < n; ++k) {
        const int64_t src = targets[static_cast<size_t>(k)].src_row;
        if (src != k) std::memmove(rows + k * V, rows + src * V, static_cast<size_t>(V) * sizeof(float));
      }
    } else {
      gathered.resize(static_cast<size_t>(h * V));
      for (int64_t j = 0; j < h; ++j)
        std::memcpy(gathered.data() + j * V, rows + targets[static_cast<size_t>(on_host[j])].src_row * V,
                    static_cast<size_t>(V) * sizeof(float));
      sample_rows = gathered.data();
    }
    std::vector<SamplingRow> host_rows;
    for (int64_t k : on_host) host_rows.push_back(srows[static_cast<size_t>(k)]);
    std::vector<SampleResult> got = sampler_.sample(sample_rows, h, V, host_rows);
    for (int64_t j = 0; j < h; ++j) sampled[static_cast<size_t>(on_host[j])] = std::move(got[j]);
  }
  if (!on_backend.empty()) {
    std::vector<int64_t> src_rows;
    std::vector<SamplingRow> backend_rows;
    for (int64_t k : on_backend) {
      src_rows.push_back(targets[static_cast<size_t>(k)].src_row);
      backend_rows.push_back(srows[static_cast<size_t>(k)]);
    }
    std::vector<SampleResult> got = sample_on_backend(step_logits, src_rows, backend_rows);
    for (size_t j = 0; j < on_backend.size(); ++j) sampled[static_cast<size_t>(on_backend[j])] = std::move(got[j]);
  }

  auto base_output = [](const Request& r) {
    EngineCoreOutput out;
    out.seq_id = r.seq_id;
    out.request_id = r.request_id;
    out.num_prompt_tokens = r.num_prompt_tokens;
    out.num_cached_tokens = std::max<int64_t>(0, r.num_cached_tokens);
    return out;
  };
  auto append_sampled = [&](Request& r, size_t target, EngineCoreOutput& out) {
    const SampleResult& s = sampled[target];
    if (s.has_logprobs) out.new_logprobs.push_back(to_logprobs(s));
    out.new_token_ids.push_back(s.token_id);
    if (append_and_check_stop(r, s.token_id, srows[target].token_bitmask)) {
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
        append_sampled(r, k, out);
      } else {
        EngineCoreOutput b = base_output(*targets[k].request);
        append_sampled(*targets[k].request, k, b);
        branch_outputs.push_back(std::move(b));
      }
    }
    outputs->push_back(std::move(out));
    for (auto& b : branch_outputs) outputs->push_back(std::move(b));
  }
}

}  // namespace vllm
