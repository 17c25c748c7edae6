// Structured outputs through the engine: constrained generation on the test models gives output
// in the constraint's language, and the constraint changes nothing else: outputs are the same
// alone and batched, with chunked prefill, prefix caching and preemption, and unconstrained
// requests in the same batch are unaffected.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <regex>

#include "../engine/golden.h"
#include "vllm/core/error.h"
#include "vllm/engine/llm_engine.h"

using namespace vllm;
using json = nlohmann::json;

namespace {

EngineConfig config_for(const std::string& model) {
  EngineConfig c;
  c.model = test::materialize_model(model);
  c.dtype = "float32";
  c.num_kv_blocks = 512;
  return c;
}

std::map<std::string, RequestOutput> run(LLMEngine& engine) {
  std::map<std::string, RequestOutput> final;
  while (engine.has_unfinished())
    for (auto& out : engine.step())
      if (out.finished) final[out.request_id] = out;
  return final;
}

SamplingParams constrained(json so, double temperature, std::optional<int64_t> seed, int max_tokens = 96) {
  SamplingParams p;
  p.temperature = temperature;
  p.seed = seed;
  p.max_tokens = max_tokens;
  p.structured_outputs = std::move(so);
  return p;
}

const char* kModels[] = {"tiny-llama3", "tiny-qwen3", "tiny-phi",   "tiny-llama2", "tiny-phi3",
                         "tiny-mixtral", "tiny-qwen3moe", "tiny-gemma3", "tiny-gptoss"};

const json kPersonSchema = json::parse(R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 130},
    "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})");

class PerModel : public ::testing::TestWithParam<const char*> {};

TEST_P(PerModel, JsonSchemaOutputsValidateWhenTheyStop) {
  LLMEngine engine(config_for(GetParam()));
  const json so = {{"json", kPersonSchema}};
  for (int seed = 0; seed < 5; ++seed)
    engine.add_request("r" + std::to_string(seed), PromptInput::from_text("Describe a person:"),
                       constrained(so, 1.0, seed, 160));
  auto outs = run(engine);
  ASSERT_EQ(outs.size(), 5u);
  int stopped = 0;
  for (auto& [id, out] : outs) {
    const CompletionOutput& c = out.outputs[0];
    ASSERT_TRUE(c.finish_reason);
    if (*c.finish_reason != FinishReason::kStop) continue;  // cut by max_tokens: a prefix
    ++stopped;
    json doc;
    ASSERT_NO_THROW(doc = json::parse(c.text)) << GetParam() << " " << id << ": " << c.text;
    EXPECT_TRUE(doc.is_object()) << c.text;
    EXPECT_TRUE(doc.contains("name") && doc["name"].is_string()) << c.text;
    EXPECT_TRUE(doc.contains("age") && doc["age"].is_number_integer()) << c.text;
    if (doc.contains("age")) {
      EXPECT_GE(doc["age"].get<int64_t>(), 0);
      EXPECT_LE(doc["age"].get<int64_t>(), 130);
    }
    for (auto it = doc.begin(); it != doc.end(); ++it)
      EXPECT_TRUE(it.key() == "name" || it.key() == "age" || it.key() == "tags") << c.text;
  }
  // Random weights at temperature 1 still finish most of the time: the grammar allows EOS as
  // soon as the object closes, and nothing but EOS after it.
  EXPECT_GT(stopped, 0) << GetParam();
}

TEST_P(PerModel, ChoiceGivesExactlyOneChoice) {
  LLMEngine engine(config_for(GetParam()));
  const std::vector<std::string> choices = {"positive", "negative", "neutral", "négatif ☃"};
  for (int seed = 0; seed < 6; ++seed)
    engine.add_request("c" + std::to_string(seed), PromptInput::from_text("Sentiment:"),
                       constrained({{"choice", choices}}, 1.0, seed, 32));
  for (auto& [id, out] : run(engine)) {
    const CompletionOutput& c = out.outputs[0];
    EXPECT_EQ(*c.finish_reason, FinishReason::kStop) << id << ": " << c.text;
    EXPECT_NE(std::find(choices.begin(), choices.end(), c.text), choices.end()) << GetParam() << ": " << c.text;
  }
}

