// Functional tests of the sampler: greedy, the logits processors against plain references of
// vLLM's definitions, logprobs against float64, and seeded determinism inside mixed batches.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "sampling_test_util.h"
#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"
#include "vllm/sampling/logits_processors.h"

using vllm::SampleResult;
using vllm::Sampler;
using vllm::SamplingParams;
using vllm::SamplingRow;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 4.0f) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0;
  p.finalize();
  return p;
}

SampleResult sample_one(Sampler& s, std::vector<float>& logits, const SamplingRow& row) {
  return s.sample(logits.data(), 1, static_cast<int64_t>(logits.size()), std::span<const SamplingRow>(&row, 1))[0];
}

// vLLM's penalties in float64: repetition over prompt + output (divide positives, multiply
// the rest), then frequency * count and presence over the output only.
std::vector<double> reference_penalties(const std::vector<float>& logits, const std::vector<int32_t>& prompt,
                                        const std::vector<int32_t>& output, double rep, double freq, double pres) {
  std::vector<double> l(logits.begin(), logits.end());
  std::set<int32_t> seen(prompt.begin(), prompt.end());
  seen.insert(output.begin(), output.end());
  for (int32_t t : seen) l[static_cast<size_t>(t)] = l[static_cast<size_t>(t)] > 0 ? l[static_cast<size_t>(t)] / rep
                                                                                    : l[static_cast<size_t>(t)] * rep;
  std::map<int32_t, int> count;
  for (int32_t t : output) count[t]++;
  for (auto [t, c] : count) l[static_cast<size_t>(t)] -= freq * c + pres;
  return l;
}

// log_softmax in float64.
std::vector<double> reference_logprobs(const std::vector<float>& logits) {
  double m = -1e300;
  for (float v : logits) m = std::max(m, static_cast<double>(v));
  double s = 0.0;
  for (float v : logits) s += std::exp(static_cast<double>(v) - m);
  std::vector<double> out;
  for (float v : logits) out.push_back(static_cast<double>(v) - m - std::log(s));
  return out;
}

void expect_logprobs_match(const std::vector<float>& raw, const SampleResult& r, int n) {
  auto ref = reference_logprobs(raw);
  ASSERT_TRUE(r.has_logprobs);
  EXPECT_NEAR(r.logprob, ref[static_cast<size_t>(r.token_id)], 1e-5);
  int64_t rank = 0;
  for (double v : ref) rank += v >= ref[static_cast<size_t>(r.token_id)];
  EXPECT_EQ(r.rank, rank);
  std::vector<size_t> order(raw.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ref[a] > ref[b]; });
  size_t want = n < 0 ? raw.size() : std::min(raw.size(), static_cast<size_t>(n));
  ASSERT_GE(r.top_logprobs.size(), want);
  for (size_t i = 0; i < want; ++i) {
    EXPECT_EQ(r.top_logprobs[i].token_id, static_cast<int32_t>(order[i])) << i;
    EXPECT_NEAR(r.top_logprobs[i].logprob, ref[order[i]], 1e-5) << i;
  }
  bool in_top = false;
  for (size_t i = 0; i < want; ++i) in_top |= r.top_logprobs[i].token_id == r.token_id;
  if (in_top) {
    EXPECT_EQ(r.top_logprobs.size(), want);
  } else {
    ASSERT_EQ(r.top_logprobs.size(), want + 1);
    EXPECT_EQ(r.top_logprobs.back().token_id, r.token_id);
    EXPECT_NEAR(r.top_logprobs.back().logprob, ref[static_cast<size_t>(r.token_id)], 1e-5);
  }
}

}  // namespace

TEST(Sampler, GreedyTakesTheLowestIdAmongTies) {
  Sampler s(0);
  SamplingParams p = greedy();
  SamplingRow row{&p};
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  EXPECT_EQ(sample_one(s, logits, row).token_id, 1);
  std::vector<float> big = random_logits(151936, 3);
  big[100000] = 50.0f;
  big[7] = 50.0f;
  EXPECT_EQ(sample_one(s, big, row).token_id, 7);
  EXPECT_FALSE(sample_one(s, logits, row).has_logprobs);
}

