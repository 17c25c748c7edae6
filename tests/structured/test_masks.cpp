// Next-token masks against brute force, for the five reference tokenizers (GPT-2 vocab.json +
// merges.txt, SentencePiece with byte fallback, byte-level BPE) and grammars of every shape:
// the fast mask (precomputed classes, site refinement, trie-ordered checks, the mask cache) must
// equal the mask got by trying every token on the matcher itself, in every state reached by
// random walks and along real documents. Also: stop and special tokens, rollback, copies.
#include <random>

#include "json_documents.h"
#include "structured_test_util.h"
#include "vllm/structured/builtin_grammars.h"

namespace vllm::structured::test {
namespace {

const char* kArithmetic = R"GBNF(root ::= expr
expr ::= term ( ws [-+] ws term )*
term ::= factor ( ws [*/] ws factor )*
factor ::= number | "(" ws expr ws ")" | "-" factor
number ::= [0-9]+ ( "." [0-9]+ )?
ws ::= " "?
)GBNF";

const char* kNestedRepetition = R"GBNF(root ::= ( "[" ( item ( "," " "? item ){0,3} )? "]" ){1,2}
item ::= [a-z]{1,4} | [0-9]+ ( "." [0-9]{1,2} )? | "\"" [^"\\]{0,6} "\""
)GBNF";

const char* kSchema = R"GBNF(root ::= "{" ws "\"name\":" ws str "," ws "\"kind\":" ws kind "," ws "\"pos\":" ws point ws "}"
point ::= "{" ws "\"x\":" ws num "," ws "\"y\":" ws num ws "}"
kind ::= "\"cat\"" | "\"dog\"" | "\"caterpillar\""
str ::= "\"" ( [^"\\\x00-\x1F] | "\\" ["\\nt] ){0,8} "\""
num ::= "-"? [0-9]{1,3}
ws ::= [ \n]*
)GBNF";

const char* kSexpr = R"GBNF(root ::= list
list ::= "(" ws ( elem ( ws elem )* )? ws ")"
elem ::= list | atom
atom ::= [a-z]+ | "\"" [^"]* "\""
ws ::= [ \n]*
)GBNF";

struct NamedGrammar {
  std::string name, gbnf;
};

std::vector<NamedGrammar> mask_grammars() {
  return {{"json_object", json_object_gbnf()},
          {"arithmetic", kArithmetic},
          {"choice", choice_to_gbnf({"yes", "no", "maybe so", "\xC3\x9Cn\xC3\xAF" "c\xC3\xB6" "d\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC", "a\"quote"})},
          {"nested_repetition", kNestedRepetition},
          {"schema", kSchema},
          {"sexpr", kSexpr}};
}

// Compares the fast mask with brute force in m's current state; true when equal.
bool check_state(GrammarMatcher& m, const LoadedTokenizer& lt, const std::string& where) {
  const TokenVocabulary& v = *lt.vocab;
  std::vector<uint32_t> fast(v.mask_words());
  m.fill_next_token_bitmask(fast.data());
  const std::vector<uint32_t> brute = brute_mask(m, v, v.stop_token_ids());
  // Filling again (now from the mask cache) gives the same words.
  std::vector<uint32_t> again(v.mask_words());
  m.fill_next_token_bitmask(again.data());
  EXPECT_EQ(again, fast) << where;
  int shown = 0;
  for (int32_t id = 0; id < v.size(); ++id) {
    if (bit(fast, id) != bit(brute, id) && ++shown <= 5) {
      ADD_FAILURE() << where << ": token " << id << " '" << v.token_bytes(id) << "' fast " << bit(fast, id)
                    << " brute force " << bit(brute, id);
    }
    if (lt.tokenizer->is_special(id) && bit(fast, id)) {
      const auto& stops = v.stop_token_ids();
      EXPECT_TRUE(std::find(stops.begin(), stops.end(), id) != stops.end() && m.can_terminate())
          << where << ": special token " << id << " allowed";
    }
  }
  return shown == 0;
}

int steps_per_walk() {
  if (const char* e = std::getenv("VLLM_STRUCTURED_MASK_STEPS"); e != nullptr && *e != '\0') return std::atoi(e);
  return 8;
}

class MaskTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MaskTest, RandomWalksMatchBruteForce) {
  const LoadedTokenizer& lt = load_tokenizer(GetParam());
  const TokenVocabulary& v = *lt.vocab;
  std::mt19937 rng(2024);
  uint64_t checked = 0;
  for (const NamedGrammar& ng : mask_grammars()) {
    auto g = CompiledGrammar::from_gbnf(ng.gbnf, lt.vocab);
    for (int walk = 0; walk < 2; ++walk) {
      GrammarMatcher m(g);
      struct Count {
        GrammarMatcher& m;
        uint64_t& total;
        ~Count() { total += m.stats().checked_tokens; }
      } count{m, checked};
      std::string text;
      for (int step = 0; step < steps_per_walk(); ++step) {
        const std::string where = GetParam() + " / " + ng.name + " after '" + text + "'";
        if (!check_state(m, lt, where)) break;
        // Next: a random allowed token, short ones preferred so walks get past strings.
        std::vector<uint32_t> mask(v.mask_words());
        m.fill_next_token_bitmask(mask.data());
        std::vector<int32_t> allowed, short_ones;
        for (int32_t id = 0; id < v.size(); ++id) {
          if (!bit(mask, id)) continue;
          allowed.push_back(id);
          if (v.token_bytes(id).size() <= 2) short_ones.push_back(id);
        }
        if (allowed.empty()) break;
        const auto& pool = (!short_ones.empty() && rng() % 3 != 0) ? short_ones : allowed;
        const int32_t id = pool[rng() % pool.size()];
        ASSERT_TRUE(m.accept_token(id)) << where << ": token " << id << " in the mask but refused";
        if (m.is_terminated()) break;
        text += v.token_bytes(id);
      }
    }
  }
  // The walks reach states where tokens are left to the run-time check (not only precomputed).
  EXPECT_GT(checked, 0u);
}

