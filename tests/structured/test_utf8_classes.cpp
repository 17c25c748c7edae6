// Code point classes against a brute-force reference: for random classes (ranges placed around
// the UTF-8 length boundaries and the surrogates, negated or not), every code point's encoding is
// matched iff the code point is in the class, and invalid UTF-8 is never matched.
#include <random>

#include "structured_test_util.h"
#include "vllm/structured/utf8_classes.h"

namespace vllm::structured::test {
namespace {

std::string encode(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

std::string escape(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\U%08X", cp);
  return buf;
}

struct RandomClass {
  std::vector<CodePointRange> ranges;  // as written
  bool negate = false;
  bool contains(uint32_t cp) const {
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // never encodable
    bool in = false;
    for (const CodePointRange& r : ranges) in = in || (cp >= r.lo && cp <= r.hi);
    return in != negate;
  }
  std::string gbnf() const {
    std::string g = "root ::= [";
    if (negate) g += "^";
    for (const CodePointRange& r : ranges) {
      g += escape(r.lo);
      if (r.hi != r.lo) g += "-" + escape(r.hi);
    }
    return g + "]";
  }
};

RandomClass random_class(std::mt19937& rng) {
  static const uint32_t kEdges[] = {0x0, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0x7FF, 0x800, 0xFFF, 0x1000, 0xD7FF, 0xD800,
                                    0xDFFF, 0xE000, 0xFFFF, 0x10000, 0x3FFFF, 0x40000, 0x10FFFF};
  RandomClass c;
  c.negate = rng() % 2;
  const int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    auto point = [&]() -> uint32_t {
      const uint32_t e = kEdges[rng() % (sizeof(kEdges) / sizeof(kEdges[0]))];
      const int64_t jitter = static_cast<int64_t>(rng() % 5) - 2;
      return static_cast<uint32_t>(std::clamp<int64_t>(static_cast<int64_t>(e) + jitter, 0, 0x10FFFF));
    };
    uint32_t a = point(), b = point();
    if (rng() % 3 == 0) b = static_cast<uint32_t>(std::min<uint64_t>(0x10FFFF, a + rng() % 3000));
    if (a > b) std::swap(a, b);
    c.ranges.push_back({a, b});
  }
  return c;
}

// Code points to test for a class: everything up to U+0FFF, every range end +- 3, the length
// and surrogate boundaries, and a random sample.
std::vector<uint32_t> probe_points(const RandomClass& c, std::mt19937& rng) {
  std::vector<uint32_t> cps;
  for (uint32_t cp = 0; cp < 0x1000; ++cp) cps.push_back(cp);
  auto around = [&](uint32_t x) {
    for (int64_t d = -3; d <= 3; ++d) {
      const int64_t y = static_cast<int64_t>(x) + d;
      if (y >= 0 && y <= 0x10FFFF) cps.push_back(static_cast<uint32_t>(y));
    }
  };
  for (const CodePointRange& r : c.ranges) {
    around(r.lo);
    around(r.hi);
  }
  for (uint32_t x : {0xD800u, 0xDFFFu, 0xFFFFu, 0x10000u, 0x10FFFFu, 0x3FFFFu, 0x40000u}) around(x);
  for (int i = 0; i < 3000; ++i) cps.push_back(static_cast<uint32_t>(rng() % 0x110000));
  return cps;
}

bool full_match(GrammarMatcher& m, std::string_view s) {
  if (!m.accept_bytes(s)) return false;
  const bool done = m.can_terminate();
  m.rollback(1);
  return done;
}

TEST(Utf8Classes, RandomClassesAgainstBruteForce) {
  std::mt19937 rng(7);
  for (int round = 0; round < 60; ++round) {
    const RandomClass c = random_class(rng);
    const std::string g = c.gbnf();
    std::shared_ptr<const CompiledGrammar> compiled;
    try {
      compiled = CompiledGrammar::from_gbnf(g, nullptr);
    } catch (const GrammarError& e) {
      // Only a class with no code point at all is an error.
      bool any = false;
      for (uint32_t cp = 0; cp <= 0x10FFFF && !any; ++cp) any = c.contains(cp);
      EXPECT_FALSE(any) << g << ": " << e.what();
      continue;
    }
    GrammarMatcher m(compiled);
    // A few classes exhaustively, the others on the probe points.
    std::vector<uint32_t> cps;
    if (round < 3) {
      for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) cps.push_back(cp);
    } else {
      cps = probe_points(c, rng);
    }
    int wrong = 0;
    for (uint32_t cp : cps) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // not encodable; checked below as bytes
      const bool expected = c.contains(cp);
      if (full_match(m, encode(cp)) != expected && ++wrong <= 5) {
        ADD_FAILURE() << g << ": U+" << std::hex << cp << " expected " << expected;
      }
    }
    // Surrogates written as (invalid) 3-byte sequences never match.
    for (uint32_t cp : {0xD800u, 0xDBFFu, 0xDC00u, 0xDFFFu}) {
      const std::string bytes = {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
                                 static_cast<char>(0x80 | (cp & 0x3F))};
      EXPECT_FALSE(full_match(m, bytes)) << g;
    }
  }
}

