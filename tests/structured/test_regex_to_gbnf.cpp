// regex_to_gbnf: the text for small patterns, each error with its position, and the language
// (through the test oracle) against std::regex (ECMAScript) on many strings.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include <random>
#include <regex>

#include "language_checker.h"
#include "vllm/structured/regex.h"

namespace vllm::structured {
namespace {

using testing::LanguageChecker;

std::string full(std::string_view p) { return regex_to_gbnf(p); }
std::string search(std::string_view p) { return regex_to_gbnf(p, RegexOptions{true, false}); }

TEST(RegexToGbnf, Text) {
  EXPECT_EQ(full("abc"), "root ::= \"abc\"\n");
  EXPECT_EQ(full("a|bc"), "root ::= ( \"a\" | \"bc\" )\n");
  EXPECT_EQ(full("[a-z0-9_]+"), "root ::= [0-9_a-z]+\n");
  EXPECT_EQ(full("(ab)*c?"), "root ::= ( \"ab\" )* \"c\"?\n");
  EXPECT_EQ(full("a{2,5}b{3}c{2,}"), "root ::= \"a\"{2,5} \"b\"{3} \"c\"{2,}\n");
  EXPECT_EQ(full("a*?b+?c??d{1,2}?"), "root ::= \"a\"* \"b\"+ \"c\"? \"d\"{1,2}\n");
  EXPECT_EQ(full("\\d\\."), "root ::= [0-9] \".\"\n");
  EXPECT_EQ(full("[^\"\\\\]"), "root ::= [^\"\\\\\\uD800-\\uDFFF]\n");
  EXPECT_EQ(full("^abc$"), "root ::= \"abc\"\n");
  EXPECT_EQ(full("(?:x|y)(?<name>z)"), "root ::= ( \"x\" | \"y\" ) \"z\"\n");
  EXPECT_EQ(full("\\u00e9\\u{1F600}\\uD83D\\uDE00"), "root ::= \"\\u00E9\\U0001F600\\U0001F600\"\n");
  EXPECT_EQ(full("[\\b]"), "root ::= \"\\x08\"\n");
  EXPECT_EQ(full("a{"), "root ::= \"a{\"\n");  // Annex B: a lone brace is a literal
}

TEST(RegexToGbnf, SearchSemantics) {
  const std::string any = "[^\\uD800-\\uDFFF]*";
  EXPECT_EQ(search("abc"), "root ::= " + any + " \"abc\" " + any + "\n");
  EXPECT_EQ(search("^abc"), "root ::= \"abc\" " + any + "\n");
  EXPECT_EQ(search("abc$"), "root ::= " + any + " \"abc\"\n");
  EXPECT_EQ(search("^abc$"), "root ::= \"abc\"\n");
  EXPECT_EQ(search("^a|b$"), "root ::= ( " + any + " \"b\" | \"a\" " + any + " )\n");
  EXPECT_EQ(search("(^a|^b)c"), "root ::= ( \"a\" | \"b\" ) \"c\" " + any + "\n");
}

TEST(RegexToGbnf, JsonStringMode) {
  RegexOptions o{false, true};
  EXPECT_EQ(regex_to_gbnf("a\"b\\\\c", o), "root ::= \"a\\\\\\\"b\\\\\\\\c\"\n");
  EXPECT_EQ(regex_to_gbnf("\\n\\t", o), "root ::= \"\\\\n\\\\t\"\n");
  EXPECT_EQ(regex_to_gbnf("\\x1f", o), "root ::= \"\\\\u00\" \"1\" [Ff]\n");
  LanguageChecker g(regex_to_gbnf("[\\x00-\\x7f]+", o));
  EXPECT_TRUE(g.accepts("ab\\\"\\\\\\n\\u0001\\u001f\\u001F\\b\\f\\r\\t~\x7f"));
  EXPECT_FALSE(g.accepts("\""));            // a quote must be escaped
  EXPECT_FALSE(g.accepts("\\"));            // so must a backslash
  EXPECT_FALSE(g.accepts("\n"));            // and control characters
  EXPECT_FALSE(g.accepts("\\u000a"));       // one form per character: \n
  EXPECT_FALSE(g.accepts("\\/"));           // '/' is written as itself
  EXPECT_FALSE(g.accepts("\xc3\xa9"));      // outside the class
  LanguageChecker dot(regex_to_gbnf(".", o));
  EXPECT_TRUE(dot.accepts("\\t"));
  EXPECT_FALSE(dot.accepts("\\n"));
  EXPECT_TRUE(dot.accepts("\xf0\x9f\x98\x80"));
}

void expect_error(std::string_view pattern, const std::string& what, size_t pos) {
  try {
    regex_to_gbnf(pattern);
    ADD_FAILURE() << "no error for " << pattern;
  } catch (const RegexError& e) {
    EXPECT_EQ(e.position(), pos) << pattern << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << pattern << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("at position " + std::to_string(pos)), std::string::npos) << e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
}

TEST(RegexToGbnf, Errors) {
  expect_error("(a)\\1", "backreference", 3);
  expect_error("(?<n>a)\\k<n>", "backreference", 7);
  expect_error("a(?=b)", "lookahead", 1);
  expect_error("a(?!b)", "lookahead", 1);
  expect_error("(?<=a)b", "lookbehind", 0);
  expect_error("(?<!a)b", "lookbehind", 0);
  expect_error("a\\bc", "word boundary", 1);
  expect_error("a\\Bc", "word boundary", 1);
  expect_error("a^b", "'^'", 1);
  expect_error("a$b", "'$'", 1);
  expect_error("(a^)", "'^'", 2);
  expect_error("(^a)*", "'^'", 1);
  expect_error("(?i)abc", "inline flags", 0);
  expect_error("a{3,2}", "out of order", 1);
  expect_error("a{0,100000}", "repetition bound", 1);
  expect_error("*a", "nothing to repeat", 0);
  expect_error("a**", "nothing to repeat", 2);
  expect_error("^*", "nothing to repeat", 1);
  expect_error("(ab", "missing ')'", 0);
  expect_error("ab)", "unmatched ')'", 2);
  expect_error("[ab", "missing ']'", 0);
  expect_error("[z-a]", "out of order", 3);
  expect_error("\\p{L}", "property", 0);
  expect_error("ab\\", "lone backslash", 2);
  expect_error("\\A", "unsupported escape", 0);
  expect_error("\\x4", "two hex digits", 0);
  expect_error("\\uD800", "lone surrogate", 0);
  expect_error("[]", "matches no string", 0);
  expect_error(std::string(kMaxRegexLength + 1, 'a'), "longer than", kMaxRegexLength);
  std::string nested(kMaxRegexNesting + 1, '(');
  expect_error(nested + "a" + std::string(kMaxRegexNesting + 1, ')'), "nested deeper", kMaxRegexNesting);
  std::string many;
  for (int i = 0; i < 26; ++i) many += "a{4000}";
  expect_error(many, "add up to", 176);  // the 26th quantifier
}

TEST(RegexToGbnf, DeepestNestingCompiles) {
  // The deepest nesting we accept, with the most parentheses each level can bring, stays
  // within the grammar parser's limit.
  std::string p;
  for (size_t i = 0; i < kMaxRegexNesting; ++i) p += "(?:x|";
  p += "[^a]";
  for (size_t i = 0; i < kMaxRegexNesting; ++i) p += "y)*";
  for (bool json : {false, true}) {
    LanguageChecker g(regex_to_gbnf(p, RegexOptions{true, json}), /*with_oracle=*/false);
    EXPECT_TRUE(g.accepts("xb"));
  }
}

// Language: every pattern against many strings, oracle grammar vs std::regex.
struct LangCase {
  const char* pattern;
  const char* alphabet;  // random strings are drawn from these characters
};

TEST(RegexToGbnf, LanguageAgainstStdRegex) {
  const LangCase cases[] = {
      {"abc", "abc"},
      {"a|b|cd", "abcd"},
      {"(ab|a)(c|bcd)(d*)", "abcd"},
      {"a*b+c?", "abc"},
      {"a{2,3}", "ab"},
      {"(a|b){2}c{1,}", "abc"},
      {"[a-c]+[^a-c]", "abcd-"},
      {"\\d+(\\.\\d{1,2})?", "12.a"},
      {"\\w+@\\w+\\.com", "ab@.com_"},
      {"[\\s\\S]x", "x \n\t"},
      {"\\D\\W\\S", "a1 -"},
      {".+", "a\n\rb"},
      {"^(0|[1-9][0-9]*)$", "0123"},
      {"^a|b$", "abx"},
      {"(^a|b)c", "abc"},
      {"x(y|)z", "xyz"},
      {"[-a]+[a-]+", "a-b"},
      {"(a*)*b", "ab"},
      {"(?:a|ab)(?:c|bcd)", "abcd"},
      {"[.*+?]+", ".*+?a"},
      {"\\(\\)\\[\\]\\{\\}", "()[]{}"},
      {"a{0}b", "ab"},
      {"(ab){0,2}", "ab"},
      {"[^]a", "ab\n"},
      {"\\x41\\u0042", "AB\n"},
  };
  std::mt19937 rng(1234);
  for (const auto& c : cases) {
    for (bool srch : {false, true}) {
      SCOPED_TRACE(std::string(c.pattern) + (srch ? " (search)" : " (full)"));
      LanguageChecker g(regex_to_gbnf(c.pattern, RegexOptions{srch, false}));
      std::regex re(c.pattern, std::regex::ECMAScript);
      std::string alpha = c.alphabet;
      std::vector<std::string> inputs = {""};
      for (int n = 0; n < 150; ++n) {
        std::string s;
        size_t len = rng() % 7;
        for (size_t k = 0; k < len; ++k) s += alpha[rng() % alpha.size()];
        inputs.push_back(s);
      }
      for (const auto& s : inputs) {
        bool want = srch ? std::regex_search(s, re) : std::regex_match(s, re);
        EXPECT_EQ(g.accepts(s), want) << "input '" << s << "'";
      }
    }
  }
}

TEST(RegexToGbnf, UnicodeLanguage) {
  LanguageChecker g(regex_to_gbnf("[\\u00e0-\\u00ff]{2}\\u{1F600}?"));
  EXPECT_TRUE(g.accepts("\xc3\xa0\xc3\xbf"));
  EXPECT_TRUE(g.accepts("\xc3\xa0\xc3\xbf\xf0\x9f\x98\x80"));
  EXPECT_FALSE(g.accepts("\xc3\xa0"));
  EXPECT_FALSE(g.accepts("ab"));
  LanguageChecker cj(regex_to_gbnf("\\cJ\\ca"));  // std::regex gets \c wrong: checked here
  EXPECT_TRUE(cj.accepts("\n\x01"));
  EXPECT_FALSE(cj.accepts("cJca"));
  LanguageChecker s(regex_to_gbnf("\\s"));
  EXPECT_TRUE(s.accepts("\xe3\x80\x80"));  // U+3000 is ECMAScript white space
  EXPECT_TRUE(s.accepts("\xef\xbb\xbf"));  // U+FEFF too
  EXPECT_FALSE(s.accepts("\xc2\x85"));     // U+0085 is not
}

}  // namespace
}  // namespace vllm::structured