TEST_P(PerModel, RegexOutputsMatchFully) {
  LLMEngine engine(config_for(GetParam()));
  const std::string pattern = R"((\d{4})-(0[1-9]|1[0-2])-([0-2]\d|3[01])( [A-Z][a-z]{1,8})?)";
  const std::regex re(pattern, std::regex::ECMAScript);
  for (int seed = 0; seed < 6; ++seed)
    engine.add_request("x" + std::to_string(seed), PromptInput::from_text("Date:"),
                       constrained({{"regex", pattern}}, 1.0, seed, 40));
  for (auto& [id, out] : run(engine)) {
    const CompletionOutput& c = out.outputs[0];
    if (*c.finish_reason == FinishReason::kStop) {
      EXPECT_TRUE(std::regex_match(c.text, re)) << GetParam() << ": " << c.text;
    }
  }
}

TEST_P(PerModel, JsonObjectParses) {
  LLMEngine engine(config_for(GetParam()));
  for (int seed = 0; seed < 4; ++seed)
    engine.add_request("o" + std::to_string(seed), PromptInput::from_text("{"),
                       constrained({{"json_object", true}}, 1.0, seed, 200));
  for (auto& [id, out] : run(engine)) {
    const CompletionOutput& c = out.outputs[0];
    if (*c.finish_reason != FinishReason::kStop) continue;
    json doc;
    ASSERT_NO_THROW(doc = json::parse(c.text)) << c.text;
    EXPECT_TRUE(doc.is_object());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PerModel, ::testing::ValuesIn(kModels));

// Greedy constrained outputs are the same whether a request runs alone or batched with others,
// with small chunks, with the prefix cache and with preemption; and unconstrained requests in
// the batch give what they give alone.
TEST(StructuredEngine, BatchingChunkingCachingAndPreemptionChangeNothing) {
  const std::string model = "tiny-llama3";
  const std::vector<std::pair<std::string, json>> constraints = {
      {"json", {{"json", kPersonSchema}}},
      {"regex", {{"regex", "[a-z]{3,10}( [a-z]{2,8}){2,5}\\."}}},
      {"choice", {{"choice", {"alpha", "beta", "gamma"}}}},
      {"grammar", {{"grammar", "root ::= item (\", \" item)*\nitem ::= [0-9]+ | \"(\" root \")\""}}},
  };
  const std::vector<std::string> prompts = {"The answer is", "Once upon a time there was a", "List:"};
  auto greedy_constrained = [](const json& so) { return constrained(so, 0.0, std::nullopt, 48); };
  auto greedy_plain = [] {
    SamplingParams p;
    p.temperature = 0;
    p.max_tokens = 24;
    p.ignore_eos = true;
    return p;
  };

  // Alone, one request at a time.
  std::map<std::string, std::vector<int32_t>> alone;
  {
    LLMEngine engine(config_for(model));
    for (const auto& [name, so] : constraints)
      for (size_t i = 0; i < prompts.size(); ++i) {
        const std::string id = name + std::to_string(i);
        engine.add_request(id, PromptInput::from_text(prompts[i]), greedy_constrained(so));
        alone[id] = run(engine).at(id).outputs[0].token_ids;
      }
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::string id = "plain" + std::to_string(i);
      engine.add_request(id, PromptInput::from_text(prompts[i]), greedy_plain());
      alone[id] = run(engine).at(id).outputs[0].token_ids;
    }
  }

  struct Setup {
    const char* name;
    int block_size;
    int64_t num_kv_blocks;
    std::optional<int64_t> max_batched;
    bool prefix_caching;
  };
  const Setup setups[] = {
      {"batched", 16, 512, std::nullopt, false},
      {"chunked prefill", 16, 512, int64_t{8}, false},
      {"prefix cache", 4, 512, std::nullopt, true},
      {"preemption", 4, 24, int64_t{16}, true},  // too few blocks for the batch: preempts
  };
  for (const Setup& s : setups) {
    EngineConfig c = config_for(model);
    c.block_size = s.block_size;
    c.num_kv_blocks = s.num_kv_blocks;
    c.max_num_batched_tokens = s.max_batched;
    c.enable_prefix_caching = s.prefix_caching;
    LLMEngine engine(c);
    // Twice each, so that the prefix cache has something to serve the second time.
    for (int round = 0; round < 2; ++round) {
      for (const auto& [name, so] : constraints)
        for (size_t i = 0; i < prompts.size(); ++i)
          engine.add_request(name + std::to_string(i) + "/" + std::to_string(round), PromptInput::from_text(prompts[i]),
                             greedy_constrained(so));
      for (size_t i = 0; i < prompts.size(); ++i)
        engine.add_request("plain" + std::to_string(i) + "/" + std::to_string(round), PromptInput::from_text(prompts[i]),
                           greedy_plain());
    }
    auto outs = run(engine);
    for (const auto& [id, ids] : alone)
      for (int round = 0; round < 2; ++round)
        EXPECT_EQ(outs.at(id + "/" + std::to_string(round)).outputs[0].token_ids, ids) << s.name << ": " << id;
    if (std::string(s.name) == "preemption") {
      EXPECT_GT(engine.core().scheduler().stats().num_preemptions_total, 0);
    }
  }
}