// States along real documents: JSON objects tokenized as the model would emit them.
TEST_P(MaskTest, DocumentStatesMatchBruteForce) {
  const LoadedTokenizer& lt = load_tokenizer(GetParam());
  auto g = CompiledGrammar::from_gbnf(json_object_gbnf(), lt.vocab);
  testing::JsonDocuments docs(77);
  int checked = 0;
  for (int d = 0; d < 3; ++d) {
    const std::string doc = docs.next();
    const std::vector<int32_t> ids = lt.tokenizer->encode(doc, false);
    GrammarMatcher m(g);
    std::string text;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k % 9 == 4 && checked < 3 * steps_per_walk()) {
        check_state(m, lt, GetParam() + " json document after '" + text + "'");
        ++checked;
      }
      ASSERT_TRUE(m.accept_token(ids[k])) << GetParam() << ": " << doc << " token " << k;
      text += lt.vocab->token_bytes(ids[k]);
    }
    EXPECT_TRUE(m.can_terminate());
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, MaskTest, ::testing::ValuesIn(reference_tokenizers()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Every token of valid JSON documents is allowed at its step, and the stop token at the end.
TEST(MaskWalk, JsonDocumentsWithLlama3) {
  const LoadedTokenizer& lt = load_tokenizer("tiny-llama3");
  auto g = CompiledGrammar::from_gbnf(json_object_gbnf(), lt.vocab);
  const int32_t eos = lt.vocab->stop_token_ids().at(0);
  testing::JsonDocuments docs(5);
  std::vector<uint32_t> mask(lt.vocab->mask_words());
  size_t tokens = 0;
  for (int d = 0; d < 60; ++d) {
    const std::string doc = docs.next();
    const std::vector<int32_t> ids = lt.tokenizer->encode(doc, false);
    GrammarMatcher m(g);
    for (size_t k = 0; k < ids.size(); ++k) {
      m.fill_next_token_bitmask(mask.data());
      ASSERT_TRUE(bit(mask, ids[k])) << doc << "\ntoken " << k << " '" << lt.vocab->token_bytes(ids[k]) << "'";
      EXPECT_FALSE(bit(mask, eos)) << doc << " token " << k;  // an object is never complete mid-way
      ASSERT_TRUE(m.accept_token(ids[k]));
    }
    tokens += ids.size();
    m.fill_next_token_bitmask(mask.data());
    EXPECT_TRUE(bit(mask, eos)) << doc;
    EXPECT_TRUE(m.can_terminate());
    EXPECT_TRUE(m.accept_token(eos));
    EXPECT_TRUE(m.is_terminated());
  }
  EXPECT_GT(tokens, 3000u);
}

TEST(MatcherApi, StopTokensAndTermination) {
  auto v = TokenVocabulary::from_token_bytes({"a", "b", "ab", "<eos>", "<special>", ""}, {4}, {3});
  auto g = CompiledGrammar::from_gbnf(R"(root ::= "a" "b"?)", v);
  GrammarMatcher m(g);
  std::vector<uint32_t> mask(m.mask_words());
  ASSERT_EQ(mask.size(), 1u);
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask[0], 0b101u);  // "a" and "ab"; not <eos> (cannot end yet), <special>, ""
  EXPECT_FALSE(m.accept_token(3));
  EXPECT_FALSE(m.accept_token(4));
  EXPECT_FALSE(m.accept_token(5));
  EXPECT_FALSE(m.accept_token(99));
  EXPECT_FALSE(m.accept_token(-1));
  ASSERT_TRUE(m.accept_token(0));
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask[0], 0b1010u);  // "b" or <eos>
  EXPECT_TRUE(m.can_terminate());
  ASSERT_TRUE(m.accept_token(3));
  EXPECT_TRUE(m.is_terminated());
  EXPECT_FALSE(m.accept_token(1));
  EXPECT_FALSE(m.accept_bytes("b"));
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask[0], 0b1000u);  // once terminated, only the stop token
  m.rollback(1);
  EXPECT_FALSE(m.is_terminated());
  EXPECT_TRUE(m.accept_token(1));
  // Stop ids given to the matcher replace the vocabulary's; a padded mask is zeroed past it.
  MatcherOptions o;
  o.stop_token_ids = std::vector<int32_t>{1};
  GrammarMatcher n(g, o);
  std::vector<uint32_t> padded(3, 0xFFFFFFFFu);
  ASSERT_TRUE(n.accept_token(0));
  n.fill_next_token_bitmask(padded.data(), padded.size());
  EXPECT_EQ(padded[0], 0b0010u);  // "b" as a stop token (and as "b": same bit)
  EXPECT_EQ(padded[1], 0u);
  EXPECT_EQ(padded[2], 0u);
  EXPECT_THROW(n.fill_next_token_bitmask(padded.data(), 0), Error);
}

