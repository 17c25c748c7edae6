// What the sampler needs to know about one row of the logits matrix: the request's
// parameters, its token history (for penalties, bad words and min_tokens), the EOS ids that
// min_tokens must hold back, and the generator a seeded request owns. A view: the engine
// keeps everything it points to alive for the duration of the sampler call.
#pragma once

#include <cstdint>
#include <span>

namespace vllm {

struct SamplingParams;
class Generator;

struct SamplingRow {
  const SamplingParams* params = nullptr;
  std::span<const int32_t> prompt_token_ids = {};  // repetition penalty counts these...
  std::span<const int32_t> output_token_ids = {};  // ...and these; frequency/presence only these
  // Blocked (with params->stop_token_ids and params->all_stop_token_ids) while fewer than
  // params->min_tokens tokens have been generated; vLLM blocks EOS even with ignore_eos.
  std::span<const int32_t> eos_token_ids = {};
  // A seeded request's own generator (see make_request_generator); nullptr draws from the
  // sampler's engine-wide one. The sampler takes one draw per non-greedy row, in row order,
  // before any parallel work, so rows sharing a generator are safe (but then not independent).
  Generator* generator = nullptr;
  // A structured-outputs constraint's allowed tokens for this step (vLLM's packed layout: bit
  // i % 32 of word i / 32 allows token i; ceil(vocab / 32) words). Applied first, before the raw
  // log-probs are taken (as vLLM v1 applies the grammar bitmask to the logits it hands the
  // sampler); nullptr: unconstrained.
  const uint32_t* token_bitmask = nullptr;
};

}  // namespace vllm
