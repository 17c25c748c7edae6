#include "vllm/backends/cpu/vec.h"

#include <cstring>

#include "vllm/core/dtype.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define VLLM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VLLM_CLONES
#endif

namespace vllm::cpu {

namespace {
constexpr int kLanes = 16;

inline float widen_bf16(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// e^x to about 2 ulp for x in [-87, 88] (clamped there: 2^-126 to 1.6e38), branch-free so that the
// activation loops below vectorise, where libm's expf / tanhf calls do not (Cephes' expf:
// x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for e^r, 2^n built in the exponent).
inline float exp_clamped(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer in the current (nearest) mode.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;  // ln2 in two parts, so that r is exact
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

inline float sum_lanes(const float* acc) {
  // Pairwise, in a fixed order.
  float s8[8], s4[4];
  for (int j = 0; j < 8; ++j) s8[j] = acc[j] + acc[j + 8];
  for (int j = 0; j < 4; ++j) s4[j] = s8[j] + s8[j + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}
}  // namespace

VLLM_CLONES float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return sum_lanes(acc);
}

VLLM_CLONES float dot_f32_bf16(const float* a, const uint16_t* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * widen_bf16(b[i + j]);
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * widen_bf16(b[i]);
  return sum_lanes(acc);
}

VLLM_CLONES void axpy_f32(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

VLLM_CLONES void axpy_bf16(float* y, float a, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * widen_bf16(x[i]);
}

VLLM_CLONES void bf16_to_f32_row(float* out, const uint16_t* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = widen_bf16(in[i]);
}

void f16_to_f32_row(float* out, const uint16_t* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i]);
}

VLLM_CLONES void f32_to_bf16_row(uint16_t* out, const float* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &in[i], 4);
    // Round to nearest even (finite values; activations are never NaN in a healthy model).
    bits += 0x7fffu + ((bits >> 16) & 1u);
    out[i] = static_cast<uint16_t>(bits >> 16);
  }
}

// gelu_new(x) = 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3), computed as
// x / (1 + e^(-2u)), the same function (1 + tanh(u) = 2 / (1 + e^(-2u))) without tanh's
// cancellation near 0.
VLLM_CLONES void gelu_tanh_row(float* out, const float* x, int64_t n) {
  const float k2 = 2.0f * 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float g = v / (1.0f + exp_clamped(-k2 * (v + 0.044715f * v * v * v)));
    out[i] = v < -10.0f ? 0.0f : g;  // below -10 the exact value is under 1e-37
  }
}

VLLM_CLONES void silu_mul_row(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = gate[i] / (1.0f + exp_clamped(-gate[i])) * up[i];
    out[i] = gate[i] < -87.0f ? 0.0f : s;  // e^-87 is float's limit; SiLU is then under 1e-36
  }
}

VLLM_CLONES void gelu_tanh_mul_row(float* out, const float* gate, const float* up, int64_t n) {
  const float k2 = 2.0f * 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = gate[i];
    const float g = v / (1.0f + exp_clamped(-k2 * (v + 0.044715f * v * v * v)));
    out[i] = (v < -10.0f ? 0.0f : g) * up[i];  // as gelu_tanh_row
  }
}

VLLM_CLONES void clamped_swiglu_row(float* out, const float* gate, const float* up, int64_t n, float limit,
                                    float alpha) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i] < limit ? gate[i] : limit;  // clamped above only
    const float u = up[i] < -limit ? -limit : (up[i] > limit ? limit : up[i]);
    // g * sigmoid(alpha g); below -87 / alpha the sigmoid is under 1e-37 and the product 0.
    const float glu = g / (1.0f + exp_clamped(-alpha * g));
    out[i] = (u + 1.0f) * (alpha * g < -87.0f ? 0.0f : glu);
  }
}

}  // namespace vllm::cpu
