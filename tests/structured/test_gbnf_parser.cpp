// The GBNF parser: every syntax feature (checked through the language it gives), the desugared
// structure, every error with its line and column, and every limit in limits.h.
#include <string>

#include "structured_test_util.h"
#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/limits.h"

namespace vllm::structured::test {
namespace {

TEST(GbnfSyntax, LiteralsAndEscapes) {
  EXPECT_TRUE(matches(R"(root ::= "abc")", "abc"));
  EXPECT_FALSE(matches(R"(root ::= "abc")", "ab"));
  EXPECT_FALSE(matches(R"(root ::= "abc")", "abcd"));
  EXPECT_TRUE(matches(R"(root ::= "")", ""));
  EXPECT_TRUE(matches(R"(root ::= "a\nb\tc\rd\\e\"f")", "a\nb\tc\rd\\e\"f"));
  // \x, \u, \U name code points, written in UTF-8: \xE9 is U+00E9, two bytes.
  EXPECT_TRUE(matches(R"(root ::= "\x41\xE9")", "A\xC3\xA9"));
  EXPECT_FALSE(matches(R"(root ::= "\xE9")", "\xE9"));
  EXPECT_TRUE(matches(R"(root ::= "\u00e9\u4E2D")", "\xC3\xA9\xE4\xB8\xAD"));
  EXPECT_TRUE(matches(R"(root ::= "\U0001F600")", "\xF0\x9F\x98\x80"));
  // Raw UTF-8 in the grammar text stands for itself.
  EXPECT_TRUE(matches("root ::= \"caf\xC3\xA9 \xE6\x97\xA5\"", "caf\xC3\xA9 \xE6\x97\xA5"));
}

TEST(GbnfSyntax, CharacterClasses) {
  const std::string lower = "root ::= [a-z]";
  EXPECT_TRUE(matches(lower, "q"));
  EXPECT_FALSE(matches(lower, "Q"));
  EXPECT_FALSE(matches(lower, "qq"));
  const std::string not_quote = R"(root ::= [^"\\])";
  EXPECT_TRUE(matches(not_quote, "a"));
  EXPECT_TRUE(matches(not_quote, "\xC3\xA9"));
  EXPECT_TRUE(matches(not_quote, "\xF0\x9F\x98\x80"));
  EXPECT_FALSE(matches(not_quote, "\""));
  EXPECT_FALSE(matches(not_quote, "\\"));
  EXPECT_FALSE(matches(not_quote, "\xC3"));      // a lead byte alone
  EXPECT_FALSE(matches(not_quote, "\xC0\x80"));  // overlong NUL
  // Class escapes: \] \- \^ \\ and a literal '-' at the end.
  const std::string punct = R"(root ::= [\]\-\^\\a-])";
  for (const char* s : {"]", "-", "^", "\\", "a"}) EXPECT_TRUE(matches(punct, s)) << s;
  EXPECT_FALSE(matches(punct, "b"));
  // Ranges of non-ASCII code points, several ranges, \u escapes.
  const std::string greek = "root ::= [\xCE\xB1-\xCF\x89\\u0041-\\u0043]+";  // [α-ω A-C]+
  EXPECT_TRUE(matches(greek, "\xCE\xB1\xCE\xB2" "AC\xCF\x89"));
  EXPECT_FALSE(matches(greek, "\xCE\x91"));  // Α (capital alpha) is outside
  EXPECT_FALSE(matches(greek, "D"));
  // '.' is any code point, one of them.
  EXPECT_TRUE(matches("root ::= . .", "a\xE6\x97\xA5"));
  EXPECT_FALSE(matches("root ::= .", "ab"));
  EXPECT_FALSE(matches("root ::= .", "\xFF"));
}

TEST(GbnfSyntax, GroupsAlternationAndRepetition) {
  const std::string g = R"(root ::= ("ab" | "c")+ "!" | "x"?)";
  for (const char* s : {"ab!", "cab!", "ababcc!", "", "x"}) EXPECT_TRUE(matches(g, s)) << s;
  for (const char* s : {"!", "a!", "xx", "ab"}) EXPECT_FALSE(matches(g, s)) << s;
  EXPECT_TRUE(matches(R"(root ::= "a"*)", ""));
  EXPECT_TRUE(matches(R"(root ::= "a"*)", "aaaa"));
  EXPECT_FALSE(matches(R"(root ::= "a"+)", ""));
  // Postfix operators apply to the whole multi-byte literal, and stack.
  EXPECT_TRUE(matches(R"(root ::= "ab"*)", "abab"));
  EXPECT_FALSE(matches(R"(root ::= "ab"*)", "aba"));
  EXPECT_TRUE(matches(R"(root ::= "a"?* "b")", "aaab"));
  EXPECT_TRUE(matches(R"(root ::= ("a"?)* "b")", "b"));
}

