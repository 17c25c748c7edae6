// Small vector loops used by the CPU ops. Defined in vec.cpp with target_clones, so each is
// compiled for AVX-512, AVX2 and baseline x86-64 and the best is picked at load time. They use
// fixed lane-wise partial sums, so every clone returns bit-identical results.
#pragma once

#include <cstdint>

namespace vllm::cpu {

float dot_f32(const float* a, const float* b, int64_t n);
float dot_f32_bf16(const float* a, const uint16_t* b, int64_t n);
// y += a * x
void axpy_f32(float* y, float a, const float* x, int64_t n);
void axpy_bf16(float* y, float a, const uint16_t* x, int64_t n);
// Conversions of a row.
void bf16_to_f32_row(float* out, const uint16_t* in, int64_t n);
void f16_to_f32_row(float* out, const uint16_t* in, int64_t n);
void f32_to_bf16_row(uint16_t* out, const float* in, int64_t n);

// Activations of a row (to a few ulp of the exact function; out may be x).
// gelu_new (the tanh approximation of GELU): 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
void gelu_tanh_row(float* out, const float* x, int64_t n);
// SiLU(gate) * up.
void silu_mul_row(float* out, const float* gate, const float* up, int64_t n);
// gelu_new(gate) * up (Gemma's gelu_pytorch_tanh MLP).
void gelu_tanh_mul_row(float* out, const float* gate, const float* up, int64_t n);
// GPT-OSS's clamped SwiGLU: g = min(gate, limit), u = clamp(up, -limit, limit),
// out = (u + 1) * g * sigmoid(alpha * g).
void clamped_swiglu_row(float* out, const float* gate, const float* up, int64_t n, float limit, float alpha);

}  // namespace vllm::cpu
