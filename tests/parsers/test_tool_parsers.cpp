// Tool-call parsers (hermes, llama3_json, mistral, pythonic): complete outputs, and the same
// outputs streamed in every split (whole, byte by byte, random pieces, every split in two),
// which must add up to exactly what extract() returns. Then a fuzz-like loop over random and
// mutated outputs: no exception, no crash, streaming independent of the split.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <random>
#include <set>

#include "parser_test_util.h"
#include "vllm/core/error.h"

using namespace parsers_test;
using vllm::parsers::ExtractedToolCalls;

namespace {

struct Call {
  std::string name;
  std::string arguments;
};

// extract() gives these calls and content, every split streams the same, the arguments are
// JSON objects, the ids differ.
void expect_calls(std::string_view parser, std::string_view text, const std::vector<Call>& calls,
                  std::string_view content = "") {
  SCOPED_TRACE(std::string(parser) + ": " + std::string(text));
  const ExtractedToolCalls got = check_tool_streaming(parser, text);
  EXPECT_EQ(got.tools_called, !calls.empty());
  EXPECT_EQ(got.content, content);
  ASSERT_EQ(got.calls.size(), calls.size());
  std::set<std::string> ids;
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].name, calls[i].name);
    EXPECT_EQ(got.calls[i].arguments, calls[i].arguments);
    EXPECT_FALSE(got.calls[i].id.empty());
    ids.insert(got.calls[i].id);
    const auto args = nlohmann::json::parse(got.calls[i].arguments, nullptr, false);
    EXPECT_TRUE(args.is_object()) << got.calls[i].arguments;
  }
  EXPECT_EQ(ids.size(), calls.size()) << "call ids repeat";
}

// Not a tool-call output: extract() returns the text as content.
void expect_content(std::string_view parser, std::string_view text) {
  SCOPED_TRACE(std::string(parser) + ": " + std::string(text));
  auto p = make_tool_parser(parser);
  const ExtractedToolCalls got = p->extract(text);
  EXPECT_FALSE(got.tools_called);
  EXPECT_TRUE(got.calls.empty());
  EXPECT_EQ(got.content, text);
}

// extract() returns the text as content; streaming, in every split, does not throw and ends
// its content with `rest` (the text from where it went wrong: all of it if nothing had been
// announced as a call before).
void expect_malformed_streams_rest(std::string_view parser, std::string_view text, std::string_view rest) {
  expect_content(parser, text);
  for (const auto& split : splits_of(text)) {
    SCOPED_TRACE(std::string(parser) + " split " + split.label + " of: " + std::string(text));
    const StreamedTools got = stream_tools(parser, text, split.cuts);
    EXPECT_TRUE(got.problems.empty());
    ASSERT_GE(got.content.size(), rest.size());
    EXPECT_EQ(got.content.substr(got.content.size() - rest.size()), rest);
    if (::testing::Test::HasFailure()) break;
  }
}