TEST(GbnfSyntax, BoundedRepetition) {
  const std::string exact = R"(root ::= "ab"{3})";
  EXPECT_TRUE(matches(exact, "ababab"));
  EXPECT_FALSE(matches(exact, "abab"));
  EXPECT_FALSE(matches(exact, "abababab"));
  const std::string range = R"(root ::= [0-9]{2,4})";
  EXPECT_FALSE(matches(range, "1"));
  EXPECT_TRUE(matches(range, "12"));
  EXPECT_TRUE(matches(range, "1234"));
  EXPECT_FALSE(matches(range, "12345"));
  EXPECT_FALSE(viable(range, "12345"));
  const std::string at_least = R"(root ::= ("x" | "y"){2,})";
  EXPECT_FALSE(matches(at_least, "x"));
  EXPECT_TRUE(matches(at_least, "xy"));
  EXPECT_TRUE(matches(at_least, "xyxyxyxyxy"));
  EXPECT_TRUE(matches(R"(root ::= "a"{0} "b")", "b"));
  EXPECT_TRUE(matches(R"(root ::= "a"{ 1 , 2 })", "aa"));  // blanks inside braces
  // Nested bounded repetition shares its operand: (a{3}){3} is nine a's.
  const std::string nested = R"(root ::= ("a"{3}){3})";
  EXPECT_TRUE(matches(nested, std::string(9, 'a')));
  EXPECT_FALSE(matches(nested, std::string(8, 'a')));
  EXPECT_FALSE(matches(nested, std::string(10, 'a')));
}

TEST(GbnfSyntax, RulesCommentsAndLayout) {
  const std::string g =
      "# a comment line\n"
      "root ::= greeting-1 \" \" name_2   # trailing comment\n"
      "\n"
      "greeting-1 ::= \"hi\"\n"
      "   | \"hello\"          # continuation line: an extension\n"
      "name_2 ::= (\n"
      "    \"bob\" |\n"
      "    \"al\" \"ice\"\n"
      ")\n";
  for (const char* s : {"hi bob", "hello alice"}) EXPECT_TRUE(matches(g, s)) << s;
  EXPECT_FALSE(matches(g, "hello al"));
  // CRLF line ends; "::=" then the body on the next line; an empty rule followed by a rule.
  const std::string crlf = "root ::=\r\n  a \"x\"\r\na ::=\r\nb ::= \"y\"\r\n";
  EXPECT_TRUE(matches(crlf, "x"));
  // An empty alternative.
  EXPECT_TRUE(matches(R"(root ::= "a" | )", ""));
  // Another start rule.
  GrammarMatcher m(CompiledGrammar::compile(Grammar::from_gbnf("start ::= \"s\"\nroot ::= \"r\"", "start"), nullptr));
  EXPECT_TRUE(m.accept_bytes("s"));
}