// n > 1 forks the matcher with the sequence: every branch is valid on its own.
TEST(StructuredEngine, EveryBranchOfNFollowsTheConstraint) {
  LLMEngine engine(config_for("tiny-qwen3"));
  SamplingParams p = constrained({{"regex", "(yes|no|maybe)( because [a-z]{2,6})?"}}, 1.0, 7, 24);
  p.n = 4;
  p.best_of = 6;
  engine.add_request("n", PromptInput::from_text("Answer:"), p);
  auto out = run(engine).at("n");
  ASSERT_EQ(out.outputs.size(), 4u);
  const std::regex re("(yes|no|maybe)( because [a-z]{2,6})?");
  for (const auto& c : out.outputs)
    if (*c.finish_reason == FinishReason::kStop) {
      EXPECT_TRUE(std::regex_match(c.text, re)) << c.text;
    }
}

// max_tokens cuts a constrained output as it cuts any other ("length"): a prefix of the language.
TEST(StructuredEngine, MaxTokensCutsWithLength) {
  LLMEngine engine(config_for("tiny-llama3"));
  engine.add_request("cut", PromptInput::from_text("x"), constrained({{"regex", "a{40}"}}, 0.0, std::nullopt, 5));
  const auto outs = run(engine);
  const auto& c = outs.at("cut").outputs[0];
  EXPECT_EQ(*c.finish_reason, FinishReason::kLength);
  EXPECT_EQ(c.token_ids.size(), 5u);
  EXPECT_EQ(c.text, std::string(c.text.size(), 'a'));
}

// min_tokens cannot force tokens past a complete grammar: the constraint wins and the request
// stops at its end.
TEST(StructuredEngine, CompleteGrammarOutranksMinTokens) {
  LLMEngine engine(config_for("tiny-llama3"));
  SamplingParams p = constrained({{"choice", {"ok"}}}, 1.0, 3, 20);
  p.min_tokens = 10;
  engine.add_request("m", PromptInput::from_text("x"), p);
  const auto outs = run(engine);
  const auto& c = outs.at("m").outputs[0];
  EXPECT_EQ(c.text.substr(0, 2), "ok");
  EXPECT_EQ(*c.finish_reason, FinishReason::kStop);
}

// Bad constraints are refused before anything is queued, with the parser's own message.
TEST(StructuredEngine, InvalidConstraintsThrowWithTheirPosition) {
  LLMEngine engine(config_for("tiny-phi"));
  auto message = [&](const json& so) -> std::string {
    try {
      engine.add_request("bad", PromptInput::from_text("x"), constrained(so, 1.0, 1));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({{"grammar", "root ::= \"a\" undefined-rule"}}).find("line 1"), std::string::npos);
  EXPECT_NE(message({{"regex", "(a|b"}}).find("position"), std::string::npos);
  EXPECT_NE(message({{"json", {{"type", "number"}, {"minimum", 1.5}}}}).find("minimum"), std::string::npos);
  EXPECT_NE(message({{"regex", "a"}, {"choice", {"a"}}}).find("only use one kind"), std::string::npos);
  EXPECT_NE(message(json::object()).find("must use one kind"), std::string::npos);
  EXPECT_FALSE(engine.has_unfinished());
}

}  // namespace
