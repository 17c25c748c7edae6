#include "vllm/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "vllm/core/error.h"
#include "vllm/sampling/logits_processors.h"
#include "vllm/sampling/selection.h"
#include "vllm/sampling/vec_math.h"

namespace vllm {

namespace {

using selection::ScoredToken;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Below this many logits in a batch, waking the pool costs more than it saves.
constexpr int64_t kMinParallelElements = 1 << 16;
// Inverse-CDF blocks: the cumulative walk jumps over whole blocks by their sums.
constexpr int64_t kDrawBlock = 256;
// Up to this many tokens left by min_p are handled as a candidate list, not a whole row.
constexpr int64_t kSparseCandidates = 4096;
// Gathering sparse survivors skips all-zero blocks of this many weights.
constexpr int64_t kGatherBlock = 64;

// One inverse-CDF draw over weights w[0, n): the first index whose running sum exceeds
// u * total. Block sums (vectorised) are summed first; only the block holding the draw is
// walked element by element.
int32_t draw_inverse_cdf(const float* w, int64_t n, double u, std::vector<double>& block_sums) {
  const int64_t blocks = (n + kDrawBlock - 1) / kDrawBlock;
  block_sums.resize(static_cast<size_t>(blocks));
  const double total = vecmath::block_sums(w, n, kDrawBlock, block_sums.data());
  if (!(total > 0.0)) return -1;
  const double target = u * total;
  double acc = 0.0;
  for (int64_t b = 0; b < blocks; ++b) {
    const double block = block_sums[static_cast<size_t>(b)];
    if (acc + block <= target) {
      acc += block;
      continue;
    }
    const int64_t begin = b * kDrawBlock, end = std::min(n, begin + kDrawBlock);
    for (int64_t i = begin; i < end; ++i) {
      acc += static_cast<double>(w[i]);
      if (acc > target && w[i] > 0.0f) return static_cast<int32_t>(i);
    }
    // Walking the block summed a hair less than its vectorised sum: carry on with the next.
  }
  // Rounding put the draw past the end: the last token with any weight.
  for (int64_t i = n - 1; i >= 0; --i)
    if (w[i] > 0.0f) return static_cast<int32_t>(i);
  return -1;
}

// The same over candidate tokens, in their array order, counting those `keep` accepts.
template <typename Keep>
int32_t draw_candidates(std::span<const ScoredToken> c, double u, Keep keep) {
  double total = 0.0;
  for (const auto& t : c)
    if (keep(t)) total += static_cast<double>(t.value);
  if (!(total > 0.0)) return -1;
  const double target = u * total;
  double acc = 0.0;
  int32_t last = -1;
  for (const auto& t : c) {
    if (!keep(t)) continue;
    acc += static_cast<double>(t.value);
    last = t.id;
    if (acc > target) return last;
  }
  return last;
}

}  // namespace

struct Sampler::Workspace {
  ProcessorScratch processors;
  std::vector<float> raw;      // the row before processing, for raw logprobs
  std::vector<float> weights;  // unnormalised probabilities over the vocabulary
  std::vector<ScoredToken> candidates;
  std::vector<ScoredToken> heap;
  selection::TopKScratch top_k;
  std::vector<double> block_sums;
  std::vector<double> histogram;  // top_p_cut_dense
};

SamplingDraw sampling_draw(const SamplingRow& row, uint64_t engine_seed) {
  SamplingDraw d;
  d.index = static_cast<uint64_t>(row.draw_index);
  if (row.params->seed) {
    d.key = static_cast<uint64_t>(*row.params->seed);
  } else {
    d.key = engine_seed;
    d.stream = row.sequence_id | (uint64_t{1} << 63);
  }
  return d;
}

Sampler::Sampler(uint64_t seed, ThreadPool* pool) : engine_seed_(seed), pool_(pool ? pool : &ThreadPool::global()) {
  for (int i = 0; i < pool_->num_threads(); ++i) workspaces_.push_back(std::make_unique<Workspace>());
}

Sampler::~Sampler() = default;

std::vector<SampleResult> Sampler::sample(const Tensor& logits, std::span<const SamplingRow> rows) {
  if (!logits.defined() || logits.device() != Device::kCPU || logits.dtype() != DType::F32 || logits.dim() != 2)
    throw Error("Sampler::sample needs a 2-D float32 host tensor, got " + shape_str(logits.shape()),
                ErrorKind::kInternal);
  return sample(logits.data<float>(), logits.size(0), logits.size(1), rows);
}

std::vector<SampleResult> Sampler::sample(float* logits, int64_t num_rows, int64_t vocab,
                                          std::span<const SamplingRow> rows) {
  if (static_cast<int64_t>(rows.size()) != num_rows)
    throw Error("Sampler::sample: " + std::to_string(rows.size()) + " rows described for " +
                    std::to_string(num_rows) + " logits rows",
                ErrorKind::kInternal);
  if (num_rows > 0 && vocab <= 0) throw Error("Sampler::sample: empty vocabulary", ErrorKind::kInternal);
  for (const auto& row : rows)
    if (!row.params) throw Error("Sampler::sample: a row has no sampling params", ErrorKind::kInternal);

  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SampleResult> results(static_cast<size_t>(num_rows));
  auto run = [&](int thread, int64_t begin, int64_t end) {
    Workspace& ws = *workspaces_[static_cast<size_t>(thread)];
    for (int64_t r = begin; r < end; ++r) {
      const SamplingRow& row = rows[static_cast<size_t>(r)];
      // Greedy rows take no draw (as vLLM's).
      double u = 0.0;
      if (!row.params->is_greedy()) {
        const SamplingDraw d = sampling_draw(row, engine_seed_);
        u = philox_uniform(d.key, d.stream, d.index);
      }
      results[static_cast<size_t>(r)] = sample_row(logits + r * vocab, vocab, row, u, ws);
    }
  };
  if (num_rows > 1 && num_rows * vocab >= kMinParallelElements) {
    pool_->parallel_for(num_rows, run);
  } else {
    run(0, 0, num_rows);
  }
  return results;
}

SampleResult Sampler::sample_row(float* l, int64_t vocab, const SamplingRow& row, double u, Workspace& ws) {
  const SamplingParams& p = *row.params;
  SampleResult result;
  const bool want_logprobs = p.logprobs.has_value();
  if (row.token_bitmask) apply_token_bitmask(l, vocab, row.token_bitmask);
  if (want_logprobs) ws.raw.assign(l, l + vocab);  // vLLM v1 reports logprobs of the raw logits

  apply_logits_processors(l, vocab, row, ws.processors);

  int32_t token = -1;
  if (!p.is_greedy()) {
    const int64_t top_k = (p.top_k > 0 && p.top_k < vocab) ? p.top_k : 0;
    auto& cand = ws.candidates;
    // top-k first gathers its candidates (every logit >= the k-th largest, as vLLM keeps
    // ties): temperature is a positive scale, so the k-th largest is the same before it, and
    // the scan yields the maximum too.
    const float max_logit = top_k > 0 ? selection::top_k_candidates(l, vocab, top_k, cand, ws.top_k)
                                      : vecmath::row_max(l, vocab);
    if (max_logit > kNegInf) {
      // Weights are probabilities relative to the most likely token, e^((l - max) / T): the
      // top token weighs 1, so min_p is simply weight >= min_p (vLLM: prob >= min_p * max prob).
      const float inv_temp = static_cast<float>(1.0 / p.temperature);
      const float min_p = static_cast<float>(p.min_p);
      const bool top_p = p.top_p < 1.0;
      // Candidate tokens (id, weight) when few survive, else the weights of the whole row.
      bool sparse = top_k > 0;
      if (top_k > 0) {
        size_t kept = 0;
        for (const auto& t : cand) {
          const float w = vecmath::exp_f((t.value - max_logit) * inv_temp);
          if (w > 0.0f && w >= min_p) cand[kept++] = {w, t.id};
        }
        cand.resize(kept);
      } else {
        ws.weights.resize(static_cast<size_t>(vocab));
        float* w = ws.weights.data();
        double total = vecmath::exp_shifted(l, vocab, max_logit, inv_temp, w);
        if (min_p > 0.0f) {
          int64_t survivors = 0;
          for (int64_t i = 0; i < vocab; ++i) {
            const bool keep = w[i] >= min_p;
            w[i] = keep ? w[i] : 0.0f;
            survivors += keep;
          }
          // min_p usually leaves a handful of tokens: go on with those as candidates.
          if (survivors <= kSparseCandidates) {
            cand.clear();
            for (int64_t b = 0; b < vocab; b += kGatherBlock) {
              const int64_t e = std::min(vocab, b + kGatherBlock);
              if (!(vecmath::row_max(w + b, e - b) > 0.0f)) continue;  // all zero
              for (int64_t i = b; i < e; ++i)
                if (w[i] > 0.0f) cand.push_back({w[i], static_cast<int32_t>(i)});
            }
            sparse = true;
          } else {
            total = vecmath::sum(w, vocab);
          }
        }
        if (!sparse) {
          if (top_p) {
            const selection::TopPCut cut =
                selection::top_p_cut_dense(w, vocab, p.top_p * total, ws.histogram, ws.heap);
            for (int64_t i = 0; i < vocab; ++i) w[i] = cut.keeps(w[i], static_cast<int32_t>(i)) ? w[i] : 0.0f;
          }
          token = draw_inverse_cdf(w, vocab, u, ws.block_sums);
        }
      }
      if (sparse) {
        if (top_p && !cand.empty()) {
          double total = 0.0;
          for (const auto& t : cand) total += static_cast<double>(t.value);
          const selection::TopPCut cut = selection::top_p_cut(cand, p.top_p * total);
          token = draw_candidates(cand, u, [&](const ScoredToken& t) { return cut.keeps(t.value, t.id); });
        } else {
          token = draw_candidates(cand, u, [](const ScoredToken&) { return true; });
        }
      }
    }
  }
  // Greedy rows, and rows where every token was masked or weighed nothing: argmax (token 0
  // if the whole row is -inf; vLLM would return garbage from NaN probabilities there).
  if (token < 0) token = static_cast<int32_t>(vecmath::argmax_first(l, vocab));
  // A constraint outranks what the processors masked on top of it (min_tokens holding back the
  // EOS that a complete grammar allows, say): never emit a token the grammar forbids.
  if (row.token_bitmask && !token_allowed(row.token_bitmask, token)) token = first_allowed_token(row.token_bitmask, vocab);
  result.token_id = token;

  if (want_logprobs) {
    LogprobsOfToken lp = gather_logprobs(ws.raw.data(), vocab, token, *p.logprobs, ws.weights);
    result.has_logprobs = true;
    result.logprob = lp.logprob;
    result.rank = lp.rank;
    result.top_logprobs = std::move(lp.top);
  }
  return result;
}

std::vector<SampleResult> compute_prompt_logprobs(const float* logits, int64_t num_positions, int64_t vocab,
                                                  std::span<const int32_t> next_token_ids, int num_logprobs,
                                                  ThreadPool* pool) {
  if (static_cast<int64_t>(next_token_ids.size()) != num_positions)
    throw Error("compute_prompt_logprobs: " + std::to_string(next_token_ids.size()) + " next tokens for " +
                    std::to_string(num_positions) + " positions",
                ErrorKind::kInternal);
  for (int32_t id : next_token_ids)
    if (id < 0 || id >= vocab)
      throw Error("compute_prompt_logprobs: token id " + std::to_string(id) + " outside the vocabulary of " +
                      std::to_string(vocab),
                  ErrorKind::kInternal);
  std::vector<SampleResult> results(static_cast<size_t>(num_positions));
  auto run = [&](int, int64_t begin, int64_t end) {
    std::vector<float> scratch;
    for (int64_t t = begin; t < end; ++t) {
      const int32_t token = next_token_ids[static_cast<size_t>(t)];
      LogprobsOfToken lp = gather_logprobs(logits + t * vocab, vocab, token, num_logprobs, scratch);
      SampleResult& r = results[static_cast<size_t>(t)];
      r.token_id = token;
      r.has_logprobs = true;
      r.logprob = lp.logprob;
      r.rank = lp.rank;
      r.top_logprobs = std::move(lp.top);
    }
  };
  ThreadPool& p = pool ? *pool : ThreadPool::global();
  if (num_positions > 1 && num_positions * vocab >= kMinParallelElements) {
    p.parallel_for(num_positions, run);
  } else {
    run(0, 0, num_positions);
  }
  return results;
}

}  // namespace vllm
