// The matcher against an independent reference on random grammars and random strings.
//
// Each random grammar is built here as a syntax tree (literals, code point classes, references,
// sequences, alternatives, every kind of repetition), printed as GBNF for the parser, and
// interpreted directly by a memoised recursive recogniser over bytes that knows nothing of the
// parser's desugaring, the automaton or the matcher. For every string: the matcher accepts it as
// a prefix iff the reference says some string of the language starts with it, and can_terminate
// iff the reference matches it whole.
#include <map>
#include <random>
#include <set>

#include "structured_test_util.h"

namespace vllm::structured::test {
namespace {

struct Expr {
  enum Kind { kLit, kClass, kRef, kSeq, kAlt, kRep } kind = kLit;
  std::string lit;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // kClass, as written
  bool negate = false;
  bool any = false;  // kClass written as '.'
  int ref = 0;
  std::vector<Expr> kids;
  int min = 0, max = 0;  // kRep; max < 0: unbounded
};

// ---------------------------------------------------------------------------------------------
// The reference recogniser.

bool in_class(const Expr& e, uint32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  if (e.any) return true;
  bool in = false;
  for (const auto& [lo, hi] : e.ranges) in = in || (cp >= lo && cp <= hi);
  return in != e.negate;
}

// Whether some code point in [lo, hi] is in the class (ranges are small here: test by walking
// the class's boundaries rather than every code point).
bool class_meets(const Expr& e, uint32_t lo, uint32_t hi) {
  std::set<uint32_t> probes = {lo, hi};
  for (const auto& [a, b] : e.ranges) {
    for (int64_t x : {static_cast<int64_t>(a) - 1, static_cast<int64_t>(a), static_cast<int64_t>(b),
                      static_cast<int64_t>(b) + 1}) {
      if (x >= lo && x <= hi) probes.insert(static_cast<uint32_t>(x));
    }
  }
  for (uint32_t x : {0xD7FFu, 0xE000u}) {
    if (x >= lo && x <= hi) probes.insert(x);
  }
  // The class is a union of ranges (or its complement), so membership changes only at these
  // boundaries: a range [lo, hi] meets the class iff one of the probes is in it.
  for (uint32_t p : probes) {
    if (in_class(e, p)) return true;
  }
  return false;
}

// The code point encoded at s[i..] (strict UTF-8), and its length; 0 when invalid.
size_t decode(std::string_view s, size_t i, uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

class Reference {
 public:
  Reference(const std::vector<Expr>& rules, std::string_view s) : rules_(rules), s_(s) {}

  // End positions j with s[i..j) in L(e).
  const std::vector<size_t>& ends(const Expr& e, size_t i) {
    auto key = std::make_pair(&e, i);
    if (auto it = ends_.find(key); it != ends_.end()) return it->second;
    std::set<size_t> out;
    switch (e.kind) {
      case Expr::kLit:
        if (s_.substr(i).substr(0, e.lit.size()) == e.lit) out.insert(i + e.lit.size());
        break;
      case Expr::kClass: {
        uint32_t cp;
        if (i < s_.size()) {
          const size_t n = decode(s_, i, cp);
          if (n > 0 && in_class(e, cp)) out.insert(i + n);
        }
        break;
      }
      case Expr::kRef:
        for (size_t j : ends(rules_[static_cast<size_t>(e.ref)], i)) out.insert(j);
        break;
      case Expr::kSeq: {
        std::set<size_t> cur = {i};
        for (const Expr& k : e.kids) {
          std::set<size_t> next;
          for (size_t p : cur) {
            for (size_t j : ends(k, p)) next.insert(j);
          }
          cur = std::move(next);
        }
        out = std::move(cur);
        break;
      }
      case Expr::kAlt:
        for (const Expr& k : e.kids) {
          for (size_t j : ends(k, i)) out.insert(j);
        }
        break;
      case Expr::kRep:
        for (const auto& [p, c] : rep_states(e, i)) {
          if (c >= e.min) out.insert(p);
        }
        break;
    }
    auto& slot = ends_[key];
    slot.assign(out.begin(), out.end());
    return slot;
  }

  // Whether s[i..] is a prefix of some string in L(e).
  bool viable(const Expr& e, size_t i) {
    if (i == s_.size()) return true;  // every expression here matches some string
    auto key = std::make_pair(&e, i);
    if (auto it = viable_.find(key); it != viable_.end()) return it->second;
    bool v = false;
    switch (e.kind) {
      case Expr::kLit: {
        const std::string_view rest = s_.substr(i);
        v = rest.size() <= e.lit.size() && e.lit.compare(0, rest.size(), rest) == 0;
        break;
      }
      case Expr::kClass:
        v = class_prefix(e, s_.substr(i));
        break;
      case Expr::kRef:
        v = viable(rules_[static_cast<size_t>(e.ref)], i);
        break;
      case Expr::kSeq:
        v = viable_seq(e, 0, i);
        break;
      case Expr::kAlt:
        for (const Expr& k : e.kids) v = v || viable(k, i);
        break;
      case Expr::kRep:
        for (const auto& [p, c] : rep_states(e, i)) {
          if (p == s_.size() || ((e.max < 0 || c < e.max) && viable(e.kids[0], p))) v = true;
        }
        break;
    }
    viable_[key] = v;
    return v;
  }

 private:
  bool viable_seq(const Expr& e, size_t k, size_t i) {
    if (k == e.kids.size()) return i == s_.size();
    if (viable(e.kids[k], i)) return true;  // the rest of the input inside this element
    for (size_t j : ends(e.kids[k], i)) {
      if (viable_seq(e, k + 1, j)) return true;
    }
    return false;
  }

  // (position, count) pairs reachable by whole repetitions from i; unbounded counts are capped
  // at min (beyond it they all behave the same).
  std::set<std::pair<size_t, int>> rep_states(const Expr& e, size_t i) {
    std::set<std::pair<size_t, int>> seen = {{i, 0}};
    std::vector<std::pair<size_t, int>> work = {{i, 0}};
    while (!work.empty()) {
      const auto [p, c] = work.back();
      work.pop_back();
      if (e.max >= 0 && c >= e.max) continue;
      const int next = e.max < 0 ? std::min(c + 1, e.min) : c + 1;
      for (size_t j : ends(e.kids[0], p)) {
        if (seen.insert({j, next}).second) work.push_back({j, next});
      }
    }
    return seen;
  }

  // Whether `rest` is a prefix (proper or whole) of the encoding of a code point in the class.
  bool class_prefix(const Expr& e, std::string_view rest) {
    uint32_t cp;
    const auto b0 = static_cast<unsigned char>(rest[0]);
    size_t n = b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
    if (n == 0 || rest.size() > n) return false;
    if (rest.size() == n) return decode(rest, 0, cp) == n && in_class(e, cp);
    // The code points whose encoding starts with `rest`: fill the missing continuation bytes
    // with their smallest and largest values.
    auto value = [&](unsigned char fill) -> int64_t {
      std::string full(rest);
      while (full.size() < n) full.push_back(static_cast<char>(fill));
      uint32_t v = static_cast<unsigned char>(full[0]) & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
      for (size_t k = 1; k < n; ++k) {
        const auto c = static_cast<unsigned char>(full[k]);
        if ((c & 0xC0) != 0x80) return -1;
        v = (v << 6) | (c & 0x3F);
      }
      return v;
    };
    const int64_t lo = value(0x80), hi = value(0xBF);
    if (lo < 0 || hi < 0) return false;
    static const int64_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    const int64_t a = std::max<int64_t>(lo, kMin[n]);
    const int64_t b = std::min<int64_t>(hi, 0x10FFFF);
    if (a > b) return false;
    return class_meets(e, static_cast<uint32_t>(a), static_cast<uint32_t>(b));
  }

  const std::vector<Expr>& rules_;
  std::string_view s_;
  std::map<std::pair<const Expr*, size_t>, std::vector<size_t>> ends_;
  std::map<std::pair<const Expr*, size_t>, bool> viable_;
};

// ---------------------------------------------------------------------------------------------
// Random grammars.

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::vector<Expr> grammar() {
    const int n = 1 + static_cast<int>(rng_() % 4);
    std::vector<Expr> rules(static_cast<size_t>(n));
    nullable_.assign(static_cast<size_t>(n), false);
    // Rules are made last to first: a reference that can be the first thing a rule reads goes
    // to a later rule (no left recursion); elsewhere any rule may be referenced.
    for (int k = n - 1; k >= 0; --k) {
      rule_ = k;
      num_rules_ = n;
      Expr top;
      top.kind = Expr::kAlt;
      top.kids.push_back(literal(true));  // one plain branch: every rule matches something
      const int more = 1 + static_cast<int>(rng_() % 2);
      for (int i = 0; i < more; ++i) top.kids.push_back(expr(0, true));
      rules[static_cast<size_t>(k)] = std::move(top);
      nullable_[static_cast<size_t>(k)] = nullable(rules[static_cast<size_t>(k)]);
    }
    return rules;
  }

 private:
  Expr literal(bool nonempty) {
    static const char* const kLits[] = {"a", "b", "c", "\xC3\xA9", "ab", "ba", "c\xC3\xA9", ""};
    Expr e;
    e.kind = Expr::kLit;
    e.lit = kLits[rng_() % (nonempty ? 7 : 8)];
    return e;
  }

  Expr klass() {
    Expr e;
    e.kind = Expr::kClass;
    switch (rng_() % 6) {
      case 0: e.ranges = {{'a', 'b'}}; break;
      case 1: e.ranges = {{'a', 'a'}}; e.negate = true; break;
      case 2: e.ranges = {{'b', 'c'}, {0xE9, 0xE9}}; break;
      case 3: e.any = true; break;
      case 4: e.ranges = {{0xE9, 0xEA}}; break;
      default: e.ranges = {{'c', 'c'}, {0xEA, 0x10FFFF}}; e.negate = true; break;
    }
    return e;
  }

  bool nullable(const Expr& e) const {
    switch (e.kind) {
      case Expr::kLit: return e.lit.empty();
      case Expr::kClass: return false;
      case Expr::kRef:  // references to rules not made yet only appear after a byte: see expr()
        return e.ref > rule_ ? nullable_[static_cast<size_t>(e.ref)] : true;
      case Expr::kSeq:
        for (const Expr& k : e.kids) {
          if (!nullable(k)) return false;
        }
        return true;
      case Expr::kAlt:
        for (const Expr& k : e.kids) {
          if (nullable(k)) return true;
        }
        return false;
      case Expr::kRep: return e.min == 0 || nullable(e.kids[0]);
    }
    return true;
  }

  // `left`: nothing is sure to have been read in this rule before this expression.
  Expr expr(int depth, bool left) {
    const uint32_t pick = depth >= 3 ? rng_() % 3 : rng_() % 7;
    Expr e;
    switch (pick) {
      case 0: return literal(false);
      case 1: return klass();
      case 2: {
        const int lo = left ? rule_ + 1 : 0;
        if (lo >= num_rules_) return literal(true);
        e.kind = Expr::kRef;
        e.ref = lo + static_cast<int>(rng_() % static_cast<uint32_t>(num_rules_ - lo));
        return e;
      }
      case 3: case 4: {
        e.kind = Expr::kSeq;
        const int n = 2 + static_cast<int>(rng_() % 2);
        bool l = left;
        for (int i = 0; i < n; ++i) {
          e.kids.push_back(expr(depth + 1, l));
          if (!nullable(e.kids.back())) l = false;
        }
        return e;
      }
      case 5: {
        e.kind = Expr::kAlt;
        const int n = 2 + static_cast<int>(rng_() % 2);
        for (int i = 0; i < n; ++i) e.kids.push_back(expr(depth + 1, left));
        return e;
      }
      default: {
        e.kind = Expr::kRep;
        static const int kBounds[][2] = {{0, -1}, {1, -1}, {0, 1}, {2, 2}, {1, 3}, {0, 2}, {2, -1}};
        const auto& b = kBounds[rng_() % 7];
        e.min = b[0];
        e.max = b[1];
        e.kids.push_back(expr(depth + 1, left));
        return e;
      }
    }
  }

  std::mt19937 rng_;
  std::vector<bool> nullable_;
  int rule_ = 0, num_rules_ = 0;
};

std::string rule_name(int k) { return k == 0 ? "root" : "r" + std::to_string(k); }

std::string print(const Expr& e) {
  switch (e.kind) {
    case Expr::kLit: {
      std::string out = "\"";
      for (char c : e.lit) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
      }
      return out + "\"";
    }
    case Expr::kClass: {
      if (e.any) return ".";
      std::string out = e.negate ? "[^" : "[";
      for (const auto& [lo, hi] : e.ranges) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), lo == hi ? "\\U%08X" : "\\U%08X-\\U%08X", lo, hi);
        out += buf;
      }
      return out + "]";
    }
    case Expr::kRef: return rule_name(e.ref);
    case Expr::kSeq: {
      std::string out = "(";
      for (size_t i = 0; i < e.kids.size(); ++i) out += (i ? " " : "") + print(e.kids[i]);
      return out + ")";
    }
    case Expr::kAlt: {
      std::string out = "(";
      for (size_t i = 0; i < e.kids.size(); ++i) out += (i ? " | " : "") + print(e.kids[i]);
      return out + ")";
    }
    case Expr::kRep: {
      std::string op;
      if (e.min == 0 && e.max < 0) op = "*";
      else if (e.min == 1 && e.max < 0) op = "+";
      else if (e.min == 0 && e.max == 1) op = "?";
      else if (e.max < 0) op = "{" + std::to_string(e.min) + ",}";
      else if (e.min == e.max) op = "{" + std::to_string(e.min) + "}";
      else op = "{" + std::to_string(e.min) + "," + std::to_string(e.max) + "}";
      return "(" + print(e.kids[0]) + ")" + op;
    }
  }
  return "";
}

