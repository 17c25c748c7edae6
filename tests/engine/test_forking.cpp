// Sequences forked from one another: n > 1 sampling prefills the prompt once and forks at the
// first sampled token, with outputs identical to independent requests; engine beam search equals
// a plain reference that re-scores every beam from scratch each step (no KV sharing). Both at
// block sizes 1, 16 and 32, with prefix caching on and off, and with preemption forced; the KV
// cache is empty at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "golden.h"
#include "vllm/core/error.h"
#include "vllm/engine/beam_search.h"
#include "vllm/engine/llm_engine.h"

using namespace vllm;

namespace {

EngineConfig config_for(const std::string& model, int block_size, bool caching, int64_t pool_tokens) {
  EngineConfig c;
  c.model = test::materialize_model(model);
  c.dtype = "float32";
  c.block_size = block_size;
  c.num_kv_blocks = std::max<int64_t>(1, pool_tokens / block_size);
  c.enable_prefix_caching = caching;
  c.max_num_batched_tokens = 64;
  c.max_num_seqs = 16;
  return c;
}

std::vector<int32_t> random_prompt(int n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab)));
  return t;
}

// Every request to completion; the token lists of each request's sequences, by index.
std::map<std::string, std::vector<std::vector<int32_t>>> run_all(LLMEngine& engine) {
  std::map<std::string, std::vector<std::vector<int32_t>>> out;
  while (engine.has_unfinished())
    for (auto& o : engine.step()) {
      if (!o.finished) continue;
      auto& lists = out[o.request_id];
      lists.resize(o.outputs.size());
      for (const auto& c : o.outputs) lists[static_cast<size_t>(c.index)] = c.token_ids;
    }
  return out;
}

SamplingParams sampling(int n, double temperature, std::optional<int64_t> seed, int max_tokens) {
  SamplingParams p;
  p.n = n;
  p.temperature = temperature;
  if (n > 1 && temperature == 0) {
    // vLLM rejects greedy n > 1; top-k 1 at temperature 1 is the same choice.
    p.temperature = 1.0;
    p.top_k = 1;
  }
  p.seed = seed;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

struct ForkCase {
  int block_size;
  bool caching;
  int64_t pool_tokens;
};

class ParallelSampling : public ::testing::TestWithParam<ForkCase> {};

TEST_P(ParallelSampling, BranchesEqualIndependentRequests) {
  const ForkCase fc = GetParam();
  SCOPED_TRACE("block size " + std::to_string(fc.block_size) + (fc.caching ? ", caching on" : ", caching off") +
               ", pool of " + std::to_string(fc.pool_tokens) + " tokens");
  LLMEngine engine(config_for("tiny-llama3", fc.block_size, fc.caching, fc.pool_tokens));
  const int64_t vocab = engine.model_config().vocab_size;
  // Lengths off block boundaries (so the branches share a partly filled block) and on them.
  const std::vector<std::vector<int32_t>> prompts{random_prompt(37, vocab, 1), random_prompt(32, vocab, 2),
                                                  random_prompt(21, vocab, 3)};
  const int max_tokens = 20;

  // References: each alone, one request per sequence (n = 1), with the derived seeds.
  std::map<std::string, std::vector<std::vector<int32_t>>> expected;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string id = std::to_string(i);
    engine.add_request("greedy" + id, PromptInput::from_ids(prompts[i]), sampling(1, 0, std::nullopt, max_tokens));
    auto g = run_all(engine).at("greedy" + id)[0];
    expected["greedy" + id] = {g, g, g};
    for (int k = 0; k < 3; ++k) {
      engine.add_request("seeded" + id, PromptInput::from_ids(prompts[i]), sampling(1, 0.9, static_cast<int64_t>(500 + i) + k, max_tokens));
      expected["seeded" + id].push_back(run_all(engine).at("seeded" + id)[0]);
    }
  }
  const int64_t copies_before = engine.core().kv_cache().num_block_copies_total();
  const int64_t preemptions_before = engine.core().scheduler().stats().num_preemptions_total;

  // All at once, n = 3 each: greedy branches equal n = 1; seeded branches equal the requests
  // with seeds seed, seed + 1, seed + 2.
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string id = std::to_string(i);
    engine.add_request("greedy" + id, PromptInput::from_ids(prompts[i]), sampling(3, 0, std::nullopt, max_tokens));
    engine.add_request("seeded" + id, PromptInput::from_ids(prompts[i]), sampling(3, 0.9, static_cast<int64_t>(500 + i), max_tokens));
  }
  EXPECT_EQ(run_all(engine), expected);
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0) << "blocks still held after every request finished";
  EXPECT_EQ(engine.core().kv_cache().check_invariants(), "");
  const int64_t copies = engine.core().kv_cache().num_block_copies_total() - copies_before;
  const int64_t preemptions = engine.core().scheduler().stats().num_preemptions_total - preemptions_before;
  if (fc.block_size > 1 && preemptions == 0) {
    // 2 requests of 3 branches per prompt off a block boundary: 2 copies each, at most (the
    // last writer owns the block).
    EXPECT_GT(copies, 0) << "the branches never shared a partly filled block";
    EXPECT_LE(copies, 2 * 2 * 2);
  }
  if (fc.block_size == 1) {
    EXPECT_EQ(copies, 0) << "with one token per block every shared block is full";
  }
  if (fc.pool_tokens < 1000) {
    EXPECT_GT(preemptions, 0) << "the small pool forced no preemption";
  }
}

