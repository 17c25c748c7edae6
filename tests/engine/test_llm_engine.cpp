// The text layer over the engine core: tokenized prompts, detokenized and streamed text, stop
// strings, n > 1, per-request seeds, aborts.
#include <gtest/gtest.h>

#include <map>

#include "golden.h"
#include "vllm/core/error.h"
#include "vllm/engine/llm_engine.h"

using namespace vllm;

namespace {

EngineConfig config_for(const std::string& model) {
  EngineConfig c;
  c.model = test::materialize_model(model);
  c.dtype = "float32";
  c.num_kv_blocks = 512;
  return c;
}

// Runs requests to completion; returns the final output of each request id, and (for DELTA
// requests) the concatenation of every streamed piece of each sequence.
struct RunResult {
  std::map<std::string, RequestOutput> final;
  std::map<std::string, std::map<int, std::string>> streamed;
};
RunResult run(LLMEngine& engine) {
  RunResult r;
  while (engine.has_unfinished()) {
    for (auto& out : engine.step()) {
      for (const auto& c : out.outputs) r.streamed[out.request_id][c.index] += c.text;
      if (out.finished) r.final[out.request_id] = out;
    }
  }
  return r;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

TEST(LLMEngine, TextPromptMatchesGoldenIds) {
  LLMEngine engine(config_for("tiny-phi"));
  auto golden = test::load_golden("tiny-phi");
  const auto& g = golden["generation"][0];
  engine.add_request("a", PromptInput::from_text(g["prompt"].get<std::string>()), greedy(32));
  auto r = run(engine);
  const auto& out = r.final.at("a");
  EXPECT_EQ(out.prompt_token_ids, g["prompt_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(out.outputs[0].token_ids, g["greedy_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(out.outputs[0].text, engine.tokenizer()->decode(out.outputs[0].token_ids, true));
  EXPECT_EQ(*out.outputs[0].finish_reason, FinishReason::kLength);
}

TEST(LLMEngine, StreamedDeltasConcatenateToTheFullText) {
  LLMEngine engine(config_for("tiny-llama2"));
  SamplingParams p = greedy(40);
  p.output_kind = RequestOutputKind::kDelta;
  engine.add_request("d", PromptInput::from_text("The quick brown fox"), p);
  SamplingParams q = greedy(40);
  engine.add_request("c", PromptInput::from_text("The quick brown fox"), q);
  auto r = run(engine);
  EXPECT_EQ(r.streamed["d"][0], r.final.at("c").outputs[0].text);
  EXPECT_FALSE(r.final.at("c").outputs[0].text.empty());
}

TEST(LLMEngine, StopStringCutsTextAndFinishes) {
  LLMEngine engine(config_for("tiny-phi"));
  engine.add_request("full", PromptInput::from_text("Hello, my name is"), greedy(32));
  auto full = run(engine).final.at("full").outputs[0].text;
  ASSERT_GT(full.size(), 20u);
  // A stop string taken from the middle of the greedy text, spanning token boundaries.
  std::string stop = full.substr(10, 6);
  for (bool include : {false, true}) {
    SamplingParams p = greedy(32);
    p.stop = {stop};
    p.include_stop_str_in_output = include;
    p.output_kind = RequestOutputKind::kDelta;
    engine.add_request("s", PromptInput::from_text("Hello, my name is"), p);
    auto r = run(engine);
    const auto& c = r.final.at("s").outputs[0];
    size_t at = full.find(stop);
    EXPECT_EQ(r.streamed["s"][0], full.substr(0, include ? at + stop.size() : at)) << "include " << include;
    EXPECT_EQ(*c.finish_reason, FinishReason::kStop);
    EXPECT_EQ(std::get<std::string>(c.stop_reason), stop);
  }
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
}

TEST(LLMEngine, NSequencesWithSeedsAreReproducible) {
  LLMEngine engine(config_for("tiny-phi"));
  SamplingParams p;
  p.n = 3;
  p.temperature = 0.9;
  p.seed = 42;
  p.max_tokens = 12;
  p.ignore_eos = true;
  engine.add_request("n1", PromptInput::from_text("San Francisco is a"), p);
  auto a = run(engine).final.at("n1");
  ASSERT_EQ(a.outputs.size(), 3u);
  engine.add_request("n2", PromptInput::from_text("San Francisco is a"), p);
  auto b = run(engine).final.at("n2");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a.outputs[i].token_ids, b.outputs[i].token_ids);
  EXPECT_NE(a.outputs[0].token_ids, a.outputs[1].token_ids);
}

TEST(LLMEngine, SeededRequestIsTheSameAloneAndInABatchOf64) {
  SamplingParams seeded;
  seeded.temperature = 1.0;
  seeded.top_p = 0.9;
  seeded.seed = 1234;
  seeded.max_tokens = 16;
  seeded.ignore_eos = true;
  std::vector<int32_t> alone;
  {
    LLMEngine engine(config_for("tiny-llama3"));
    engine.add_request("x", PromptInput::from_text("Once upon a time"), seeded);
    alone = run(engine).final.at("x").outputs[0].token_ids;
  }
  LLMEngine engine(config_for("tiny-llama3"));
  for (int i = 0; i < 63; ++i) {
    SamplingParams p;
    p.temperature = i % 3 == 0 ? 0.0 : 0.7;
    p.top_k = i % 5 == 0 ? 20 : 0;
    if (i % 4 == 0) p.seed = i;
    p.max_tokens = 4 + i % 20;
    p.ignore_eos = true;
    // std::string(...).append: gcc 12's -Wrestrict misfires on `"literal" + std::to_string(i)` here.
    engine.add_request(std::string("o").append(std::to_string(i)),
                       PromptInput::from_text(std::string("Request number ").append(std::to_string(i))), p);
    if (i == 30) engine.add_request("x", PromptInput::from_text("Once upon a time"), seeded);
  }
  EXPECT_EQ(run(engine).final.at("x").outputs[0].token_ids, alone);
}

TEST(LLMEngine, AbortFreesBlocksAndReportsAbort) {
  LLMEngine engine(config_for("tiny-phi"));
  engine.add_request("a", PromptInput::from_text("Hello, my name is"), greedy(100));
  engine.add_request("b", PromptInput::from_text("The capital of France is"), greedy(5));
  engine.step();
  engine.step();
  auto out = engine.abort_request("a");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out->outputs[0].finish_reason, FinishReason::kAbort);
  auto r = run(engine);
  EXPECT_EQ(r.final.count("a"), 0u);
  EXPECT_EQ(r.final.at("b").outputs[0].token_ids.size(), 5u);
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
}

// The step timing benchmarks read (structured_throughput's per-phase table): one count per step,
// phases that add up to no more than the whole, and nothing counted while it is off.
TEST(LLMEngine, StepTimingCountsEveryStepAndItsPhasesFitInIt) {
  LLMEngine engine(config_for("tiny-phi"));
  engine.core().set_step_timing(true);
  engine.add_request("a", PromptInput::from_text("Hello, my name is"), greedy(6));
  engine.add_request("b", PromptInput::from_text("The capital of France is"), greedy(3));
  int steps = 0;
  while (engine.has_unfinished()) {
    engine.step();
    ++steps;
  }
  const EngineCore::StepTimes t = engine.core().step_times();
  EXPECT_EQ(t.steps, steps);
  EXPECT_GT(t.forward, 0);
  EXPECT_GT(t.total, 0);
  for (double phase : {t.schedule, t.inputs, t.forward, t.masks_wait, t.device_wait, t.sample}) {
    EXPECT_GE(phase, 0);
  }
  EXPECT_LE(t.schedule + t.inputs + t.forward + t.masks_wait + t.device_wait + t.sample, t.total * 1.0001);
  engine.core().set_step_timing(false);
  EXPECT_EQ(engine.core().step_times().steps, 0);
  engine.add_request("c", PromptInput::from_text("Hi"), greedy(2));
  while (engine.has_unfinished()) engine.step();
  EXPECT_EQ(engine.core().step_times().steps, 0);
}

TEST(LLMEngine, BadRequestsAreRejectedUpFront) {
  LLMEngine engine(config_for("tiny-phi"));
  EXPECT_THROW(engine.add_request("e", PromptInput::from_text(""), greedy(4)), Error);
  EXPECT_THROW(engine.add_request("v", PromptInput::from_ids({1, 2, 999999}), greedy(4)), Error);
  std::vector<int32_t> long_prompt(5000, 1);
  EXPECT_THROW(engine.add_request("l", PromptInput::from_ids(long_prompt), greedy(4)), Error);
  SamplingParams bad = greedy(4);
  bad.temperature = -1;
  EXPECT_THROW(engine.add_request("t", PromptInput::from_text("hi"), bad), Error);
  EXPECT_FALSE(engine.has_unfinished());
}

TEST(LLMEngine, RequestsTheWholeKVCacheCannotHoldAreRefusedOrEndByLength) {
  EngineConfig c = config_for("tiny-phi");
  c.block_size = 16;
  c.num_kv_blocks = 4;  // 64 tokens in all
  LLMEngine engine(c);
  // A prompt the pool cannot hold is refused up front (a 400 on the server)...
  EXPECT_THROW(engine.add_request("big", PromptInput::from_ids(std::vector<int32_t>(80, 5)), greedy(4)), Error);
  // ...and a sequence that outgrows the pool ends by length with what it generated, instead of
  // being preempted and rescheduled forever; the others finish as usual.
  engine.add_request("grow", PromptInput::from_ids(std::vector<int32_t>(50, 5)), greedy(100));
  engine.add_request("small", PromptInput::from_ids({1, 2, 3}), greedy(4));
  auto r = run(engine);
  const auto& grow = r.final.at("grow").outputs[0];
  EXPECT_EQ(*grow.finish_reason, FinishReason::kLength);
  EXPECT_GE(grow.token_ids.size(), 10u);
  EXPECT_LE(grow.token_ids.size(), 15u);  // 64 slots hold the prompt and 14 outputs, the 15th was sampled
  EXPECT_EQ(r.final.at("small").outputs[0].token_ids.size(), 4u);
  EXPECT_EQ(engine.core().kv_cache().usage(), 0.0);
  EXPECT_FALSE(engine.has_unfinished());
}

TEST(LLMEngine, MinTokensHoldsBackEos) {
  LLMEngine engine(config_for("tiny-llama2"));
  // With EOS banned by min_tokens, exactly min_tokens..max_tokens tokens come out.
  SamplingParams p;
  p.temperature = 0;
  p.min_tokens = 8;
  p.max_tokens = 8;
  engine.add_request("m", PromptInput::from_text("Hello"), p);
  EXPECT_EQ(run(engine).final.at("m").outputs[0].token_ids.size(), 8u);
}

}  // namespace

// Backpressure (the server pauses a request whose client does not read its stream): a paused
// request is not scheduled while the others run on; resumed, it finishes with exactly the tokens
// it would have produced unpaused.
TEST(LLMEngine, OutputPausedRequestsWaitAndResumeUnchanged) {
  EngineConfig c = config_for("tiny-phi");
  LLMEngine reference(c);
  reference.add_request("a", PromptInput::from_text("Hello, my name is"), greedy(24));
  const auto expected = run(reference).final.at("a").outputs[0].token_ids;

  LLMEngine engine(c);
  engine.add_request("a", PromptInput::from_text("Hello, my name is"), greedy(24));
  engine.add_request("b", PromptInput::from_text("The quick brown fox"), greedy(8));
  engine.step();  // both prefill and sample a first token
  engine.set_output_paused("a", true);
  EXPECT_TRUE(engine.has_runnable());
  std::map<std::string, RequestOutput> final;
  while (engine.has_runnable())
    for (auto& out : engine.step()) {
      EXPECT_NE(out.request_id, "a");  // nothing for the paused request
      if (out.finished) final[out.request_id] = out;
    }
  ASSERT_TRUE(final.count("b"));
  EXPECT_TRUE(engine.has_unfinished());  // "a" waits, holding its place
  EXPECT_EQ(engine.core().scheduler().stats().num_output_paused, 1);
  engine.set_output_paused("a", false);
  auto r = run(engine);
  EXPECT_EQ(r.final.at("a").outputs[0].token_ids, expected);
  EXPECT_EQ(engine.core().scheduler().stats().num_output_paused, 0);
  // Unknown ids are ignored.
  engine.set_output_paused("nope", true);
}

TEST(LLMEngine, OutputPausedRequestsGiveTheirSlotsToWaitingOnes) {
  EngineConfig c = config_for("tiny-phi");
  c.max_num_seqs = 2;
  LLMEngine reference(c);
  SamplingParams pn = greedy(16);
  pn.n = 2;
  pn.temperature = 0.8;
  pn.seed = 7;
  reference.add_request("a", PromptInput::from_text("Hello, my name is"), pn);
  const auto expected = run(reference).final.at("a").outputs;

  LLMEngine engine(c);
  engine.add_request("a", PromptInput::from_text("Hello, my name is"), pn);  // two sequences: every slot
  engine.step();
  engine.set_output_paused("a", true);
  engine.add_request("b", PromptInput::from_text("The quick brown fox"), greedy(4));
  std::map<std::string, RequestOutput> final;
  for (int i = 0; i < 100 && !final.count("b"); ++i)
    for (auto& out : engine.step())
      if (out.finished) final[out.request_id] = out;
  ASSERT_TRUE(final.count("b")) << "a paused request kept the waiting one out";
  EXPECT_GE(engine.core().scheduler().stats().num_preemptions_total, 1);
  engine.set_output_paused("a", false);
  auto r = run(engine);
  ASSERT_EQ(r.final.at("a").outputs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(r.final.at("a").outputs[i].token_ids, expected[i].token_ids);
}
