// The block formats of GGUF's quantized types, byte for byte as ggml lays them out (ggml-common.h),
// with dequantization and quantization of rows.
//
// Quantization follows llama.cpp's reference quantizers (quantize_row_*_ref, what llama-quantize
// uses without an importance matrix): round to nearest for Q8_0 and Q4_0, the weighted min/scale
// search (make_qkx2_quants) for Q4_K and Q5_K, the rmse scale search (make_qx_quants) for Q6_K.
// Any quantizer gives a valid file; these keep our files close to what llama.cpp would write.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vllm/gguf/ggml_types.h"

namespace vllm::gguf {

// Half-precision fields are stored as IEEE binary16 bit patterns.
struct BlockQ4_0 {  // 32 weights: w = d * (q - 8), q in [0, 15]
  uint16_t d;
  uint8_t qs[16];  // byte j: low nibble weight j, high nibble weight j + 16
};
struct BlockQ8_0 {  // 32 weights: w = d * q
  uint16_t d;
  int8_t qs[32];
};
// Q4_K: 256 weights in 8 sub-blocks of 32, each with a 6-bit scale and 6-bit min:
//   w = d * sc_j * q - dmin * m_j, q in [0, 15].
// scales[12] packs (sc_j, m_j) as get_scale_min_k4 reads them; qs: for each 64 weights, 32 bytes
// whose low nibbles are the first 32 and high nibbles the next 32.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
// Q5_K: Q4_K plus a fifth bit per weight: bit (2c) of qh[l] is weight 64c + l's, bit (2c + 1) is
// weight 64c + 32 + l's (c = 0..3).
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// Q6_K: 256 weights in 16 sub-blocks of 16 with signed 8-bit scales: w = d * scales_j * (q - 32),
// q in [0, 63]: 4 low bits in ql, 2 high bits in qh (see dequantize_row for the arrangement).
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
// Q8_K: the activation format llama.cpp pairs with the k-quants (never stored in files):
// 256 values x = d * q with a float32 scale, and the sums of each 16 quants.
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_K) == 144 &&
                  sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292,
              "GGUF block layouts must match ggml's exactly");

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block's packed scales: for
// j < 4 the low 6 bits of bytes j and j + 4; for j >= 4 the nibbles of byte j + 4 with the top two
// bits of bytes j - 4 (scale) and j (min) as bits 4..5.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// n elements (a whole number of blocks) of a supported type (ggml_type_supported) to float32.
// Throws vllm::Error for an unsupported type.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// n float32 values (a whole number of blocks) into ggml_row_bytes(type, n) bytes of `type` (any
// supported type; F16 and BF16 round to nearest even).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// Activations for the k-quant products (llama.cpp's quantize_row_q8_K): per 256 values, the
// value of largest magnitude maps to -127 (so d = max / -127), others round to nearest even.
void quantize_row_q8_k(const float* src, BlockQ8_K* dst, int64_t n);

// llama.cpp's nearest_int: round to nearest, ties to even, for |x| < 2^22.
inline int nearest_int(float x) {
  // Adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits.
  float biased = x + 12582912.0f;
  int32_t bits;
  __builtin_memcpy(&bits, &biased, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

}  // namespace vllm::gguf
