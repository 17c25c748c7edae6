// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3",
// SC 2011): a counter-based generator. The draw is a pure function of a 128-bit counter and a
// 64-bit key, with no state to carry from one draw to the next, so any draw can be taken on
// its own, on the host or in a CUDA kernel, in any order, and always comes out the same. The
// sampler takes a row's draw at counter (its output position, its stream) under its key (see
// SamplingDraw in sampler.h): that is what lets a seeded request give the same tokens at any
// batch size, on the CPU and the GPU, and lets the host prepare a step before the last one
// finished. The same function as Random123's philox4x32 with 10 rounds (and cuRAND's
// Philox4_32_10 and PyTorch's), checked against Random123's known-answer vectors.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define VLLM_PHILOX_FN __host__ __device__ inline
#else
#define VLLM_PHILOX_FN inline
#endif

namespace vllm {

struct Philox4x32 {
  uint32_t v[4];
};

VLLM_PHILOX_FN uint32_t philox_mulhi(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

VLLM_PHILOX_FN Philox4x32 philox4x32_10(Philox4x32 counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // golden ratio, sqrt(3) - 1
  uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kWeyl0;
      key1 += kWeyl1;
    }
    const uint32_t hi0 = philox_mulhi(kMul0, c0), lo0 = kMul0 * c0;
    const uint32_t hi1 = philox_mulhi(kMul1, c2), lo1 = kMul1 * c2;
    c0 = hi1 ^ c1 ^ key0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ key1;
    c3 = lo0;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// A uniform double in [0, 1) with 53 random bits: the draw at `index` of the stream `stream`
// under `key`.
VLLM_PHILOX_FN double philox_uniform(uint64_t key, uint64_t stream, uint64_t index) {
  const Philox4x32 r = philox4x32_10(
      Philox4x32{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), static_cast<uint32_t>(stream),
                  static_cast<uint32_t>(stream >> 32)}},
      static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
  const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace vllm
