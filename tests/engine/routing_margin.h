// How close a mixture-of-experts model comes to sending a token to other experts. A bfloat16 run
// may route a token differently from the float64 reference where two router logits nearly tie
// (k-th and (k+1)-th best within bf16's rounding), and from there on its outputs differ by far
// more than rounding: the golden tests accept such a divergence only where this margin, measured
// in float32 on the reference's own tokens, shows the tie.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vllm::test {

// The smallest gap, over the model's MoE layers, between the k-th and (k+1)-th largest router
// logit of the last token of `ids` (k = experts per token), from one float32 prefill of `ids` on
// the CPU. +infinity for a model without experts.
double last_token_routing_margin(const std::string& model_dir, const std::vector<int32_t>& ids);

}  // namespace vllm::test
