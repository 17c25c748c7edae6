// GrammarMatcher: the state of one sequence under a compiled grammar. It accepts tokens (or raw
// bytes), fills next-token bitmasks, says whether the grammar can end here, and can roll back.
//
// The state is a pushdown automaton's set of stacks (stack_engine.h): a small sorted set of
// hash-consed frame ids. A mask is the union, over the state's top frames, of the tokens their
// node accepts whatever the stack (precomputed), the ones its return site accepts (precomputed
// per site), and the few left uncertain, checked against the real stack here. Masks are cached
// per state: inside a JSON string the state is the same token after token.
//
// A matcher is cheap to copy (n > 1 forks copy it) and not thread-safe; use one per sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "vllm/structured/compiled_grammar.h"

namespace vllm::structured {

struct MatcherOptions {
  // Stop (EOS) ids: allowed exactly when the grammar can terminate, whatever their bytes.
  // Unset: the vocabulary's stop ids.
  std::optional<std::vector<int32_t>> stop_token_ids;
  // How many accepted tokens rollback() can undo (speculative decoding rolls back the rejected
  // draft tokens; vLLM drafts at most a few).
  int max_rollback_tokens = 16;
  // Masks remembered per parser state.
  int mask_cache_entries = 8;
};

struct MatcherStats {
  uint64_t masks = 0;           // fill_next_token_bitmask calls
  uint64_t mask_cache_hits = 0;
  uint64_t checked_tokens = 0;  // uncertain tokens checked against the stack
  uint64_t collections = 0;     // times the frame pool dropped unreachable frames
};

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, MatcherOptions options = {});
  ~GrammarMatcher();
  GrammarMatcher(const GrammarMatcher& other);
  GrammarMatcher& operator=(const GrammarMatcher& other);
  GrammarMatcher(GrammarMatcher&& other) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&& other) noexcept;

  // Accepts token `id` if the grammar allows it next; false (state unchanged) otherwise. A stop
  // id is accepted exactly when can_terminate(), and then the matcher is terminated. Special
  // tokens and ids outside the vocabulary are never accepted. After termination, nothing is.
  bool accept_token(int32_t id);
  // Accepts bytes (for tests and front ends): false, state unchanged, unless all of them can be
  // read next. Counts as one step for rollback().
  bool accept_bytes(std::string_view bytes);

  // Writes the next-token mask: bit i % 32 of words[i / 32] set iff token i is allowed (vLLM's
  // layout). Writes mask_words() words. Stop ids are set iff can_terminate(); once terminated,
  // only the stop ids are. Needs a grammar compiled with a vocabulary.
  void fill_next_token_bitmask(uint32_t* words);
  // The same into `num_words` >= mask_words() words; the words past the vocabulary are zeroed
  // (a model's padded vocabulary).
  void fill_next_token_bitmask(uint32_t* words, size_t num_words);
  size_t mask_words() const;

  // Whether the input may end here (the root rule can be complete).
  bool can_terminate() const;
  // Whether a stop token was accepted.
  bool is_terminated() const;
  // Whether `id` is one of the stop ids (accepting one, where the mask allows it, terminates).
  bool is_stop_token(int32_t id) const;
  // Undoes the last `num_tokens` accepted tokens (accept_token or accept_bytes calls). Throws
  // vllm::Error (kInvalidArgument) past num_rollback_available().
  void rollback(int num_tokens);
  int num_rollback_available() const;
  // Back to the start state; history and termination cleared.
  void reset();

  const std::shared_ptr<const CompiledGrammar>& grammar() const;
  const MatcherStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vllm::structured
