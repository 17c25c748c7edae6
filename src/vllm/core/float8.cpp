#include "vllm/core/float8.h"

#include <cmath>
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
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  if (std::isnan(f)) return static_cast<uint8_t>(sign | 0x7f);
  float a = std::fabs(f);
  if (a >= kFloat8E4M3Max) return static_cast<uint8_t>(sign | 0x7e);  // 448, infinities included
  // The spacing of e4m3 values around a: 2^-9 for subnormals (exponent field 0, scale 2^-6 / 8),
  // else 2^(e - 3) for a in [2^e, 2^(e+1)). a / spacing is then exact in float, and rounding it to
  // the nearest integer, ties to even (the default rounding mode), rounds a to the format.
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): a in [2^(e-1), 2^e)
  const int unbiased = e - 1;
  const int step_exp = unbiased < -6 ? -9 : unbiased - 3;
  const float steps = std::nearbyint(std::ldexp(a, -step_exp));  // integer multiple of the spacing
  a = std::ldexp(steps, step_exp);
  if (a == 0.0f) return sign;
  // Re-encode the rounded value (rounding may have carried into the next binade).
  std::frexp(a, &e);
  const int ue = e - 1;
  if (ue < -6) {  // subnormal: a = mant * 2^-9
    const int mant = static_cast<int>(std::ldexp(a, 9));
    return static_cast<uint8_t>(sign | mant);
  }
  const int mant = static_cast<int>(std::ldexp(a, -ue) * 8.0f) - 8;  // a = (1 + mant/8) * 2^ue
  return static_cast<uint8_t>(sign | ((ue + 7) << 3) | mant);
}

}  // namespace vllm
