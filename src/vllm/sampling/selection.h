// Partial selection over a vocabulary row: the n best tokens, top-k's candidates, and the
// top-p cut. A row is 150k floats and the sampler runs hundreds of rows per step, so none of
// these sorts the row: a bounded heap with block skipping, radix selection on histograms of
// the floats' bit patterns, and a weighted three-way quickselect on what survives.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace vllm::selection {

struct ScoredToken {
  float value;
  int32_t id;
};

// The order everything here uses: larger value first, ties to the lower id (as greedy argmax).
inline bool ranks_before(const ScoredToken& a, const ScoredToken& b) {
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

// The min(n, size) best elements of x, best first. NaN counts as -inf.
void top_n(const float* x, int64_t size, int64_t n, std::vector<ScoredToken>& out);

// top-k as vLLM does it: every element >= the k-th largest value (so ties at the boundary are
// all kept; more than k elements then), unordered, NaN counting as -inf and -inf elements
// left out. Returns the row's maximum. k <= 128: one pass with a bounded heap, which also
// catches the ties as they are turned away; larger k: radix selection (two histogram passes)
// and a gathering pass.
struct TopKScratch {
  std::vector<ScoredToken> heap;
  std::vector<ScoredToken> ties;
  std::vector<uint32_t> counts;
  std::vector<float> bucket;
};
float top_k_candidates(const float* x, int64_t size, int64_t k, std::vector<ScoredToken>& out, TopKScratch& scratch);

// The k-th largest value (1 <= k <= size), NaN counting as -inf, by radix selection.
float kth_largest(const float* x, int64_t size, int64_t k, TopKScratch& scratch);

// Which tokens top-p keeps, as a predicate on (weight, id).
struct TopPCut {
  float value;           // tokens with a larger weight are kept...
  int32_t last_tied_id;  // ...and those of exactly this weight up to this id
  bool keeps(float weight, int32_t id) const {
    return weight > value || (weight == value && id <= last_tied_id);
  }
};

// vLLM's top-p rule on unnormalised weights (entries' values, all > 0): walking tokens in
// ranks_before order, a token is kept while the mass of the tokens before it is < target
// (target = top_p * total mass). So the smallest prefix reaching top_p is kept and the first
// token always. Weighted three-way quickselect, expected O(size); permutes entries. Meant for
// candidate sets: its data-dependent branches make it slow over a whole vocabulary.
TopPCut top_p_cut(std::span<ScoredToken> entries, double target);

// The same cut over a dense row of weights w[0, size) (>= 0; 0 = excluded), for top-p without
// top-k. A mass histogram over the high bits of the weights' float encoding (which orders
// like the values) finds the one bucket holding the cut; only that bucket's tokens go through
// top_p_cut. Two passes over the row, no sorting.
TopPCut top_p_cut_dense(const float* w, int64_t size, double target, std::vector<double>& hist_scratch,
                        std::vector<ScoredToken>& bucket_scratch);

}  // namespace vllm::selection