INSTANTIATE_TEST_SUITE_P(Fork, ParallelSampling,
                         ::testing::Values(ForkCase{1, true, 8192}, ForkCase{16, true, 8192}, ForkCase{32, true, 8192},
                                           ForkCase{16, false, 8192}, ForkCase{32, false, 8192},
                                           ForkCase{16, true, 256}, ForkCase{16, false, 256}, ForkCase{1, false, 256}));

TEST(ParallelSampling, PrefillsThePromptOnceAndCopiesTheSharedBlockPerDivergingBranch) {
  LLMEngine engine(config_for("tiny-llama3", 16, true, 8192));
  const auto prompt = random_prompt(40, engine.model_config().vocab_size, 9);  // 2 full blocks + 8 tokens
  engine.add_request("r", PromptInput::from_ids(prompt), sampling(4, 0.7, 3, 2));
  const auto out = run_all(engine);
  ASSERT_EQ(out.at("r").size(), 4u);
  // One admission looked the prompt up once (n separate requests would look it up n times).
  EXPECT_EQ(engine.core().kv_cache().total_stats().queries, 40);
  // Each branch writes its first token into the shared third block: all but the last copy it.
  EXPECT_EQ(engine.core().kv_cache().num_block_copies_total(), 3);
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
}

TEST(ParallelSampling, AbortingBeforeTheForkFreesEverything) {
  LLMEngine engine(config_for("tiny-llama3", 16, true, 8192));
  const auto prompt = random_prompt(50, engine.model_config().vocab_size, 4);
  engine.add_request("r", PromptInput::from_ids(prompt), sampling(5, 0.7, 3, 8));
  auto out = engine.abort_request("r");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->outputs.size(), 5u);
  for (const auto& c : out->outputs) EXPECT_EQ(c.finish_reason, FinishReason::kAbort);
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
  // And after the fork, mid-generation.
  engine.add_request("s", PromptInput::from_ids(prompt), sampling(5, 0.7, 3, 8));
  for (int i = 0; i < 4; ++i) engine.step();
  EXPECT_GT(engine.core().kv_cache().usage(), 0.0);
  ASSERT_TRUE(engine.abort_request("s").has_value());
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
  EXPECT_EQ(engine.core().kv_cache().check_invariants(), "");
}

// --- beam search -------------------------------------------------------------------------------

// The distribution of the next token after `tokens`, computed from scratch by a fresh request
// (max_tokens 1): what the old pure-Python beam search asked the engine for at every step.
TokenLogprobs next_token_distribution(EngineCore& core, const std::vector<int32_t>& tokens, int num_logprobs,
                                      double temperature) {
  EngineCoreRequest r;
  r.prompt_token_ids = tokens;
  r.params.temperature = temperature;
  r.params.max_tokens = 1;
  r.params.logprobs = num_logprobs;
  r.params.detokenize = false;
  r.params.finalize();
  const uint64_t id = core.add_request(std::move(r));
  TokenLogprobs got;
  while (core.has_unfinished())
    for (const auto& o : core.step())
      if (o.seq_id == id && !o.new_logprobs.empty()) got = o.new_logprobs[0];
  return got;
}

