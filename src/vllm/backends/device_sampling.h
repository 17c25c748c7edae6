// One row of a step's sampling as a backend's own sampler takes it (the GPU's: sampling.cu):
// plain data, the same bytes on the host and the device.
//
// The rule is the host sampler's (sampling/sampler.h) for the parameters it covers: the
// structured-outputs bitmask first; greedy rows take the argmax (ties to the lower id);
// otherwise weights e^((logit - max) / T), top-k keeping every logit >= the k-th largest,
// min-p keeping weights >= min_p, top-p keeping tokens (largest weight first, ties to the lower
// id) while the mass before them is < top_p of the total, and one inverse-CDF draw in token-id
// order at the row's uniform u. Rows with logprobs, penalties, logit bias, allowed or bad token
// lists or a pending min_tokens stay on the host sampler (the engine decides).
#pragma once

#include <cstdint>

namespace vllm {

struct DeviceSamplingRow {
  int64_t logits_row = 0;  // which row of the logits matrix it samples (branches may share one)
  int64_t mask_row = -1;   // its row of the step's token bitmasks; -1: unconstrained
  double u = 0;            // its uniform draw in [0, 1) (SamplingDraw); unused when greedy
  float inv_temperature = 1;
  float top_p = 1;         // >= 1: off
  float min_p = 0;         // 0: off
  int32_t top_k = 0;       // 0: off (so is k >= vocab)
  int32_t greedy = 0;      // 1: argmax
  int32_t pad = 0;
};

}  // namespace vllm