// Streams the text in every split without a protocol problem (no comparison with extract()).
void stream_every_split(std::string_view parser, std::string_view text) {
  for (const auto& split : splits_of(text)) {
    SCOPED_TRACE(std::string(parser) + " split " + split.label + " of: " + std::string(text));
    const StreamedTools got = stream_tools(parser, text, split.cuts);
    EXPECT_TRUE(got.problems.empty()) << got.problems.front();
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace

TEST(ToolParsers, NamesAndErrors) {
  const auto names = tool_parser_names();
  for (const char* n : {"hermes", "llama3_json", "mistral", "pythonic"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  for (const auto& n : names) EXPECT_NE(make_tool_parser(n), nullptr);
  try {
    make_tool_parser("no_such_parser");
    FAIL() << "no error for an unknown parser";
  } catch (const vllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_parser"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("hermes"), std::string::npos);  // names the valid ones
    EXPECT_EQ(e.kind(), vllm::ErrorKind::kInvalidArgument);
  }
  EXPECT_FALSE(make_tool_parser("hermes")->wants_special_tokens());
  EXPECT_TRUE(make_tool_parser("llama3_json")->wants_special_tokens());
  EXPECT_TRUE(make_tool_parser("mistral")->wants_special_tokens());
  EXPECT_FALSE(make_tool_parser("pythonic")->wants_special_tokens());
}

TEST(ToolParsers, CallIds) {
  const std::string id = make_tool_call_id();
  ASSERT_EQ(id.size(), std::string("chatcmpl-tool-").size() + 32);
  EXPECT_EQ(id.rfind("chatcmpl-tool-", 0), 0u);
  for (char c : id.substr(14)) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  EXPECT_NE(make_tool_call_id(), make_tool_call_id());

  auto p = make_tool_parser("mistral");
  const auto got = p->extract(R"([TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}])");
  ASSERT_EQ(got.calls.size(), 2u);
  for (const auto& c : got.calls) {
    EXPECT_EQ(c.id.size(), 9u) << c.id;
    for (char ch : c.id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch))) << c.id;
  }
}

// ---------------------------------------------------------------------------------------- hermes

TEST(HermesToolParser, OneCall) {
  expect_calls("hermes", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
               {{"get_weather", R"({"city": "Paris"})"}});
}

TEST(HermesToolParser, SeveralCallsWithTextBefore) {
  expect_calls("hermes",
               "Let me check both.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
               "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\", \"fmt\": 24}}\n"
               "</tool_call>",
               {{"get_weather", R"({"city": "Paris"})"}, {"get_time", R"({"tz": "CET", "fmt": 24})"}},
               "Let me check both.\n\n");
}

TEST(HermesToolParser, NestedArgumentsAndEscapedQuotes) {
  const std::string args =
      R"({"q": "say \"hi\" \\ \/ \u00e9\ud83d\ude00", "nested": {"a": [1, 2, {"b": null}], "c": true, "d": {}}, "n": -1.5e3, "e": [], "z": 0})";
  expect_calls("hermes", "<tool_call>\n{\"name\": \"search\", \"arguments\": " + args + "}\n</tool_call>",
               {{"search", args}});
  // Whitespace inside the arguments is kept as written; around them it is not part of them.
  const std::string spaced = "{\n  \"x\" : [ 1 ,2 ]\n}";
  expect_calls("hermes", "<tool_call>{\"name\":\"f\",\"arguments\":   " + spaced + "   }</tool_call>", {{"f", spaced}});
}

TEST(HermesToolParser, Unicode) {
  expect_calls("hermes",
               "Voilà 🙂 <tool_call>\n{\"name\": \"météo_查询\", \"arguments\": {\"ville\": \"Zürich 東京 🙂\"}}\n</tool_call>",
               {{"météo_查询", R"({"ville": "Zürich 東京 🙂"})"}}, "Voilà 🙂 ");
  // A name written with escapes arrives decoded.
  expect_calls("hermes", R"(<tool_call>{"name": "caf\u00e9", "arguments": {}}</tool_call>)", {{"café", "{}"}});
}

TEST(HermesToolParser, ArgumentsBeforeName) {
  expect_calls("hermes", R"(<tool_call>{"arguments": {"x": [1, "}"]}, "id": 7, "name": "f"}</tool_call>)",
               {{"f", R"({"x": [1, "}"]})"}});
}

TEST(HermesToolParser, MissingArgumentsAreEmpty) {
  expect_calls("hermes", R"(<tool_call>{"name": "now"}</tool_call>)", {{"now", "{}"}});
}

