// Per-node token classes, computed when a grammar is compiled (internal to the structured
// library). This is what makes a next-token mask cheap.
//
// For a node p with byte edges (a possible top of stack), every matchable token is, for a frame
// at p with *any* stack below it:
//   accepted  - its bytes can be read from p without leaving p's rule, or leaving it in a way
//               that works whatever the stack is;
//   rejected  - no way works: it fails inside the rule, or after the rule ends its remaining
//               bytes cannot follow the rule anywhere in the grammar;
//   uncertain - it depends on the stack.
// "Anywhere in the grammar" is exact, not a FOLLOW-set approximation: when a token's path ends
// p's rule R with bytes left, the analysis continues at each of R's return sites (the nodes that
// can be below R's frame: see Automaton::return_sites) and reads the rest there; ending that rule
// too continues at its return sites, up to CompileOptions::follow_depth rule ends deep. The
// token is accepted if it is accepted at every return site, rejected if rejected at every one.
//
// At run time the frame below the top is known, so the uncertain tokens are refined once more
// by it (`sites`: for each return site, which uncertain tokens it accepts and which remain
// uncertain). Only what remains is checked against the real stack, walking the tokens in trie
// order so that a shared prefix is read once.
#pragma once

#include <cstdint>
#include <vector>

#include "vllm/core/thread_pool.h"
#include "vllm/structured/automaton.h"
#include "vllm/structured/token_vocabulary.h"

namespace vllm::structured::detail {

// Token ids as a bitset over the vocabulary or a sorted list, whichever is smaller.
class TokenSet {
 public:
  TokenSet() = default;
  // From ids in any order (sorted only when kept as a list).
  static TokenSet from_unsorted(std::vector<int32_t> ids, int32_t vocab_size);
  void or_into(uint32_t* words) const;
  // Overwrites words[0, num_words) with the set.
  void copy_to(uint32_t* words, size_t num_words) const;
  size_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool is_bitset() const { return !bits_.empty(); }
  size_t memory_bytes() const { return bits_.capacity() * 4 + ids_.capacity() * 4; }

 private:
  std::vector<uint32_t> bits_;
  std::vector<int32_t> ids_;
  size_t count_ = 0;
};

// Uncertain tokens as trie-order indices (TokenTrie::order positions, ascending), each with the
// length of the prefix it shares with the previous one.
struct UncertainList {
  std::vector<uint32_t> index;
  std::vector<uint16_t> lcp;
  size_t size() const { return index.size(); }
  bool empty() const { return index.empty(); }
};

struct SiteClasses {
  uint32_t site = 0;  // a return node of the node's rule, or kAcceptSite
  TokenSet accepted;  // uncertain tokens this site accepts
  UncertainList uncertain;  // uncertain tokens still uncertain with this site below
};

struct NodeClasses {
  TokenSet accepted;
  UncertainList uncertain;
  std::vector<SiteClasses> sites;  // sorted by site; empty when `uncertain` is
  const SiteClasses* find_site(uint32_t site) const;
  size_t memory_bytes() const;
};

// Where the compile work went, one entry per classification (for profiling tools).
struct WalkProfile {
  uint32_t node = 0, lo = 0, hi = 0;  // the node classified and its token-length window
  uint64_t moves = 0;                 // parser moves, all levels
  uint64_t site_walks = 0;            // walks from return sites (follow analysis)
  double seconds = 0;
};

struct ClassifyOptions {
  int follow_depth = 3;
  ThreadPool* pool = nullptr;
  uint64_t max_moves = UINT64_MAX;  // per thread
  std::vector<WalkProfile>* profile = nullptr;  // when set: one entry per walk, in job order
};

// The classes of every node with byte edges. Nodes whose futures agree share one entry.
struct ClassifiedNodes {
  std::vector<NodeClasses> classes;
  std::vector<uint32_t> node_class;  // node -> classes index; UINT32_MAX for nodes without bytes
  size_t walks = 0;                  // classifications run (one per shared tier class or node)
  uint64_t moves = 0;                // parser moves they made (the compile work)
  const NodeClasses& of(uint32_t node) const { return classes[node_class[node]]; }
};

ClassifiedNodes classify_tokens(const Automaton& a, const TokenVocabulary& vocab, const ClassifyOptions& options);

}  // namespace vllm::structured::detail