// vLLM's beam search written plainly: every step re-scores every live beam from its whole token
// list; candidates in the order of vLLM's logprobs dict (the sampled token, then the best);
// stable sorts by the length-penalised score.
std::vector<BeamSequence> reference_beam_search(EngineCore& core, const std::vector<int32_t>& prompt,
                                                const BeamSearchParams& p, std::optional<int32_t> eos) {
  auto score = [&](const BeamSequence& s) {
    size_t len = s.tokens.size();
    if (eos && s.tokens.back() == *eos) --len;
    return s.cum_logprob / std::pow(static_cast<double>(len), p.length_penalty);
  };
  std::vector<BeamSequence> live{{prompt, {}, 0.0, std::nullopt, ""}}, completed;
  for (int step = 0; step < p.max_tokens && !live.empty(); ++step) {
    std::vector<BeamSequence> candidates;
    for (const BeamSequence& beam : live) {
      const TokenLogprobs dist = next_token_distribution(core, beam.tokens, 2 * p.beam_width, p.temperature);
      std::vector<std::pair<int32_t, float>> order{{dist.token, dist.logprob}};
      for (const auto& t : dist.top)
        if (std::none_of(order.begin(), order.end(), [&](const auto& o) { return o.first == t.token_id; }))
          order.emplace_back(t.token_id, t.logprob);
      for (const auto& [token, lp] : order) {
        BeamSequence b = beam;
        b.tokens.push_back(token);
        b.logprobs.push_back(dist);
        b.cum_logprob += lp;
        if (eos && token == *eos && !p.ignore_eos) {
          b.finish_reason = FinishReason::kStop;
          completed.push_back(b);
        } else if (static_cast<int64_t>(b.tokens.size()) >= core.max_model_len()) {
          b.finish_reason = FinishReason::kLength;
          completed.push_back(b);
        } else {
          candidates.push_back(b);
        }
      }
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](const BeamSequence& a, const BeamSequence& b) { return score(a) > score(b); });
    if (candidates.size() > static_cast<size_t>(p.beam_width)) candidates.resize(static_cast<size_t>(p.beam_width));
    live = candidates;
  }
  for (BeamSequence& b : live) {
    if (!b.finish_reason) b.finish_reason = FinishReason::kLength;
    completed.push_back(b);
  }
  std::stable_sort(completed.begin(), completed.end(),
                   [&](const BeamSequence& a, const BeamSequence& b) { return score(a) > score(b); });
  if (completed.size() > static_cast<size_t>(p.beam_width)) completed.resize(static_cast<size_t>(p.beam_width));
  return completed;
}

void expect_same_beams(const std::vector<BeamSequence>& got, const std::vector<BeamSequence>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("beam " + std::to_string(i));
    EXPECT_EQ(got[i].tokens, want[i].tokens);
    EXPECT_NEAR(got[i].cum_logprob, want[i].cum_logprob, 1e-4);
    EXPECT_EQ(got[i].finish_reason, want[i].finish_reason);
    ASSERT_EQ(got[i].logprobs.size(), want[i].logprobs.size());
    for (size_t k = 0; k < got[i].logprobs.size(); ++k) {
      ASSERT_EQ(got[i].logprobs[k].top.size(), want[i].logprobs[k].top.size());
      for (size_t j = 0; j < got[i].logprobs[k].top.size(); ++j)
        EXPECT_EQ(got[i].logprobs[k].top[j].token_id, want[i].logprobs[k].top[j].token_id);
    }
  }
}

struct BeamCase {
  int block_size;
  bool caching;
  int64_t pool_tokens;
};

class EngineBeamSearch : public ::testing::TestWithParam<BeamCase> {};

