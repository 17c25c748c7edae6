// Strongly connected components of a directed graph (internal to the structured library).
#pragma once

#include <cstdint>
#include <vector>

namespace vllm::structured {

// Tarjan's algorithm, iterative (grammars can be deep). comp[v] numbers v's component;
// components are numbered in the order they complete, which is reverse topological: a
// component reachable from another one gets a smaller number.
std::vector<int> strongly_connected_components(const std::vector<std::vector<uint32_t>>& out);

}  // namespace vllm::structured