TEST(MatcherApi, RollbackCopyAndReset) {
  const LoadedTokenizer& lt = load_tokenizer("tiny-llama3");
  auto g = CompiledGrammar::from_gbnf(json_object_gbnf(), lt.vocab);
  const std::vector<int32_t> ids =
      lt.tokenizer->encode(R"({"name": "caf\u00e9 \u65e5", "list": [1, 2.5, {"x": null}], "ok": true})", false);
  ASSERT_GT(ids.size(), 20u);
  auto mask_after = [&](size_t n) {
    GrammarMatcher m(g);
    for (size_t k = 0; k < n; ++k) EXPECT_TRUE(m.accept_token(ids[k]));
    std::vector<uint32_t> mask(m.mask_words());
    m.fill_next_token_bitmask(mask.data());
    return mask;
  };
  MatcherOptions o;
  o.max_rollback_tokens = 5;
  GrammarMatcher m(g, o);
  std::vector<uint32_t> mask(m.mask_words());
  for (size_t k = 0; k < ids.size(); ++k) {
    ASSERT_TRUE(m.accept_token(ids[k]));
    if (k == 10) {
      // A fork takes its own way (here: the rest of the document, then the stop token) and
      // leaves m where it was.
      GrammarMatcher fork = m;
      for (size_t j = k + 1; j < ids.size(); ++j) ASSERT_TRUE(fork.accept_token(ids[j]));
      ASSERT_TRUE(fork.accept_token(lt.vocab->stop_token_ids().at(0)));
      EXPECT_TRUE(fork.is_terminated());
      EXPECT_FALSE(m.is_terminated());
      m.fill_next_token_bitmask(mask.data());
      EXPECT_EQ(mask, mask_after(k + 1));
    }
    EXPECT_LE(m.num_rollback_available(), 5);
  }
  EXPECT_TRUE(m.can_terminate());
  m.rollback(3);
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask, mask_after(ids.size() - 3));
  EXPECT_FALSE(m.can_terminate());
  EXPECT_THROW(m.rollback(3), Error);  // only 2 of 5 left
  m.rollback(2);
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask, mask_after(ids.size() - 5));
  // Replaying the same tokens reaches the same state again.
  for (size_t k = ids.size() - 5; k < ids.size(); ++k) ASSERT_TRUE(m.accept_token(ids[k]));
  EXPECT_TRUE(m.can_terminate());
  m.reset();
  EXPECT_EQ(m.num_rollback_available(), 0);
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask, mask_after(0));
  // A refused token leaves the state as it was.
  EXPECT_FALSE(m.accept_token(lt.tokenizer->encode("x", false).at(0)));
  m.fill_next_token_bitmask(mask.data());
  EXPECT_EQ(mask, mask_after(0));
}