TEST(HermesToolParser, LastBlockMayLackItsEndTag) {
  expect_calls("hermes", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n", {{"f", R"({"a": 1})"}});
  expect_calls("hermes", "<tool_call>{\"name\": \"f\", \"arguments\": {}}", {{"f", "{}"}});
}

TEST(HermesToolParser, TextBetweenAndAfterBlocks) {
  // Whitespace between and after blocks is dropped; other text is kept.
  expect_calls("hermes",
               "A<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n\n then B \n<tool_call>{\"name\": \"g\", "
               "\"arguments\": {}}</tool_call>\n done.\n",
               {{"f", "{}"}, {"g", "{}"}}, "A\n\n then B \n\n done.\n");
  expect_calls("hermes", "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n \n", {{"f", "{}"}});
}

TEST(HermesToolParser, TagInsideAStringIsText) {
  expect_calls("hermes", R"(<tool_call>{"name": "echo", "arguments": {"s": "</tool_call><tool_call>"}}</tool_call>)",
               {{"echo", R"({"s": "</tool_call><tool_call>"})"}});
}

TEST(HermesToolParser, NoCalls) {
  for (const char* text : {"", "Just an answer.", "a < b and c <tool but not a call", "<tool_cal", "<<tool_call"}) {
    check_tool_streaming("hermes", text);
    expect_content("hermes", text);
  }
}

TEST(HermesToolParser, Malformed) {
  for (const char* text : {
           "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }}\n</tool_call>",
           "Before <tool_call>not json</tool_call> after",
           "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_cal>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {}} extra</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_",
           "<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>",
           "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": \"{}\"}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"name\": \"g\", \"arguments\": {}}</tool_call>",
           "<tool_call>{\"arguments\": {}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"argu",
           "<tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"line\nbreak\"}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 01}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": NaN}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1,}}</tool_call>",
           // Surrogate escapes only in pairs (nlohmann, like UTF-8, has no lone surrogates).
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"\\ud83d\"}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"\\ude00\"}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"\\ud83d\\n\"}}</tool_call>",
       }) {
    expect_content("hermes", text);
    stream_every_split("hermes", text);
  }
  // Broken before the call was announced: streaming passes everything on as content.
  for (const char* text : {"Before <tool_call>not json</tool_call> after", "<tool_call>{\"name\": \"f\", \"argu",
                           "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>"})
    expect_malformed_streams_rest("hermes", text, text);
  // Broken inside the arguments: the rest of the text is content.
  expect_malformed_streams_rest("hermes", "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call> tail",
                                "}}</tool_call> tail");
}

TEST(HermesToolParser, ContentIsPassedOnAtOnce) {
  auto p = make_tool_parser("hermes");
  EXPECT_EQ(p->feed("Hello").content, "Hello");
  EXPECT_EQ(p->feed(" wor<").content, " wor");  // '<' could begin <tool_call>
  EXPECT_EQ(p->feed("ld <tool").content, "<ld ");
  EXPECT_EQ(p->feed("bar> ").content, "<toolbar> ");
  EXPECT_EQ(p->feed("<tool_c").content, "");
  EXPECT_EQ(p->finish().content, "<tool_c");  // a tag that never completed is text
  EXPECT_FALSE(p->tools_called());
}

TEST(HermesToolParser, TagSplitOverManyPiecesLeaksNothing) {
  auto p = make_tool_parser("hermes");
  std::string content;
  std::vector<ToolCallDelta> deltas;
  auto add = [&](DeltaMessage m) {
    content += m.content;
    for (auto& d : m.tool_calls) deltas.push_back(d);
  };
  for (const char* piece : {"Hi ", "<", "t", "oo", "l_", "ca", "ll", ">", "\n{\"na", "me\": \"g", "et\", \"argu",
                            "ments\": {\"k\"", ": \"v\"}", "}\n<", "/tool", "_call", ">"})
    add(p->feed(piece));
  add(p->finish());
  EXPECT_EQ(content, "Hi ");
  ASSERT_FALSE(deltas.empty());
  EXPECT_EQ(deltas[0].name.value_or(""), "get");
  std::string args;
  for (auto& d : deltas) args += d.arguments;
  EXPECT_EQ(args, R"({"k": "v"})");
  EXPECT_TRUE(p->tools_called());
}

TEST(HermesToolParser, ArgumentsStreamAsTheyArrive) {
  auto p = make_tool_parser("hermes");
  EXPECT_TRUE(p->feed("<tool_call>{\"name\": \"f\"").tool_calls.empty());  // name only: not yet
  DeltaMessage m = p->feed(", \"arguments\": {\"a\": \"x");
  ASSERT_EQ(m.tool_calls.size(), 1u);
  EXPECT_EQ(m.tool_calls[0].name.value_or(""), "f");
  EXPECT_EQ(m.tool_calls[0].arguments, R"({"a": "x)");
  m = p->feed("y\"}}");
  ASSERT_EQ(m.tool_calls.size(), 1u);
  EXPECT_FALSE(m.tool_calls[0].name.has_value());
  EXPECT_FALSE(m.tool_calls[0].id.has_value());
  EXPECT_EQ(m.tool_calls[0].arguments, "y\"}");
}

