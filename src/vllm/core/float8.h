// The two 8-bit float formats of FP8 checkpoints and FP8 tensor cores (OCP FP8, as torch's
// float8_e4m3fn and float8_e5m2): decoding to float32, and encoding to e4m3.
//   e4m3 ("fn": finite): sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, only
//     S.1111.111 is NaN, so the largest magnitude is 1.75 * 2^8 = 448; subnormals m/8 * 2^-6.
//   e5m2: sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like (infinities and NaNs).
// Safetensors names them F8_E4M3 and F8_E5M2.
#pragma once

#include <cstdint>

namespace vllm {

inline constexpr float kFloat8E4M3Max = 448.0f;

enum class Float8Format : uint8_t { kNone, kE4M3, kE5M2 };

float e4m3_to_f32(uint8_t bits);
float e5m2_to_f32(uint8_t bits);
// Round to nearest, ties to even; magnitudes beyond 448 saturate to +-448 (what vLLM gets by
// clamping before the cast); NaN stays NaN (0x7f, sign kept).
uint8_t f32_to_e4m3(float f);

}  // namespace vllm