TEST(GbnfStructure, DesugaringIntoHelperRules) {
  // X{2,5}: two copies in the sequence, then a chain of three nested optional helpers.
  const Grammar g = Grammar::from_gbnf(R"(root ::= "a"{2,5})");
  ASSERT_EQ(g.rules().size(), 4u);
  EXPECT_EQ(g.rules()[g.root()].alternatives.size(), 1u);
  EXPECT_EQ(g.rules()[g.root()].alternatives[0].size(), 3u);  // a a opt3
  for (size_t r = 0; r < g.rules().size(); ++r) {
    if (r == g.root()) continue;
    EXPECT_TRUE(g.rules()[r].helper);
    EXPECT_EQ(g.rules()[r].owner, g.root());
    EXPECT_EQ(g.rules()[r].alternatives.size(), 2u);  // unit [next] | ""
  }
  // Unreachable rules are dropped; equal byte sets are shared.
  const Grammar h = Grammar::from_gbnf("root ::= \"aa\" [a]\nunused ::= \"b\"");
  EXPECT_EQ(h.rules().size(), 1u);
  EXPECT_EQ(h.byte_sets().size(), 1u);
  EXPECT_FALSE(h.find_rule("unused").has_value());
  // Equal non-ASCII classes share one helper rule.
  const Grammar c = Grammar::from_gbnf(R"(root ::= [^a] [^a] .)");
  EXPECT_EQ(c.rules().size(), 3u);  // root, [^a], .
  // A user rule named like a helper keeps its name; the helper is renamed.
  const Grammar n = Grammar::from_gbnf("root ::= (\"a\" | \"b\") root--1\nroot--1 ::= \"c\"");
  EXPECT_TRUE(n.find_rule("root--1").has_value());
  EXPECT_FALSE(n.rules()[*n.find_rule("root--1")].helper);
  EXPECT_TRUE(matches("root ::= (\"a\" | \"b\") root--1\nroot--1 ::= \"c\"", "bc"));
  // The listing names every rule.
  EXPECT_NE(Grammar::from_gbnf(R"(root ::= "a" x
x ::= [0-9]*)").to_string().find("x ::= "), std::string::npos);
}

TEST(GbnfErrors, PositionsAndMessages) {
  struct Case {
    std::string gbnf;
    int line, column;
    std::string reason_start;
  };
  const std::vector<Case> cases = {
      {"root ::= value\nvalue ::= \"x\" valu\n", 2, 15, "undefined rule 'valu'"},
      {"a ::= \"x\"\n", 1, 1, "no rule named 'root'"},
      {"root ::= \"abc\n", 1, 10, "unterminated literal"},
      {"root ::= [a-z\n", 1, 10, "unterminated character class"},
      {"root ::= (\"a\"", 1, 10, "unclosed '('"},
      {"root ::= (\"a\" ]", 1, 15, "expected ')', found ']'"},
      {"root ::= \"a\" )", 1, 14, "unmatched ')'"},
      {"root ::= * \"a\"", 1, 10, "'*' must follow an item"},
      {"root := \"a\"", 1, 6, "expected '::=' after rule name 'root'"},
      {"::= \"a\"", 1, 1, "expected a rule name"},
      {"root ::= \"a\" b ::= \"c\"", 1, 14, "rule 'b' must start on a new line"},
      {"root ::= [z-a]", 1, 11, "character range is out of order"},
      {"root ::= \"\\q\"", 1, 11, "unknown escape '\\q'"},
      {"root ::= \"\\x4\"", 1, 11, "escape needs 2 hexadecimal digits"},
      {"root ::= \"\\U00110000\"", 1, 11, "code point above U+10FFFF"},
      {"root ::= \"\\uD800\"", 1, 11, "a surrogate code point"},
      {"root ::= [^\\x00-\\U0010FFFF]", 1, 10, "character class matches no character"},
      {"root ::= [\\uD800-\\uDFFF]", 1, 10, "character class matches no character"},
      {"root ::= \"a\"{3,2}", 1, 13, "repetition {m,n} needs m <= n"},
      {"root ::= \"a\"{2", 1, 15, "expected '}'"},
      {"root ::= \"a\"{,2}", 1, 14, "expected a number in '{...}'"},
      {"root ::= \"a\" @", 1, 14, "expected the end of the line, found '@'"},
      {"root ::= \"a\"\nroot ::= \"b\"", 2, 1, "rule 'root' is defined twice (first at line 1)"},
      {"root ::= \"\xC3\xA9\" valu", 1, 14, "undefined rule 'valu'"},  // columns count code points
      {"root ::= \"\xC3\x28\"", 1, 11, "invalid UTF-8 in the grammar text"},
      // Left recursion, direct, indirect, and behind a nullable prefix.
      {"root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]", 2, 1, "rule 'expr' is left-recursive (expr -> expr)"},
      {"root ::= a\na ::= b \"x\"\nb ::= a \"y\" | \"z\"", 2, 1, "rule 'a' is left-recursive (a -> b -> a)"},
      {"root ::= a\na ::= \"x\"? a \"y\" | \"z\"", 2, 1, "rule 'a' is left-recursive (a -> a)"},
      {"root ::= a\na ::= (b | \"q\") \"x\"\nb ::= \"\" a", 2, 1, "rule 'a' is left-recursive (a -> b -> a)"},
      // A rule that never finishes.
      {"root ::= \"s\" a\na ::= \"x\" a", 2, 1, "rule 'a' matches no string"},
      {"root ::= a | \"ok\"\na ::= (\"x\" a)+", 2, 1, "rule 'a' matches no string"},
  };
  for (const Case& c : cases) {
    const ParseFailure f = parse_failure(c.gbnf);
    EXPECT_EQ(f.line, c.line) << c.gbnf << "\n" << f.what;
    EXPECT_EQ(f.column, c.column) << c.gbnf << "\n" << f.what;
    EXPECT_EQ(f.reason.rfind(c.reason_start, 0), 0u) << c.gbnf << "\n" << f.what;
    EXPECT_EQ(f.what, "grammar error at line " + std::to_string(f.line) + ", column " + std::to_string(f.column) +
                          ": " + f.reason);
  }
  // A GrammarError is a vllm::Error of kind kInvalidArgument (an HTTP 400).
  try {
    Grammar::from_gbnf("root ::= x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
}

TEST(GbnfErrors, RecursionThatIsAllowed) {
  // A cycle of tail references cannot grow the stack: allowed (the language here is "x").
  const std::string tail_cycle = "root ::= a\na ::= b | \"x\"\nb ::= a";
  EXPECT_EQ(parse_failure(tail_cycle).line, 0);
  EXPECT_TRUE(matches(tail_cycle, "x"));
  // Right recursion and recursion after a byte are fine.
  const std::string nested = "root ::= \"(\" root \")\" | \"x\"";
  EXPECT_TRUE(matches(nested, "(((x)))"));
  EXPECT_FALSE(matches(nested, "((x)"));
  EXPECT_TRUE(viable(nested, "((x)"));
}

TEST(GbnfLimits, TextSize) {
  std::string big = "root ::= \"a\"\n";
  big += "# " + std::string(limits::kMaxGrammarBytes, 'x') + "\n";
  const ParseFailure f = parse_failure(big);
  EXPECT_EQ(f.line, 1);
  EXPECT_EQ(f.column, 1);
  EXPECT_NE(f.reason.find("kMaxGrammarBytes"), std::string::npos) << f.what;
}

TEST(GbnfLimits, RepetitionBound) {
  const std::string at = "root ::= \"a\"{" + std::to_string(limits::kMaxRepetition) + "}";
  EXPECT_EQ(parse_failure(at).line, 0);
  EXPECT_TRUE(matches(at, std::string(limits::kMaxRepetition, 'a')));
  const ParseFailure f = parse_failure("root ::= \"a\"{0," + std::to_string(limits::kMaxRepetition + 1) + "}");
  EXPECT_EQ(f.column, 16);
  EXPECT_NE(f.reason.find("kMaxRepetition"), std::string::npos) << f.what;
}

TEST(GbnfLimits, Nesting) {
  auto nested = [](int depth) {
    return "root ::= " + std::string(static_cast<size_t>(depth), '(') + "\"a\"" + std::string(static_cast<size_t>(depth), ')');
  };
  EXPECT_TRUE(matches(nested(limits::kMaxNesting), "a"));
  const ParseFailure f = parse_failure(nested(limits::kMaxNesting + 1));
  EXPECT_EQ(f.column, 10 + limits::kMaxNesting);
  EXPECT_NE(f.reason.find("kMaxNesting"), std::string::npos) << f.what;
}

TEST(GbnfLimits, RulesAfterExpansion) {
  // Each "a"{0,4096} adds 4096 helper rules; 17 of them pass 65536.
  const int n = static_cast<int>(limits::kMaxRules / limits::kMaxRepetition) + 1;
  std::string g = "root ::=";
  for (int i = 0; i < n; ++i) g += " r" + std::to_string(i);
  g += "\n";
  for (int i = 0; i < n; ++i) g += "r" + std::to_string(i) + " ::= \"a\"{0," + std::to_string(limits::kMaxRepetition) + "}\n";
  // root and r0..r16 exist from line 1 on; r15 (line 17) passes the limit.
  const ParseFailure f = parse_failure(g);
  EXPECT_EQ(f.line, 17);
  EXPECT_NE(f.reason.find("kMaxRules"), std::string::npos) << f.what;
}

TEST(GbnfLimits, ElementsAfterExpansion) {
  // "a"{4096} is 4096 elements; 257 such rules pass 2^20.
  const int n = static_cast<int>(limits::kMaxElements / limits::kMaxRepetition) + 1;
  std::string g = "root ::= r0\n";
  for (int i = 0; i < n; ++i) g += "r" + std::to_string(i) + " ::= \"a\"{" + std::to_string(limits::kMaxRepetition) + "}\n";
  // 4097 elements per rule (the literal, then its 4096 copies): r255, on line 257, passes 2^20.
  const ParseFailure f = parse_failure(g);
  EXPECT_EQ(f.line, 257);
  EXPECT_NE(f.reason.find("kMaxElements"), std::string::npos) << f.what;
}

TEST(GbnfLimits, CompiledNodes) {
  // 140 real rules of 2000 bytes each: 280,000 automaton nodes, past 2^18.
  const int n = 140;
  std::string g = "root ::=";
  for (int i = 0; i < n; ++i) g += " r" + std::to_string(i);
  g += "\n";
  for (int i = 0; i < n; ++i) g += "r" + std::to_string(i) + " ::= \"b\"{2000}\n";
  EXPECT_EQ(Grammar::from_gbnf(g).rules().size(), static_cast<size_t>(n + 1));  // the grammar itself is fine
  const ParseFailure f = parse_failure(g);
  EXPECT_GT(f.line, 1);
  EXPECT_NE(f.reason.find("kMaxCompiledNodes"), std::string::npos) << f.what;
}

TEST(GbnfLimits, ExpansionsPerByte) {
  // Found by the random-grammar test: nullable recursive rules inside loops, whose parses below
  // the tops multiply with every byte (the stack graph merges tops only).
  const std::string ambiguous =
      "root ::= (\"b\" | r3)\n"
      "r1 ::= (\"a\" | (((r2 \"ab\" .) | (r3 r3) | r2)){0,2})\n"
      "r2 ::= (\"c\xC3\xA9\" | ((r3 (r1 | [\\U000000E9-\\U000000EA]) r1)){2,} | [\\U00000062-\\U00000063\\U000000E9])\n"
      "r3 ::= (\"\xC3\xA9\" | ((([^\\U00000063\\U000000EA-\\U0010FFFF] | \"c\xC3\xA9\") | (\"c\" r2) | \"b\") | "
      "(([^\\U00000061] \"\" \"\") (\"\xC3\xA9\" \"ab\") \"ba\") | (\"a\" \"a\")) | (((\"ba\" root [\\U00000061-\\U00000062]) | "
      "(\"b\"){2,} | (\"c\xC3\xA9\" | \"a\" | [\\U00000062-\\U00000063\\U000000E9])) (([\\U00000062-\\U00000063\\U000000E9] "
      "[\\U00000062-\\U00000063\\U000000E9] r1)){2,} ((r1)+ | ([^\\U00000061] | [\\U00000062-\\U00000063\\U000000E9] | "
      "[\\U00000061-\\U00000062]) | (\"ba\")*)))\n";
  GrammarMatcher m(CompiledGrammar::from_gbnf(ambiguous, nullptr));
  const char* input[] = {"\xC3\xA9", "c", "b", "a", "\xC3\xA9", "c", "b", "a", "\xC3\xA9", "c", "b", "a"};
  bool limited = false;
  for (const char* piece : input) {
    try {
      ASSERT_TRUE(m.accept_bytes(piece));
    } catch (const Error& e) {
      limited = true;
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("kMaxExpansionsPerByte"), std::string::npos) << e.what();
      break;
    }
  }
  EXPECT_TRUE(limited);
  EXPECT_TRUE(m.accept_bytes(""));  // the refused step left the matcher usable
}

TEST(GbnfLimits, CompileWork) {
  auto v = TokenVocabulary::from_token_bytes({"{", "}", "\"", "a", "ab", ":", " ", "1"});
  CompileOptions o;
  o.max_moves = 5;  // the default, limits::kMaxCompileMoves, is 2^26
  try {
    CompiledGrammar::from_gbnf("# a JSON object\nroot ::= \"{\" [ a-z\"]* \"}\"", v, o);
    FAIL() << "expected a GrammarError";
  } catch (const GrammarError& e) {
    EXPECT_EQ(e.line(), 2);  // the root rule
    EXPECT_NE(std::string(e.what()).find("kMaxCompileMoves"), std::string::npos) << e.what();
  }
  o.max_moves = 1000;
  EXPECT_NO_THROW(CompiledGrammar::from_gbnf("root ::= \"{\" [ a-z\"]* \"}\"", v, o));
}

}  // namespace
}  // namespace vllm::structured::test
