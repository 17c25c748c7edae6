// Reasoning parsers (deepseek_r1, qwen3, granite): complete outputs, and the same outputs
// streamed in every split (whole, byte by byte, random pieces, every split in two), which must
// add up to exactly what extract() returns; markers split anywhere are neither leaked nor
// missed. Then a fuzz-like loop: no exception, streaming independent of the split.
#include <gtest/gtest.h>

#include <random>

#include "parser_test_util.h"
#include "vllm/core/error.h"

using namespace parsers_test;

namespace {

const std::optional<std::string> kNone;

void expect_split(std::string_view parser, std::string_view text, const std::optional<std::string>& reasoning,
                  const std::optional<std::string>& content, std::string_view prompt = {}) {
  SCOPED_TRACE(std::string(parser) + ": " + std::string(text));
  const auto got = check_reasoning_streaming(parser, text, prompt);
  EXPECT_EQ(got.first, reasoning);
  EXPECT_EQ(got.second, content);
}

}  // namespace

TEST(ReasoningParsers, NamesAndErrors) {
  const auto names = reasoning_parser_names();
  for (const char* n : {"deepseek_r1", "qwen3", "granite"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  try {
    make_reasoning_parser("nope");
    FAIL() << "no error for an unknown parser";
  } catch (const vllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("deepseek_r1"), std::string::npos);
  }
  auto r1 = make_reasoning_parser("deepseek_r1");
  EXPECT_EQ(r1->start_marker(), "<think>");
  EXPECT_EQ(r1->end_marker(), "</think>");
  auto g = make_reasoning_parser("granite");
  EXPECT_EQ(g->start_marker(), "Here is my thought process:");
  EXPECT_EQ(g->end_marker(), "Here is my response:");
}

// ----------------------------------------------------------------------------------- deepseek_r1

TEST(DeepSeekR1ReasoningParser, ThinkThenAnswer) {
  expect_split("deepseek_r1", "<think>I think.</think>Answer.", "I think.", "Answer.");
  expect_split("deepseek_r1", "I think.</think>Answer.", "I think.", "Answer.");  // <think> was in the prompt
  expect_split("deepseek_r1", "\nStep 1\nStep 2\n</think>\n\nThe answer is 4.", "\nStep 1\nStep 2\n", "\n\nThe answer is 4.");
  expect_split("deepseek_r1", "<think>x</think>", "x", kNone);
  expect_split("deepseek_r1", "</think>Answer", kNone, "Answer");
  expect_split("deepseek_r1", "", kNone, kNone);
}

TEST(DeepSeekR1ReasoningParser, WithoutEndEverythingIsReasoning) {
  expect_split("deepseek_r1", "I think and think", "I think and think", kNone);
  expect_split("deepseek_r1", "<think>cut off", "cut off", kNone);
}

TEST(DeepSeekR1ReasoningParser, MarkersOnlyCountOnce) {
  // After </think> everything is content, markers included; only the first <think> is dropped.
  expect_split("deepseek_r1", "a</think>b</think>c<think>d", "a", "b</think>c<think>d");
  expect_split("deepseek_r1", "<think>a<think>b</think>c", "a<think>b", "c");
  // Text before the model's own <think> stays reasoning.
  expect_split("deepseek_r1", "pre<think>a</think>c", "prea", "c");
}

TEST(DeepSeekR1ReasoningParser, PartialMarkersAreText) {
  expect_split("deepseek_r1", "a </thin b <think c </ d</think>e </think", "a </thin b <think c </ d", "e </think");
  expect_split("deepseek_r1", "ends with </thi", "ends with </thi", kNone);
  expect_split("deepseek_r1", "<</think>>", "<", ">");
}

TEST(DeepSeekR1ReasoningParser, Unicode) {
  expect_split("deepseek_r1", "思考中🙂…</think>答えは🗼です", "思考中🙂…", "答えは🗼です");
}

TEST(DeepSeekR1ReasoningParser, PromptThatClosedTheReasoning) {
  auto p = make_reasoning_parser("deepseek_r1");
  EXPECT_TRUE(p->starts_in_reasoning("<｜User｜>hi<｜Assistant｜><think>\n"));
  EXPECT_TRUE(p->starts_in_reasoning(""));
  EXPECT_FALSE(p->starts_in_reasoning("<｜Assistant｜></think>\n\n"));
  expect_split("deepseek_r1", "All content</think>x", kNone, "All content</think>x", "...<｜Assistant｜></think>");
  auto q = make_reasoning_parser("deepseek_r1", "</think>\n");
  EXPECT_TRUE(q->reasoning_ended());
}

TEST(DeepSeekR1ReasoningParser, StreamsAtOnceAndEnds) {
  auto p = make_reasoning_parser("deepseek_r1");
  EXPECT_FALSE(p->reasoning_ended());
  DeltaMessage m = p->feed("Let me think</");
  EXPECT_EQ(m.reasoning, "Let me think");  // "</" could begin </think>
  EXPECT_EQ(m.content, "");
  m = p->feed("thi");
  EXPECT_TRUE(m.empty());
  m = p->feed("nk>The");
  EXPECT_EQ(m.reasoning, "");
  EXPECT_EQ(m.content, "The");
  EXPECT_TRUE(p->reasoning_ended());
  m = p->feed(" answer");
  EXPECT_EQ(m.content, " answer");
  EXPECT_TRUE(p->finish().empty());
}

// ----------------------------------------------------------------------------------------- qwen3

TEST(Qwen3ReasoningParser, ThinkThenAnswer) {
  expect_split("qwen3", "<think>\nLet me see.\n</think>\n\nIt is 4.", "\nLet me see.\n", "\n\nIt is 4.");
  expect_split("qwen3", "Let me see.\n</think>\n\nIt is 4.", "Let me see.\n", "\n\nIt is 4.");
  expect_split("qwen3", "<think>\n\n</think>\n\nHi!", "\n\n", "\n\nHi!");
  expect_split("qwen3", "Cut off mid-thought", "Cut off mid-thought", kNone);
  expect_split("qwen3", "考える🙂</think>答え", "考える🙂", "答え");
}

TEST(Qwen3ReasoningParser, ThinkingDisabledInThePrompt) {
  const std::string disabled = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
  const std::string enabled = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
  auto p = make_reasoning_parser("qwen3");
  EXPECT_FALSE(p->starts_in_reasoning(disabled));
  EXPECT_TRUE(p->starts_in_reasoning(enabled));
  EXPECT_TRUE(p->starts_in_reasoning(enabled + "<think>\n"));  // Qwen3.5 opens it in the prompt
  // An earlier turn's </think> is not this turn's.
  EXPECT_TRUE(p->starts_in_reasoning("<think>a</think>b<|im_end|>\n" + enabled));
  expect_split("qwen3", "Hello! How can I help?", kNone, "Hello! How can I help?", disabled);
  expect_split("qwen3", "Hello! How can I help?", "Hello! How can I help?", kNone, enabled);
  EXPECT_TRUE(make_reasoning_parser("qwen3", disabled)->reasoning_ended());
}

TEST(Qwen3ReasoningParser, ToolCallInsideThinkingEndsIt) {
  // Qwen3.5 may start an XML tool call without closing its thinking.
  expect_split("qwen3", "I need the weather.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n",
               "I need the weather.\n", "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n");
  expect_split("qwen3", "x<tool_call><function name=\"f\">", "x", "<tool_call><function name=\"f\">");
  // A mention of <tool_call> is not one.
  expect_split("qwen3", "I could use <tool_call> here.</think>Answer", "I could use <tool_call> here.", "Answer");
  expect_split("qwen3", "<tool_call>\n</think>x", "<tool_call>\n", "x");
  expect_split("qwen3", "a<tool_call> <functional>b</think>c", "a<tool_call> <functional>b", "c");
  expect_split("qwen3", "a<tool_call>\n<functio", "a<tool_call>\n<functio", kNone);
  expect_split("qwen3", "a<tool_call><tool_call>\n<function=f>", "a<tool_call>", "<tool_call>\n<function=f>");
  // Hermes-style JSON calls inside the thinking do not end it (vLLM's lookahead wants <function).
  expect_split("qwen3", "a<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "a<tool_call>\n{\"name\": \"f\"}\n</tool_call>", kNone);
  // After </think>, <tool_call> is just content.
  expect_split("qwen3", "r</think>\n<tool_call>\n<function=f>", "r", "\n<tool_call>\n<function=f>");
}

// --------------------------------------------------------------------------------------- granite

TEST(GraniteReasoningParser, ThoughtThenResponse) {
  expect_split("granite", "Here is my thought process: think Here is my response: answer", " think ", " answer");
  expect_split("granite", "Here's my thought process:\nA\nB\n\nHere's my response:\nC", "\nA\nB\n\n", "\nC");
  expect_split("granite", "Here is my thought process:x Here's my response:y", "x ", "y");
  expect_split("granite", "Here is my thought process: 考え🙂 Here is my response: 答え🗼", " 考え🙂 ", " 答え🗼");
  expect_split("granite", "Here is my thought process: t Here is my response:", " t ", kNone);
}

TEST(GraniteReasoningParser, OnlyAtTheStart) {
  expect_split("granite", "Hello there", kNone, "Hello there");
  expect_split("granite", "Here is something else. Here is my response: x", kNone,
               "Here is something else. Here is my response: x");
  expect_split("granite", " Here is my thought process: x", kNone, " Here is my thought process: x");
  expect_split("granite", "Here is my thought", kNone, "Here is my thought");
}

TEST(GraniteReasoningParser, WithoutResponseEverythingIsReasoning) {
  expect_split("granite", "Here is my thought process: only thinking", " only thinking", kNone);
  expect_split("granite", "Here is my thought process: x Here is my resp", " x Here is my resp", kNone);
  expect_split("granite", "Here is my thought process: Here's my thought Here is my response: y",
               " Here's my thought ", " y");
}

TEST(GraniteReasoningParser, StartsInReasoning) {
  auto p = make_reasoning_parser("granite");
  EXPECT_FALSE(p->starts_in_reasoning("<|start_of_role|>user<|end_of_role|>hi<|end_of_text|>"));
  EXPECT_TRUE(p->starts_in_reasoning(
      "Write your thoughts after 'Here is my thought process:' and write your response after 'Here is my "
      "response:' for each user query.<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>"));
}

// --------------------------------------------------------------------------------- fuzz-like loop

namespace {

const char* const kAlphabet[] = {"<think>", "</think>", "<tool_call>", "<function=", "<function", "\n", " ", "<", "/",
                                 ">", "think", "a", "Here is my thought process:", "Here's my response:", "Here",
                                 "Here's", " my ", "response", ":", "é", "🙂", "\xE2", "\x82", "\xFF"};

std::string random_text(std::mt19937& rng) {
  std::uniform_int_distribution<size_t> len(0, 30), pick(0, std::size(kAlphabet) - 1);
  std::string s;
  for (size_t n = len(rng); n > 0; --n) s += kAlphabet[pick(rng)];
  return s;
}

}  // namespace

TEST(ReasoningParsersFuzz, RandomTextNeverThrowsAndStreamsAsExtracted) {
  std::mt19937 rng(42);
  const char* prompts[] = {"", "x</think>\n"};
  for (int i = 0; i < 300; ++i) {
    const std::string text = random_text(rng);
    for (const auto& parser : reasoning_parser_names()) {
      for (const char* prompt : prompts) {
        SCOPED_TRACE(parser + " on: " + text);
        ReasoningResult want;
        ASSERT_NO_THROW(want = make_reasoning_parser(parser, prompt)->extract(text));
        Cuts bytes;
        for (size_t k = 1; k < text.size(); ++k) bytes.push_back(k);
        for (const Cuts& cuts : {Cuts{}, bytes, random_cuts(text.size(), static_cast<uint32_t>(i))}) {
          const StreamedReasoning got = stream_reasoning(parser, prompt, text, cuts);
          EXPECT_EQ(got.reasoning, want.first.value_or(""));
          EXPECT_EQ(got.content, want.second.value_or(""));
          if (valid_utf8(text)) {
            for (const auto& e : got.emitted) EXPECT_TRUE(valid_utf8(e));
          }
        }
        if (HasFailure()) return;
      }
    }
  }
}
