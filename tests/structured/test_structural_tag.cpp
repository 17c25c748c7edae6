// Structural tags and the reasoning prefix: the languages of the GBNF that
// StructuredOutputsParams::to_gbnf writes, decided by the matcher and the brute-force oracle.
#include <gtest/gtest.h>

#include <string>

#include "language_checker.h"
#include "vllm/core/error.h"
#include "vllm/structured/structured_outputs_params.h"

using namespace vllm;
using namespace vllm::structured;
using vllm::structured::testing::LanguageChecker;

namespace {

std::string gbnf_of(const nlohmann::json& j) { return StructuredOutputsParams::from_json(j).to_gbnf(); }

}  // namespace

TEST(StructuralTag, FreeTextWithStructuresAfterTriggers) {
  const nlohmann::json tag = {
      {"type", "structural_tag"},
      {"structures", {{{"begin", "<f=a>"}, {"schema", {{"type", "integer"}}}, {"end", "</f>"}}}},
      {"triggers", {"<f="}}};
  LanguageChecker c(gbnf_of({{"structural_tag", tag.dump()}}));
  EXPECT_TRUE(c.accepts(""));
  EXPECT_TRUE(c.accepts("hello < f"));
  EXPECT_TRUE(c.accepts("x <f=a>12</f> y"));
  EXPECT_TRUE(c.accepts("<f=a>1</f><f=a>2</f>"));
  EXPECT_FALSE(c.accepts("x <f=b>12</f>"));   // a trigger must go on as a structure
  EXPECT_FALSE(c.accepts("x <f=a>\"s\"</f>"));  // the structure's schema holds
  EXPECT_FALSE(c.accepts("x <f=a>12"));         // never ends inside a structure
}

TEST(ReasoningPrefix, OpenReasoningIsFreeTextUntilTheEndMarker) {
  const std::string g = gbnf_of({{"choice", {"yes", "no"}},
                                 {"reasoning", {{"start", "<think>"}, {"end", "</think>"}, {"open", true}}}});
  LanguageChecker c(g);
  EXPECT_TRUE(c.accepts("</think>yes"));
  EXPECT_TRUE(c.accepts("I think </thi nk> <think> so.</think>\n\nno"));
  EXPECT_TRUE(c.accepts("<</</t</think>yes"));  // partial markers before the real one
  EXPECT_FALSE(c.accepts("yes"));                // the reasoning must end first
  EXPECT_FALSE(c.accepts("hmm</think>maybe"));   // the answer is constrained
  EXPECT_FALSE(c.accepts("hmm</think>yes</think>"));
  EXPECT_FALSE(c.accepts("hmm</think>"));        // no answer
  EXPECT_FALSE(c.accepts("a</think>     yes"));  // at most 4 whitespace characters between
}

TEST(ReasoningPrefix, OptionalReasoningMayBeSkipped) {
  const std::string g = gbnf_of({{"json", R"({"type": "integer"})"},
                                 {"reasoning", {{"start", "<think>"}, {"end", "</think>"}, {"open", false}}}});
  LanguageChecker c(g);
  EXPECT_TRUE(c.accepts("42"));
  EXPECT_TRUE(c.accepts("<think>let me see</think>\n42"));
  EXPECT_FALSE(c.accepts("let me see</think>42"));  // without the start marker, no reasoning
  EXPECT_FALSE(c.accepts("<think>42"));
  EXPECT_FALSE(c.accepts("<think>a</think>x"));
}

TEST(ReasoningPrefix, KeyOfTheCacheAndErrors) {
  const nlohmann::json j = {{"regex", "a+"}, {"reasoning", {{"start", "<think>"}, {"end", "</think>"}, {"open", true}}}};
  EXPECT_EQ(StructuredOutputsParams::from_json(j).to_json(), j);
  EXPECT_NE(StructuredOutputsParams::from_json({{"regex", "a+"}}).to_json(), j);
  EXPECT_THROW(gbnf_of({{"regex", "a"}, {"reasoning", "x"}}), Error);
  EXPECT_THROW(gbnf_of({{"regex", "a"}, {"reasoning", {{"start", "<t>"}}}}), Error);
  EXPECT_THROW(gbnf_of({{"regex", "a"}, {"reasoning", {{"end", "</t>"}, {"open", false}}}}), Error);
}