std::string print_grammar(const std::vector<Expr>& rules) {
  std::string g;
  for (size_t k = 0; k < rules.size(); ++k) g += rule_name(static_cast<int>(k)) + " ::= " + print(rules[k]) + "\n";
  return g;
}

// Test strings: every string of up to three pieces, then random longer ones. The pieces include
// a lone lead byte and a lone continuation byte, so invalid UTF-8 is probed too.
std::vector<std::string> test_strings(std::mt19937& rng) {
  static const char* const kPieces[] = {"a", "b", "c", "\xC3\xA9", "\xC3\xAA", "\xC3", "\xA9", "z"};
  const size_t np = sizeof(kPieces) / sizeof(kPieces[0]);
  std::vector<std::string> out = {""};
  std::vector<std::string> frontier = {""};
  for (int len = 1; len <= 3; ++len) {
    std::vector<std::string> next;
    for (const std::string& s : frontier) {
      for (size_t p = 0; p < np; ++p) next.push_back(s + kPieces[p]);
    }
    out.insert(out.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  for (int i = 0; i < 300; ++i) {
    std::string s;
    const int len = 4 + static_cast<int>(rng() % 6);
    for (int k = 0; k < len; ++k) s += kPieces[rng() % 5];  // mostly valid characters
    out.push_back(s);
  }
  return out;
}

TEST(MatcherReference, RandomGrammarsAndStrings) {
  std::mt19937 rng(12345);
  int grammars = 0, accepted_full = 0, viable_strings = 0, ambiguous = 0;
  for (uint32_t seed = 0; seed < 1000; ++seed) {
    Generator gen(seed);
    const std::vector<Expr> rules = gen.grammar();
    const std::string gbnf = print_grammar(rules);
    std::shared_ptr<const CompiledGrammar> g;
    try {
      g = CompiledGrammar::from_gbnf(gbnf, nullptr);
    } catch (const GrammarError& e) {
      ADD_FAILURE() << "generated grammar rejected: " << e.what() << "\n" << gbnf;
      continue;
    }
    ++grammars;
    GrammarMatcher m(g);
    int wrong = 0;
    bool too_ambiguous = false;
    for (const std::string& s : test_strings(rng)) {
      Reference ref(rules, s);
      const bool want_viable = ref.viable(rules[0], 0);
      const std::vector<size_t>& ends = ref.ends(rules[0], 0);
      const bool want_full = std::find(ends.begin(), ends.end(), s.size()) != ends.end();
      bool got_viable;
      try {
        got_viable = m.accept_bytes(s);
      } catch (const Error& e) {
        // limits::kMaxExpansionsPerByte: nullable recursive rules inside loops can make the
        // stacks grow geometrically (see docs/structured_outputs.md); such grammars fail cleanly.
        EXPECT_NE(std::string(e.what()).find("too ambiguous"), std::string::npos) << e.what();
        too_ambiguous = true;
        break;
      }
      const bool got_full = got_viable && m.can_terminate();
      if (got_viable) m.rollback(1);
      viable_strings += want_viable;
      accepted_full += want_full;
      if ((got_viable != want_viable || got_full != want_full) && ++wrong <= 3) {
        ADD_FAILURE() << "grammar:\n" << gbnf << "string '" << s << "': viable " << got_viable << " (reference "
                      << want_viable << "), complete " << got_full << " (reference " << want_full << ")";
      }
    }
    ambiguous += too_ambiguous;
  }
  EXPECT_EQ(grammars, 1000);
  EXPECT_LE(ambiguous, 10);  // rare: 1% of these deliberately odd grammars at most
  // The strings exercise both outcomes a good deal.
  EXPECT_GT(accepted_full, 20000);
  EXPECT_GT(viable_strings, 100000);
}

// Copies and rollback give the same answers as a fresh matcher fed the same bytes.
TEST(MatcherReference, CopyAndRollbackAgree) {
  std::mt19937 rng(99);
  for (uint32_t seed = 1000; seed < 1100; ++seed) {
    Generator gen(seed);
    const std::vector<Expr> rules = gen.grammar();
    auto g = CompiledGrammar::from_gbnf(print_grammar(rules), nullptr);
    for (const std::string& s : test_strings(rng)) {
      if (s.size() < 2) continue;
      GrammarMatcher a(g);
      const size_t cut = 1 + rng() % (s.size() - 1);
      if (!a.accept_bytes(s.substr(0, cut))) continue;
      GrammarMatcher b = a;  // fork
      const bool whole = a.accept_bytes(s.substr(cut));
      GrammarMatcher fresh(g);
      EXPECT_EQ(whole, fresh.accept_bytes(s));
      if (whole) {
        EXPECT_EQ(a.can_terminate(), fresh.can_terminate());
        a.rollback(1);
      }
      // After the rollback (or the refusal) a is where b is.
      EXPECT_EQ(a.can_terminate(), b.can_terminate());
      EXPECT_EQ(a.accept_bytes("a"), b.accept_bytes("a"));
    }
  }
}

// Masks on the random grammars, with a small vocabulary of the grammars' own pieces (every
// string of one to three pieces, plus longer ones): the fast mask equals trying every token, in
// every state of random walks. The odd grammars here (nullable recursion, ambiguity, escapes
// through several rule ends, follow_depth 0 to 3) reach corners the fixed grammars do not.
TEST(MatcherReference, RandomGrammarMasksMatchBruteForce) {
  static const char* const kPieces[] = {"a", "b", "c", "\xC3\xA9", "\xC3\xAA", "\xC3", "\xA9", "z"};
  std::vector<std::string> tokens;
  std::vector<std::string> frontier = {""};
  for (int len = 1; len <= 3; ++len) {
    std::vector<std::string> next;
    for (const std::string& s : frontier) {
      for (const char* p : kPieces) next.push_back(s + p);
    }
    tokens.insert(tokens.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  std::mt19937 rng(4242);
  for (int i = 0; i < 100; ++i) {
    std::string t;
    for (int k = 0; k < 4 + static_cast<int>(rng() % 5); ++k) t += kPieces[rng() % 5];
    tokens.push_back(t);
  }
  tokens.push_back("<eos>");
  const int32_t eos = static_cast<int32_t>(tokens.size() - 1);
  auto vocab = TokenVocabulary::from_token_bytes(tokens, {}, {eos});
  const int32_t n = vocab->size();
  int states = 0, too_complex = 0;
  for (uint32_t seed = 0; seed < 200; ++seed) {
    Generator gen(seed);
    const std::vector<Expr> rules = gen.grammar();
    CompileOptions co;
    co.follow_depth = static_cast<int>(seed % 4);
    std::shared_ptr<const CompiledGrammar> g;
    try {
      g = CompiledGrammar::from_gbnf(print_grammar(rules), vocab, co);
    } catch (const GrammarError& e) {  // limits met while classifying: see the test above
      const std::string what = e.what();
      EXPECT_TRUE(what.find("too ambiguous") != std::string::npos || what.find("kMaxCompileMoves") != std::string::npos)
          << what;
      ++too_complex;
      continue;
    }
    GrammarMatcher m(g);
    std::string text;
    try {
      for (int step = 0; step < 6; ++step) {
        std::vector<uint32_t> fast(m.mask_words()), brute(m.mask_words(), 0);
        m.fill_next_token_bitmask(fast.data());
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < n; ++id) {
          if (m.accept_token(id)) {
            brute[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
            m.rollback(1);
            allowed.push_back(id);
          }
        }
        ++states;
        if (fast != brute) {
          for (int32_t id = 0; id < n; ++id) {
            if (bit(fast, id) != bit(brute, id)) {
              ADD_FAILURE() << print_grammar(rules) << "follow_depth " << co.follow_depth << ", after '" << text
                            << "': token '" << tokens[static_cast<size_t>(id)] << "' fast " << bit(fast, id);
              break;
            }
          }
          break;
        }
        if (allowed.empty()) break;
        const int32_t id = allowed[rng() % allowed.size()];
        ASSERT_TRUE(m.accept_token(id));
        if (m.is_terminated()) break;
        text += tokens[static_cast<size_t>(id)];
      }
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("too ambiguous"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(states, 600);
  EXPECT_LE(too_complex, 3);
}

}  // namespace
}  // namespace vllm::structured::test
