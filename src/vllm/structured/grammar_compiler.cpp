#include "vllm/structured/grammar_compiler.h"

#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::structured {

GrammarCompiler::GrammarCompiler(std::shared_ptr<const Tokenizer> tokenizer, GrammarCacheOptions options)
    : tokenizer_(std::move(tokenizer)), cache_(options) {
  if (!tokenizer_) throw Error("structured outputs need a tokenizer", ErrorKind::kInvalidArgument);
}

std::shared_ptr<const TokenVocabulary> GrammarCompiler::vocabulary() {
  std::call_once(vocab_once_, [&] { vocab_ = TokenVocabulary::from_tokenizer(*tokenizer_); });
  return vocab_;
}

std::shared_ptr<const CompiledGrammar> GrammarCompiler::compile(const StructuredOutputsParams& params) {
  // Keyed by the constraint's canonical JSON (the schema inside it is text, so its key order
  // counts, as it does for the grammar); the front end runs on the cache's thread, once.
  const std::string key = params.to_json().dump();
  auto future = cache_.get("structured_outputs", key, vocabulary(),
                           [params](std::string_view) { return params.to_gbnf(); });
  return future.get();  // rethrows the front end's or the parser's error
}

}  // namespace vllm::structured
