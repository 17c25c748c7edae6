// Matrix products with weights kept in GGUF block formats (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K):
// y = x · Wᵀ (+ bias), as llama.cpp computes them on the CPU. Each activation row is quantized to
// int8 per block first (Q8_0 blocks of 32 for Q8_0 / Q4_0 weights, Q8_K blocks of 256 with sums per
// 16 for the k-quants), then every output is a sum over blocks of integer dot products times the
// two blocks' scales.
//
// Kernels: a portable scalar one, AVX2 (vpmaddubsw / vpmaddwd) and AVX-512 VNNI (vpdpbusd /
// vpdpwssd on 256-bit vectors), picked at run time from the GEMM kernels' ISA (cpu_features.h):
// avx512 and above use VNNI where the CPU has it, else AVX2.
//
// Results depend only on the inputs and the kernel: each output element is one dot product over
// its row, summed in the same order whatever the batch size or thread count.
//
// Plain C++ header (no vector intrinsics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vllm/backends/cpu/cpu_features.h"
#include "vllm/core/thread_pool.h"
#include "vllm/gguf/quantized_matrix.h"

namespace vllm::cpu {

enum class QuantIsa { kScalar, kAvx2, kAvx512Vnni };

std::string_view quant_isa_name(QuantIsa isa);
// The quantized kernels that go with a GEMM kernel family on this CPU.
QuantIsa quant_isa_for(Isa isa);
bool quant_isa_supported(QuantIsa isa);
// Whether weights of this type can be multiplied (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).
bool quant_type_supported(gguf::GgmlType type);

// y[M, w.rows()] = x[M, w.cols] · Wᵀ (+ bias[N]); x and y float32 row-major with leading dimensions
// ldx >= K and ldy >= N. Throws vllm::Error for an unsupported type or ISA, or bad shapes.
void quant_linear(const float* x, int64_t M, int64_t ldx, const gguf::QuantizedMatrix& w, const float* bias, float* y,
                  int64_t ldy, QuantIsa isa, ThreadPool& pool = ThreadPool::global());

namespace detail {

// The activations of M rows, quantized for one family of weight types.
//   Q8_0 family (Q8_0, Q4_0 weights): per 32 values a scale d (float16-rounded, as stored by
//     llama.cpp's block_q8_0) and the sum of the 32 quants.
//   K family (Q4_K, Q5_K, Q6_K): per 256 values a float32 scale, and per 16 the sum of the quants.
struct QuantActs {
  const int8_t* q = nullptr;  // [M][ldq]
  int64_t ldq = 0;
  const float* d = nullptr;   // [M][ldd]
  int64_t ldd = 0;
  const int32_t* sums = nullptr;  // Q8_0 family: [M][lds], one per 32
  const int16_t* bsums = nullptr;  // K family: [M][lds], one per 16
  int64_t lds = 0;
};

struct QuantDotArgs {
  const uint8_t* w = nullptr;  // row 0 of the weight
  size_t w_row_bytes = 0;
  int64_t k = 0;               // elements per row
  QuantActs x;
  const float* bias = nullptr;
  float* y = nullptr;
  int64_t ldy = 0;
};

// Computes y[m][n] for weight rows [n0, n1) and activation rows [m0, m1).
using QuantDotKernel = void (*)(const QuantDotArgs& a, int64_t n0, int64_t n1, int64_t m0, int64_t m1);

// Per ISA and weight type; nullptr where not compiled in or not supported.
QuantDotKernel quant_kernel(QuantIsa isa, gguf::GgmlType type);
QuantDotKernel scalar_quant_kernel(gguf::GgmlType type);
QuantDotKernel avx2_quant_kernel(gguf::GgmlType type);
QuantDotKernel avx512vnni_quant_kernel(gguf::GgmlType type);

// Whether the kernel of (isa, type) reads each row's activation quants in the paired layout: per
// 128 values, [0..31, 64..95, 32..63, 96..127] (the VNNI Q4_K / Q5_K kernels, where one 512-bit
// load of 64 packed bytes holds the nibbles of two chunks of 32). Scales and sums stay in order.
bool paired_act_layout(QuantIsa isa, gguf::GgmlType type);
// Reorders the quants of one row (k a multiple of 128) into the paired layout.
void pair_act_quants(int8_t* q, int64_t k);

// Quantizes one activation row of k values (llama.cpp's x86 quantize_row_q8_0: d = amax / 127
// stored as float16, q = round-half-even(x * 127 / amax)) into q, d, sums.
void quantize_act_q8_0(const float* x, int64_t k, int8_t* q, float* d, int32_t* sums);
// llama.cpp's quantize_row_q8_K: per 256, the value of largest magnitude maps to -127.
void quantize_act_q8_k(const float* x, int64_t k, int8_t* q, float* d, int16_t* bsums);

}  // namespace detail

}  // namespace vllm::cpu