TEST(HermesToolParser, Utf8SplitInsideACharacterIsHeldBack) {
  auto p = make_tool_parser("hermes");
  const std::string e = "é";  // two bytes
  EXPECT_EQ(p->feed("caf" + e.substr(0, 1)).content, "caf");
  EXPECT_EQ(p->feed(e.substr(1)).content, e);
  DeltaMessage m = p->feed("<tool_call>{\"name\": \"f\", \"arguments\": {\"s\": \"" + e.substr(0, 1));
  ASSERT_EQ(m.tool_calls.size(), 1u);
  EXPECT_EQ(m.tool_calls[0].arguments, "{\"s\": \"");
  m = p->feed(e.substr(1) + "\"}}");
  ASSERT_EQ(m.tool_calls.size(), 1u);
  EXPECT_EQ(m.tool_calls[0].arguments, e + "\"}");
  // Bytes of a character that never completes are not lost: they come out at the end.
  auto q = make_tool_parser("hermes");
  EXPECT_EQ(q->feed("x\xE2\x82").content, "x");
  EXPECT_EQ(q->finish().content, "\xE2\x82");
}

TEST(HermesToolParser, ExtractIgnoresStreamingState) {
  auto p = make_tool_parser("hermes");
  p->feed("<tool_call>{\"name\": ");
  const auto got = p->extract("text");
  EXPECT_EQ(got.content, "text");
  EXPECT_FALSE(got.tools_called);
}

// ----------------------------------------------------------------------------------- llama3_json

TEST(Llama3JsonToolParser, OneCall) {
  expect_calls("llama3_json", R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}})",
               {{"get_weather", R"({"city": "Paris"})"}});
  expect_calls("llama3_json", R"({"name": "get_weather", "arguments": {"city": "Paris"}})",
               {{"get_weather", R"({"city": "Paris"})"}});
  expect_calls("llama3_json", " \n{\"name\": \"f\", \"parameters\": {}}\n", {{"f", "{}"}});
}

TEST(Llama3JsonToolParser, SeveralCalls) {
  expect_calls("llama3_json",
               R"(<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "arguments": {"y": [1, {"z": "q\"}"}]}};{"parameters": {}, "name": "c"})",
               {{"a", R"({"x": 1})"}, {"b", R"({"y": [1, {"z": "q\"}"}]})"}, {"c", "{}"}});
  // A trailing ';' is tolerated.
  expect_calls("llama3_json", R"({"name": "a", "parameters": {}}; )", {{"a", "{}"}});
}

TEST(Llama3JsonToolParser, NestedAndUnicode) {
  const std::string args = R"({"q": "日本語 \"引用\" 🙂", "opts": {"deep": [[[]]], "n": 1e-3}})";
  expect_calls("llama3_json", "<|python_tag|>{\"name\": \"検索\", \"parameters\": " + args + "}", {{"検索", args}});
}

TEST(Llama3JsonToolParser, TextAfterTheCallsIsContent) {
  expect_calls("llama3_json", "{\"name\": \"f\", \"parameters\": {}}\n\nThis gets the weather.", {{"f", "{}"}},
               "\n\nThis gets the weather.");
}

TEST(Llama3JsonToolParser, Content) {
  for (const char* text : {"", "   ", "The answer is {\"name\": \"f\", \"parameters\": {}}", "Hello!", "<|python_tag",
                           "<b>bold</b>"}) {
    check_tool_streaming("llama3_json", text);
    expect_content("llama3_json", text);
  }
  // A JSON answer is not a call: no name, or no parameters.
  for (const char* text : {R"({"answer": 42})", R"({"name": "Bob", "age": 3})"}) {
    check_tool_streaming("llama3_json", text);
    expect_malformed_streams_rest("llama3_json", text, text);
  }
}

