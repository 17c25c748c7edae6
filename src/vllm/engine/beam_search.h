// Beam search in the engine, with vLLM's semantics (LLM.beam_search): every live beam is a
// request of the engine core. Each step, every beam proposes its 2 * beam_width most likely next
// tokens; a candidate ending in EOS joins the completed beams, and the beam_width best of the
// others, by length-penalised cumulative log-probability, live on. A beam chosen more than once
// forks (the copy shares its KV blocks by reference; the partly filled last block is copied only
// when the copies write into it), and a beam not chosen is aborted, which frees its references.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vllm/engine/engine_core.h"
#include "vllm/sampling/sampling_params.h"  // BeamSearchParams

namespace vllm {

struct BeamSequence {
  std::vector<int32_t> tokens;  // the prompt, then the generated tokens
  // One per generated token: the distribution its beam chose from, as the engine reported it
  // (the sampled token, then the 2 * beam_width best).
  std::vector<TokenLogprobs> logprobs;
  double cum_logprob = 0;
  std::optional<FinishReason> finish_reason;  // stop (EOS) or length
  std::string text;                           // decode(tokens), filled by LLMEngine when it has a tokenizer
};

struct BeamSearchResult {
  std::vector<BeamSequence> sequences;  // best first, at most beam_width
};

// vLLM's (and transformers') beam score: cum_logprob / length ** length_penalty, where length
// counts the prompt and the generated tokens but not a final EOS.
double beam_search_score(int64_t length, int32_t last_token, double cum_logprob, std::optional<int32_t> eos,
                         double length_penalty);

// Beam search for every prompt at once on an engine core that runs nothing else. `eos` is the
// tokenizer's end-of-sequence token. Every sequence it added has ended when it returns (or throws).
std::vector<BeamSearchResult> run_beam_search(EngineCore& core, const std::vector<std::vector<int32_t>>& prompts,
                                              const BeamSearchParams& params, std::optional<int32_t> eos);

}  // namespace vllm
