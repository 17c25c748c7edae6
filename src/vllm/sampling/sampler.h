// The batched sampler: one call turns a [rows, vocab] float32 logits matrix into one token per
// row, following vLLM v1's Sampler step by step:
//   1. raw logprobs (log_softmax of the untouched logits) for rows that asked for logprobs;
//   2. allowed_token_ids, bad words, min_tokens, logit_bias, repetition/frequency/presence
//      penalties (logits_processors.h);
//   3. temperature < 1e-5: greedy argmax (ties to the lowest id); otherwise
//   4. temperature, then min_p, then top-k (ties at the k-th value kept), then top-p over what
//      is left, then one draw from the renormalised distribution.
// min_p before top-k/top-p is vLLM's order (min_p is a built-in logits processor that runs
// right after temperature); it only matters for top-p, whose mass is measured after min_p.
//
// Cost: nothing sorts a vocabulary row. top-k gathers its candidates in one pass with a
// bounded heap (radix selection for k > 128) and the rest of the row is never touched again;
// top-p without top-k finds its cut with a mass histogram over the weights' bit patterns;
// the few candidates left are handled with a weighted quickselect. e^x over a whole row is
// only computed where needed (no top-k, or logprobs), with AVX2/AVX-512 clones where the CPU
// has them. Rows run in parallel on the thread pool.
//
// Randomness: each non-greedy row takes exactly one uniform draw per step, by inverse CDF: the
// Philox draw its SamplingDraw names (the request's seed, or the engine's --seed with the
// sequence's id, and the sequence's output position). A row's tokens therefore depend only on
// its own logits, parameters, history and seed: never on the batch, its order or the threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "vllm/core/tensor.h"
#include "vllm/core/thread_pool.h"
#include "vllm/sampling/philox.h"
#include "vllm/sampling/logprobs.h"
#include "vllm/sampling/sampling_params.h"
#include "vllm/sampling/sampling_row.h"

namespace vllm {

struct SampleResult {
  int32_t token_id = 0;
  // The rest is filled only for rows whose params ask for logprobs (logprobs = 0 included):
  // the raw-distribution logprob and rank of token_id, and the top-N list (see LogprobsOfToken:
  // best first, ties to the lower id, token_id appended when not among them).
  bool has_logprobs = false;
  float logprob = 0.0f;
  int32_t rank = 0;
  std::vector<TokenLogprob> top_logprobs;
};

// Where a row's draw comes from: philox_uniform(key, stream, index). A seeded request draws
// under its own seed on stream 0; an unseeded one under the engine's seed, on a stream of its
// own (its sequence id with the top bit set, so it never meets a seeded stream).
struct SamplingDraw {
  uint64_t key = 0;
  uint64_t stream = 0;
  uint64_t index = 0;
};
SamplingDraw sampling_draw(const SamplingRow& row, uint64_t engine_seed);

class Sampler {
 public:
  // seed: the engine's seed (vLLM's --seed), the key of unseeded requests' draws. pool: where rows run in parallel
  // (nullptr: ThreadPool::global()).
  explicit Sampler(uint64_t seed = 0, ThreadPool* pool = nullptr);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // logits: host, row-major [num_rows, vocab]; rows: one per logits row. On return each
  // logits row holds its processed logits (after step 2, before temperature). Calls on one
  // Sampler are serialised. Throws vllm::Error on a shape mismatch or a row without params.
  std::vector<SampleResult> sample(float* logits, int64_t num_rows, int64_t vocab,
                                   std::span<const SamplingRow> rows);
  // The same on a 2-D float32 CPU tensor.
  std::vector<SampleResult> sample(const Tensor& logits, std::span<const SamplingRow> rows);

  uint64_t engine_seed() const { return engine_seed_; }

 private:
  struct Workspace;
  SampleResult sample_row(float* logits, int64_t vocab, const SamplingRow& row, double u, Workspace& ws);

  uint64_t engine_seed_;
  ThreadPool* pool_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Workspace>> workspaces_;  // one per pool thread
};

// vLLM's prompt logprobs: for each position t of a [num_positions, vocab] raw logits matrix,
// the logprob and rank of next_token_ids[t] (the prompt token that follows) and the top
// num_logprobs tokens (-1: all), as in SampleResult (has_logprobs set, token_id = that token).
std::vector<SampleResult> compute_prompt_logprobs(const float* logits, int64_t num_positions, int64_t vocab,
                                                  std::span<const int32_t> next_token_ids, int num_logprobs,
                                                  ThreadPool* pool = nullptr);

}  // namespace vllm