TEST(Llama3JsonToolParser, Malformed) {
  for (const char* text : {
           R"({"name": "f", "parameters": {"x": 1})",
           R"(<|python_tag|>brave_search.call(query="x"))",
           R"({"name": "f", "parameters": {}}; and then)",
           R"({"name": "f", "parameters": {}, "arguments": {}})",
           R"({"name": "f", "parameters": [1]})",
           R"(<|python_tag|>)",
       }) {
    expect_content("llama3_json", text);
    stream_every_split("llama3_json", text);
  }
  expect_malformed_streams_rest("llama3_json", R"(<|python_tag|>brave_search.call(query="x"))",
                                R"(<|python_tag|>brave_search.call(query="x"))");
  expect_malformed_streams_rest("llama3_json", R"({"name": "f", "parameters": {}}; and then)", "; and then");
}

// --------------------------------------------------------------------------------------- mistral

TEST(MistralToolParser, OneCall) {
  expect_calls("mistral", R"([TOOL_CALLS][{"name": "add", "arguments": {"a": 3.5, "b": 4}}])",
               {{"add", R"({"a": 3.5, "b": 4})"}});
  expect_calls("mistral", R"([TOOL_CALLS] [ {"arguments": {}, "name": "now"} ] )", {{"now", "{}"}});
}

TEST(MistralToolParser, SeveralCallsAndTextBefore) {
  expect_calls("mistral",
               "Sure, both:\n[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}, {\"name\": \"mul\", "
               "\"arguments\": {\"v\": [1, [2, {\"w\": \"\\\"}\"}]]}}]",
               {{"add", R"({"a": 1, "b": 2})"}, {"mul", R"({"v": [1, [2, {"w": "\"}"}]]})"}}, "Sure, both:\n");
}

TEST(MistralToolParser, NameThenArgumentsForm) {
  expect_calls("mistral", R"([TOOL_CALLS]add{"a": 1, "b": {"c": [2]}}[TOOL_CALLS]mul{"x": "é"})",
               {{"add", R"({"a": 1, "b": {"c": [2]}})"}, {"mul", R"({"x": "é"})"}});
  expect_calls("mistral", R"(Text [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"})",
               {{"get_weather", R"({"city": "Paris"})"}}, "Text ");
}

TEST(MistralToolParser, Unicode) {
  expect_calls("mistral", R"(Ça va 🙂[TOOL_CALLS][{"name": "天気", "arguments": {"都市": "東京 🗼"}}])",
               {{"天気", R"({"都市": "東京 🗼"})"}}, "Ça va 🙂");
}

TEST(MistralToolParser, ContentAndMalformed) {
  for (const char* text : {"", "No tools here.", "[TOOL_CALL", "[TOOL]S]"}) {
    check_tool_streaming("mistral", text);
    expect_content("mistral", text);
  }
  for (const char* text : {
           R"([TOOL_CALLS][{"name": "add", "arguments": {"a": }}])",
           R"([TOOL_CALLS][{"name": "add", "arguments": {"a": 1}})",
           R"([TOOL_CALLS]{"name": "add", "arguments": {}})",
           R"([TOOL_CALLS][{"name": "add", "arguments": {}},])",
           "[TOOL_CALLS]",
           R"([TOOL_CALLS]add[ARG]{})",
           R"([TOOL_CALLS]add{"a": 1)",
       }) {
    expect_content("mistral", text);
    stream_every_split("mistral", text);
  }
  expect_malformed_streams_rest("mistral", R"(Hi [TOOL_CALLS]{"name": "add"})", R"(Hi [TOOL_CALLS]{"name": "add"})");
}

// -------------------------------------------------------------------------------------- pythonic

TEST(PythonicToolParser, OneCall) {
  expect_calls("pythonic", R"([get_weather(city="Paris", days=3)])", {{"get_weather", R"({"city": "Paris", "days": 3})"}});
  expect_calls("pythonic", "  [get_time()]\n", {{"get_time", "{}"}});
}

