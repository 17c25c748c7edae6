// The random generator behind sampling. A seeded request owns one (seeded from its `seed`), so
// its tokens depend on nothing but its own logits and draws; unseeded requests share the
// sampler's engine-wide one (seeded from --seed). xoshiro256** seeded through splitmix64:
// fast, small, and fully specified, so a seed means the same stream on every platform and
// compiler (std::uniform_real_distribution is not specified bit-for-bit).
#pragma once

#include <cstdint>
#include <optional>

namespace vllm {

struct SamplingParams;

class Generator {
 public:
  explicit Generator(uint64_t seed = 0);

  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();

  bool operator==(const Generator&) const = default;

 private:
  uint64_t s_[4];
};

// The generator a request owns: Generator(seed) when params.seed is set, else none (the row
// then draws from the sampler's engine-wide generator).
std::optional<Generator> make_request_generator(const SamplingParams& params);

}  // namespace vllm
