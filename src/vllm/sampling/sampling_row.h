// What the sampler needs to know about one row of the logits matrix: the request's
// parameters, its token history (for penalties, bad words and min_tokens), the EOS ids that
// min_tokens must hold back, and which random draw it takes. A view: the engine
// keeps everything it points to alive for the duration of the sampler call.
#pragma once

#include <cstdint>
#include <span>

namespace vllm {

struct SamplingParams;

struct SamplingRow {
  const SamplingParams* params = nullptr;
  std::span<const int32_t> prompt_token_ids = {};  // repetition penalty counts these...
  std::span<const int32_t> output_token_ids = {};  // ...and these; frequency/presence only these
  // Blocked (with params->stop_token_ids and params->all_stop_token_ids) while fewer than
  // params->min_tokens tokens have been generated; vLLM blocks EOS even with ignore_eos.
  std::span<const int32_t> eos_token_ids = {};
  // Which random draw the row takes (non-greedy rows take one per sampled token): Philox at the
  // counter (draw_index, stream) under a key; see SamplingDraw in sampler.h. A draw depends on
  // nothing else, not the batch, the row order or the threads, so a request gives the same
  // tokens alone or in any batch, and the GPU's sampler takes the very same draws.
  // sequence_id: the engine's id of the sequence, which keeps unseeded sequences apart (seeded
  // ones draw by their seed alone: vLLM gives n > 1 children seed + i). draw_index: the number
  // of tokens the sequence has sampled so far, so a preempted and recomputed sequence, or one
  // forked from a seeded parent, draws what it would have drawn.
  uint64_t sequence_id = 0;
  int64_t draw_index = 0;
  // A structured-outputs constraint's allowed tokens for this step (vLLM's packed layout: bit
  // i % 32 of word i / 32 allows token i; ceil(vocab / 32) words). Applied first, before the raw
  // log-probs are taken (as vLLM v1 applies the grammar bitmask to the logits it hands the
  // sampler); nullptr: unconstrained.
  const uint32_t* token_bitmask = nullptr;
};

}  // namespace vllm