TEST(Sampler, PenaltiesMatchVllmDefinitions) {
  const std::vector<int32_t> prompt = {3, 5, 5, 9, 40, 63};
  const std::vector<int32_t> output = {5, 7, 7, 7, 12, 40, 12, 1};
  for (double rep : {1.3, 0.8, 1.0}) {
    for (auto [freq, pres] : std::vector<std::pair<double, double>>{{0.4, 0.25}, {-0.5, 1.5}, {0.0, 0.0}}) {
      auto logits = random_logits(64, 7);
      logits[5] = 0.0f;  // zero is multiplied (stays 0), as torch.where(logits > 0, ...) does
      SamplingParams p = greedy();
      p.repetition_penalty = rep;
      p.frequency_penalty = freq;
      p.presence_penalty = pres;
      SamplingRow row{&p, prompt, output};
      auto want = reference_penalties(logits, prompt, output, rep, freq, pres);
      auto processed = logits;
      vllm::ProcessorScratch scratch;
      vllm::apply_logits_processors(processed.data(), 64, row, scratch);
      for (size_t i = 0; i < 64; ++i) EXPECT_NEAR(processed[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << i;
      // The sampler leaves the processed logits in place and takes their argmax.
      Sampler s(0);
      auto in_place = logits;
      int32_t token = sample_one(s, in_place, row).token_id;
      EXPECT_EQ(in_place, processed);
      EXPECT_EQ(token, std::max_element(want.begin(), want.end()) - want.begin());
      // The scratch arrays are clean again for the next row.
      for (auto c : scratch.counts) ASSERT_EQ(c, 0);
      for (auto f : scratch.seen) ASSERT_EQ(f, 0);
    }
  }
}

TEST(Sampler, LogitBiasAllowedIdsBadWordsMinTokens) {
  vllm::ProcessorScratch scratch;
  {
    std::vector<float> l = {1, 2, 3, 4};
    vllm::apply_logit_bias(l.data(), 4, {{0, 10.0f}, {3, -1.5f}, {9, 5.0f}, {-1, 5.0f}});
    EXPECT_EQ(l, (std::vector<float>{11, 2, 3, 2.5f}));
  }
  {
    std::vector<float> l = {1, 2, 3, 4, 5};
    std::vector<int32_t> allowed = {3, 1, 1, 77};
    vllm::apply_allowed_token_ids(l.data(), 5, allowed, scratch);
    EXPECT_EQ(l, (std::vector<float>{kNegInf, 2, kNegInf, 4, kNegInf}));
  }
  {
    std::vector<std::vector<int32_t>> bad = {{5}, {3, 4}, {1, 2, 7}, {2, 6}};
    std::vector<float> l(10, 0.0f);
    std::vector<int32_t> out = {9, 1, 2};
    vllm::apply_bad_words(l.data(), 10, bad, out);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(l[static_cast<size_t>(i)], (i == 5 || i == 7 || i == 6) ? kNegInf : 0.0f) << i;
    std::vector<float> l2(10, 0.0f);
    std::vector<int32_t> out2 = {3};
    vllm::apply_bad_words(l2.data(), 10, bad, out2);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(l2[static_cast<size_t>(i)], (i == 5 || i == 4) ? kNegInf : 0.0f) << i;
    std::vector<float> l3(10, 0.0f);
    vllm::apply_bad_words(l3.data(), 10, bad, {});  // only one-token words can match
    for (int i = 0; i < 10; ++i) EXPECT_EQ(l3[static_cast<size_t>(i)], i == 5 ? kNegInf : 0.0f) << i;
  }
  {
    SamplingParams p;
    p.min_tokens = 3;
    p.stop_token_ids = {4};
    p.finalize();
    p.update_from_generation_config({6}, 2);
    std::vector<int32_t> eos = {8};
    std::vector<int32_t> out = {0, 1};
    std::vector<float> l(10, 1.0f);
    SamplingRow row{&p, {}, out, eos};
    vllm::apply_logits_processors(l.data(), 10, row, scratch);
    for (int i = 0; i < 10; ++i)
      EXPECT_EQ(l[static_cast<size_t>(i)], (i == 2 || i == 4 || i == 6 || i == 8) ? kNegInf : 1.0f) << i;
    std::vector<int32_t> out3 = {0, 1, 2};
    std::vector<float> l2(10, 1.0f);
    SamplingRow done{&p, {}, out3, eos};
    vllm::apply_logits_processors(l2.data(), 10, done, scratch);
    EXPECT_EQ(l2, std::vector<float>(10, 1.0f));
  }
}

TEST(Sampler, ProcessorsSteerRandomSampling) {
  Sampler s(5);
  SamplingParams p;
  p.allowed_token_ids = std::vector<int32_t>{2, 5, 11};
  p.logit_bias = {{11, -100.0f}};
  p.finalize();
  std::vector<int32_t> hist = {};
  std::set<int32_t> seen;
  for (int i = 0; i < 2000; ++i) {
    auto l = random_logits(16, 100 + static_cast<uint64_t>(i), 1.0f);
    SamplingRow row{&p, {}, hist, {}, 0, i};
    seen.insert(sample_one(s, l, row).token_id);
  }
  EXPECT_EQ(seen, (std::set<int32_t>{2, 5}));
}

TEST(Sampler, LogprobsAreRawAndMatchFloat64) {
  Sampler s(9);
  const std::vector<int32_t> output = {1, 2, 3, 3};
  for (int n : {0, 1, 5, 20}) {
    for (double temperature : {0.0, 0.8}) {
      SamplingParams p;
      p.temperature = temperature;
      p.top_k = temperature > 0 ? 50 : 0;
      p.repetition_penalty = 1.5;  // processing must not change the reported logprobs
      p.logprobs = n;
      p.finalize();
      for (int trial = 0; trial < 5; ++trial) {
        auto raw = random_logits(1000, 40 + static_cast<uint64_t>(trial), 4.0f);  // magnitudes up to ~15
        auto l = raw;
        SamplingRow row{&p, {}, output};
        SampleResult r = sample_one(s, l, row);
        expect_logprobs_match(raw, r, n);
        if (n == 0) {
          EXPECT_EQ(r.top_logprobs.size(), 1u);  // just the sampled token, as vLLM
        }
      }
    }
  }
}

TEST(Sampler, SampledTokenOutsideTopNIsAppended) {
  Sampler s(0);
  auto raw = random_logits(500, 77);
  int32_t low = static_cast<int32_t>(std::min_element(raw.begin(), raw.end()) - raw.begin());
  SamplingParams p = greedy();
  p.logprobs = 3;
  p.logit_bias = {{low, 100.0f}};
  auto l = raw;
  SamplingRow row{&p};
  SampleResult r = sample_one(s, l, row);
  EXPECT_EQ(r.token_id, low);
  EXPECT_EQ(r.rank, 500);  // the lowest raw logit
  ASSERT_EQ(r.top_logprobs.size(), 4u);
  EXPECT_EQ(r.top_logprobs.back().token_id, low);
  expect_logprobs_match(raw, r, 3);
}

TEST(Sampler, LogprobTiesListLowerIdsFirstAndShareRank) {
  Sampler s(0);
  std::vector<float> raw = {1.0f, 4.0f, 2.0f, 4.0f, 4.0f, 0.5f};
  SamplingParams p = greedy();
  p.logprobs = 2;
  auto l = raw;
  SamplingRow row{&p};
  SampleResult r = sample_one(s, l, row);
  EXPECT_EQ(r.token_id, 1);
  EXPECT_EQ(r.rank, 3);  // vLLM's rank counts logprobs >= the token's
  ASSERT_EQ(r.top_logprobs.size(), 2u);
  EXPECT_EQ(r.top_logprobs[0].token_id, 1);
  EXPECT_EQ(r.top_logprobs[1].token_id, 3);

  p.logprobs = -1;  // the whole vocabulary, best first
  l = raw;
  r = sample_one(s, l, row);
  std::vector<int32_t> ids;
  for (auto& t : r.top_logprobs) ids.push_back(t.token_id);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 4, 2, 0, 5}));
}

