#include "vllm/sampling/logits_processors.h"

#include <algorithm>
#include <limits>

#include "vllm/sampling/sampling_params.h"

namespace vllm {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
inline bool in_vocab(int32_t id, int64_t vocab) { return id >= 0 && id < vocab; }
}  // namespace

void ProcessorScratch::ensure_vocab(int64_t vocab) {
  if (static_cast<int64_t>(seen.size()) != vocab) seen.assign(static_cast<size_t>(vocab), 0);
  if (static_cast<int64_t>(counts.size()) != vocab) counts.assign(static_cast<size_t>(vocab), 0);
}

void apply_allowed_token_ids(float* logits, int64_t vocab, std::span<const int32_t> allowed,
                             ProcessorScratch& scratch) {
  // Save the allowed logits, blank the row, put them back: one pass over the row and no
  // vocabulary-sized mask to build per request.
  scratch.saved.resize(allowed.size());
  for (size_t i = 0; i < allowed.size(); ++i)
    scratch.saved[i] = in_vocab(allowed[i], vocab) ? logits[allowed[i]] : 0.0f;
  std::fill(logits, logits + vocab, kNegInf);
  for (size_t i = 0; i < allowed.size(); ++i)
    if (in_vocab(allowed[i], vocab)) logits[allowed[i]] = scratch.saved[i];
}

void apply_bad_words(float* logits, int64_t vocab, const std::vector<std::vector<int32_t>>& bad_words,
                     std::span<const int32_t> output) {
  for (const auto& word : bad_words) {
    if (word.empty() || word.size() > output.size() + 1) continue;
    size_t prefix = word.size() - 1;
    if (std::equal(word.begin(), word.begin() + static_cast<std::ptrdiff_t>(prefix), output.end() - static_cast<std::ptrdiff_t>(prefix)) &&
        in_vocab(word.back(), vocab))
      logits[word.back()] = kNegInf;
  }
}

void apply_min_tokens(float* logits, int64_t vocab, int min_tokens, std::span<const int32_t> output,
                      std::span<const int32_t> stop_token_ids, std::span<const int32_t> all_stop_token_ids,
                      std::span<const int32_t> eos_token_ids) {
  if (static_cast<int64_t>(output.size()) >= min_tokens) return;
  for (auto ids : {stop_token_ids, all_stop_token_ids, eos_token_ids})
    for (int32_t id : ids)
      if (in_vocab(id, vocab)) logits[id] = kNegInf;
}

void apply_logit_bias(float* logits, int64_t vocab, const std::map<int32_t, float>& bias) {
  for (const auto& [id, b] : bias)
    if (in_vocab(id, vocab)) logits[id] += b;
}

void apply_penalties(float* logits, int64_t vocab, std::span<const int32_t> prompt, std::span<const int32_t> output,
                     double presence, double frequency, double repetition, ProcessorScratch& scratch) {
  scratch.ensure_vocab(vocab);
  // float32 arithmetic in the form of vLLM's torch code (logits *= where(logits > 0,
  // 1 / penalty, penalty); logits -= freq * count; logits -= presence * mask).
  if (repetition != 1.0) {
    const float rep = static_cast<float>(repetition);
    const float inv = 1.0f / rep;
    auto penalise = [&](std::span<const int32_t> ids) {
      for (int32_t id : ids) {
        if (!in_vocab(id, vocab) || scratch.seen[static_cast<size_t>(id)]) continue;
        scratch.seen[static_cast<size_t>(id)] = 1;
        float& l = logits[id];
        l = l > 0.0f ? l * inv : l * rep;
      }
    };
    penalise(prompt);
    penalise(output);
    for (auto ids : {prompt, output})
      for (int32_t id : ids)
        if (in_vocab(id, vocab)) scratch.seen[static_cast<size_t>(id)] = 0;
  }
  if (frequency != 0.0 || presence != 0.0) {
    const float freq = static_cast<float>(frequency);
    const float pres = static_cast<float>(presence);
    for (int32_t id : output)
      if (in_vocab(id, vocab)) ++scratch.counts[static_cast<size_t>(id)];
    for (int32_t id : output) {
      if (!in_vocab(id, vocab)) continue;
      int32_t& count = scratch.counts[static_cast<size_t>(id)];
      if (count == 0) continue;  // already applied (and reset) at its first occurrence
      logits[id] -= freq * static_cast<float>(count);
      logits[id] -= pres;
      count = 0;
    }
  }
}

void apply_token_bitmask(float* logits, int64_t vocab, const uint32_t* bitmask) {
  // Three kinds of word: all allowed (skipped), none allowed (a plain fill the compiler
  // vectorises: most words of a structural position), and mixed (bit by bit).
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int64_t full_words = vocab / 32;
  for (int64_t w = 0; w < full_words; ++w) {
    const uint32_t word = bitmask[w];
    float* l = logits + w * 32;
    if (word == 0xFFFFFFFFu) continue;
    if (word == 0) {
      for (int i = 0; i < 32; ++i) l[i] = neg_inf;
      continue;
    }
    for (int i = 0; i < 32; ++i) l[i] = ((word >> i) & 1u) ? l[i] : neg_inf;
  }
  for (int64_t i = full_words * 32; i < vocab; ++i)
    if (!((bitmask[i >> 5] >> (i & 31)) & 1u)) logits[i] = neg_inf;
}

int32_t first_allowed_token(const uint32_t* bitmask, int64_t vocab) {
  for (int64_t w = 0; w * 32 < vocab; ++w)
    if (bitmask[w]) {
      const int64_t id = w * 32 + __builtin_ctz(bitmask[w]);
      return id < vocab ? static_cast<int32_t>(id) : 0;
    }
  return 0;
}

void apply_logits_processors(float* logits, int64_t vocab, const SamplingRow& row, ProcessorScratch& scratch) {
  const SamplingParams& p = *row.params;
  if (p.allowed_token_ids) apply_allowed_token_ids(logits, vocab, *p.allowed_token_ids, scratch);
  if (!p.bad_words_token_ids.empty()) apply_bad_words(logits, vocab, p.bad_words_token_ids, row.output_token_ids);
  if (p.min_tokens > 0)
    apply_min_tokens(logits, vocab, p.min_tokens, row.output_token_ids, p.stop_token_ids, p.all_stop_token_ids,
                     row.eos_token_ids);
  if (!p.logit_bias.empty()) apply_logit_bias(logits, vocab, p.logit_bias);
  if (p.repetition_penalty != 1.0 || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0)
    apply_penalties(logits, vocab, row.prompt_token_ids, row.output_token_ids, p.presence_penalty,
                    p.frequency_penalty, p.repetition_penalty, scratch);
}

}  // namespace vllm
