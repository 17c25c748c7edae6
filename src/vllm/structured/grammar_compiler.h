// The structured-outputs entry point of an engine: one per tokenizer. It turns a request's
// constraint (StructuredOutputsParams) into a CompiledGrammar for that tokenizer's vocabulary,
// through the shared GrammarCache, so every request with the same constraint shares one
// compilation. Thread-safe: the server's request threads, the Python API and the CLI call it
// before a request reaches the engine thread, which therefore never compiles (a new schema never
// stalls the other requests' decoding).
#pragma once

#include <memory>
#include <mutex>

#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/grammar_cache.h"
#include "vllm/structured/structured_outputs_params.h"
#include "vllm/structured/token_vocabulary.h"

namespace vllm {
class Tokenizer;
}

namespace vllm::structured {

class GrammarCompiler {
 public:
  explicit GrammarCompiler(std::shared_ptr<const Tokenizer> tokenizer, GrammarCacheOptions options = {});

  // The compiled grammar of `params`: cached, or compiled now on the cache's threads while the
  // caller waits. Throws what the front end or the grammar parser throws (vllm::Error,
  // kInvalidArgument: JsonSchemaError with its pointer, RegexError with its position,
  // GrammarError with its line and column).
  std::shared_ptr<const CompiledGrammar> compile(const StructuredOutputsParams& params);

  // The vocabulary's byte view (built on first use: a walk over every token).
  std::shared_ptr<const TokenVocabulary> vocabulary();
  GrammarCacheStats cache_stats() const { return cache_.stats(); }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::once_flag vocab_once_;
  std::shared_ptr<const TokenVocabulary> vocab_;
  GrammarCache cache_;
};

}  // namespace vllm::structured
