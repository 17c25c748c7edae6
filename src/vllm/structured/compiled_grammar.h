// A grammar compiled for one tokenizer's vocabulary: the automaton the matcher runs plus the
// per-node token classes that make next-token masks cheap (token_classes.h). Immutable and
// shared: every request with the same grammar and tokenizer uses one CompiledGrammar (see
// grammar_cache.h), and every GrammarMatcher holds it by shared_ptr.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "vllm/structured/grammar.h"
#include "vllm/structured/limits.h"
#include "vllm/structured/token_vocabulary.h"

namespace vllm {
class ThreadPool;
}

namespace vllm::structured {

namespace detail {
struct Automaton;
struct ClassifiedNodes;
}  // namespace detail

struct CompileOptions {
  // Token classes look this many rule ends deep past the rule they are computed for (see
  // token_classes.h); deeper means fewer tokens left to check at run time, more compile time.
  int follow_depth = 3;
  // Classify the nodes on this pool's threads; nullptr: on the calling thread. Do not pass a
  // pool that the caller's own thread is working for (ThreadPool runs nested loops serially).
  ThreadPool* pool = nullptr;
  // Compile work budget, in parser moves per compile thread (limits::kMaxCompileMoves); past it
  // compilation fails with a GrammarError.
  uint64_t max_moves = limits::kMaxCompileMoves;
};

struct CompileStats {
  double seconds = 0;            // whole compile, parse excluded
  double classify_seconds = 0;   // the token classes
  size_t rules = 0;              // real rules of the automaton
  size_t nodes = 0;              // automaton nodes
  size_t classified_nodes = 0;   // nodes with byte edges (each has token classes)
  size_t distinct_classes = 0;   // distinct token classes among them (equivalent nodes share)
  size_t classify_walks = 0;     // trie walks run to compute them
  uint64_t classify_moves = 0;   // parser moves those walks made
  size_t accepted_entries = 0;   // sum over distinct classes of their accepted-token counts
  size_t uncertain_entries = 0;  // sum over distinct classes of their uncertain-token counts
  size_t memory_bytes = 0;
};

class CompiledGrammar {
 public:
  // Compiles `grammar` for `vocab` (nullptr: bytes only, for accept_bytes(); no masks).
  static std::shared_ptr<const CompiledGrammar> compile(const Grammar& grammar,
                                                        std::shared_ptr<const TokenVocabulary> vocab,
                                                        const CompileOptions& options = {});
  // Parses GBNF text and compiles it. Throws GrammarError.
  static std::shared_ptr<const CompiledGrammar> from_gbnf(std::string_view gbnf,
                                                          std::shared_ptr<const TokenVocabulary> vocab,
                                                          const CompileOptions& options = {});

  ~CompiledGrammar();
  const Grammar& grammar() const { return grammar_; }
  // nullptr when compiled for bytes only.
  const std::shared_ptr<const TokenVocabulary>& vocabulary() const { return vocab_; }
  const CompileStats& stats() const { return stats_; }
  size_t memory_bytes() const { return stats_.memory_bytes; }

  // Internals, for the matcher.
  const detail::Automaton& automaton() const { return *automaton_; }
  const detail::ClassifiedNodes& classes() const { return *classes_; }

  CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenVocabulary> vocab);

 private:
  Grammar grammar_;
  std::shared_ptr<const TokenVocabulary> vocab_;
  std::unique_ptr<detail::Automaton> automaton_;
  std::unique_ptr<detail::ClassifiedNodes> classes_;
  CompileStats stats_;
};

}  // namespace vllm::structured