TEST(PythonicToolParser, SeveralCalls) {
  expect_calls("pythonic", R"([f(a=1, b="x"), g(c=[1, 2], d={"k": None})])",
               {{"f", R"({"a": 1, "b": "x"})"}, {"g", R"({"c": [1, 2], "d": {"k": null}})"}});
  expect_calls("pythonic", "[\n  f(a=1,),\n  g (b = 'two')  ,\n]", {{"f", R"({"a": 1})"}, {"g", R"({"b": "two"})"}});
}

// Every literal form, against what Python's ast + json.dumps(..., ensure_ascii=False) gives
// (tuples as lists).
TEST(PythonicToolParser, LiteralsAsJsonDumpsWritesThem) {
  const std::string source = R"PY([f(s='it\'s "q"', t="tab\there", u='\u00e9\x41\101', r=r'\d+\'', tr='''multi
line "x" '' end''', tr2="""a""b""", i=0x1F, o=0o17, b=0b101, big=123_456789012345678901234567890, hx=0xFFFFFFFFFFFFFFFFFFFF, neg=-5, nz=-0, fl=1.5, nf=- 2.25, e=1e16, e2=1.5e-7, small=1e-5, f2=2., f3=.5, f4=1_000.5, f5=123456789.0, f6=0.1, f7=1e22, zero=0.0, nzero=-0.0, tup=(1, 'a'), one=(1,), grp=(2), emp=(), d={1: True, 'x': False, None: 1.0, 2.5: 'y'}, nested=[[], {}, [[1]], ((1, 2),)], esc="\a\b\f\v\0\x7f\q", ctl="\x01", emoji="🙂\U0001F600", uq=u'ü'), g()])PY";
  const std::string f_args = R"JS({"s": "it's \"q\"", "t": "tab\there", "u": "éAA", "r": "\\d+\\'", "tr": "multi\nline \"x\" '' end", "tr2": "a\"\"b", "i": 31, "o": 15, "b": 5, "big": 123456789012345678901234567890, "hx": 1208925819614629174706175, "neg": -5, "nz": 0, "fl": 1.5, "nf": -2.25, "e": 1e+16, "e2": 1.5e-07, "small": 1e-05, "f2": 2.0, "f3": 0.5, "f4": 1000.5, "f5": 123456789.0, "f6": 0.1, "f7": 1e+22, "zero": 0.0, "nzero": -0.0, "tup": [1, "a"], "one": [1], "grp": 2, "emp": [], "d": {"1": true, "x": false, "null": 1.0, "2.5": "y"}, "nested": [[], {}, [[1]], [[1, 2]]], "esc": "\u0007\b\f\u000b\u0000)JS" "\x7f" R"JS(\\q", "ctl": "\u0001", "emoji": "🙂😀", "uq": "ü"})JS";
  expect_calls("pythonic", source, {{"f", f_args}, {"g", "{}"}});
}

TEST(PythonicToolParser, Unicode) {
  expect_calls("pythonic", R"([météo(ville="Zürich 🙂", 日付='\u65e5')])",
               {{"météo", R"({"ville": "Zürich 🙂", "日付": "日"})"}});
}

TEST(PythonicToolParser, NotACallList) {
  for (const char* text : {"", "Hello", "[1, 2, 3]", "[]", "[Note] text", "Sure: [f(a=1)]", "[f(1)]", "[f(a=1, a=2)]",
                           "[f(a=x)]", "[f(a=1)] trailing", "[f(a=1)", "[f(a=[1, 2)]", "[f(a='unterminated\n')]",
                           "[f(a=1e999)]", "[f(a=1j)]", "[f(a={1, 2})]", "[f(a=b'x')]", "[f(a=-True)]", "[f(a=010)]",
                           "[mod.f(a=1)]", "[f(**kw)]", "[f(a=1)(b=2)]", "[f(a='\\N{DASH}')]", "[f(a='\\ud83d\\ude00')]", "[f(a={[1]: 2})]"}) {
    expect_content("pythonic", text);
    stream_every_split("pythonic", text);
  }
  for (const char* text : {"Hello", "[1, 2, 3]", "[]", "[Note] text", "Sure: [f(a=1)]", " [f. (1)]"})
    expect_malformed_streams_rest("pythonic", text, text);
  // A call is announced at its '(': what goes wrong after it leaves the rest as content.
  expect_malformed_streams_rest("pythonic", " [f (1)]", "1)]");
  expect_malformed_streams_rest("pythonic", "[f(a=1), g(b=x)]", "x)]");
  // A value whose end is only seen at the next byte: that byte is still the rest (fuzz finding:
  // it was lost, cutting a UTF-8 sequence in two).
  expect_malformed_streams_rest("pythonic", "[f(a=\"\"é)]", "é)]");
  expect_malformed_streams_rest("pythonic", "[f(a=12 é)]", " é)]");
  // Bytes whose JSON is not all out yet (a name being read, a held parenthesis) are part of the
  // rest too (fuzz finding: the first byte of a bad name was lost).
  expect_malformed_streams_rest("pythonic", "[f(a=[None, é x])]", "é x])]");
  expect_malformed_streams_rest("pythonic", "[f(a=[1, (2 x)])]", "(2 x)])]");
  expect_malformed_streams_rest("pythonic", "[f(a={'k é' x})]", "'k é' x})]");
  expect_malformed_streams_rest("pythonic", "[f(a={'k é': 1 x})]", "x})]");
}

TEST(PythonicToolParser, FloatRepr) {
  using vllm::parsers::make_tool_parser;
  const std::pair<const char*, const char*> cases[] = {
      {"0.1", "0.1"},       {"1e15", "1000000000000000.0"}, {"1e16", "1e+16"},       {"1e-4", "0.0001"},
      {"1.5e-5", "1.5e-05"}, {"123e-2", "1.23"},            {"5e-324", "5e-324"},     {"1.7976931348623157e308", "1.7976931348623157e+308"},
      {"3.", "3.0"},        {"0.30000000000000004", "0.30000000000000004"}, {"-0.5", "-0.5"}, {"1_0.0_1", "10.01"},
  };
  for (const auto& [py, json] : cases) {
    const auto got = make_tool_parser("pythonic")->extract(std::string("[f(x=") + py + ")]");
    ASSERT_EQ(got.calls.size(), 1u) << py;
    EXPECT_EQ(got.calls[0].arguments, std::string("{\"x\": ") + json + "}") << py;
  }
}

// --------------------------------------------------------------------------------- fuzz-like loop

namespace {

// What streaming produced, reduced to what must not depend on the split.
std::string summary(const StreamedTools& s) {
  std::string out = "content=" + s.content;
  for (const auto& c : s.calls) out += "|call " + c.name + " " + c.arguments;
  return out;
}

const char* const kValidOutputs[][2] = {
    {"hermes", "Hi <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, \"é\"], \"b\": {\"c\": null}}}\n</tool_call>\n"
               "<tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>"},
    {"llama3_json", "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"a\": \"x\\\"y\"}}; {\"name\": \"g\", \"parameters\": {}}"},
    {"mistral", "Ok [TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1.5}}, {\"name\": \"g\", \"arguments\": {}}]"},
    {"mistral", "[TOOL_CALLS]f{\"a\": [true, false]}[TOOL_CALLS]g[ARGS]{}"},
    {"pythonic", "[f(a=1, b='x\\'y', c=(1,), d={'k': [None, True]}), g(h=-1.5e3, i=\"\"\"t\"\"\")]"},
};

// Pieces that mean something to some parser, and some that mean nothing.
const char* const kAlphabet[] = {"<tool_call>", "</tool_call>", "<|python_tag|>", "[TOOL_CALLS]", "[ARGS]", "{", "}",
                                 "[", "]", "(", ")", "\"", "'", "\\", ":", ",", ";", "=", " ", "\n", "name", "\"name\"",
                                 "\"arguments\"", "\"parameters\"", "f", "1", "-", ".", "e", "True", "None", "é", "🙂",
                                 "\xE2", "\x82", "\xFF", "<", "/", "_", "u00e9", "\"\"\"", "'''", "0x"};

std::string random_text(std::mt19937& rng) {
  std::uniform_int_distribution<size_t> len(0, 40), pick(0, std::size(kAlphabet) - 1);
  std::string s;
  for (size_t n = len(rng); n > 0; --n) s += kAlphabet[pick(rng)];
  return s;
}

std::string mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 4), count(1, 4);
  std::uniform_int_distribution<size_t> pick(0, std::size(kAlphabet) - 1);
  for (int n = count(rng); n > 0; --n) {
    const size_t pos = s.empty() ? 0 : std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng);
    switch (op(rng)) {
      case 0:
        if (!s.empty()) s.erase(pos, 1);
        break;
      case 1:
        s.insert(pos, kAlphabet[pick(rng)]);
        break;
      case 2:
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 3:
        if (!s.empty()) s.erase(pos, std::uniform_int_distribution<size_t>(0, s.size() - pos)(rng));
        break;
      case 4:
        s.insert(pos, s.substr(pos, 8));
        break;
    }
  }
  return s;
}