TEST(Sampler, PromptLogprobs) {
  const int64_t positions = 40, vocab = 3000;
  std::vector<float> logits;
  std::vector<int32_t> next;
  for (int64_t t = 0; t < positions; ++t) {
    auto row = random_logits(vocab, 500 + static_cast<uint64_t>(t));
    logits.insert(logits.end(), row.begin(), row.end());
    next.push_back(static_cast<int32_t>((t * 131) % vocab));
  }
  vllm::ThreadPool pool(3);
  for (int k : {0, 4}) {
    auto res = vllm::compute_prompt_logprobs(logits.data(), positions, vocab, next, k, &pool);
    ASSERT_EQ(res.size(), static_cast<size_t>(positions));
    for (int64_t t = 0; t < positions; ++t) {
      std::vector<float> row(logits.begin() + t * vocab, logits.begin() + (t + 1) * vocab);
      EXPECT_EQ(res[static_cast<size_t>(t)].token_id, next[static_cast<size_t>(t)]);
      expect_logprobs_match(row, res[static_cast<size_t>(t)], k);
    }
  }
  EXPECT_THROW(vllm::compute_prompt_logprobs(logits.data(), positions, vocab, std::span<const int32_t>(next).first(3), 1),
               vllm::Error);
}

// A seeded row gives the same tokens alone and at any position in a batch of 64 mixed rows
// (seeded, unseeded, greedy, various filters and penalties), on any number of threads.
TEST(Sampler, SeededRowIgnoresTheRestOfTheBatch) {
  const int64_t vocab = 5000, steps = 12, batch = 64;
  SamplingParams target;
  target.temperature = 0.9;
  target.top_p = 0.95;
  target.top_k = 200;
  target.repetition_penalty = 1.1;
  target.frequency_penalty = 0.2;
  target.logprobs = 2;
  target.seed = 1234;
  target.finalize();

  std::vector<SamplingParams> others(batch);
  for (int64_t r = 0; r < batch; ++r) {
    SamplingParams& o = others[static_cast<size_t>(r)];
    o.temperature = r % 4 == 0 ? 0.0 : 0.5 + 0.1 * static_cast<double>(r % 7);
    if (r % 3 == 0) o.top_k = 10 + static_cast<int>(r);
    if (r % 5 == 0) o.top_p = 0.8;
    if (r % 6 == 1) o.min_p = 0.1;
    if (r % 2 == 1) o.seed = 99 + r;
    o.presence_penalty = 0.1;
    o.finalize();
  }
  auto step_logits = [&](int64_t step, int64_t who) { return random_logits(vocab, 1000003 * static_cast<uint64_t>(step) + static_cast<uint64_t>(who), 3.0f); };

  // Alone.
  std::vector<int32_t> alone;
  {
    Sampler s(0);
    std::vector<int32_t> out;
    for (int64_t step = 0; step < steps; ++step) {
      auto l = step_logits(step, -1);
      SamplingRow row{&target, {}, out, {}, 0, step};
      SampleResult r = sample_one(s, l, row);
      out.push_back(r.token_id);
    }
    alone = out;
  }
  for (int threads : {1, 2, 5}) {
    for (int64_t position : {0, 17, 63}) {
      vllm::ThreadPool pool(threads);
      Sampler s(static_cast<uint64_t>(threads) * 31 + static_cast<uint64_t>(position), &pool);  // engine seed differs too
      std::vector<std::vector<int32_t>> outs(batch);
      std::vector<int32_t> got;
      for (int64_t step = 0; step < steps; ++step) {
        std::vector<float> logits(static_cast<size_t>(batch * vocab));
        std::vector<SamplingRow> rows(batch);
        for (int64_t r = 0; r < batch; ++r) {
          auto l = step_logits(step, r == position ? -1 : r);
          std::copy(l.begin(), l.end(), logits.begin() + r * vocab);
          if (r == position) {
            // Another sequence id: a seeded request's draws follow its seed alone.
            rows[static_cast<size_t>(r)] = SamplingRow{&target, {}, got, {}, 1000 + static_cast<uint64_t>(r), step};
          } else {
            rows[static_cast<size_t>(r)] =
                SamplingRow{&others[static_cast<size_t>(r)], {}, outs[static_cast<size_t>(r)], {}, static_cast<uint64_t>(r), step};
          }
        }
        auto res = s.sample(logits.data(), batch, vocab, rows);
        for (int64_t r = 0; r < batch; ++r) {
          if (r == position) {
            got.push_back(res[static_cast<size_t>(r)].token_id);
          } else {
            outs[static_cast<size_t>(r)].push_back(res[static_cast<size_t>(r)].token_id);
          }
        }
      }
      EXPECT_EQ(got, alone) << "threads " << threads << " position " << position;
    }
  }
}

