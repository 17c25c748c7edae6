// How the layers' KV caches share one pool of blocks when layers attend differently (vLLM's
// hybrid KV cache manager). Layers with the same attention window are cut into groups of
// `group_size` layers; each group keeps its own block table per sequence, so a sliding-window
// group can give back the blocks its window has left while a full-attention group keeps all of
// them. The backend allocates `group_size` K and V tensors of num_blocks blocks each, and block b
// of a group is slot b of every one of them: layer i of the group uses tensor i. A block id thus
// means the same bytes whichever group holds it, and one pool serves every group.
//
// A model whose layers all attend alike has one group of all its layers: block b is then block b
// of every layer's own tensor, as without groups.
#pragma once

#include <cstdint>
#include <vector>

namespace vllm {

struct KVCacheLayout {
  int64_t group_size = 0;              // layers per group: the number of K (and V) tensors
  std::vector<int64_t> group_windows;  // per group: its sliding window in tokens, 0 = full attention
  std::vector<int> layer_group;        // per layer: its group
  std::vector<int> layer_slot;         // per layer: its tensor (its place in the group)

  int num_groups() const { return static_cast<int>(group_windows.size()); }
  int64_t num_layers() const { return static_cast<int64_t>(layer_group.size()); }
};

// The layout for layers with these windows (0 = full attention). The group size is the smallest
// number of layers sharing a window, so that the rarest kind fills its groups exactly; the other
// kinds' last group may have empty slots (their bytes are allocated but unused). Full-attention
// groups come first.
KVCacheLayout plan_kv_cache_layout(const std::vector<int64_t>& layer_windows);

}  // namespace vllm
