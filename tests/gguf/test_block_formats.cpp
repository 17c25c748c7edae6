// The GGUF block formats: dequantization of random blocks against plain references written here
// from the format's description (bit for bit), quantize -> dequantize error bounds, and the Q8_K
// activation format.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "vllm/core/dtype.h"
#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"

using namespace vllm;
using namespace vllm::gguf;

namespace {

// ---- plain references: one element at a time, straight from the layout ----

uint16_t half_at(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float half_value(const uint8_t* p) { return f16_to_f32(half_at(p)); }
int nibble(uint8_t byte, bool high) { return high ? byte >> 4 : byte & 0xF; }
// n bits of `byte` starting at bit `lo`.
int bits(uint8_t byte, int lo, int n) { return (byte >> lo) & ((1 << n) - 1); }

// Q4_0 (18 bytes): fp16 d, then 16 bytes; weight e < 16 is the low nibble of byte e, weight
// e >= 16 the high nibble of byte e - 16; w = d * (q - 8).
float ref_q4_0(const uint8_t* b, int e) {
  const int q = nibble(b[2 + e % 16], e >= 16);
  return static_cast<float>(q - 8) * half_value(b);
}

// Q8_0 (34 bytes): fp16 d, then 32 int8; w = d * q.
float ref_q8_0(const uint8_t* b, int e) { return static_cast<float>(static_cast<int8_t>(b[2 + e])) * half_value(b); }

// The 12 scale bytes of Q4_K / Q5_K hold 8 six-bit scales and 8 six-bit mins:
//   bytes 0..3 : bits 0-5 scale j (j = 0..3),  bits 6-7 the high bits of scale j + 4
//   bytes 4..7 : bits 0-5 min j   (j = 0..3),  bits 6-7 the high bits of min j + 4
//   bytes 8..11: bits 0-3 the low bits of scale j + 4, bits 4-7 the low bits of min j + 4
void ref_k_scales(const uint8_t* s, int scale[8], int min[8]) {
  for (int j = 0; j < 4; ++j) {
    scale[j] = bits(s[j], 0, 6);
    min[j] = bits(s[4 + j], 0, 6);
    scale[4 + j] = bits(s[8 + j], 0, 4) | (bits(s[j], 6, 2) << 4);
    min[4 + j] = bits(s[8 + j], 4, 4) | (bits(s[4 + j], 6, 2) << 4);
  }
}

// Q4_K (144 bytes): fp16 d, fp16 dmin, 12 scale bytes, 128 quant bytes. Weight e is in sub-block
// j = e / 32; the 32 bytes of its 64-weight chunk (e / 64) hold it in the low nibble for even j and
// the high nibble for odd j. w = d * scale_j * q - dmin * min_j.
float ref_q4_k(const uint8_t* b, int e) {
  int scale[8], min[8];
  ref_k_scales(b + 4, scale, min);
  const int j = e / 32;
  const int q = nibble(b[16 + 32 * (e / 64) + e % 32], j % 2 == 1);
  const float d = half_value(b) * static_cast<float>(scale[j]);
  const float m = half_value(b + 2) * static_cast<float>(min[j]);
  return d * static_cast<float>(q) - m;
}

// Q5_K (176 bytes): as Q4_K, with 32 bytes qh after the scales holding the fifth bit: bit j of
// byte e % 32 for weight e of sub-block j.
float ref_q5_k(const uint8_t* b, int e) {
  int scale[8], min[8];
  ref_k_scales(b + 4, scale, min);
  const int j = e / 32;
  const int low = nibble(b[48 + 32 * (e / 64) + e % 32], j % 2 == 1);
  const int q = low + 16 * bits(b[16 + e % 32], j, 1);
  const float d = half_value(b) * static_cast<float>(scale[j]);
  const float m = half_value(b + 2) * static_cast<float>(min[j]);
  return d * static_cast<float>(q) - m;
}

// Q6_K (210 bytes): 128 bytes ql, 64 bytes qh, 16 int8 scales, fp16 d. In half h = e / 128, with
// r = e % 128, k = r / 32, l = r % 32: the low 4 bits are a nibble of ql[64h + 32 (k % 2) + l]
// (low for k < 2), the high 2 bits are bits 2k..2k+1 of qh[32h + l]. w = d * scales[e / 16] * (q - 32).
float ref_q6_k(const uint8_t* b, int e) {
  const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
  const int low = nibble(b[64 * h + 32 * (k % 2) + l], k >= 2);
  const int high = bits(b[128 + 32 * h + l], 2 * k, 2);
  const int q = (low | (high << 4)) - 32;
  const float d = half_value(b + 208);
  const float sc = static_cast<float>(static_cast<int8_t>(b[192 + e / 16]));
  return d * sc * static_cast<float>(q);
}

struct Format {
  GgmlType type;
  int block_size;
  size_t block_bytes;
  float (*ref)(const uint8_t*, int);
  std::vector<size_t> half_fields;  // byte offsets of the fp16 fields in a block
};

std::vector<Format> formats() {
  return {{GgmlType::kQ4_0, 32, 18, ref_q4_0, {0}},
          {GgmlType::kQ8_0, 32, 34, ref_q8_0, {0}},
          {GgmlType::kQ4_K, 256, 144, ref_q4_k, {0, 2}},
          {GgmlType::kQ5_K, 256, 176, ref_q5_k, {0, 2}},
          {GgmlType::kQ6_K, 256, 210, ref_q6_k, {208}}};
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Random blocks: every byte random, except that the fp16 scales are finite (random halves over
// the whole finite range, subnormals and zero included) so that the values mean something.
std::vector<uint8_t> random_blocks(const Format& f, int nblocks, std::mt19937& rng) {
  std::vector<uint8_t> bytes(f.block_bytes * static_cast<size_t>(nblocks));
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  for (int i = 0; i < nblocks; ++i)
    for (size_t off : f.half_fields) {
      uint16_t h;
      do h = static_cast<uint16_t>(rng());
      while (((h >> 10) & 0x1F) == 0x1F);  // not Inf / NaN
      std::memcpy(&bytes[f.block_bytes * static_cast<size_t>(i) + off], &h, 2);
    }
  return bytes;
}

std::vector<float> random_row(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace

TEST(BlockFormats, LayoutSizesMatchGgml) {
  for (const Format& f : formats()) {
    EXPECT_EQ(ggml_type_info(f.type).block_size, f.block_size) << ggml_type_name(f.type);
    EXPECT_EQ(ggml_type_info(f.type).block_bytes, f.block_bytes) << ggml_type_name(f.type);
  }
  EXPECT_EQ(ggml_row_bytes(GgmlType::kQ4_K, 4096), 16u * 144u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kF16, 10), 20u);
  EXPECT_EQ(ggml_type_from_name("q4_k"), GgmlType::kQ4_K);
  EXPECT_FALSE(ggml_type_from_id(4).has_value());  // a removed id
  EXPECT_FALSE(ggml_type_supported(GgmlType::kQ2_K));
}

TEST(BlockFormats, DequantizeMatchesPlainReferenceBitForBit) {
  std::mt19937 rng(1234);
  for (const Format& f : formats()) {
    const int nblocks = 64;
    const std::vector<uint8_t> blocks = random_blocks(f, nblocks, rng);
    std::vector<float> out(static_cast<size_t>(nblocks * f.block_size));
    dequantize_row(f.type, blocks.data(), out.data(), nblocks * f.block_size);
    int mismatches = 0;
    for (int i = 0; i < nblocks; ++i) {
      const uint8_t* b = blocks.data() + f.block_bytes * static_cast<size_t>(i);
      for (int e = 0; e < f.block_size; ++e) {
        const float want = f.ref(b, e), got = out[static_cast<size_t>(i * f.block_size + e)];
        if (float_bits(want) != float_bits(got) && mismatches++ < 5)
          ADD_FAILURE() << ggml_type_name(f.type) << " block " << i << " element " << e << ": " << got
                        << " != reference " << want;
      }
    }
    EXPECT_EQ(mismatches, 0) << ggml_type_name(f.type);
  }
}

TEST(BlockFormats, FloatTypesRoundTrip) {
  std::mt19937 rng(7);
  const std::vector<float> x = random_row(64, rng);
  for (GgmlType t : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
    std::vector<uint8_t> bytes(ggml_row_bytes(t, 64));
    quantize_row(t, x.data(), bytes.data(), 64);
    std::vector<float> back(64);
    dequantize_row(t, bytes.data(), back.data(), 64);
    for (size_t i = 0; i < 64; ++i) {
      const float want = t == GgmlType::kF32   ? x[i]
                         : t == GgmlType::kF16 ? f16_to_f32(f32_to_f16(x[i]))
                                               : bf16_to_f32(f32_to_bf16(x[i]));
      EXPECT_EQ(float_bits(back[i]), float_bits(want)) << ggml_type_name(t) << " " << i;
    }
  }
}

// Quantize then dequantize random rows: the error per weight stays within what the format's
// resolution allows, and the relative RMS error within each type's known accuracy.
TEST(BlockFormats, QuantizeDequantizeErrorBounds) {
  struct Bound {
    GgmlType type;
    double max_rel_rms;  // RMS error / RMS of the values
  };
  // Gaussian rows: Q8_0 ~0.5%, Q6_K ~1-2%, Q5_K ~3%, Q4_K ~6%, Q4_0 ~10% (llama.cpp's figures
  // for such data); the bounds leave a margin.
  const std::vector<Bound> bounds = {{GgmlType::kQ8_0, 0.01},
                                     {GgmlType::kQ6_K, 0.03},
                                     {GgmlType::kQ5_K, 0.05},
                                     {GgmlType::kQ4_K, 0.10},
                                     {GgmlType::kQ4_0, 0.15}};
  std::mt19937 rng(99);
  const int64_t n = 4096;
  for (const Bound& b : bounds) {
    for (float scale : {1e-3f, 1.0f, 300.0f}) {
      const std::vector<float> x = random_row(n, rng, scale);
      std::vector<uint8_t> q(ggml_row_bytes(b.type, n));
      quantize_row(b.type, x.data(), q.data(), n);
      std::vector<float> y(static_cast<size_t>(n));
      dequantize_row(b.type, q.data(), y.data(), n);
      double err2 = 0, ref2 = 0;
      const int64_t bs = ggml_type_info(b.type).block_size;
      for (int64_t blk = 0; blk < n / bs; ++blk) {
        // Per block: no weight is off by more than the block's range over the levels (a loose
        // bound that every format meets: at least 15 levels over the block's span).
        float lo = x[static_cast<size_t>(blk * bs)], hi = lo;
        for (int64_t e = blk * bs; e < (blk + 1) * bs; ++e) {
          lo = std::min(lo, x[static_cast<size_t>(e)]);
          hi = std::max(hi, x[static_cast<size_t>(e)]);
        }
        const float span = std::max(hi, 0.0f) - std::min(lo, 0.0f);
        for (int64_t e = blk * bs; e < (blk + 1) * bs; ++e) {
          const double d = static_cast<double>(y[static_cast<size_t>(e)]) - x[static_cast<size_t>(e)];
          ASSERT_LE(std::fabs(d), span / 7.0) << ggml_type_name(b.type) << " element " << e;
          err2 += d * d;
          ref2 += static_cast<double>(x[static_cast<size_t>(e)]) * x[static_cast<size_t>(e)];
        }
      }
      EXPECT_LT(std::sqrt(err2 / ref2), b.max_rel_rms) << ggml_type_name(b.type) << " scale " << scale;
    }
  }
}

TEST(BlockFormats, Q8_0IsWithinHalfAStep) {
  std::mt19937 rng(5);
  const std::vector<float> x = random_row(256, rng);
  std::vector<BlockQ8_0> q(8);
  quantize_row(GgmlType::kQ8_0, x.data(), q.data(), 256);
  std::vector<float> y(256);
  dequantize_row(GgmlType::kQ8_0, q.data(), y.data(), 256);
  for (int b = 0; b < 8; ++b) {
    const float d = f16_to_f32(q[static_cast<size_t>(b)].d);
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(32 * b + j)]));
    EXPECT_NEAR(d, amax / 127, amax / 127 * 1e-3);  // fp16 rounding of the scale
    // Half a step, plus the scale's fp16 rounding carried over the largest quant.
    for (int j = 0; j < 32; ++j)
      EXPECT_LE(std::fabs(y[static_cast<size_t>(32 * b + j)] - x[static_cast<size_t>(32 * b + j)]),
                d * 0.5f + amax * 1e-3f);
  }
}

TEST(BlockFormats, ZeroAndConstantRows) {
  for (const Format& f : formats()) {
    for (float c : {0.0f, 0.25f, -3.0f}) {
      const int64_t n = 512;
      std::vector<float> x(static_cast<size_t>(n), c);
      std::vector<uint8_t> q(ggml_row_bytes(f.type, n));
      quantize_row(f.type, x.data(), q.data(), n);
      std::vector<float> y(static_cast<size_t>(n));
      dequantize_row(f.type, q.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[static_cast<size_t>(i)], c, std::fabs(c) * 0.01 + 1e-6) << ggml_type_name(f.type) << " " << c;
    }
  }
}

TEST(BlockFormats, Q8KActivations) {
  std::mt19937 rng(11);
  std::vector<float> x = random_row(512, rng, 2.0f);
  x[3] = -9.0f;  // the first block's largest magnitude is negative
  std::vector<BlockQ8_K> q(2);
  quantize_row_q8_k(x.data(), q.data(), 512);
  for (int b = 0; b < 2; ++b) {
    const BlockQ8_K& blk = q[static_cast<size_t>(b)];
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(256 * b + j)]));
    EXPECT_NEAR(std::fabs(blk.d), amax / 127, amax * 1e-6);
    for (int j = 0; j < 256; ++j)
      EXPECT_LE(std::fabs(blk.d * blk.qs[j] - x[static_cast<size_t>(256 * b + j)]), std::fabs(blk.d) * 0.5f + 1e-6f);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += blk.qs[16 * g + l];
      EXPECT_EQ(blk.bsums[g], sum);
    }
  }
  // The value of largest magnitude always maps to -127 (d = max / -127 takes the other sign).
  EXPECT_EQ(q[0].qs[3], -127);
  EXPECT_GT(q[0].d, 0.0f);
  std::vector<float> zeros(256, 0.0f);
  quantize_row_q8_k(zeros.data(), q.data(), 256);
  EXPECT_EQ(q[0].d, 0.0f);
  for (int g = 0; g < 16; ++g) EXPECT_EQ(q[0].bsums[g], 0);
}

TEST(BlockFormats, UnsupportedTypeIsAClearError) {
  std::vector<uint8_t> bytes(84, 0);
  std::vector<float> out(256);
  try {
    dequantize_row(GgmlType::kQ2_K, bytes.data(), out.data(), 256);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("Q2_K"), std::string::npos) << e.what();
  }
}
