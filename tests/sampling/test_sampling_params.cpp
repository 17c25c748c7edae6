#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "vllm/core/error.h"
#include "vllm/sampling/py_format.h"
#include "vllm/sampling/sampling_params.h"

using nlohmann::json;
using vllm::BeamSearchParams;
using vllm::Error;
using vllm::ErrorKind;
using vllm::RequestOutputKind;
using vllm::SamplingParams;

namespace {

// Runs fn, which must throw vllm::Error of `kind` with exactly `message`.
void expect_error(const std::function<void()>& fn, const std::string& message,
                  ErrorKind kind = ErrorKind::kInvalidArgument) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind)) << e.what();
  }
}

// A params object with one field changed, checked by validate().
void expect_invalid(const std::function<void(SamplingParams&)>& edit, const std::string& message,
                    int max_logprobs = 20, int64_t vocab = 0) {
  SamplingParams p;
  edit(p);
  expect_error([&] { p.validate(max_logprobs, vocab); }, message);
}

}  // namespace

TEST(PyFormat, FloatReprMatchesPython) {
  using vllm::pyfmt::float_repr;
  EXPECT_EQ(float_repr(1.0), "1.0");
  EXPECT_EQ(float_repr(-0.5), "-0.5");
  EXPECT_EQ(float_repr(0.1), "0.1");
  EXPECT_EQ(float_repr(2.5), "2.5");
  EXPECT_EQ(float_repr(0.0), "0.0");
  EXPECT_EQ(float_repr(-0.0), "-0.0");
  EXPECT_EQ(float_repr(1e-05), "1e-05");
  EXPECT_EQ(float_repr(0.0001), "0.0001");
  EXPECT_EQ(float_repr(0.00012), "0.00012");
  EXPECT_EQ(float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(float_repr(123456.0), "123456.0");
  EXPECT_EQ(float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(float_repr(1e16), "1e+16");
  EXPECT_EQ(float_repr(1.2345e20), "1.2345e+20");
  EXPECT_EQ(float_repr(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(float_repr(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(float_repr(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(float_repr(std::nan("")), "nan");
}

TEST(PyFormat, StrAndListRepr) {
  using namespace vllm::pyfmt;
  EXPECT_EQ(str_repr("abc"), "'abc'");
  EXPECT_EQ(str_repr("it's"), "\"it's\"");
  EXPECT_EQ(str_repr("a'b\"c"), "'a\\'b\"c'");
  EXPECT_EQ(str_repr("a\nb\\"), "'a\\nb\\\\'");
  std::vector<int32_t> ids = {1, -2, 3};
  EXPECT_EQ(int_list(ids), "[1, -2, 3]");
  std::vector<std::string> words = {"a", ""};
  EXPECT_EQ(str_list(words), "['a', '']");
}

TEST(SamplingParams, DefaultsMatchVllm) {
  SamplingParams p;
  EXPECT_EQ(p.n, 1);
  EXPECT_FALSE(p.best_of);
  EXPECT_EQ(p.presence_penalty, 0.0);
  EXPECT_EQ(p.frequency_penalty, 0.0);
  EXPECT_EQ(p.repetition_penalty, 1.0);
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_EQ(p.top_p, 1.0);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.min_p, 0.0);
  EXPECT_FALSE(p.seed);
  EXPECT_TRUE(p.stop.empty());
  EXPECT_TRUE(p.stop_token_ids.empty());
  EXPECT_FALSE(p.include_stop_str_in_output);
  EXPECT_FALSE(p.ignore_eos);
  ASSERT_TRUE(p.max_tokens);
  EXPECT_EQ(*p.max_tokens, 16);
  EXPECT_EQ(p.min_tokens, 0);
  EXPECT_FALSE(p.logprobs);
  EXPECT_FALSE(p.prompt_logprobs);
  EXPECT_TRUE(p.detokenize);
  EXPECT_TRUE(p.skip_special_tokens);
  EXPECT_TRUE(p.spaces_between_special_tokens);
  EXPECT_EQ(p.output_kind, RequestOutputKind::kCumulative);
  EXPECT_TRUE(p.logit_bias.empty());
  EXPECT_FALSE(p.allowed_token_ids);
  EXPECT_FALSE(p.truncate_prompt_tokens);
  EXPECT_NO_THROW(p.validate());
  EXPECT_EQ(p.sampling_type(), vllm::SamplingType::kRandom);
}

TEST(SamplingParams, ValidationMessages) {
  expect_invalid([](auto& p) { p.n = 0; }, "n must be at least 1, got 0.");
  expect_invalid([](auto& p) { p.best_of = 0; }, "best_of must be at least 1, got 0");
  expect_invalid([](auto& p) { p.n = 2, p.best_of = 1; },
                 "best_of must be greater than or equal to n, got n=2 and best_of=1.");
  expect_invalid([](auto& p) { p.presence_penalty = 2.5; }, "presence_penalty must be in [-2, 2], got 2.5.");
  expect_invalid([](auto& p) { p.presence_penalty = -2.01; }, "presence_penalty must be in [-2, 2], got -2.01.");
  expect_invalid([](auto& p) { p.frequency_penalty = -2.5; }, "frequency_penalty must be in [-2, 2], got -2.5.");
  expect_invalid([](auto& p) { p.repetition_penalty = 0.0; },
                 "repetition_penalty must be greater than zero, got 0.0.");
  expect_invalid([](auto& p) { p.repetition_penalty = -1.0; },
                 "repetition_penalty must be greater than zero, got -1.0.");
  expect_invalid([](auto& p) { p.repetition_penalty = std::numeric_limits<double>::infinity(); },
                 "repetition_penalty must be a finite number, got inf.");
  expect_invalid([](auto& p) { p.temperature = -0.5; }, "temperature must be non-negative, got -0.5.");
  expect_invalid([](auto& p) { p.temperature = std::nan(""); }, "temperature must be a finite number, got nan.");
  expect_invalid([](auto& p) { p.top_p = 0.0; }, "top_p must be in (0, 1], got 0.0.");
  expect_invalid([](auto& p) { p.top_p = 1.5; }, "top_p must be in (0, 1], got 1.5.");
  expect_invalid([](auto& p) { p.top_k = -2; }, "top_k must be 0 (disable), or at least 1, got -2.");
  expect_invalid([](auto& p) { p.min_p = 1.5; }, "min_p must be in [0, 1], got 1.5.");
  expect_invalid([](auto& p) { p.min_p = -0.1; }, "min_p must be in [0, 1], got -0.1.");
  expect_invalid([](auto& p) { p.max_tokens = 0; }, "max_tokens must be at least 1, got 0.");
  expect_invalid([](auto& p) { p.min_tokens = -1; }, "min_tokens must be greater than or equal to 0, got -1.");
  expect_invalid([](auto& p) { p.min_tokens = 20; }, "min_tokens must be less than or equal to max_tokens=16, got 20.");
  expect_invalid([](auto& p) { p.stream_interval = 0; }, "stream_interval must be at least 1, got 0.");
  expect_invalid([](auto& p) { p.logprobs = -2; }, "logprobs must be non-negative or -1, got -2.");
  expect_invalid([](auto& p) { p.prompt_logprobs = -3; }, "prompt_logprobs must be non-negative or -1, got -3.");
  expect_invalid([](auto& p) { p.truncate_prompt_tokens = 0; },
                 "truncate_prompt_tokens must be an integer >= 1 or -1, got 0");
  expect_invalid([](auto& p) { p.truncate_prompt_tokens = -2; },
                 "truncate_prompt_tokens must be an integer >= 1 or -1, got -2");
  expect_invalid([](auto& p) { p.stop_token_ids = {5, -1, -7}; },
                 "token_id(s) [-1, -7] in stop_token_ids contain out-of-vocab token ids.");
  expect_invalid([](auto& p) { p.stop = {"a", ""}; }, "stop cannot contain an empty string.");
  expect_invalid([](auto& p) { p.stop = {"a"}, p.detokenize = false; },
                 "stop strings are only supported when detokenize is True. Set detokenize=True to use stop.");
  expect_invalid([](auto& p) { p.bad_words = {"a", ""}; },
                 "bad_words cannot contain an empty string. Got bad_words=['a', '']");
  expect_invalid([](auto& p) { p.n = 2, p.best_of = 3, p.output_kind = RequestOutputKind::kDelta; },
                 "best_of must equal n to use output_kind=DELTA");
  expect_invalid([](auto& p) { p.temperature = 0.0, p.n = 2; }, "n must be 1 when using greedy sampling, got 2.");
  expect_invalid([](auto& p) { p.temperature = 0.0, p.best_of = 3; },
                 "n must be 1 when using greedy sampling, got 3.");
}

TEST(SamplingParams, ValidationAgainstModel) {
  expect_invalid([](auto& p) { p.logprobs = 21; }, "Requested sample logprobs of 21, which is greater than max allowed: 20");
  expect_invalid([](auto& p) { p.prompt_logprobs = 30; },
                 "Requested prompt logprobs of 30, which is greater than max allowed: 20");
  expect_invalid([](auto& p) { p.logprobs = -1; },
                 "Requested sample logprobs of 1000, which is greater than max allowed: 20", 20, 1000);
  expect_invalid([](auto& p) { p.logprobs = -1; },
                 "Requested sample logprobs of -1 (the whole vocabulary), which is greater than max allowed: 20");
  expect_invalid([](auto& p) { p.logprobs = 600; }, "Requested sample logprobs of 600, which is greater than max allowed: 500",
                 -1, 500);
  expect_invalid([](auto& p) { p.stop_token_ids = {3, 100}; },
                 "token_id(s) [100] in stop_token_ids contain out-of-vocab token ids. Vocabulary size: 100", 20, 100);
  expect_invalid([](auto& p) { p.logit_bias = {{100, 1.0f}, {2, 1.0f}}; },
                 "token_id(s) [100] in logit_bias contain out-of-vocab token ids. Vocabulary size: 100", 20, 100);
  expect_invalid([](auto& p) { p.allowed_token_ids = std::vector<int32_t>{}; }, "allowed_token_ids is not None and empty!");
  expect_invalid([](auto& p) { p.allowed_token_ids = std::vector<int32_t>{1, 100}; },
                 "allowed_token_ids contains out-of-vocab token id!", 20, 100);
  expect_invalid([](auto& p) { p.bad_words_token_ids = {{5, 100}}; },
                 "The model vocabulary size is 100, but the following tokens were specified as bad: [100]. All token "
                 "id values should be integers satisfying: 0 <= token_id <= 99.",
                 20, 100);

  SamplingParams ok;
  ok.logprobs = 20;
  ok.prompt_logprobs = 0;
  EXPECT_NO_THROW(ok.validate(20, 100));
  ok.logprobs = -1;
  EXPECT_NO_THROW(ok.validate(-1, 100));
  EXPECT_NO_THROW(ok.validate(-1, 0));
  EXPECT_NO_THROW(ok.validate(200, 100));
}

TEST(SamplingParams, FinalizeNormalisesLikePostInit) {
  SamplingParams p;
  p.seed = -1;
  p.top_k = -1;
  p.stop = {"abc", "\xE2\x82\xAC\xE2\x82\xAC"};  // "€€": 2 characters, 6 bytes
  p.stop_token_ids = {7, 3, 7, 9, 3};
  p.bad_words = {"x", "y", "x"};
  p.finalize();
  EXPECT_FALSE(p.seed);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.output_text_buffer_length, 2);  // characters, as vLLM counts them
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{7, 3, 9}));
  EXPECT_EQ(p.bad_words, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(p.all_stop_token_ids, (std::vector<int32_t>{7, 3, 9}));

  SamplingParams tiny;
  tiny.temperature = 0.001;
  tiny.finalize();
  EXPECT_EQ(tiny.temperature, 0.01);

  SamplingParams greedy;
  greedy.temperature = 0.0;
  greedy.top_p = 0.5;
  greedy.top_k = 5;
  greedy.min_p = 0.2;
  greedy.seed = 3;
  greedy.finalize();
  EXPECT_EQ(greedy.top_p, 1.0);
  EXPECT_EQ(greedy.top_k, 0);
  EXPECT_EQ(greedy.min_p, 0.0);
  EXPECT_EQ(greedy.sampling_type(), vllm::SamplingType::kGreedy);

  SamplingParams include;
  include.stop = {"abcd"};
  include.include_stop_str_in_output = true;
  include.finalize();
  EXPECT_EQ(include.output_text_buffer_length, 0);

  // Checked before the greedy reset, as vLLM does: top_p=5 is wrong even for greedy.
  SamplingParams bad;
  bad.temperature = 0.0;
  bad.top_p = 5.0;
  expect_error([&] { bad.finalize(); }, "top_p must be in (0, 1], got 5.0.");
}

TEST(SamplingParams, UpdateFromGenerationConfig) {
  SamplingParams p;
  p.stop_token_ids = {5};
  p.finalize();
  p.update_from_generation_config({2, 7, 7}, 2);
  EXPECT_EQ(p.eos_token_id, 2);
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{5, 7}));
  EXPECT_EQ(p.all_stop_token_ids, (std::vector<int32_t>{5, 2, 7}));

  SamplingParams ignore;
  ignore.ignore_eos = true;
  ignore.finalize();
  ignore.update_from_generation_config({2, 7}, 2);
  EXPECT_FALSE(ignore.eos_token_id);
  EXPECT_TRUE(ignore.stop_token_ids.empty());
  EXPECT_EQ(ignore.all_stop_token_ids, (std::vector<int32_t>{2, 7}));  // min_tokens still blocks them
}

TEST(SamplingParams, FromJsonReadsEveryField) {
  json j = {{"n", 2},
            {"best_of", 3},
            {"presence_penalty", 0.5},
            {"frequency_penalty", -0.5},
            {"repetition_penalty", 1.2},
            {"temperature", 0.7},
            {"top_p", 0.9},
            {"top_k", 50},
            {"min_p", 0.05},
            {"seed", 1234567890123LL},
            {"stop", "###"},
            {"stop_token_ids", {1, 2}},
            {"bad_words", {"foo"}},
            {"include_stop_str_in_output", true},
            {"ignore_eos", true},
            {"max_tokens", 100.0},
            {"min_tokens", 5},
            {"logprobs", true},
            {"prompt_logprobs", 3},
            {"detokenize", true},
            {"skip_special_tokens", false},
            {"spaces_between_special_tokens", false},
            {"truncate_prompt_tokens", -1},
            {"output_kind", "delta"},
            {"stream_interval", 4},
            {"logit_bias", {{"42", 150.0}, {" -1 ", -3}, {"7", -101}}},
            {"allowed_token_ids", {1, 2, 3}},
            {"structured_outputs", {{"regex", "[a-z]+"}}},
            {"extra_args", {{"k", 1}}}};
  j["output_kind"] = 0;  // best_of != n is not allowed with DELTA
  SamplingParams p = SamplingParams::from_json(j);
  EXPECT_EQ(p.n, 2);
  EXPECT_EQ(p.best_of, 3);
  EXPECT_EQ(p.presence_penalty, 0.5);
  EXPECT_EQ(p.frequency_penalty, -0.5);
  EXPECT_EQ(p.repetition_penalty, 1.2);
  EXPECT_EQ(p.temperature, 0.7);
  EXPECT_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.top_k, 50);
  EXPECT_EQ(p.min_p, 0.05);
  EXPECT_EQ(p.seed, 1234567890123LL);
  EXPECT_EQ(p.stop, std::vector<std::string>{"###"});
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(p.bad_words, std::vector<std::string>{"foo"});
  EXPECT_TRUE(p.include_stop_str_in_output);
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.max_tokens, 100);
  EXPECT_EQ(p.min_tokens, 5);
  EXPECT_EQ(p.logprobs, 1);
  EXPECT_EQ(p.prompt_logprobs, 3);
  EXPECT_FALSE(p.skip_special_tokens);
  EXPECT_FALSE(p.spaces_between_special_tokens);
  EXPECT_EQ(p.truncate_prompt_tokens, -1);
  EXPECT_EQ(p.output_kind, RequestOutputKind::kCumulative);
  EXPECT_EQ(p.stream_interval, 4);
  EXPECT_EQ(p.logit_bias, (std::map<int32_t, float>{{42, 100.0f}, {-1, -3.0f}, {7, -100.0f}}));
  EXPECT_EQ(p.allowed_token_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(p.structured_outputs->at("regex"), "[a-z]+");
  EXPECT_EQ(p.extra_args->at("k"), 1);

  // Round trip through to_json.
  SamplingParams again = SamplingParams::from_json(p.to_json());
  EXPECT_EQ(again, p);
  EXPECT_EQ(SamplingParams::from_json(json::object()), SamplingParams::from_json(SamplingParams().to_json()));
}

TEST(SamplingParams, FromJsonNullsAndDefaults) {
  SamplingParams p = SamplingParams::from_json(
      {{"n", nullptr}, {"temperature", nullptr}, {"max_tokens", nullptr}, {"seed", -1}, {"stop", nullptr}});
  EXPECT_EQ(p.n, 1);
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_FALSE(p.max_tokens);  // explicit null: no limit
  EXPECT_FALSE(p.seed);        // -1: unseeded
  EXPECT_TRUE(p.stop.empty());

  json defaults = {{"temperature", 0.6}, {"top_p", 0.95}, {"top_k", 20}};
  SamplingParams d = SamplingParams::from_json({{"top_p", 0.5}, {"temperature", nullptr}}, defaults);
  EXPECT_EQ(d.temperature, 0.6);
  EXPECT_EQ(d.top_p, 0.5);
  EXPECT_EQ(d.top_k, 20);

  EXPECT_EQ(SamplingParams::from_json({{"output_kind", "FINAL_ONLY"}}).output_kind, RequestOutputKind::kFinalOnly);
  EXPECT_EQ(SamplingParams::from_json({{"output_kind", 1}}).output_kind, RequestOutputKind::kDelta);
  EXPECT_EQ(SamplingParams::from_json({{"logprobs", false}}).logprobs, 0);
  EXPECT_EQ(SamplingParams::from_json({{"top_k", -1}}).top_k, 0);
  EXPECT_EQ(SamplingParams::from_json({{"stop", {"a", "b"}}}).stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SamplingParams::from_json({{"skip_clone", true}}), SamplingParams::from_json(json::object()));
}

TEST(SamplingParams, FromJsonRejectsWrongTypes) {
  auto bad = [](json j, const std::string& message, ErrorKind kind = ErrorKind::kInvalidArgument) {
    expect_error([&] { SamplingParams::from_json(j); }, message, kind);
  };
  bad({{"n", "3"}}, "n must be an integer, got \"3\"");
  bad({{"n", 1.5}}, "n must be an integer, got 1.5");
  bad({{"n", true}}, "n must be an integer, got true");
  bad({{"n", 5000000000LL}}, "n is out of range, got 5000000000");
  bad({{"top_k", {1}}}, "top_k must be an integer, got [1]");
  bad({{"temperature", "hot"}}, "temperature must be a number, got \"hot\"");
  bad({{"ignore_eos", 1}}, "ignore_eos must be a boolean, got 1");
  bad({{"stop", 5}}, "stop must be a string or a list of strings, got 5");
  bad({{"stop", {"a", 1}}}, "stop must be a string or a list of strings, got [\"a\",1]");
  bad({{"bad_words", "x"}}, "bad_words must be a list of strings, got \"x\"");
  bad({{"stop_token_ids", {1, "2"}}}, "stop_token_ids must contain only integers, got [1,\"2\"].");
  bad({{"stop_token_ids", 3}}, "stop_token_ids must be a list of integers, got 3");
  bad({{"allowed_token_ids", {1.5}}}, "allowed_token_ids must contain only integers, got [1.5].");
  bad({{"logit_bias", {{"abc", 1.0}, {"5", 1.0}, {"1.5", 2.0}}}},
      "logit_bias contains key(s) that cannot be converted to integer token IDs: ['1.5', 'abc']");
  bad({{"logit_bias", {{"5", "x"}}}}, "logit_bias[5] must be a number, got \"x\"");
  bad({{"logit_bias", {1, 2}}}, "logit_bias must be an object mapping token ids to biases, got [1,2]");
  bad({{"output_kind", "SOMETIMES"}},
      "output_kind must be one of 'CUMULATIVE', 'DELTA', 'FINAL_ONLY' (or 0, 1, 2), got \"SOMETIMES\"");
  bad({{"extra_args", 3}}, "extra_args must be an object, got 3");
  bad({{"temprature", 0.5}}, "unknown sampling parameter 'temprature'");
  bad({{"logits_processors", {"x"}}}, "sampling parameter 'logits_processors' is not supported by vllm-cpp",
      ErrorKind::kUnsupported);
  bad(json::array(), "sampling parameters must be a JSON object, got []");
  // Range errors after parsing come from finalize(), in vLLM's words.
  bad({{"top_p", 0}}, "top_p must be in (0, 1], got 0.0.");
  bad({{"max_tokens", 4}, {"min_tokens", 5}}, "min_tokens must be less than or equal to max_tokens=4, got 5.");
  EXPECT_NO_THROW(SamplingParams::from_json({{"logits_processors", nullptr}}));
}

TEST(BeamSearchParams, ValidationAndJson) {
  BeamSearchParams b = BeamSearchParams::from_json({{"beam_width", 4}, {"max_tokens", 32}, {"length_penalty", 0.8}});
  EXPECT_EQ(b.beam_width, 4);
  EXPECT_EQ(b.max_tokens, 32);
  EXPECT_FALSE(b.ignore_eos);
  EXPECT_EQ(b.temperature, 0.0);
  EXPECT_EQ(b.length_penalty, 0.8);
  EXPECT_FALSE(b.include_stop_str_in_output);
  EXPECT_EQ(BeamSearchParams::from_json(b.to_json()), b);

  expect_error([] { BeamSearchParams::from_json({{"max_tokens", 3}}); }, "beam_width is required");
  expect_error([] { BeamSearchParams::from_json({{"beam_width", 3}}); }, "max_tokens is required");
  expect_error([] { BeamSearchParams::from_json({{"beam_width", 0}, {"max_tokens", 3}}); },
               "beam_width must be at least 1, got 0.");
  expect_error([] { BeamSearchParams::from_json({{"beam_width", 2}, {"max_tokens", 0}}); },
               "max_tokens must be at least 1, got 0.");
  expect_error([] { BeamSearchParams::from_json({{"beam_width", 2}, {"max_tokens", 3}, {"temperature", -1}}); },
               "temperature must be non-negative, got -1.0.");
  expect_error([] { BeamSearchParams::from_json({{"beam_width", "2"}, {"max_tokens", 3}}); },
               "beam_width must be an integer, got \"2\"");
  expect_error([] { BeamSearchParams::from_json({{"beam_width", 2}, {"max_tokens", 3}, {"top_p", 1}}); },
               "unknown beam search parameter 'top_p'");
  BeamSearchParams inf;
  inf.length_penalty = std::numeric_limits<double>::infinity();
  expect_error([&] { inf.validate(); }, "length_penalty must be a finite number, got inf.");
}
