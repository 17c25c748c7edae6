#include "vllm/core/float8.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace vllm {

namespace {

// A table per format: 256 entries decoded once, so decoding a weight is one load.
struct Float8Tables {
  float e4m3[256];
  float e5m2[256];
  Float8Tables() {
    for (int b = 0; b < 256; ++b) {
      const float sign = (b & 0x80) ? -1.0f : 1.0f;
      {
        const int exp = (b >> 3) & 0xf, mant = b & 0x7;
        if (exp == 0xf && mant == 0x7) {
          e4m3[b] = sign * std::numeric_limits<float>::quiet_NaN();
        } else if (exp == 0) {
          e4m3[b] = sign * std::ldexp(static_cast<float>(mant) / 8.0f, -6);
        } else {
          e4m3[b] = sign * std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
        }
      }
      {
        const int exp = (b >> 2) & 0x1f, mant = b & 0x3;
        if (exp == 0x1f) {
          e5m2[b] = mant == 0 ? sign * std::numeric_limits<float>::infinity()
                              : sign * std::numeric_limits<float>::quiet_NaN();
        } else if (exp == 0) {
          e5m2[b] = sign * std::ldexp(static_cast<float>(mant) / 4.0f, -14);
        } else {
          e5m2[b] = sign * std::ldexp(1.0f + static_cast<float>(mant) / 4.0f, exp - 15);
        }
      }
    }
  }
};

const Float8Tables& tables() {
  static const Float8Tables t;
  return t;
}

}  // namespace

float e4m3_to_f32(uint8_t bits) { return tables().e4m3[bits]; }
float e5m2_to_f32(uint8_t bits) { return tables().e5m2[bits]; }

uint8_t f32_to_e4m3(float f) {
  // On the float's bits (a load of --quantization fp8 quantizes billions of weights): equal, for
  // all 2^32 inputs, to rounding a / spacing with nearbyint (checked when this replaced that).
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const auto sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7f);  // NaN
  if (magnitude >= 0x43e00000u) return static_cast<uint8_t>(sign | 0x7e);  // 448 and beyond, infinities included
  if (magnitude < 0x3c800000u) {
    // Below 2^-6: subnormals, multiples of 2^-9. a * 2^9 is exact, and its nearest integer (ties to
    // even, the default rounding mode) is the code; 8 is the smallest normal, 2^-6 (code 0x08).
    float a;
    std::memcpy(&a, &magnitude, sizeof a);
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f)));
  }
  // Normal: round the 23 mantissa bits to 3, ties to even (a carry moves into the exponent), and
  // rebias the exponent from 127 to 7.
  const uint32_t rounded = magnitude + 0x7ffffu + ((magnitude >> 20) & 1u);
  return static_cast<uint8_t>(sign | ((rounded >> 20) - (120u << 3)));
}

}  // namespace vllm
