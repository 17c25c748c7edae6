#include "vllm/sampling/generator.h"

#include "vllm/sampling/sampling_params.h"

namespace vllm {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Generator::Generator(uint64_t seed) {
  // splitmix64 spreads any seed (0 included) over the 256-bit state, which must not be all zero.
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Generator::next_u64() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::optional<Generator> make_request_generator(const SamplingParams& params) {
  if (!params.seed) return std::nullopt;
  return Generator(static_cast<uint64_t>(*params.seed));
}

}  // namespace vllm