void check_any_text(std::string_view parser, const std::string& text, uint32_t seed) {
  SCOPED_TRACE(std::string(parser) + " on: " + text);
  ExtractedToolCalls want;
  ASSERT_NO_THROW(want = make_tool_parser(parser)->extract(text));
  EXPECT_EQ(want.tools_called, !want.calls.empty());
  if (!want.tools_called && parser != "mistral") {
    EXPECT_EQ(want.content, text);
  }
  StreamedTools whole;
  ASSERT_NO_THROW(whole = stream_tools(parser, text, {}));
  EXPECT_TRUE(whole.problems.empty()) << whole.problems.front();
  Cuts bytes;
  for (size_t i = 1; i < text.size(); ++i) bytes.push_back(i);
  for (const Cuts& cuts : {bytes, random_cuts(text.size(), seed), random_cuts(text.size(), seed + 1, 3)}) {
    StreamedTools got;
    ASSERT_NO_THROW(got = stream_tools(parser, text, cuts));
    EXPECT_TRUE(got.problems.empty()) << got.problems.front();
    EXPECT_EQ(summary(got), summary(whole));
  }
  // A well-formed result streams exactly as extracted.
  if (want.tools_called) {
    EXPECT_EQ(whole.content, want.content);
    ASSERT_EQ(whole.calls.size(), want.calls.size());
    for (size_t i = 0; i < want.calls.size(); ++i) {
      EXPECT_EQ(whole.calls[i].name, want.calls[i].name);
      EXPECT_EQ(whole.calls[i].arguments, want.calls[i].arguments);
      // (Bytes that are not UTF-8 pass through: then the text is not JSON that nlohmann reads.)
      if (valid_utf8(text)) {
        EXPECT_TRUE(nlohmann::json::parse(want.calls[i].arguments, nullptr, false).is_object()) << want.calls[i].arguments;
      }
    }
  }
  // Nothing is lost when no call was made (mistral's empty list, [TOOL_CALLS][], is no call).
  if (whole.calls.empty() && parser != "mistral") {
    EXPECT_EQ(whole.content, text);
  }
  if (valid_utf8(text)) {
    for (const auto& e : whole.emitted) EXPECT_TRUE(valid_utf8(e));
  }
}

}  // namespace

TEST(ToolParsersFuzz, ValidOutputsStreamInEverySplit) {
  for (const auto& [parser, text] : kValidOutputs) {
    const auto got = check_tool_streaming(parser, text);
    EXPECT_TRUE(got.tools_called) << parser;
    EXPECT_EQ(got.calls.size(), 2u) << parser;
  }
}

TEST(ToolParsersFuzz, RandomTextNeverThrowsAndStreamsTheSameInAnySplit) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 400; ++i) {
    const std::string text = random_text(rng);
    for (const auto& parser : tool_parser_names()) {
      check_any_text(parser, text, static_cast<uint32_t>(i));
      if (HasFailure()) return;
    }
  }
}

TEST(ToolParsersFuzz, MutatedOutputsNeverThrowAndStreamTheSameInAnySplit) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    for (const auto& [parser, valid] : kValidOutputs) {
      const std::string text = mutate(valid, rng);
      for (const auto& other : tool_parser_names()) check_any_text(other, text, static_cast<uint32_t>(i));
      if (HasFailure()) return;
    }
  }
}
