// Tool-call and reasoning parsers: a model's output text. The first byte picks the parser
// (every --tool-call-parser and --reasoning-parser name), the second how the text is cut into
// streamed pieces (and, for reasoning, whether the prompt closed the reasoning); the rest is
// the text. Runs extract() and streaming, whole and in pieces.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "vllm/parsers/reasoning_parser.h"
#include "vllm/parsers/tool_parser.h"

using namespace vllm::parsers;

namespace {

// Piece lengths 1..16 from a small generator seeded by the input: the same input always
// streams the same way.
std::vector<std::string_view> cut(std::string_view text, uint8_t seed) {
  std::vector<std::string_view> out;
  uint32_t state = seed * 2654435761u + 1;
  while (!text.empty()) {
    state = state * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(text.size(), 1 + (state >> 16) % 16);
    out.push_back(text.substr(0, n));
    text.remove_prefix(n);
  }
  return out;
}

struct Streamed {
  std::string content;
  std::vector<ToolCall> calls;
};

// Streams the pieces, checking the protocol: a call's first delta has its id and whole name,
// later ones neither; calls come one after the other.
Streamed stream_tools(ToolParser& p, const std::vector<std::string_view>& pieces, bool utf8_text) {
  Streamed s;
  auto add = [&](const DeltaMessage& m) {
    FUZZ_CHECK(m.reasoning.empty());
    if (utf8_text) FUZZ_CHECK(vllm::fuzz::valid_utf8(m.content));
    s.content += m.content;
    for (const auto& d : m.tool_calls) {
      if (utf8_text) FUZZ_CHECK(vllm::fuzz::valid_utf8(d.arguments));
      if (d.index == static_cast<int>(s.calls.size())) {
        FUZZ_CHECK(d.id && !d.id->empty() && d.name && !d.name->empty());
        s.calls.push_back({*d.id, *d.name, d.arguments});
      } else {
        FUZZ_CHECK(d.index == static_cast<int>(s.calls.size()) - 1 && !d.id && !d.name);
        s.calls.back().arguments += d.arguments;
      }
    }
  };
  for (auto piece : pieces) add(p.feed(piece));
  add(p.finish());
  FUZZ_CHECK(p.tools_called() == !s.calls.empty());
  return s;
}

bool same(const Streamed& a, const Streamed& b) {
  if (a.content != b.content || a.calls.size() != b.calls.size()) return false;
  for (size_t i = 0; i < a.calls.size(); ++i)
    if (a.calls[i].name != b.calls[i].name || a.calls[i].arguments != b.calls[i].arguments) return false;
  return true;
}

void run_tool_parser(const std::string& name, std::string_view text, uint8_t seed) {
  const bool utf8_text = vllm::fuzz::valid_utf8(std::string(text));
  const ExtractedToolCalls want = make_tool_parser(name)->extract(text);
  FUZZ_CHECK(want.tools_called == !want.calls.empty());
  // Not calls: the whole text is content (mistral's [TOOL_CALLS][] is an empty list of calls).
  if (!want.tools_called && name != "mistral") FUZZ_CHECK(want.content == text);

  auto whole_parser = make_tool_parser(name);
  const Streamed whole = stream_tools(*whole_parser, {text}, utf8_text);
  auto pieces_parser = make_tool_parser(name);
  const Streamed pieces = stream_tools(*pieces_parser, cut(text, seed), utf8_text);
  FUZZ_CHECK(same(whole, pieces));  // streaming does not depend on how the text arrives

  if (want.tools_called) {  // well-formed: streaming gives exactly what extract() gives
    Streamed extracted{want.content, want.calls};
    FUZZ_CHECK(same(whole, extracted));
    for (const auto& c : want.calls) {
      FUZZ_CHECK(!c.name.empty() && !c.id.empty());
      if (utf8_text) FUZZ_CHECK(nlohmann::json::accept(c.arguments) && c.arguments.front() == '{');
    }
  }
}

void run_reasoning_parser(const std::string& name, std::string_view text, uint8_t seed) {
  const std::string_view prompt = (seed & 1) ? "<|im_start|>assistant\n<think>\n\n</think>\n\n" : "";
  const bool utf8_text = vllm::fuzz::valid_utf8(std::string(text));
  const auto want = make_reasoning_parser(name, prompt)->extract(text);
  FUZZ_CHECK(!want.first || !want.first->empty());
  FUZZ_CHECK(!want.second || !want.second->empty());
  for (const auto& pieces : {std::vector<std::string_view>{text}, cut(text, seed)}) {
    auto p = make_reasoning_parser(name, prompt);
    std::string reasoning, content;
    auto add = [&](const DeltaMessage& m) {
      FUZZ_CHECK(m.tool_calls.empty());
      if (utf8_text) FUZZ_CHECK(vllm::fuzz::valid_utf8(m.reasoning) && vllm::fuzz::valid_utf8(m.content));
      reasoning += m.reasoning;
      content += m.content;
    };
    for (auto piece : pieces) add(p->feed(piece));
    add(p->finish());
    FUZZ_CHECK(reasoning == want.first.value_or(""));
    FUZZ_CHECK(content == want.second.value_or(""));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const std::vector<std::string> tools = tool_parser_names();
  static const std::vector<std::string> reasoning = reasoning_parser_names();
  const size_t pick = data[0] % (tools.size() + reasoning.size());
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (pick < tools.size()) {
    run_tool_parser(tools[pick], text, data[1]);
  } else {
    run_reasoning_parser(reasoning[pick - tools.size()], text, data[1]);
  }
  return 0;
}