// A long generation makes the frame pool collect unreachable frames several times; states,
// history (rollback) and merged stacks survive it, and masks stay right.
TEST(MatcherApi, FrameCollectionKeepsStates) {
  auto v = TokenVocabulary::from_token_bytes({"[", "]", ",", "a", "aa", "[a", "],", "<eos>"}, {}, {7});
  const std::string g = R"GBNF(root ::= list
list ::= "[" ( item ( "," item )* )? "]"
item ::= list | w+
w ::= "a" | "aa"
)GBNF";
  auto cg = CompiledGrammar::from_gbnf(g, v);
  GrammarMatcher m(cg);
  std::vector<uint32_t> fast(m.mask_words());
  std::mt19937 rng(5);
  int depth = 1;
  ASSERT_TRUE(m.accept_bytes("["));
  std::string last = "[";
  int checks = 0;
  // Three dives to 4000 levels and back: every level makes new frames, every ascent leaves
  // thousands of them unreachable.
  for (int dive = 0; dive < 3; ++dive) {
    bool down = true;
    for (int step = 0; down || depth > 1; ++step) {
      if (depth >= 4000) down = false;
      const uint32_t r = rng() % 10;
      const bool after_word = last == "a" || last == "aa";
      std::string next;
      if (down && !after_word && r < 6) {
        next = "[";
        ++depth;
      } else if (!down && after_word && r < 6) {
        next = "]";  // closes a list; a word or "," follows in the parent
        --depth;
      } else if (after_word && r < 8) {
        next = ",";
      } else {
        next = r % 2 ? "a" : "aa";
      }
      ASSERT_TRUE(m.accept_bytes(next)) << "dive " << dive << " step " << step << " depth " << depth;
      if (next == "]") {
        ASSERT_TRUE(m.accept_bytes(","));
        next = ",";
      }
      last = next;
      if (step % 2000 == 1999) {
        // The mask against brute force, and a rollback across whatever was collected.
        ++checks;
        m.fill_next_token_bitmask(fast.data());
        for (int32_t id = 0; id < v->size(); ++id) {
          const bool brute = m.accept_token(id);
          if (brute) m.rollback(1);
          EXPECT_EQ(bit(fast, id), brute) << "dive " << dive << " step " << step << " token " << id;
        }
        const std::vector<uint32_t> before = fast;
        ASSERT_TRUE(m.accept_bytes(last == "a" || last == "aa" ? "a" : "["));
        m.rollback(1);
        m.fill_next_token_bitmask(fast.data());
        EXPECT_EQ(fast, before);
      }
    }
  }
  ASSERT_TRUE(m.accept_bytes(last == "," ? "a]" : "]"));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_GT(checks, 6);
  EXPECT_GT(m.stats().collections, 0u);
}

// An ambiguous grammar (every split of a run of a's into 1..3-letter words, recursively)
// stays fast: merged stacks keep the state small.
TEST(MatcherApi, AmbiguousGrammarStaysSmall) {
  const std::string g = R"GBNF(root ::= w+
w ::= "a" | "aa" | "aaa" | "(" root ")"
)GBNF";
  GrammarMatcher m(CompiledGrammar::from_gbnf(g, nullptr));
  std::string s;
  for (int i = 0; i < 200; ++i) s += i % 10 == 0 ? "(aa" : "a";
  for (int i = 0; i < 20; ++i) s += ")";
  ASSERT_TRUE(m.accept_bytes(s));
  EXPECT_TRUE(m.can_terminate());
}

}  // namespace
}  // namespace vllm::structured::test
