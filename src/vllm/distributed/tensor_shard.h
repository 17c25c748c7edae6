// How the checkpoint tensors of a model split over tensor-parallel ranks (Megatron-style, as
// vLLM): column-parallel products (q/k/v, gate/up) take a rank's share of their output rows,
// row-parallel ones (o, down) a share of their input columns, with an all-reduce after them; the
// embedding table and the LM head take a share of the vocabulary; norms and routers are whole on
// every rank. A family describes its tensors with ShardRules; the WeightStore applies them as it
// reads (WeightStore::set_shard), so the model code loads its rank's slices by their usual names.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vllm/config/model_config.h"
#include "vllm/core/tensor.h"

namespace vllm {

// `count` units of `unit` consecutive elements along the split dimension (heads of head_dim rows,
// say). Each rank takes a contiguous run of count / world units; where there are fewer units
// than ranks (grouped-query attention with fewer KV heads than ranks) each rank takes the one
// unit its share of the query heads reads, replicated as in vLLM. `uneven`: the last ranks may
// take fewer (the vocabulary: ceil(count / world) each).
struct ShardSegment {
  int64_t count = 0;
  int64_t unit = 1;
  bool uneven = false;
};

struct ShardRule {
  enum class Kind {
    kSplit,          // the segments along `dim`, each split over the ranks
    kFirstRankOnly,  // rank 0 holds the tensor, the others zeros: a row-parallel product's bias,
                     // added once to the sum of the ranks' partial outputs
  };
  Kind kind = Kind::kSplit;
  int64_t dim = 0;
  std::vector<ShardSegment> segments;  // concatenated along dim, in order
};

// The units [begin, end) of a segment that `rank` of `world` takes.
std::pair<int64_t, int64_t> shard_range(const ShardSegment& s, int rank, int world);

// A rank's view of a checkpoint: the rules by tensor name (tensors without one are whole).
struct TensorShard {
  int rank = 0;
  int world_size = 1;
  std::map<std::string, ShardRule> rules;
  // `full` as this rank holds it; a rule that cannot split the tensor's shape (a count the ranks
  // do not divide) is an error naming the tensor.
  Tensor apply(const std::string& name, const Tensor& full) const;
};

// The rank's share of a model's dimensions: attention heads, KV heads (at least one: replicated
// where there are fewer than ranks), the MLP's intermediate size and the vocabulary. What does
// not divide is an error naming the config key and the --tensor-parallel-size.
ModelConfig shard_config(const ModelConfig& full, int rank, int world);
// The units of a `count` that `rank` of `world` takes, checked to divide (`what` names it in the error).
int64_t shard_units(int64_t count, int rank, int world, const std::string& what);
// The rank's first vocabulary id (its embedding rows and logits columns start there).
int64_t shard_vocab_begin(const ModelConfig& full, int rank, int world);

// Rules shared by the families: a [vocab, H] table (embedding, LM head), the q/k/v projections as
// one fused tensor along dim 0, and a split of `count` units along `dim`.
ShardRule vocab_rule(const ModelConfig& c);
ShardRule qkv_rule(const ModelConfig& c, int64_t dim = 0);
ShardRule split_rule(int64_t dim, int64_t count, int64_t unit = 1);
ShardRule first_rank_rule();

}  // namespace vllm
