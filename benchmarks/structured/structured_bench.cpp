// Structured outputs: grammar compile time and next-token mask time, one thread.
//
// For each grammar (json_object, a JSON-schema-shaped GBNF grammar, an arithmetic grammar), the
// benchmark compiles it for the tokenizer's vocabulary, then walks documents of that grammar
// token by token, as generation under the grammar does: at every step it fills the next-token
// mask (timed), checks that the document's next token is allowed, and accepts it. At the end of
// each document the stop token must be allowed. The documents are tokenized with the same
// tokenizer, so the token paths are the ones a model emitting these documents would take. A last
// row walks json_object with uniformly random allowed tokens (200 per walk, --docs walks).
//
// --schemas: a JSON Schema corpus instead. Every schema of random_schema.h's 200 (seeds
// i*7919+1, as tests/structured/constrained_generation_dump.cpp on structured-integration
// generates them) and of the JSON-Schema-Test-Suite (tests/data/json-schema-test-suite, from
// scripts/fetch_json_schema_test_suite.sh; draft3 skipped) that the front end accepts is
// compiled for the tokenizer, --passes times (the fastest kept); compile times (median, p90, p99,
// max: wall time and the compiling thread's CPU time, for a shared machine; and the parser moves,
// the budget's unit) are printed as a table for the suite, the random schemas and both, with the
// worst schemas; valid instances of each schema (random_schema.h's instance(), compact and
// indented; the suite's valid test data) are walked token by token with the mask timed, as above.
//
// usage: structured_bench [--tokenizer DIR [--config DIR]] [--docs N] [--seed S] [--follow-depth D]
//                         [--cache-entries K] [--threads T] [--passes P] [--grammar NAME]
//        structured_bench --schemas [--random N] [--suite DIR] [--instances K] [--max-moves M]
//                         [--worst W] [--list] [--check K] (and --tokenizer, --follow-depth, --threads,
//                         --passes); --check K: masks against brute force in every K-th state
//        structured_bench --profile NAME [--worst W]: one schema of that corpus, its grammar and
//                         where its compile work goes (the W costliest walks, moves per rule)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "brute_mask.h"
#include "json_documents.h"
#include "random_schema.h"
#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"
#include "vllm/structured/automaton.h"
#include "vllm/structured/builtin_grammars.h"
#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/json_schema.h"
#include "vllm/structured/matcher.h"
#include "vllm/structured/node_equivalence.h"
#include "vllm/structured/token_classes.h"
#include "vllm/structured/token_vocabulary.h"
#include "vllm/tokenizer/tokenizer.h"

using namespace vllm;
using namespace vllm::structured;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of the calling thread: on a shared machine, what a compile costs without the time it
// waited for a core (wall time is reported beside it).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A JSON-schema grammar as llama.cpp's json-schema-to-grammar writes them (and our front end is
// modelled on): one rule per property, typed values, an enum, an array, a nested object, an
// optional property, and the usual `space`, `char`, `integral-part` rules with their short
// bounded repetitions.
const char* kSchemaGrammar = R"GBNF(root ::= "{" space name-kv "," space age-kv "," space email-kv "," space role-kv "," space tags-kv "," space address-kv ( "," space score-kv )? "}" space
name-kv ::= "\"name\"" space ":" space string
age-kv ::= "\"age\"" space ":" space integer
email-kv ::= "\"email\"" space ":" space string
role-kv ::= "\"role\"" space ":" space role
role ::= ("\"admin\"" | "\"editor\"" | "\"viewer\"") space
tags-kv ::= "\"tags\"" space ":" space tags
tags ::= "[" space ( string ( "," space string )* )? "]" space
address-kv ::= "\"address\"" space ":" space address
address ::= "{" space "\"city\"" space ":" space string "," space "\"zip\"" space ":" space zip "}" space
zip ::= "\"" [0-9]{5} "\"" space
score-kv ::= "\"score\"" space ":" space number
char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\"" space
integer ::= ("-"? integral-part) space
integral-part ::= [0] | [1-9] [0-9]{0,15}
number ::= ("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space
decimal-part ::= [0-9]{1,16}
space ::= | " " | "\n" [ \t]{0,20}
)GBNF";

// The same with a bounded string (maxLength: 64) for the name and the city: long bounded
// repetitions are what makes compilation expensive.
std::string schema_with_max_length() {
  std::string g = kSchemaGrammar;
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = g.find(from);
    if (at != std::string::npos) g.replace(at, from.size(), to);
  };
  replace("name-kv ::= \"\\\"name\\\"\" space \":\" space string", "name-kv ::= \"\\\"name\\\"\" space \":\" space short-string");
  replace("space \":\" space string \",\" space \"\\\"zip", "space \":\" space short-string \",\" space \"\\\"zip");
  g += "short-string ::= \"\\\"\" char{0,64} \"\\\"\" space\n";
  return g;
}

