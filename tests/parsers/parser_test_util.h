// Shared by the parser tests: feeding a text in chosen pieces, checking the streaming protocol
// on the way, and the splits every case is streamed with.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/parsers/reasoning_parser.h"
#include "vllm/parsers/tool_parser.h"

namespace parsers_test {

using namespace vllm::parsers;

// Cut positions (strictly inside the text, increasing) describing a split into pieces.
using Cuts = std::vector<size_t>;

struct Split {
  std::string label;
  Cuts cuts;
};

inline std::vector<std::string_view> pieces(std::string_view text, const Cuts& cuts) {
  std::vector<std::string_view> out;
  size_t prev = 0;
  for (size_t c : cuts) {
    out.push_back(text.substr(prev, c - prev));
    prev = c;
  }
  out.push_back(text.substr(prev));
  return out;
}

inline Cuts random_cuts(size_t size, uint32_t seed, size_t max_piece = 7) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> len(1, max_piece);
  Cuts cuts;
  for (size_t pos = len(rng); pos < size; pos += len(rng)) cuts.push_back(pos);
  return cuts;
}

// Whole, one byte at a time, random pieces (5 seeds), and for short texts every split in two.
inline std::vector<Split> splits_of(std::string_view text) {
  std::vector<Split> out;
  out.push_back({"whole", {}});
  Cuts bytes;
  for (size_t i = 1; i < text.size(); ++i) bytes.push_back(i);
  out.push_back({"bytes", bytes});
  for (uint32_t seed = 1; seed <= 5; ++seed) out.push_back({"random" + std::to_string(seed), random_cuts(text.size(), seed)});
  if (text.size() <= 400)
    for (size_t i = 1; i < text.size(); ++i) out.push_back({"two@" + std::to_string(i), {i}});
  return out;
}

// Whether s is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < n + 1) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// What a client assembles from a stream of tool-call deltas.
struct StreamedTools {
  std::string content;
  std::vector<ToolCall> calls;
  bool tools_called = false;
  std::vector<std::string> problems;  // streaming-protocol violations
  std::vector<std::string> emitted;   // every non-empty emitted string, to check UTF-8 on
};

inline void collect(StreamedTools& s, const DeltaMessage& m) {
  s.content += m.content;
  if (!m.content.empty()) s.emitted.push_back(m.content);
  if (!m.reasoning.empty()) s.problems.push_back("a tool parser emitted reasoning");
  for (const auto& d : m.tool_calls) {
    if (!d.arguments.empty()) s.emitted.push_back(d.arguments);
    if (d.index == static_cast<int>(s.calls.size())) {
      // A new call: its first delta has the id and the whole name.
      if (!d.id || d.id->empty()) s.problems.push_back("first delta of call " + std::to_string(d.index) + " has no id");
      if (!d.name || d.name->empty())
        s.problems.push_back("first delta of call " + std::to_string(d.index) + " has no name");
      s.calls.push_back({d.id.value_or(""), d.name.value_or(""), d.arguments});
    } else if (d.index == static_cast<int>(s.calls.size()) - 1) {
      if (d.id || d.name) s.problems.push_back("a later delta of call " + std::to_string(d.index) + " repeats id or name");
      s.calls.back().arguments += d.arguments;
    } else {
      s.problems.push_back("delta for call " + std::to_string(d.index) + " while at call " +
                           std::to_string(static_cast<int>(s.calls.size()) - 1));
    }
  }
}

inline StreamedTools stream_tools(std::string_view parser, std::string_view text, const Cuts& cuts) {
  auto p = make_tool_parser(parser);
  StreamedTools s;
  for (auto piece : pieces(text, cuts)) collect(s, p->feed(piece));
  collect(s, p->finish());
  s.tools_called = p->tools_called();
  if (s.tools_called != !s.calls.empty()) s.problems.push_back("tools_called() disagrees with the deltas");
  return s;
}

// Streams `text` in every split and checks it against extract(); returns extract()'s result.
inline ExtractedToolCalls check_tool_streaming(std::string_view parser, std::string_view text) {
  auto p = make_tool_parser(parser);
  const ExtractedToolCalls want = p->extract(text);
  const bool utf8_text = valid_utf8(text);
  for (const auto& split : splits_of(text)) {
    SCOPED_TRACE(std::string(parser) + " split " + split.label + " of: " + std::string(text));
    const StreamedTools got = stream_tools(parser, text, split.cuts);
    EXPECT_TRUE(got.problems.empty()) << got.problems.front();
    EXPECT_EQ(got.content, want.content);
    EXPECT_EQ(got.tools_called, want.tools_called);
    EXPECT_EQ(got.calls.size(), want.calls.size());
    for (size_t i = 0; i < want.calls.size() && i < got.calls.size(); ++i) {
      EXPECT_EQ(got.calls[i].name, want.calls[i].name) << "call " << i;
      EXPECT_EQ(got.calls[i].arguments, want.calls[i].arguments) << "call " << i;
    }
    if (utf8_text) {
      for (const auto& e : got.emitted) EXPECT_TRUE(valid_utf8(e)) << "broken UTF-8 emitted: " << e;
    }
    if (::testing::Test::HasFailure()) break;  // one split's report is enough
  }
  return want;
}

// Reasoning: what a client assembles.
struct StreamedReasoning {
  std::string reasoning;
  std::string content;
  std::vector<std::string> emitted;
};

inline StreamedReasoning stream_reasoning(std::string_view parser, std::string_view prompt, std::string_view text,
                                          const Cuts& cuts) {
  auto p = make_reasoning_parser(parser, prompt);
  StreamedReasoning s;
  auto add = [&](const DeltaMessage& m) {
    s.reasoning += m.reasoning;
    s.content += m.content;
    if (!m.reasoning.empty()) s.emitted.push_back(m.reasoning);
    if (!m.content.empty()) s.emitted.push_back(m.content);
    EXPECT_TRUE(m.tool_calls.empty());
  };
  for (auto piece : pieces(text, cuts)) add(p->feed(piece));
  add(p->finish());
  return s;
}

using ReasoningResult = std::pair<std::optional<std::string>, std::optional<std::string>>;

inline ReasoningResult check_reasoning_streaming(std::string_view parser, std::string_view text,
                                                 std::string_view prompt = {}) {
  auto p = make_reasoning_parser(parser, prompt);
  const ReasoningResult want = p->extract(text);
  const bool utf8_text = valid_utf8(text);
  for (const auto& split : splits_of(text)) {
    SCOPED_TRACE(std::string(parser) + " split " + split.label + " of: " + std::string(text));
    const StreamedReasoning got = stream_reasoning(parser, prompt, text, split.cuts);
    EXPECT_EQ(got.reasoning, want.first.value_or(""));
    EXPECT_EQ(got.content, want.second.value_or(""));
    if (utf8_text) {
      for (const auto& e : got.emitted) EXPECT_TRUE(valid_utf8(e)) << "broken UTF-8 emitted: " << e;
    }
    if (::testing::Test::HasFailure()) break;
  }
  return want;
}

}  // namespace parsers_test