TEST_P(EngineBeamSearch, EqualsThePlainReference) {
  const BeamCase bc = GetParam();
  SCOPED_TRACE("block size " + std::to_string(bc.block_size) + (bc.caching ? ", caching on" : ", caching off") +
               ", pool of " + std::to_string(bc.pool_tokens) + " tokens");
  EngineConfig config = config_for("tiny-phi", bc.block_size, bc.caching, bc.pool_tokens);
  EngineCore core(config);
  EngineConfig ref_config = config_for("tiny-phi", 16, false, 1 << 14);
  EngineCore reference(ref_config);
  const int64_t vocab = core.model_config().vocab_size;
  const std::vector<std::vector<int32_t>> prompts{random_prompt(13, vocab, 21), random_prompt(18, vocab, 22)};

  // An EOS that beams really meet: the second-best first token of the first prompt.
  const TokenLogprobs first = next_token_distribution(reference, prompts[0], 2, 0);
  const int32_t eos = first.top.at(1).token_id;

  int64_t copies = 0;
  for (int width : {1, 2, 4})
    for (bool ignore_eos : {true, false})
      for (double length_penalty : {1.0, 0.6}) {
        SCOPED_TRACE("width " + std::to_string(width) + (ignore_eos ? ", ignore_eos" : ", eos") + ", length_penalty " +
                     std::to_string(length_penalty));
        BeamSearchParams p;
        p.beam_width = width;
        p.max_tokens = 7;
        p.ignore_eos = ignore_eos;
        p.length_penalty = length_penalty;
        const int64_t copies_before = core.kv_cache().num_block_copies_total();
        std::vector<BeamSearchResult> got = run_beam_search(core, prompts, p, eos);
        copies += core.kv_cache().num_block_copies_total() - copies_before;
        ASSERT_EQ(got.size(), prompts.size());
        for (size_t i = 0; i < prompts.size(); ++i) {
          SCOPED_TRACE("prompt " + std::to_string(i));
          expect_same_beams(got[i].sequences, reference_beam_search(reference, prompts[i], p, eos));
        }
        EXPECT_FALSE(core.has_unfinished());
        EXPECT_EQ(core.kv_cache().usage(), 0.0) << "beams still hold blocks";
        EXPECT_EQ(core.kv_cache().check_invariants(), "");
        if (!ignore_eos && width > 1) {
          bool stopped = false;
          for (const auto& r : got)
            for (const auto& s : r.sequences) stopped |= s.finish_reason == FinishReason::kStop;
          EXPECT_TRUE(stopped) << "no beam met the EOS";
        }
      }
  if (bc.block_size > 1) {
    EXPECT_GT(copies, 0) << "beams never diverged inside a shared block";
  }
  if (bc.pool_tokens < 1000) {
    EXPECT_GT(core.scheduler().stats().num_preemptions_total, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Fork, EngineBeamSearch,
                         ::testing::Values(BeamCase{1, true, 8192}, BeamCase{16, true, 8192}, BeamCase{32, false, 8192},
                                           BeamCase{16, false, 8192}, BeamCase{4, true, 48}, BeamCase{4, false, 40}));

TEST(EngineBeamSearch, LLMEngineApiDecodesAndValidates) {
  EngineConfig c = config_for("tiny-phi", 16, true, 8192);
  LLMEngine engine(c);
  BeamSearchParams p;
  p.beam_width = 3;
  p.max_tokens = 5;
  auto out = engine.beam_search({PromptInput::from_text("Hello, my name is"), PromptInput::from_text("The sky")}, p);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out) {
    ASSERT_EQ(r.sequences.size(), 3u);
    for (const auto& s : r.sequences) EXPECT_EQ(s.text, engine.tokenizer()->decode(s.tokens));
  }
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
  p.beam_width = 0;
  EXPECT_THROW(engine.beam_search({PromptInput::from_text("x")}, p), Error);
  p.beam_width = 11;  // 22 log-probs: above max_logprobs
  EXPECT_THROW(engine.beam_search({PromptInput::from_text("x")}, p), Error);
  p.beam_width = 2;
  EXPECT_THROW(engine.beam_search({PromptInput::from_ids({})}, p), Error);
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
  // Not while other requests run.
  engine.add_request("busy", PromptInput::from_text("Hello"), SamplingParams{});
  EXPECT_THROW(engine.beam_search({PromptInput::from_text("x")}, p), Error);
}

}  // namespace