const char* kArithmeticGrammar = R"GBNF(root ::= expr
expr ::= term ( ws [-+] ws term )*
term ::= factor ( ws [*/] ws factor )*
factor ::= number | "(" ws expr ws ")" | "-" factor
number ::= [0-9]+ ( "." [0-9]+ )?
ws ::= " "?
)GBNF";

std::vector<std::string> schema_documents(int n, uint64_t seed) {
  // (Appends rather than operator+ chains, which trip GCC 12's -Wrestrict.)
  std::mt19937_64 rng(seed);
  static const char* const kNames[] = {"Ada Lovelace", "Grace Hopper", "Alan Turing", "Zo\xC3\xAB", "J\xC3\xBCrgen M\xC3\xBCller", "\xE5\xB1\xB1\xE7\x94\xB0"};
  static const char* const kRoles[] = {"admin", "editor", "viewer"};
  static const char* const kTags[] = {"ops", "dev", "on-call", "infra", "ml", "\xC3\xA9quipe"};
  static const char* const kCities[] = {"Paris", "New York", "S\xC3\xA3o Paulo", "Z\xC3\xBCrich", "Tokyo"};
  std::vector<std::string> docs;
  for (int i = 0; i < n; ++i) {
    const bool pretty = rng() % 2;
    const char* sep = pretty ? "\n  " : " ";
    std::string d = "{";
    auto field = [&](const char* key, const std::string& value, bool last = false) {
      d.append(sep);
      d.append("\"");
      d.append(key);
      d.append("\": ");
      d.append(value);
      if (!last) d.append(",");
    };
    auto quoted = [](const std::string& v) {
      std::string q = "\"";
      q.append(v);
      q.append("\"");
      return q;
    };
    field("name", quoted(kNames[rng() % 6]));
    field("age", std::to_string(18 + rng() % 60));
    field("email", quoted("user" + std::to_string(rng() % 1000) + "@example.com"));
    field("role", quoted(kRoles[rng() % 3]));
    std::string tags = "[";
    const int nt = static_cast<int>(rng() % 4);
    for (int t = 0; t < nt; ++t) {
      if (t > 0) tags.append(", ");
      tags.append(quoted(kTags[rng() % 6]));
    }
    tags.append("]");
    field("tags", tags);
    std::string address = "{\"city\": ";
    address.append(quoted(kCities[rng() % 5]));
    address.append(", \"zip\": ");
    address.append(quoted(std::to_string(10000 + rng() % 89999)));
    address.append("}");
    const bool score = rng() % 2;
    field("address", address, !score);
    if (score) field("score", std::to_string(rng() % 100) + "." + std::to_string(rng() % 10), true);
    d.append(pretty ? "\n}" : " }");
    docs.push_back(d);
  }
  return docs;
}

std::string arithmetic(std::mt19937_64& rng, int depth) {
  // (Appends rather than operator+ chains, which trip GCC 12's -Wrestrict.)
  std::string s;
  const int terms = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < terms; ++i) {
    if (i > 0) {
      if (rng() % 2) s.push_back(' ');
      s.push_back("+-*/"[rng() % 4]);
      if (rng() % 2) s.push_back(' ');
    }
    if (depth < 3 && rng() % 4 == 0) {
      s.push_back('(');
      s.append(arithmetic(rng, depth + 1));
      s.push_back(')');
    } else {
      s.append(std::to_string(rng() % 1000));
      if (rng() % 3 == 0) {
        s.push_back('.');
        s.append(std::to_string(rng() % 100));
      }
    }
  }
  return s;
}

std::vector<std::string> arithmetic_documents(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> docs;
  for (int i = 0; i < n; ++i) docs.push_back(arithmetic(rng, 0));
  return docs;
}

struct Result {
  std::string name;
  CompileStats compile;
  size_t tokens = 0;
  std::vector<double> mask_us;   // first pass, wall time per mask
  std::vector<double> best_us;   // per mask, the fastest of the passes
  double accept_seconds = 0;
  uint64_t cache_hits = 0, masks = 0, checked = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}


// ---- --schemas: compile and walk a JSON Schema corpus ----

struct SchemaCase {
  std::string name;               // "random/17", "draft4/properties.json#2"
  nlohmann::ordered_json schema;  // ordered: instances put keys in the schema's order
  std::vector<std::string> instances;  // valid documents (the grammar may be tighter on a few)
};

