// How a mixture-of-experts layer groups its work by expert, shared by the backends: the CPU op
// groups with group_by_expert() itself; the CUDA kernels build the same layout on the device (the
// op tests compare the two exactly) and find their work with the index helpers below, which
// compile for the host too so that they are tested on the CPU.
//
// Each of T tokens picks K experts: assignment a = t * K + k is token t's k-th pick. The layout
// sorts the T*K assignments by expert, tokens in ascending order within an expert (a stable
// counting sort), so that each expert's tokens are one contiguous run of rows.
#pragma once

#include <cstdint>
#include <vector>

#include "vllm/core/error.h"

#if defined(__CUDACC__)
#define VLLM_HOST_DEVICE __host__ __device__
#else
#define VLLM_HOST_DEVICE
#endif

namespace vllm::moe {

struct ExpertLayout {
  std::vector<int32_t> counts;       // [E] assignments per expert
  std::vector<int32_t> offsets;      // [E + 1] exclusive prefix sums of counts
  std::vector<int32_t> order;        // [T*K] assignment of each sorted row
  std::vector<int32_t> pos;          // [T*K] sorted row of each assignment (the inverse of order)
  std::vector<int32_t> tile_starts;  // [E + 1] first row tile of each expert, tiles of tile_rows rows
  std::vector<int32_t> active;       // the experts with at least one assignment, ascending
};

// Row tiles of an expert with `count` assignments.
VLLM_HOST_DEVICE inline int32_t tiles_of(int32_t count, int32_t tile_rows) { return (count + tile_rows - 1) / tile_rows; }

// The most row tiles any routing of n assignments over E experts can need: every expert adds at
// most one partly filled tile to the ceil(n / tile_rows) full ones.
VLLM_HOST_DEVICE inline int64_t max_row_tiles(int64_t n, int64_t E, int64_t tile_rows) {
  return (n + tile_rows - 1) / tile_rows + (n < E ? n : E);
}

// The expert that row tile `tile` belongs to: the e with tile_starts[e] <= tile < tile_starts[e + 1]
// (experts without tiles have tile_starts[e] == tile_starts[e + 1], so the largest e with
// tile_starts[e] <= tile is the one). tile must be below tile_starts[E].
VLLM_HOST_DEVICE inline int32_t expert_of_tile(int32_t tile, const int32_t* tile_starts, int32_t E) {
  int32_t lo = 0, hi = E - 1;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) / 2;
    if (tile_starts[mid] <= tile) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The layout of ids [T*K] (expert indices in [0, E)).
inline ExpertLayout group_by_expert(const int32_t* ids, int64_t T, int64_t K, int64_t E, int32_t tile_rows = 1) {
  VLLM_CHECK(E > 0 && K > 0 && tile_rows > 0, "moe layout: bad sizes");
  const int64_t n = T * K;
  ExpertLayout L;
  L.counts.assign(static_cast<size_t>(E), 0);
  for (int64_t a = 0; a < n; ++a) {
    VLLM_CHECK(ids[a] >= 0 && ids[a] < E, "moe layout: expert index out of range");
    ++L.counts[static_cast<size_t>(ids[a])];
  }
  L.offsets.assign(static_cast<size_t>(E + 1), 0);
  L.tile_starts.assign(static_cast<size_t>(E + 1), 0);
  for (int64_t e = 0; e < E; ++e) {
    const int32_t c = L.counts[static_cast<size_t>(e)];
    L.offsets[static_cast<size_t>(e + 1)] = L.offsets[static_cast<size_t>(e)] + c;
    L.tile_starts[static_cast<size_t>(e + 1)] = L.tile_starts[static_cast<size_t>(e)] + tiles_of(c, tile_rows);
    if (c > 0) L.active.push_back(static_cast<int32_t>(e));
  }
  L.order.resize(static_cast<size_t>(n));
  L.pos.resize(static_cast<size_t>(n));
  std::vector<int32_t> fill(L.offsets.begin(), L.offsets.end() - 1);
  for (int64_t a = 0; a < n; ++a) {
    const int32_t r = fill[static_cast<size_t>(ids[a])]++;
    L.order[static_cast<size_t>(r)] = static_cast<int32_t>(a);
    L.pos[static_cast<size_t>(a)] = r;
  }
  return L;
}

}  // namespace vllm::moe
