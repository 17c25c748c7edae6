// vLLM's logits processors that act before temperature, in vLLM v1's order: allowed_token_ids,
// bad words, min_tokens, logit_bias, then the repetition, frequency and presence penalties.
// Each works on one row of float32 logits in place. Token ids outside [0, vocab) are skipped
// (validate() rejects them at the request; the sampler must not write out of bounds anyway).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "vllm/sampling/sampling_row.h"

namespace vllm {

// Vocabulary-sized work arrays reused across rows by one thread; `seen` and `counts` are
// all zero between calls, so each row only pays for the tokens it touches.
struct ProcessorScratch {
  std::vector<uint8_t> seen;
  std::vector<int32_t> counts;
  std::vector<float> saved;
  void ensure_vocab(int64_t vocab);
};

// Every processor below, for the row's params, in vLLM's order.
void apply_logits_processors(float* logits, int64_t vocab, const SamplingRow& row, ProcessorScratch& scratch);

// Every token not in `allowed` gets -inf.
void apply_allowed_token_ids(float* logits, int64_t vocab, std::span<const int32_t> allowed,
                             ProcessorScratch& scratch);
// For each bad word [t1..tn]: if the output ends with t1..t(n-1), tn gets -inf (a one-token
// word is always blocked).
void apply_bad_words(float* logits, int64_t vocab, const std::vector<std::vector<int32_t>>& bad_words,
                     std::span<const int32_t> output_token_ids);
// While fewer than min_tokens outputs exist, every id in the three lists gets -inf.
void apply_min_tokens(float* logits, int64_t vocab, int min_tokens, std::span<const int32_t> output_token_ids,
                      std::span<const int32_t> stop_token_ids, std::span<const int32_t> all_stop_token_ids,
                      std::span<const int32_t> eos_token_ids);
void apply_logit_bias(float* logits, int64_t vocab, const std::map<int32_t, float>& bias);
// Structured outputs: every token whose bit is clear in `bitmask` (vLLM's packed layout, bit
// i % 32 of word i / 32) gets -inf.
void apply_token_bitmask(float* logits, int64_t vocab, const uint32_t* bitmask);
inline bool token_allowed(const uint32_t* bitmask, int32_t id) { return (bitmask[id >> 5] >> (id & 31)) & 1u; }
// The lowest allowed id, or 0 when none is.
int32_t first_allowed_token(const uint32_t* bitmask, int64_t vocab);
// vLLM's apply_penalties: tokens in prompt or output have positive logits divided and
// negative ones multiplied by `repetition`; then logit -= frequency * count(output) and
// -= presence if the token occurs in the output.
void apply_penalties(float* logits, int64_t vocab, std::span<const int32_t> prompt_token_ids,
                     std::span<const int32_t> output_token_ids, double presence, double frequency,
                     double repetition, ProcessorScratch& scratch);

}  // namespace vllm