std::vector<SchemaCase> schema_corpus(int random, const std::string& suite_dir, int instances) {
  std::vector<SchemaCase> out;
  for (int i = 0; i < random; ++i) {
    testing::RandomSchemaGenerator gen(static_cast<uint64_t>(i) * 7919 + 1);
    SchemaCase c{"random/" + std::to_string(i), gen.schema(), {}};
    for (int k = 0; k < instances; ++k) {
      const nlohmann::ordered_json v = gen.instance(c.schema);
      c.instances.push_back(v.dump());
      c.instances.push_back(v.dump(2));
    }
    out.push_back(std::move(c));
  }
  namespace fs = std::filesystem;
  if (suite_dir.empty() || !fs::exists(suite_dir)) return out;
  std::vector<fs::path> files;
  for (const auto& d : fs::directory_iterator(suite_dir)) {
    const std::string draft = d.path().filename().string();
    if (!d.is_directory() || draft == "draft3") continue;  // draft3's keywords differ too much
    for (const auto& f : fs::directory_iterator(d.path()))
      if (f.path().extension() == ".json") files.push_back(f.path());
    if (fs::exists(d.path() / "optional"))
      for (const auto& f : fs::directory_iterator(d.path() / "optional"))
        if (f.path().extension() == ".json") files.push_back(f.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::ifstream in(f);
    const nlohmann::ordered_json groups = nlohmann::ordered_json::parse(in);
    const std::string rel = fs::relative(f, suite_dir).string();
    for (size_t g = 0; g < groups.size(); ++g) {
      SchemaCase c{rel + "#" + std::to_string(g), groups[g]["schema"], {}};
      for (const auto& t : groups[g]["tests"]) {
        if (!t["valid"].get<bool>()) continue;
        c.instances.push_back(t["data"].dump());
        c.instances.push_back(t["data"].dump(2));
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

// --profile NAME: where one schema's compile work goes. Prints its grammar, then classifies its
// automaton with a per-walk profile: the costliest walks (node, rule, token-length window, parser
// moves, walks from return sites) and the moves per rule.
int profile_schema(const std::shared_ptr<const TokenVocabulary>& vocab, const CompileOptions& co,
                   const std::vector<SchemaCase>& cases, const std::string& name, int top) {
  const SchemaCase* c = nullptr;
  for (const SchemaCase& x : cases) {
    if (x.name == name) c = &x;
  }
  if (c == nullptr) {
    std::fprintf(stderr, "no schema named %s\n", name.c_str());
    return 2;
  }
  const std::string gbnf = json_schema_to_gbnf(c->schema);
  std::printf("schema %s:\n%s\n\ngrammar:\n%s\n", name.c_str(), c->schema.dump().c_str(), gbnf.c_str());
  const Grammar grammar = Grammar::from_gbnf(gbnf);
  const detail::Automaton a = detail::build_automaton(grammar);
  size_t classified = 0;
  for (const detail::Node& n : a.nodes) classified += n.has_bytes();
  std::printf("automaton: %zu real rules, %zu nodes (%zu with bytes)\n", a.rule_start.size(), a.nodes.size(), classified);
  for (size_t r = 0; r < a.rule_start.size(); ++r) {
    size_t nodes = 0;
    for (const detail::Node& n : a.nodes) nodes += n.rule == r;
    std::printf("  rule %zu %s: %zu nodes, %zu return sites\n", r, a.rule_names[r].c_str(), nodes,
                a.return_sites[r].size());
  }
  {
    const double c0 = thread_cpu_seconds();
    const detail::TierPlan plan = detail::plan_tiers(a, vocab->max_token_bytes());
    std::printf("node equivalence (plan_tiers): %.1f ms CPU, %zu tiers\n", (thread_cpu_seconds() - c0) * 1e3,
                plan.bounds.size());
  }
  std::vector<detail::WalkProfile> profile;
  detail::ClassifyOptions o;
  o.follow_depth = co.follow_depth;
  o.max_moves = co.max_moves;
  o.profile = &profile;
  const auto t = Clock::now();
  const double cpu0 = thread_cpu_seconds();
  std::string error;
  uint64_t total = 0;
  size_t walks = 0;
  try {
    const detail::ClassifiedNodes classes = detail::classify_tokens(a, *vocab, o);
    total = classes.moves;
    walks = classes.walks;
  } catch (const std::exception& e) {
    error = e.what();
  }
  const double ms = seconds_since(t) * 1e3;
  const double cpu_ms = (thread_cpu_seconds() - cpu0) * 1e3;
  if (total == 0) {
    for (const detail::WalkProfile& w : profile) total += w.moves;
  }
  std::printf("\nclassify: %.1f ms (%.1f ms CPU), %zu walks, %.2fM moves%s%s\n", ms, cpu_ms, walks ? walks : profile.size(),
              static_cast<double>(total) / 1e6, error.empty() ? "" : "; FAILED: ", error.c_str());
  std::vector<const detail::WalkProfile*> by_moves;
  std::vector<uint64_t> rule_moves(a.rule_start.size(), 0);
  std::vector<size_t> rule_walks(a.rule_start.size(), 0);
  for (const detail::WalkProfile& w : profile) {
    if (w.moves == 0 && w.seconds == 0) continue;  // not run (the walk that failed stops the rest)
    by_moves.push_back(&w);
    rule_moves[a.nodes[w.node].rule] += w.moves;
    ++rule_walks[a.nodes[w.node].rule];
  }
  std::sort(by_moves.begin(), by_moves.end(), [](const auto* x, const auto* y) { return x->moves > y->moves; });
  std::printf("costliest walks:\n");
  for (size_t i = 0; i < by_moves.size() && i < static_cast<size_t>(top); ++i) {
    const detail::WalkProfile& w = *by_moves[i];
    const detail::Node& n = a.nodes[w.node];
    std::printf("  node %u (%s, first %s%s) tokens (%u, %u]: %.3fM moves, %llu site walks, %.1f ms\n", w.node,
                a.rule_names[n.rule].c_str(), n.first.to_string().c_str(), n.final ? ", final" : "", w.lo, w.hi,
                static_cast<double>(w.moves) / 1e6, static_cast<unsigned long long>(w.site_walks), w.seconds * 1e3);
  }
  std::printf("moves per rule:\n");
  for (size_t r = 0; r < a.rule_start.size(); ++r) {
    if (rule_walks[r] == 0) continue;
    std::printf("  %-28s %6zu walks %9.3fM moves\n", a.rule_names[r].c_str(), rule_walks[r],
                static_cast<double>(rule_moves[r]) / 1e6);
  }
  return error.empty() ? 0 : 3;
}

// A valid document walked token by token `passes` times, each with a fresh matcher: every step's
// mask is timed and must hold the document's next token (at the end, the stop token `eos`; none
// when eos < 0). The work is the same each pass, so a step's fastest pass is its cost without the
// scheduler's interruptions (the machine may be shared); the first pass's mask times, accept time
// and matcher stats are kept as measured. False, with a message, when the mask misses a token or
// accept_token refuses one.
struct DocumentWalk {
  std::vector<double> first_us, best_us;
  double accept_seconds = 0;
  MatcherStats stats;  // of the first pass
};

bool walk_document(const std::shared_ptr<const CompiledGrammar>& g, const MatcherOptions& mo, const TokenVocabulary& vocab,
                   const std::vector<int32_t>& ids, int32_t eos, int passes, const std::string& name,
                   const std::string& doc, std::vector<uint32_t>& mask, DocumentWalk& out) {
  std::vector<double> best(ids.size() + 1, 1e30);
  for (int pass = 0; pass < passes; ++pass) {
    GrammarMatcher m(g, mo);
    for (size_t k = 0; k <= ids.size(); ++k) {
      const auto ts = Clock::now();
      m.fill_next_token_bitmask(mask.data());
      const double us = seconds_since(ts) * 1e6;
      best[k] = std::min(best[k], us);
      if (pass == 0) out.first_us.push_back(us);
      const int32_t id = k < ids.size() ? ids[k] : eos;
      if (id < 0) break;
      if (!((mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1)) {
        std::fprintf(stderr, "%s: token %zu (%d, '%s') of a valid document is not in the mask\n%s\n", name.c_str(), k,
                     id, std::string(vocab.token_bytes(id)).c_str(), doc.c_str());
        return false;
      }
      const auto ta = Clock::now();
      if (!m.accept_token(id)) {
        std::fprintf(stderr, "%s: token %zu (%d) refused by accept_token\n", name.c_str(), k, id);
        return false;
      }
      if (pass == 0) out.accept_seconds += seconds_since(ta);
    }
    if (pass == 0) out.stats = m.stats();
  }
  for (double b : best)
    if (b < 1e30) out.best_us.push_back(b);
  return true;
}

// --check K: the fast mask against brute force in every K-th state along the instances and along
// one random walk per schema (uniformly random allowed tokens, short ones preferred, so that it
// reaches states no instance does). Returns the number of states that differ.
size_t check_masks(const std::shared_ptr<const CompiledGrammar>& g, const TokenVocabulary& v, const Tokenizer& tok,
                   const MatcherOptions& mo, const std::string& name, const std::vector<std::string>& docs, int every,
                   size_t& states) {
  size_t bad = 0;
  std::vector<uint32_t> fast(v.mask_words());
  auto compare = [&](GrammarMatcher& m, const std::string& where) {
    ++states;
    m.fill_next_token_bitmask(fast.data());
    const std::vector<uint32_t> brute = test::brute_mask(m, v, v.stop_token_ids());
    if (brute == fast) return;
    ++bad;
    int shown = 0;
    for (int32_t id = 0; id < v.size() && shown < 5; ++id) {
      const bool f = (fast[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
      const bool b = (brute[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
      if (f == b) continue;
      ++shown;
      std::printf("  MASK MISMATCH %s %s: token %d '%s' fast %d brute force %d\n", name.c_str(), where.c_str(), id,
                  std::string(v.token_bytes(id)).c_str(), f, b);
    }
  };
  for (size_t d = 0; d < docs.size(); ++d) {
    GrammarMatcher m(g, mo);
    if (!m.accept_bytes(docs[d]) || !m.can_terminate()) continue;  // outside the grammar
    m.reset();
    const std::vector<int32_t> ids = tok.encode(docs[d], false);
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k % static_cast<size_t>(every) == 0) compare(m, "instance " + std::to_string(d) + " token " + std::to_string(k));
      if (!m.accept_token(ids[k])) break;
    }
  }
  std::mt19937_64 rng(std::hash<std::string>{}(name));
  GrammarMatcher m(g, mo);
  std::vector<uint32_t> mask(v.mask_words());
  for (int step = 0; step < 40 && !m.is_terminated(); ++step) {
    if (step % every == 0) compare(m, "random walk step " + std::to_string(step));
    m.fill_next_token_bitmask(mask.data());
    std::vector<int32_t> allowed, short_ones;
    for (int32_t id = 0; id < v.size(); ++id) {
      if (!((mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1)) continue;
      allowed.push_back(id);
      if (v.token_bytes(id).size() <= 2) short_ones.push_back(id);
    }
    if (allowed.empty()) break;
    const auto& pool = !short_ones.empty() && rng() % 3 != 0 ? short_ones : allowed;
    if (!m.accept_token(pool[rng() % pool.size()])) {
      std::printf("  REFUSED %s: a token of the mask at random walk step %d\n", name.c_str(), step);
      ++bad;
      break;
    }
  }
  return bad;
}

int run_schemas(const Tokenizer& tok, const std::shared_ptr<const TokenVocabulary>& vocab, const CompileOptions& co,
                const MatcherOptions& mo, int random, const std::string& suite_dir, int instances, int passes,
                int worst, bool list, int check) {
  const std::vector<SchemaCase> cases = schema_corpus(random, suite_dir, instances);
  struct Compiled {
    const SchemaCase* c;
    bool ok;
    double ms, cpu_ms;
    CompileStats stats;
    std::string error;
    bool suite() const { return c->name.rfind("random/", 0) != 0; }
  };
  std::vector<Compiled> done;
  size_t refused = 0, suite = 0;
  // Masks along valid instances. An instance outside the grammar (where the grammar is
  // deliberately tighter than the schema, e.g. 1.0 for an integer) is counted and skipped;
  // inside it, every token of its tokenization must be in the mask.
  std::vector<uint32_t> mask(vocab->mask_words());
  const int32_t eos = vocab->stop_token_ids().empty() ? -1 : vocab->stop_token_ids()[0];
  std::vector<double> first_us, best_us;
  size_t walked = 0, outside = 0, hits = 0, masks = 0, checked = 0, check_states = 0, check_bad = 0;
  for (const SchemaCase& c : cases) {
    suite += c.name.rfind("random/", 0) != 0;
    std::string gbnf;
    try {
      gbnf = json_schema_to_gbnf(c.schema);
    } catch (const JsonSchemaError&) {
      ++refused;  // outside what the front end supports: not part of the set
      continue;
    }
    // Compile time: the grammar text's parse and the compilation (what a request waits for once
    // the front end has run; the front end is timed apart by its own tests). Each schema is
    // compiled `passes` times and the fastest is kept: the same work each time, so the others
    // only add what the machine's other jobs took (the machine may be shared).
    std::shared_ptr<const CompiledGrammar> g;
    Compiled result{&c, true, 1e30, 1e30, {}, {}};
    for (int pass = 0; pass < passes; ++pass) {
      const auto t = Clock::now();
      const double cpu0 = thread_cpu_seconds();
      try {
        g = CompiledGrammar::from_gbnf(gbnf, vocab, co);
        result.stats = g->stats();
      } catch (const std::exception& e) {
        result.ok = false;  // the time to fail counts too
        result.error = e.what();
      }
      result.ms = std::min(result.ms, seconds_since(t) * 1e3);
      result.cpu_ms = std::min(result.cpu_ms, (thread_cpu_seconds() - cpu0) * 1e3);
    }
    done.push_back(result);
    if (!result.ok) continue;
    if (check > 0) check_bad += check_masks(g, *vocab, tok, mo, c.name, c.instances, check, check_states);
    for (const std::string& doc : c.instances) {
      {
        GrammarMatcher probe(g, mo);
        if (!probe.accept_bytes(doc) || !probe.can_terminate()) {
          ++outside;
          continue;
        }
      }
      ++walked;
      const std::vector<int32_t> ids = tok.encode(doc, false);
      DocumentWalk w;
      if (!walk_document(g, mo, *vocab, ids, eos, passes, c.name, doc, mask, w)) return 1;
      first_us.insert(first_us.end(), w.first_us.begin(), w.first_us.end());
      best_us.insert(best_us.end(), w.best_us.begin(), w.best_us.end());
      hits += w.stats.mask_cache_hits;
      masks += w.stats.masks;
      checked += w.stats.checked_tokens;
    }
  }

  size_t failed = 0;
  for (const Compiled& c : done) failed += !c.ok;
  std::printf("\nschemas: %d random + %zu from the suite; %zu refused by the front end (unsupported keywords), "
              "%zu compiled, %zu failed to compile\n", random, suite, refused, done.size() - failed, failed);
  for (const Compiled& c : done) {
    if (!c.ok) std::printf("  FAILED %s: %s\n", c.c->name.c_str(), c.error.c_str());
  }
  // The table: compile time per schema (wall, and the compiling thread's CPU time: the machine
  // may be shared; each the fastest of `passes` compiles), over the suite's schemas, the random
  // ones, and all.
  std::printf("\ncompile time per schema, fastest of %d compiles:\n", passes);
  std::printf("| schemas | count | failed | median ms | p90 | p99 | max | CPU ms: median | p90 | p99 | max | "
              "moves: median | max |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  auto row = [&](const char* name, int which) {
    std::vector<double> ms, cpu, moves;
    size_t n = 0, bad = 0;
    for (const Compiled& c : done) {
      if (which == 0 && !c.suite()) continue;
      if (which == 1 && c.suite()) continue;
      ++n;
      bad += !c.ok;
      ms.push_back(c.ms);
      cpu.push_back(c.cpu_ms);
      if (c.ok) moves.push_back(static_cast<double>(c.stats.classify_moves) / 1e6);
    }
    if (n == 0) return;
    std::printf("| %s | %zu | %zu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fM | %.2fM |\n", name, n,
                bad, percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99), percentile(ms, 1.0),
                percentile(cpu, 0.5), percentile(cpu, 0.9), percentile(cpu, 0.99), percentile(cpu, 1.0),
                percentile(moves, 0.5), percentile(moves, 1.0));
  };
  row("JSON-Schema-Test-Suite (supported)", 0);
  row("random_schema.h", 1);
  row("all", 2);
  std::vector<const Compiled*> by_time;
  for (const Compiled& c : done) by_time.push_back(&c);
  std::sort(by_time.begin(), by_time.end(), [](const Compiled* a, const Compiled* b) { return a->cpu_ms > b->cpu_ms; });
  std::printf("worst %d (by CPU time):\n", worst);
  for (size_t i = 0; i < by_time.size() && i < static_cast<size_t>(worst); ++i) {
    const Compiled& c = *by_time[i];
    std::printf("  %-44s %8.1f ms (%.1f CPU)  %zu nodes (%zu classified, %zu classes), %zu walks, %.2fM moves\n",
                c.c->name.c_str(), c.ms, c.cpu_ms, c.stats.nodes, c.stats.classified_nodes, c.stats.distinct_classes,
                c.stats.classify_walks, static_cast<double>(c.stats.classify_moves) / 1e6);
  }
  if (list) {
    for (const Compiled& c : done) {
      std::printf("  compiled %s %.2f ms %.2f cpu %zu nodes %zu walks %.2fM moves%s\n", c.c->name.c_str(), c.ms,
                  c.cpu_ms, c.stats.nodes, c.stats.classify_walks, static_cast<double>(c.stats.classify_moves) / 1e6,
                  c.ok ? "" : " FAILED");
    }
  }
  if (check > 0) {
    std::printf("\nbrute-force check: %zu states, %zu differ\n", check_states, check_bad);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  std::printf("\nmasks: %zu instances walked (%zu outside the grammar, skipped), %zu masks, %.0f%% from the "
              "matcher's cache, %.1f tokens checked per mask\n", walked, outside, first_us.size(),
              masks ? 100.0 * static_cast<double>(hits) / static_cast<double>(masks) : 0.0,
              masks ? static_cast<double>(checked) / static_cast<double>(masks) : 0.0);
  std::printf("mask us per token: mean %.2f | p50 %.2f | p99 %.2f | max %.1f   (best of %d: mean %.2f | p99 %.2f | "
              "max %.1f)\n", mean(first_us), percentile(first_us, 0.5), percentile(first_us, 0.99),
              percentile(first_us, 1.0), passes, mean(best_us), percentile(best_us, 0.99), percentile(best_us, 1.0));
  if (check_bad > 0) return 4;
  return failed == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_dir = std::string(VLLM_TEST_DATA_DIR) + "/tokenizers/tiny-llama3";
  std::string config_dir = std::string(VLLM_TEST_DATA_DIR) + "/models/tiny-llama3";
  int docs = 40;
  uint64_t seed = 1;
  int follow_depth = CompileOptions{}.follow_depth;
  int cache_entries = MatcherOptions{}.mask_cache_entries;
  int threads = 1;
  int passes = 3;
  std::string only;
  bool schemas = false, list = false;
  int random = 200, instances = 3, worst = 5, check = 0;
  std::string suite_dir = std::string(VLLM_TEST_DATA_DIR) + "/json-schema-test-suite/tests";
  std::string profile;
  uint64_t max_moves = CompileOptions{}.max_moves;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--tokenizer") {
      tokenizer_dir = value();
      config_dir.clear();
    } else if (a == "--config") config_dir = value();
    else if (a == "--docs") docs = std::atoi(value().c_str());
    else if (a == "--seed") seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--follow-depth") follow_depth = std::atoi(value().c_str());
    else if (a == "--cache-entries") cache_entries = std::atoi(value().c_str());
    else if (a == "--threads") threads = std::atoi(value().c_str());
    else if (a == "--grammar") only = value();
    else if (a == "--passes") passes = std::max(1, std::atoi(value().c_str()));
    else if (a == "--schemas") schemas = true;
    else if (a == "--random") random = std::atoi(value().c_str());
    else if (a == "--suite") suite_dir = value();
    else if (a == "--instances") instances = std::atoi(value().c_str());
    else if (a == "--max-moves") max_moves = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--worst") worst = std::atoi(value().c_str());
    else if (a == "--list") list = true;
    else if (a == "--profile") profile = value();
    else if (a == "--check") check = std::atoi(value().c_str());
    else {
      std::fprintf(stderr, "usage: %s [--tokenizer DIR [--config DIR]] [--docs N] [--seed S] [--follow-depth D] "
                           "[--cache-entries K] [--threads T] [--passes P] [--grammar json_object|schema|arithmetic]\n"
                           "       %s --schemas [--random N] [--suite DIR] [--instances K] [--max-moves M] [--worst W] "
                           "[--list] [--check K]\n       %s --profile NAME [--worst W] (NAME: random/5, draft4/ref.json#3, ...)\n",
                   argv[0], argv[0], argv[0]);
      return 2;
    }
  }
  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n");

  try {
    auto t0 = Clock::now();
    // tokenizer_config.json (the EOS token) may sit in a separate model folder, as for the test data.
    auto tok = config_dir.empty() ? Tokenizer::from_folder(tokenizer_dir) : Tokenizer::from_folders(tokenizer_dir, config_dir);
    const double load_s = seconds_since(t0);
    t0 = Clock::now();
    auto vocab = TokenVocabulary::from_tokenizer(*tok);
    const double vocab_s = seconds_since(t0);
    std::printf("tokenizer %s: %d tokens, %u trie nodes; load %.0f ms, vocabulary + trie %.0f ms\n",
                tokenizer_dir.c_str(), vocab->size(), vocab->trie().num_nodes(), load_s * 1e3, vocab_s * 1e3);

    std::unique_ptr<ThreadPool> pool;
    if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
    CompileOptions co;
    co.follow_depth = follow_depth;
    co.pool = pool.get();
    co.max_moves = max_moves;
    MatcherOptions mo;
    mo.mask_cache_entries = cache_entries;
    if (!profile.empty()) return profile_schema(vocab, co, schema_corpus(random, suite_dir, 0), profile, worst);
    if (schemas) return run_schemas(*tok, vocab, co, mo, random, suite_dir, instances, passes, worst, list, check);

    struct Case {
      std::string name, gbnf;
      std::vector<std::string> docs;  // empty: random walks instead
    };
    std::vector<Case> cases;
    {
      testing::JsonDocuments gen(seed);
      std::vector<std::string> d;
      for (int i = 0; i < docs; ++i) d.push_back(gen.next());
      cases.push_back({"json_object", json_object_gbnf(), d});
    }
    cases.push_back({"schema", kSchemaGrammar, schema_documents(docs, seed)});
    cases.push_back({"schema, maxLength 64", schema_with_max_length(), schema_documents(docs, seed)});
    cases.push_back({"arithmetic", kArithmeticGrammar, arithmetic_documents(docs, seed)});
    // Random walks: every step takes a uniformly random allowed token (a stress test: deep
    // nesting, long strings of odd tokens, states no document reaches).
    cases.push_back({"json_object (random tokens)", json_object_gbnf(), {}});

    std::vector<Result> results;
    std::vector<uint32_t> mask(vocab->mask_words());
    const int32_t eos = vocab->stop_token_ids().empty() ? -1 : vocab->stop_token_ids()[0];
    for (const Case& c : cases) {
      if (!only.empty() && c.name != only) continue;
      Result r;
      r.name = c.name;
      auto g = CompiledGrammar::from_gbnf(c.gbnf, vocab, co);
      r.compile = g->stats();
      if (c.docs.empty()) {
        std::mt19937_64 rng(seed);
        const int walk_tokens = 200;
        for (int w = 0; w < docs; ++w) {
          GrammarMatcher m(g, mo);
          for (int k = 0; k < walk_tokens && !m.is_terminated(); ++k) {
            const auto ts = Clock::now();
            m.fill_next_token_bitmask(mask.data());
            r.mask_us.push_back(seconds_since(ts) * 1e6);
            std::vector<int32_t> allowed;
            for (int32_t id = 0; id < vocab->size(); ++id) {
              if ((mask[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1) allowed.push_back(id);
            }
            if (allowed.empty()) break;
            const int32_t id = allowed[rng() % allowed.size()];
            const auto ta = Clock::now();
            if (!m.accept_token(id)) {
              std::fprintf(stderr, "%s: token %d in the mask but refused\n", c.name.c_str(), id);
              return 1;
            }
            r.accept_seconds += seconds_since(ta);
            ++r.tokens;
          }
          r.masks += m.stats().masks;
          r.cache_hits += m.stats().mask_cache_hits;
          r.checked += m.stats().checked_tokens;
        }
        results.push_back(std::move(r));
        continue;
      }
      for (const std::string& doc : c.docs) {
        const std::vector<int32_t> ids = tok->encode(doc, false);
        DocumentWalk w;
        if (!walk_document(g, mo, *vocab, ids, eos, passes, c.name, doc, mask, w)) return 1;
        r.mask_us.insert(r.mask_us.end(), w.first_us.begin(), w.first_us.end());
        r.best_us.insert(r.best_us.end(), w.best_us.begin(), w.best_us.end());
        r.accept_seconds += w.accept_seconds;
        r.tokens += ids.size() + 1;
        r.masks += w.stats.masks;
        r.cache_hits += w.stats.mask_cache_hits;
        r.checked += w.stats.checked_tokens;
      }
      results.push_back(std::move(r));
    }

    std::printf("\n| grammar | compile ms | nodes (classified) | tokens walked | mask mean us | p50 | p99 | max | "
                "best-of-%d mean us | p99 | max | tokens/s (mask + accept) | cache hits | checked per mask |\n", passes);
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Result& r : results) {
      double sum = 0, best = 0;
      for (double x : r.mask_us) sum += x;
      for (double x : r.best_us) best += x;
      const double n = r.mask_us.empty() ? 1.0 : static_cast<double>(r.mask_us.size());
      const double tps = static_cast<double>(r.tokens) / (sum * 1e-6 + r.accept_seconds);
      auto best_col = [&](double v) {
        if (r.best_us.empty()) return std::string("-");  // random walks are not repeated
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.1f", v);
        return std::string(buf);
      };
      std::printf("| %s | %.0f | %zu (%zu) | %zu | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %.0f | %.0f%% | %.1f |\n",
                  r.name.c_str(), r.compile.seconds * 1e3, r.compile.nodes, r.compile.classified_nodes, r.tokens,
                  sum / n, percentile(r.mask_us, 0.5), percentile(r.mask_us, 0.99), percentile(r.mask_us, 1.0),
                  best_col(r.best_us.empty() ? 0 : best / static_cast<double>(r.best_us.size())).c_str(),
                  best_col(percentile(r.best_us, 0.99)).c_str(), best_col(percentile(r.best_us, 1.0)).c_str(), tps,
                  r.masks ? 100.0 * static_cast<double>(r.cache_hits) / static_cast<double>(r.masks) : 0.0,
                  r.masks ? static_cast<double>(r.checked) / static_cast<double>(r.masks) : 0.0);
    }
    std::printf("\ncompile details:\n");
    for (const Result& r : results) {
      std::printf("  %s: %.0f ms (classes %.0f ms), %zu rules, %zu nodes, %zu classified with %zu distinct classes "
                  "from %zu walks (%.1fM parser moves), accepted entries %zu, uncertain %zu, %.1f MB\n",
                  r.name.c_str(), r.compile.seconds * 1e3, r.compile.classify_seconds * 1e3, r.compile.rules,
                  r.compile.nodes, r.compile.classified_nodes, r.compile.distinct_classes, r.compile.classify_walks,
                  static_cast<double>(r.compile.classify_moves) / 1e6,
                  r.compile.accepted_entries, r.compile.uncertain_entries,
                  static_cast<double>(r.compile.memory_bytes) / 1e6);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
