// Portable quantized-weight dot products (quant_gemm.h): plain C++ on the block layouts of
// gguf/block_formats.h, one weight block against one activation block at a time.
#include "vllm/backends/cpu/quant_gemm.h"

#include "vllm/core/dtype.h"
#include "vllm/gguf/block_formats.h"

namespace vllm::cpu::detail {

namespace {

using namespace vllm::gguf;

// One activation row: quants, scales, and the per-block (Q8_0) or per-16 (K) sums.
struct Row {
  const int8_t* q;
  const float* d;
  const int32_t* sums;
  const int16_t* bsums;
};

float dot_q8_0(const uint8_t* w, const Row& x, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(w);
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += b[i].qs[j] * x.q[32 * i + j];
    sum += static_cast<float>(isum) * (f16_to_f32(b[i].d) * x.d[i]);
  }
  return sum;
}

float dot_q4_0(const uint8_t* w, const Row& x, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ4_0*>(w);
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j)
      isum += (b[i].qs[j] & 0xF) * x.q[32 * i + j] + (b[i].qs[j] >> 4) * x.q[32 * i + 16 + j];
    isum -= 8 * x.sums[i];  // the quants are stored with +8
    sum += static_cast<float>(isum) * (f16_to_f32(b[i].d) * x.d[i]);
  }
  return sum;
}

// Q4_K / Q5_K: per super-block d * sum_j scale_j * (q_j . x_j) - dmin * sum_j min_j * sum(x_j).
template <bool kFiveBit>
float dot_q4_q5_k(const uint8_t* w, const Row& x, int64_t nb) {
  constexpr size_t kBytes = kFiveBit ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = w + static_cast<size_t>(i) * kBytes;
    uint16_t dh, dminh;
    __builtin_memcpy(&dh, blk, 2);
    __builtin_memcpy(&dminh, blk + 2, 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* qh = kFiveBit ? blk + 16 : nullptr;
    const uint8_t* qs = blk + (kFiveBit ? 48 : 16);
    const int8_t* a = x.q + 256 * i;
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, scales, &sc, &m);
      const uint8_t* q = qs + 32 * (j / 2);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) {
        int v = j % 2 == 0 ? q[l] & 0xF : q[l] >> 4;
        if constexpr (kFiveBit) v += ((qh[l] >> j) & 1) << 4;
        dot += v * a[32 * j + l];
      }
      sumi += sc * dot;
      summ += m * (x.bsums[16 * i + 2 * j] + x.bsums[16 * i + 2 * j + 1]);
    }
    const float d = f16_to_f32(dh) * x.d[i], dmin = f16_to_f32(dminh) * x.d[i];
    sum += d * static_cast<float>(sumi) - dmin * static_cast<float>(summ);
  }
  return sum;
}

// Q6_K: d * sum_g scale_g * (q_g . x_g - 32 * sum(x_g)) over its 16 groups of 16.
float dot_q6_k(const uint8_t* w, const Row& x, int64_t nb) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(w);
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int8_t* a = x.q + 256 * i;
    int32_t sumi = 0;
    for (int g = 0; g < 16; ++g) {
      int32_t dot = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * g + l, h = e / 128, r = e % 128, k = r / 32, c = r % 32;
        const uint8_t lq = b[i].ql[64 * h + 32 * (k % 2) + c];
        const int low = k < 2 ? lq & 0xF : lq >> 4;
        const int high = (b[i].qh[32 * h + c] >> (2 * k)) & 3;
        dot += (low | (high << 4)) * a[e];
      }
      sumi += b[i].scales[g] * (dot - 32 * x.bsums[16 * i + g]);
    }
    sum += f16_to_f32(b[i].d) * x.d[i] * static_cast<float>(sumi);
  }
  return sum;
}

template <float (*Dot)(const uint8_t*, const Row&, int64_t), int64_t kBlock>
void kernel(const QuantDotArgs& a, int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
  const int64_t nb = a.k / kBlock;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wrow = a.w + static_cast<size_t>(n) * a.w_row_bytes;
    const float b = a.bias ? a.bias[n] : 0.0f;
    for (int64_t m = m0; m < m1; ++m) {
      Row r{a.x.q + m * a.x.ldq, a.x.d + m * a.x.ldd, a.x.sums ? a.x.sums + m * a.x.lds : nullptr,
            a.x.bsums ? a.x.bsums + m * a.x.lds : nullptr};
      a.y[m * a.ldy + n] = Dot(wrow, r, nb) + b;
    }
  }
}

}  // namespace

QuantDotKernel scalar_quant_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0: return kernel<dot_q8_0, 32>;
    case GgmlType::kQ4_0: return kernel<dot_q4_0, 32>;
    case GgmlType::kQ4_K: return kernel<dot_q4_q5_k<false>, 256>;
    case GgmlType::kQ5_K: return kernel<dot_q4_q5_k<true>, 256>;
    case GgmlType::kQ6_K: return kernel<dot_q6_k, 256>;
    default: return nullptr;
  }
}

}  // namespace vllm::cpu::detail
