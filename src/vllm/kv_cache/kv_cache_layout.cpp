#include "vllm/kv_cache/kv_cache_layout.h"

#include <algorithm>
#include <map>

#include "vllm/core/error.h"

namespace vllm {

KVCacheLayout plan_kv_cache_layout(const std::vector<int64_t>& layer_windows) {
  VLLM_CHECK(!layer_windows.empty(), "a KV cache layout needs at least one layer");
  std::map<int64_t, std::vector<int>> layers_of;  // window -> layers, full attention (0) first
  for (size_t l = 0; l < layer_windows.size(); ++l) {
    VLLM_CHECK(layer_windows[l] >= 0, "a sliding window must not be negative");
    layers_of[layer_windows[l]].push_back(static_cast<int>(l));
  }
  KVCacheLayout out;
  out.group_size = static_cast<int64_t>(layer_windows.size());
  for (const auto& [window, layers] : layers_of) out.group_size = std::min<int64_t>(out.group_size, layers.size());
  out.layer_group.assign(layer_windows.size(), 0);
  out.layer_slot.assign(layer_windows.size(), 0);
  for (const auto& [window, layers] : layers_of)
    for (size_t i = 0; i < layers.size(); ++i) {
      if (i % static_cast<size_t>(out.group_size) == 0) out.group_windows.push_back(window);
      out.layer_group[static_cast<size_t>(layers[i])] = out.num_groups() - 1;
      out.layer_slot[static_cast<size_t>(layers[i])] = static_cast<int>(i % static_cast<size_t>(out.group_size));
    }
  return out;
}

}  // namespace vllm
