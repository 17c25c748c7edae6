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

}  // namespace vllm::cpu
