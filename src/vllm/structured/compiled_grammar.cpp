#include "vllm/structured/compiled_grammar.h"

#include <chrono>

#include "vllm/structured/automaton.h"
#include "vllm/structured/token_classes.h"

namespace vllm::structured {

CompiledGrammar::CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenVocabulary> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)) {}

CompiledGrammar::~CompiledGrammar() = default;

std::shared_ptr<const CompiledGrammar> CompiledGrammar::compile(const Grammar& grammar,
                                                                std::shared_ptr<const TokenVocabulary> vocab,
                                                                const CompileOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto g = std::make_shared<CompiledGrammar>(grammar, std::move(vocab));
  g->automaton_ = std::make_unique<detail::Automaton>(detail::build_automaton(g->grammar_));
  const auto t1 = Clock::now();
  if (g->vocab_) {
    detail::ClassifyOptions co;
    co.follow_depth = options.follow_depth;
    co.pool = options.pool;
    co.max_moves = options.max_moves;
    try {
      g->classes_ = std::make_unique<detail::ClassifiedNodes>(detail::classify_tokens(*g->automaton_, *g->vocab_, co));
    } catch (const GrammarError&) {
      throw;
    } catch (const Error& e) {
      // A limit met while classifying (work, ambiguity): a grammar error, placed at the root.
      if (e.kind() != ErrorKind::kInvalidArgument) throw;
      const GrammarRule& root = g->grammar_.rules()[g->grammar_.root()];
      throw GrammarError(root.line, root.column, e.what());
    }
  } else {
    g->classes_ = std::make_unique<detail::ClassifiedNodes>();
    g->classes_->node_class.assign(g->automaton_->nodes.size(), UINT32_MAX);
  }
  const auto t2 = Clock::now();
  CompileStats& s = g->stats_;
  s.seconds = std::chrono::duration<double>(t2 - t0).count();
  s.classify_seconds = std::chrono::duration<double>(t2 - t1).count();
  s.rules = g->automaton_->rule_start.size();
  s.nodes = g->automaton_->nodes.size();
  s.memory_bytes = sizeof(CompiledGrammar) + g->automaton_->memory_bytes() + g->classes_->node_class.size() * 4;
  for (const detail::Node& n : g->automaton_->nodes) s.classified_nodes += n.has_bytes();
  s.distinct_classes = g->classes_->classes.size();
  s.classify_walks = g->classes_->walks;
  s.classify_moves = g->classes_->moves;
  for (const detail::NodeClasses& c : g->classes_->classes) {
    s.accepted_entries += c.accepted.count();
    s.uncertain_entries += c.uncertain.size();
    s.memory_bytes += c.memory_bytes();
  }
  for (const GrammarRule& r : g->grammar_.rules()) {
    s.memory_bytes += sizeof(GrammarRule) + r.name.size();
    for (const GrammarSequence& seq : r.alternatives) s.memory_bytes += seq.size() * sizeof(GrammarElement);
  }
  return g;
}

std::shared_ptr<const CompiledGrammar> CompiledGrammar::from_gbnf(std::string_view gbnf,
                                                                  std::shared_ptr<const TokenVocabulary> vocab,
                                                                  const CompileOptions& options) {
  return compile(Grammar::from_gbnf(gbnf), std::move(vocab), options);
}

}  // namespace vllm::structured
