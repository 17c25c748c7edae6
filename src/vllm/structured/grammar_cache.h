// The compiled grammars of all requests, shared: an LRU keyed by (kind, text, vocabulary), bounded
// by entries and by estimated bytes, that compiles on its own threads. The engine asks for a
// grammar when a request arrives and polls the returned future each step (ready() never blocks),
// so a request whose grammar is compiling waits without stalling the others; requests with the
// same grammar share one compilation and one CompiledGrammar.
#pragma once

#include <cstdint>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "vllm/structured/compiled_grammar.h"

namespace vllm::structured {

struct GrammarCacheOptions {
  size_t max_entries = 256;
  size_t max_bytes = size_t{512} << 20;  // CompiledGrammar::memory_bytes() of the kept grammars
  int compile_threads = 1;               // the cache's own compile threads
  CompileOptions compile;
};

struct GrammarCacheStats {
  size_t entries = 0;    // kept (ready or compiling)
  size_t bytes = 0;      // of the ready ones
  size_t compiling = 0;  // queued or running
  uint64_t hits = 0, misses = 0, evictions = 0, failures = 0;
};

class GrammarCache {
 public:
  using Future = std::shared_future<std::shared_ptr<const CompiledGrammar>>;
  // Turns a request's grammar text of some kind (a JSON schema, a regex...) into GBNF.
  using ToGbnf = std::function<std::string(std::string_view text)>;

  explicit GrammarCache(GrammarCacheOptions options = {});
  // Fails the queued compilations with an Error, then waits for the running ones.
  ~GrammarCache();
  GrammarCache(const GrammarCache&) = delete;
  GrammarCache& operator=(const GrammarCache&) = delete;

  // The grammar for (kind, text) compiled for `vocab`: the cached one, or one compiled on a cache
  // thread (`to_gbnf` runs there too; empty: `text` is GBNF). A failure (GrammarError from the
  // front end or the parser, any Error) is delivered through the future and not kept, so the
  // next request with the same text tries again.
  Future get(std::string_view kind, std::string_view text, std::shared_ptr<const TokenVocabulary> vocab,
             ToGbnf to_gbnf = {});

  // Whether a future has its grammar (or error) without waiting.
  static bool ready(const Future& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

  GrammarCacheStats stats() const;
  // Drops every ready entry (compilations in flight finish and are kept).
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vllm::structured