TEST(Sampler, EngineStreamDoesNotDependOnThreads) {
  const int64_t vocab = 4000, batch = 32;
  SamplingParams p;
  p.temperature = 1.0;
  p.top_p = 0.9;
  p.finalize();
  std::vector<std::vector<int32_t>> runs;
  for (int threads : {1, 4}) {
    vllm::ThreadPool pool(threads);
    Sampler s(2024, &pool);
    std::vector<int32_t> tokens;
    for (int step = 0; step < 5; ++step) {
      std::vector<float> logits;
      for (int64_t r = 0; r < batch; ++r) {
        auto l = random_logits(vocab, static_cast<uint64_t>(step * 100 + r), 2.0f);
        logits.insert(logits.end(), l.begin(), l.end());
      }
      std::vector<SamplingRow> rows(batch, SamplingRow{&p});
      for (int64_t r = 0; r < batch; ++r) {
        rows[static_cast<size_t>(r)].sequence_id = static_cast<uint64_t>(r);
        rows[static_cast<size_t>(r)].draw_index = step;
      }
      for (auto& r : s.sample(logits.data(), batch, vocab, rows)) tokens.push_back(r.token_id);
    }
    runs.push_back(tokens);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(Sampler, EdgeCasesAndErrors) {
  Sampler s(0);
  SamplingParams p;
  p.finalize();
  std::vector<float> masked(100, kNegInf);
  SamplingRow row{&p};
  EXPECT_EQ(sample_one(s, masked, row).token_id, 0);  // nothing to draw from

  std::vector<float> l(20, 0.0f);
  std::vector<SamplingRow> two(2, row);
  EXPECT_THROW(s.sample(l.data(), 1, 20, two), vllm::Error);
  SamplingRow no_params;
  EXPECT_THROW(s.sample(l.data(), 1, 20, std::span<const SamplingRow>(&no_params, 1)), vllm::Error);
  EXPECT_TRUE(s.sample(nullptr, 0, 20, {}).empty());

  // The tensor overload.
  vllm::Tensor t = vllm::Tensor::from_floats({0, 5, 1, 9, 2, 3}, {2, 3});
  SamplingParams g = greedy();
  std::vector<SamplingRow> rows(2, SamplingRow{&g});
  auto res = s.sample(t, rows);
  EXPECT_EQ(res[0].token_id, 1);
  EXPECT_EQ(res[1].token_id, 0);
  vllm::Tensor bad = vllm::Tensor::from_floats({0, 1, 2}, {3});
  EXPECT_THROW(s.sample(bad, std::span<const SamplingRow>(rows).first(1)), vllm::Error);
}

namespace {

// Structured outputs' token bitmask (vLLM's packed layout): masked tokens get -inf before
// anything else, so they are never drawn and their raw logprob is -inf (as vLLM v1, which
// applies the grammar bitmask to the logits it hands its sampler); the allowed ones keep their
// logits bit for bit, in every kind of word (all set, none set, mixed, and the partial last one).
TEST(SamplerBitmask, MaskedTokensAreNeverSampledAndKeptOnesAreUntouched) {
  const int64_t vocab = 32 * 7 + 5;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<uint32_t> mask(static_cast<size_t>((vocab + 31) / 32));
    mask[0] = 0xFFFFFFFFu;  // a full word
    mask[1] = 0;            // an empty word
    for (size_t w = 2; w < mask.size(); ++w) mask[w] = rng();
    const std::vector<float> original = random_logits(static_cast<size_t>(vocab), seed);
    std::vector<float> l = original;
    vllm::apply_token_bitmask(l.data(), vocab, mask.data());
    for (int64_t i = 0; i < vocab; ++i) {
      const bool allowed = (mask[static_cast<size_t>(i / 32)] >> (i % 32)) & 1u;
      if (allowed) {
        EXPECT_EQ(l[static_cast<size_t>(i)], original[static_cast<size_t>(i)]) << i;
      } else {
        EXPECT_EQ(l[static_cast<size_t>(i)], kNegInf) << i;
      }
    }

    Sampler s(seed);
    SamplingParams p;
    p.temperature = 1.5;
    p.logprobs = 5;
    p.finalize();
    SamplingRow row;
    row.params = &p;
    row.token_bitmask = mask.data();
    for (int draw = 0; draw < 20; ++draw) {
      row.draw_index = draw;
      std::vector<float> logits = original;
      SampleResult r = sample_one(s, logits, row);
      EXPECT_TRUE(vllm::token_allowed(mask.data(), r.token_id)) << r.token_id;
      for (const auto& t : r.top_logprobs) {
        if (!vllm::token_allowed(mask.data(), t.token_id)) {
          EXPECT_EQ(t.logprob, kNegInf);
        }
      }
    }
  }
}

// When the processors mask every token the constraint allows (min_tokens holding back the stop
// token a complete grammar allows), the sampler still returns an allowed token.
TEST(SamplerBitmask, ConstraintWinsWhenEverythingElseIsMasked) {
  const int64_t vocab = 100;
  std::vector<uint32_t> mask(4, 0);
  mask[77 / 32] |= 1u << (77 % 32);  // only token 77 (the "EOS") is allowed
  SamplingParams p;
  p.temperature = 0.0;
  p.min_tokens = 5;
  p.stop_token_ids = {77};
  p.finalize();
  p.all_stop_token_ids = {77};
  Sampler s(1);
  SamplingRow row;
  row.params = &p;
  row.token_bitmask = mask.data();
  std::vector<float> logits = random_logits(static_cast<size_t>(vocab), 3);
  EXPECT_EQ(sample_one(s, logits, row).token_id, 77);
}

}  // namespace