// The exact set of valid 2-byte prefixes of UTF-8 (Unicode Table 3-7).
bool valid_second(uint8_t lead, uint8_t b) {
  if (lead >= 0xC2 && lead <= 0xDF) return b >= 0x80 && b <= 0xBF;
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) return b >= 0x80 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead >= 0xF1 && lead <= 0xF3) return b >= 0x80 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return false;
}

TEST(Utf8Classes, InvalidUtf8NeverMatches) {
  GrammarMatcher any(CompiledGrammar::from_gbnf("root ::= .*", nullptr));
  // Every single byte: viable iff ASCII or a lead byte of a valid sequence.
  for (int b = 0; b < 256; ++b) {
    const std::string s(1, static_cast<char>(b));
    const bool lead = b < 0x80 || (b >= 0xC2 && b <= 0xF4);
    const bool ok = any.accept_bytes(s);
    EXPECT_EQ(ok, lead) << b;
    if (ok) {
      EXPECT_EQ(any.can_terminate(), b < 0x80) << b;
      any.rollback(1);
    }
  }
  // Every pair of bytes after a lead byte: exactly Table 3-7.
  for (int lead = 0xC2; lead <= 0xF4; ++lead) {
    for (int b = 0; b < 256; ++b) {
      const std::string s = {static_cast<char>(lead), static_cast<char>(b)};
      const bool ok = any.accept_bytes(s);
      EXPECT_EQ(ok, valid_second(static_cast<uint8_t>(lead), static_cast<uint8_t>(b))) << lead << " " << b;
      if (ok) {
        EXPECT_EQ(any.can_terminate(), lead <= 0xDF);
        any.rollback(1);
      }
    }
  }
  // Overlongs, surrogates, past U+10FFFF, truncated sequences, stray continuations.
  for (const char* bad : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xF0\x80\x80\x80",
                          "\xF0\x8F\xBF\xBF", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80",
                          "\xF5\x80\x80\x80", "\xFF", "\x80", "a\xBF"}) {
    EXPECT_FALSE(any.accept_bytes(bad)) << bad;
  }
  for (const char* truncated : {"\xC3", "\xE6\x97", "\xF0\x9F\x98"}) {
    ASSERT_TRUE(any.accept_bytes(truncated));
    EXPECT_FALSE(any.can_terminate());
    any.rollback(1);
  }
}

TEST(Utf8Classes, SequencesAreCompact) {
  // [^"\\] is the ASCII set plus one path per UTF-8 shape: eight edges at the root.
  const auto cls = normalize_class({{'"', '"'}, {'\\', '\\'}}, true);
  const auto tree = utf8_class_sequences(cls);
  EXPECT_EQ(tree->edges.size(), 8u);
  // Paths that share their first byte set are joined: U+0100-0110 and U+0120-0130 both start
  // with C4, and become one edge C4 -> [80-90 A0-B0].
  const auto two = utf8_class_sequences(normalize_class({{0x100, 0x110}, {0x120, 0x130}}, false));
  ASSERT_EQ(two->edges.size(), 1u);
  ASSERT_EQ(two->edges[0].next->edges.size(), 1u);
  EXPECT_EQ(two->edges[0].next->edges[0].bytes.count(), 17 + 17);
}

}  // namespace
}  // namespace vllm::structured::test
