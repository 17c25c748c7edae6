// Mixture-of-experts routing on the CPU, exposed for the op tests.
#pragma once

#include <cstdint>

#include "vllm/backends/backend.h"

namespace vllm::cpu {

// For each of T tokens, from its E router logits: softmax (computed in double, stored as float),
// the routing.top_k most probable experts (ties to the lower index), renormalised to sum 1 if
// routing.renormalize. ids and weights are [T, top_k], in descending probability order.
void moe_route(const float* logits, int64_t T, int64_t E, const MoeRouting& routing, int32_t* ids, float* weights);

}  // namespace vllm::cpu
