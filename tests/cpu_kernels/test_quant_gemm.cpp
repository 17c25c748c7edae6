// quant_linear() (GGUF block weights times int8-quantized activations) on every kernel this CPU
// can run: the activation quantizers against llama.cpp's rules, the products against an exact
// reference over the same quants and against dequantized weights times float activations within
// the activation quantization's error, batch and thread invariance, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/backends/cpu/quant_gemm.h"
#include "vllm/core/dtype.h"
#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"

using namespace vllm;
using namespace vllm::cpu;
using gguf::GgmlType;

namespace {

const QuantIsa kIsas[] = {QuantIsa::kScalar, QuantIsa::kAvx2, QuantIsa::kAvx512Vnni};
const GgmlType kTypes[] = {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

bool k_family(GgmlType t) { return t == GgmlType::kQ4_K || t == GgmlType::kQ5_K || t == GgmlType::kQ6_K; }

std::vector<float> random_values(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A weight [N, K] of `type`: random values quantized by the reference quantizers (so that every
// field is a realistic one), as a QuantizedMatrix, plus its dequantized float32 copy.
struct Weight {
  gguf::QuantizedMatrix q;
  std::vector<float> dequantized;
};
Weight make_weight(GgmlType type, int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v = random_values(static_cast<size_t>(N * K), rng, 0.1f);
  // Some rows with an outlier, some all zero: extreme and degenerate scales.
  if (N > 2) {
    v[static_cast<size_t>(K + 3)] = 4.0f;
    std::fill(v.begin() + 2 * K, v.begin() + 3 * K, 0.0f);
  }
  Weight w;
  w.q.type = type;
  w.q.cols = K;
  w.q.data = Tensor::empty({N, static_cast<int64_t>(gguf::ggml_row_bytes(type, K))}, DType::U8);
  w.dequantized.resize(v.size());
  for (int64_t n = 0; n < N; ++n) {
    gguf::quantize_row(type, v.data() + n * K, const_cast<uint8_t*>(w.q.row(n)), K);
    gguf::dequantize_row(type, w.q.row(n), w.dequantized.data() + n * K, K);
  }
  return w;
}

// The activations of one row as the kernels quantize them, dequantized: x_hat[k] = d * q.
std::vector<float> quantized_activations(GgmlType type, const float* x, int64_t K, std::vector<int8_t>* q_out = nullptr,
                                         std::vector<float>* d_out = nullptr) {
  std::vector<int8_t> q(static_cast<size_t>(K));
  const int64_t bs = k_family(type) ? 256 : 32;
  std::vector<float> d(static_cast<size_t>(K / bs));
  if (k_family(type)) {
    std::vector<int16_t> bsums(static_cast<size_t>(K / 16));
    detail::quantize_act_q8_k(x, K, q.data(), d.data(), bsums.data());
  } else {
    std::vector<int32_t> sums(static_cast<size_t>(K / 32));
    detail::quantize_act_q8_0(x, K, q.data(), d.data(), sums.data());
  }
  std::vector<float> xh(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) xh[static_cast<size_t>(k)] = d[static_cast<size_t>(k / bs)] * q[static_cast<size_t>(k)];
  if (q_out) *q_out = q;
  if (d_out) *d_out = d;
  return xh;
}

std::vector<QuantIsa> runnable_isas() {
  std::vector<QuantIsa> out;
  for (QuantIsa isa : kIsas)
    if (quant_isa_supported(isa) && detail::quant_kernel(isa, GgmlType::kQ8_0)) out.push_back(isa);
  return out;
}

}  // namespace

TEST(QuantGemm, KernelSelection) {
  EXPECT_EQ(quant_isa_for(Isa::kScalar), QuantIsa::kScalar);
  if (quant_isa_supported(QuantIsa::kAvx2)) {
    EXPECT_EQ(quant_isa_for(Isa::kAvx2), QuantIsa::kAvx2);
  }
  if (quant_isa_supported(QuantIsa::kAvx512Vnni)) {
    EXPECT_EQ(quant_isa_for(Isa::kAvx512), QuantIsa::kAvx512Vnni);
  }
  for (GgmlType t : kTypes) EXPECT_TRUE(quant_type_supported(t));
  EXPECT_FALSE(quant_type_supported(GgmlType::kF16));
  std::printf("quantized kernels on this CPU:");
  for (QuantIsa isa : runnable_isas()) std::printf(" %s", std::string(quant_isa_name(isa)).c_str());
  std::printf("\n");
}

// Q8_0 activations as llama.cpp quantizes them on x86: d = amax / 127 stored as float16, and
// q = round-half-to-even(x * (127 / amax)).
TEST(QuantGemm, ActivationQuantizersFollowLlamaCpp) {
  std::mt19937 rng(3);
  std::vector<float> x = random_values(512, rng);
  std::vector<int8_t> q(512);
  std::vector<float> d(16);
  std::vector<int32_t> sums(16);
  detail::quantize_act_q8_0(x.data(), 512, q.data(), d.data(), sums.data());
  for (int b = 0; b < 16; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(32 * b + j)]));
    EXPECT_EQ(d[static_cast<size_t>(b)], f16_to_f32(f32_to_f16(amax / 127.0f)));
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) {
      const float scaled = x[static_cast<size_t>(32 * b + j)] * (127.0f / amax);
      const float lo = std::floor(scaled), frac = scaled - lo;
      const int want = static_cast<int>(frac > 0.5f || (frac == 0.5f && std::fmod(lo, 2.0f) != 0) ? lo + 1 : lo);
      EXPECT_EQ(q[static_cast<size_t>(32 * b + j)], want) << b << " " << j;
      s += want;
    }
    EXPECT_EQ(sums[static_cast<size_t>(b)], s);
  }
  // Q8_K: exactly gguf::quantize_row_q8_k's block.
  std::vector<gguf::BlockQ8_K> ref(2);
  gguf::quantize_row_q8_k(x.data(), ref.data(), 512);
  std::vector<float> dk(2);
  std::vector<int16_t> bsums(32);
  detail::quantize_act_q8_k(x.data(), 512, q.data(), dk.data(), bsums.data());
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(dk[static_cast<size_t>(b)], ref[static_cast<size_t>(b)].d);
    EXPECT_EQ(std::memcmp(q.data() + 256 * b, ref[static_cast<size_t>(b)].qs, 256), 0);
    EXPECT_EQ(std::memcmp(bsums.data() + 16 * b, ref[static_cast<size_t>(b)].bsums, 32), 0);
  }
}

// Every kernel against the exact value of its own arithmetic: the integer block sums of the
// weight quants and the activation quants, times the two scales, summed in double. Only the
// float32 accumulation may differ.
TEST(QuantGemm, MatchesExactReferenceOverTheSameQuants) {
  const int64_t M = 3, N = 37, K = 1024;
  for (GgmlType type : kTypes) {
    const Weight w = make_weight(type, N, K, 17);
    std::mt19937 rng(5);
    const std::vector<float> x = random_values(static_cast<size_t>(M * K), rng);
    std::vector<float> bias = random_values(static_cast<size_t>(N), rng);
    for (QuantIsa isa : runnable_isas()) {
      std::vector<float> y(static_cast<size_t>(M * N));
      quant_linear(x.data(), M, K, w.q, bias.data(), y.data(), N, isa);
      for (int64_t m = 0; m < M; ++m) {
        const std::vector<float> xh = quantized_activations(type, x.data() + m * K, K);
        for (int64_t n = 0; n < N; ++n) {
          // dequantized weight x dequantized activation, in double: the exact value of the
          // kernel's block sums (their scales are float products, rounded once in either way).
          double exact = bias[static_cast<size_t>(n)], mag = std::fabs(bias[static_cast<size_t>(n)]);
          for (int64_t k = 0; k < K; ++k) {
            const double t = static_cast<double>(w.dequantized[static_cast<size_t>(n * K + k)]) * xh[static_cast<size_t>(k)];
            exact += t;
            mag += std::fabs(t);
          }
          const float got = y[static_cast<size_t>(m * N + n)];
          ASSERT_NEAR(got, exact, 1e-5 * mag + 1e-6)
              << gguf::ggml_type_name(type) << " " << quant_isa_name(isa) << " m=" << m << " n=" << n;
        }
      }
    }
  }
}

// Against dequantized weights times the float activations (what a float model computes): the only
// difference is the activations' quantization, bounded by sum_k |w_k| * |x_k - x_hat_k|.
TEST(QuantGemm, MatchesDequantizedMatmulWithinActivationQuantization) {
  const int64_t M = 2, N = 16, K = 512;
  for (GgmlType type : kTypes) {
    const Weight w = make_weight(type, N, K, 29);
    std::mt19937 rng(8);
    const std::vector<float> x = random_values(static_cast<size_t>(M * K), rng, 2.0f);
    for (QuantIsa isa : runnable_isas()) {
      std::vector<float> y(static_cast<size_t>(M * N));
      quant_linear(x.data(), M, K, w.q, nullptr, y.data(), N, isa);
      for (int64_t m = 0; m < M; ++m) {
        const std::vector<float> xh = quantized_activations(type, x.data() + m * K, K);
        for (int64_t n = 0; n < N; ++n) {
          double plain = 0, bound = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            const double wk = w.dequantized[static_cast<size_t>(n * K + k)], xk = x[static_cast<size_t>(m * K + k)];
            plain += wk * xk;
            bound += std::fabs(wk) * std::fabs(xk - xh[static_cast<size_t>(k)]);
            mag += std::fabs(wk * xk);
          }
          EXPECT_LE(std::fabs(y[static_cast<size_t>(m * N + n)] - plain), bound + 1e-5 * mag + 1e-6)
              << gguf::ggml_type_name(type) << " " << quant_isa_name(isa) << " m=" << m << " n=" << n;
        }
      }
    }
  }
}

// A row's result does not depend on the other rows of the batch (the kernels take rows in tiles
// of several, and a batch of 7 or 33 ends in a partial tile) or on the thread count; the AVX2 and
// VNNI kernels add the same integer lanes in the same order, so they agree bit for bit.
TEST(QuantGemm, BatchThreadAndKernelInvariance) {
  const int64_t N = 70, K = 768;
  ThreadPool one(1), four(4);
  for (const int64_t M : {int64_t{7}, int64_t{33}}) {
    for (GgmlType type : kTypes) {
      const Weight w = make_weight(type, N, K, 41);
      std::mt19937 rng(9);
      const std::vector<float> x = random_values(static_cast<size_t>(M * K), rng);
      std::vector<std::vector<float>> per_isa;
      for (QuantIsa isa : runnable_isas()) {
        const std::string what = std::string(gguf::ggml_type_name(type)) + " " + std::string(quant_isa_name(isa)) +
                                 " M=" + std::to_string(M);
        std::vector<float> batch(static_cast<size_t>(M * N)), threaded(static_cast<size_t>(M * N));
        quant_linear(x.data(), M, K, w.q, nullptr, batch.data(), N, isa, one);
        quant_linear(x.data(), M, K, w.q, nullptr, threaded.data(), N, isa, four);
        EXPECT_EQ(batch, threaded) << what;
        for (int64_t m = 0; m < M; ++m) {
          std::vector<float> single(static_cast<size_t>(N));
          quant_linear(x.data() + m * K, 1, K, w.q, nullptr, single.data(), N, isa, four);
          EXPECT_EQ(0, std::memcmp(single.data(), batch.data() + m * N, static_cast<size_t>(N) * 4)) << what << " row " << m;
        }
        // Rows 2..5 as a batch of their own (a full tile that starts elsewhere).
        std::vector<float> part(static_cast<size_t>(4 * N));
        quant_linear(x.data() + 2 * K, 4, K, w.q, nullptr, part.data(), N, isa, one);
        EXPECT_EQ(0, std::memcmp(part.data(), batch.data() + 2 * N, static_cast<size_t>(4 * N) * 4)) << what;
        if (isa != QuantIsa::kScalar) per_isa.push_back(batch);
      }
      for (size_t i = 1; i < per_isa.size(); ++i) EXPECT_EQ(per_isa[i], per_isa[0]) << gguf::ggml_type_name(type) << " M=" << M;
    }
  }
}

TEST(QuantGemm, StridesBiasAndEmptyShapes) {
  const int64_t M = 4, N = 5, K = 256, ldx = K + 7, ldy = N + 3;
  const Weight w = make_weight(GgmlType::kQ4_K, N, K, 2);
  std::mt19937 rng(1);
  std::vector<float> x(static_cast<size_t>(M * ldx), std::numeric_limits<float>::quiet_NaN());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(m * ldx + k)] = random_values(1, rng)[0];
  const std::vector<float> bias{1, 2, 3, 4, 5};
  for (QuantIsa isa : runnable_isas()) {
    std::vector<float> y(static_cast<size_t>(M * ldy), -7.0f), dense(static_cast<size_t>(M * N));
    quant_linear(x.data(), M, ldx, w.q, bias.data(), y.data(), ldy, isa);
    std::vector<float> xd(static_cast<size_t>(M * K));
    for (int64_t m = 0; m < M; ++m) std::memcpy(&xd[static_cast<size_t>(m * K)], &x[static_cast<size_t>(m * ldx)], K * 4);
    quant_linear(xd.data(), M, K, w.q, nullptr, dense.data(), N, isa);
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n)
        EXPECT_EQ(y[static_cast<size_t>(m * ldy + n)], dense[static_cast<size_t>(m * N + n)] + bias[static_cast<size_t>(n)]);
      for (int64_t n = N; n < ldy; ++n) EXPECT_EQ(y[static_cast<size_t>(m * ldy + n)], -7.0f);  // untouched
    }
    quant_linear(x.data(), 0, ldx, w.q, nullptr, y.data(), ldy, isa);  // M = 0: nothing
  }
  EXPECT_THROW(quant_linear(x.data(), M, K - 1, w.q, nullptr, nullptr, ldy, QuantIsa::kScalar), Error);
  gguf::QuantizedMatrix f16;
  f16.type = GgmlType::kF16;
  f16.cols = 4;
  f16.data = Tensor::zeros({1, 8}, DType::U8);
  try {
    std::vector<float> y(1);
    quant_linear(x.data(), 1, ldx, f16, nullptr, y.data(), 1, QuantIsa::kScalar);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("F16"), std::string::npos) << e.what();
  }
}

// The CPU backend's quantized linear weight: parts of different GGUF types (a Q4_K_M file's q and k
// in Q4_K with v in Q6_K; a float part; a type the int8 kernels do not take) fused along rows, each
// writing its own columns, with the bias, as the dequantized matrix would.
TEST(QuantGemm, BackendFusesPartsOfDifferentTypes) {
  const int64_t K = 512, M = 3;
  CpuBackend backend(DType::F32);
  const Weight q = make_weight(GgmlType::kQ4_K, 8, K, 1), k = make_weight(GgmlType::kQ4_K, 4, K, 2);
  const Weight v = make_weight(GgmlType::kQ6_K, 4, K, 3), o = make_weight(GgmlType::kQ8_0, 5, K, 4);
  std::mt19937 rng(6);
  const std::vector<float> fvals = random_values(static_cast<size_t>(3 * K), rng, 0.1f);
  const Tensor f = Tensor::from_floats(fvals, {3, K}, DType::F16);
  gguf::QuantizedMatrix fpart = gguf::QuantizedMatrix::from_float(f);
  const std::vector<gguf::QuantizedMatrix> parts = {q.q, k.q, v.q, fpart, o.q};
  const int64_t N = 8 + 4 + 4 + 3 + 5;
  const std::vector<float> bias_v = random_values(static_cast<size_t>(N), rng);
  const Tensor bias = Tensor::from_floats(bias_v, {N});
  auto lw = backend.prepare_quantized_linear(parts, bias);
  EXPECT_EQ(lw->out_features(), N);
  EXPECT_EQ(lw->in_features(), K);
  const std::vector<float> xv = random_values(static_cast<size_t>(M * K), rng);
  const Tensor x = Tensor::from_floats(xv, {M, K});
  Tensor y = Tensor::empty({M, N}, DType::F32);
  backend.linear(y, x, *lw);

  // Row by row: the parts' own products (the int8 kernels for the quantized parts, float32 for
  // the float16 part) at their columns.
  const QuantIsa isa = quant_isa_for(detect_isa());
  int64_t col = 0;
  auto check_part = [&](const gguf::QuantizedMatrix& m) {
    std::vector<float> want(static_cast<size_t>(M * m.rows()));
    if (quant_type_supported(m.type)) {
      quant_linear(xv.data(), M, K, m, bias_v.data() + col, want.data(), m.rows(), isa);
    } else {
      const Tensor d = m.dequantize();
      for (int64_t r = 0; r < M; ++r)
        for (int64_t n = 0; n < m.rows(); ++n) {
          double s = bias_v[static_cast<size_t>(col + n)];
          for (int64_t kk = 0; kk < K; ++kk) s += static_cast<double>(d.data<float>()[n * K + kk]) * xv[static_cast<size_t>(r * K + kk)];
          want[static_cast<size_t>(r * m.rows() + n)] = static_cast<float>(s);
        }
    }
    for (int64_t r = 0; r < M; ++r)
      for (int64_t n = 0; n < m.rows(); ++n) {
        const float got = y.data<float>()[r * N + col + n], w = want[static_cast<size_t>(r * m.rows() + n)];
        if (quant_type_supported(m.type))
          EXPECT_EQ(got, w) << gguf::ggml_type_name(m.type) << " row " << r << " col " << col + n;
        else
          EXPECT_NEAR(got, w, 1e-4) << gguf::ggml_type_name(m.type) << " row " << r << " col " << col + n;
      }
    col += m.rows();
  };
  // q and k share a type and become one segment; the results are those of each part's rows.
  check_part(gguf::QuantizedMatrix::concat_rows({q.q, k.q}));
  check_part(v.q);
  check_part(fpart);
  check_part(o.q);
  EXPECT_EQ(col, N);
}

// A GGUF embedding table of a block type stays in its blocks on the CPU (no second, float copy):
// gathered rows are the dequantized rows, rounded to the compute dtype, exactly what a table
// dequantized at load and prepared in the compute dtype gives. Float GGUF tables are prepared as
// before.
TEST(QuantGemm, QuantizedEmbeddingGathersDequantizedRows) {
  const int64_t V = 37, H = 512;
  Tensor ids = Tensor::empty({6}, DType::I32);
  const int32_t id_values[] = {5, 0, 36, 5, 2, 11};
  std::memcpy(ids.raw(), id_values, sizeof id_values);
  for (DType compute : {DType::F32, DType::BF16, DType::F16}) {
    CpuBackend backend(compute);
    for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0, GgmlType::kQ5_K, GgmlType::kQ4_0}) {
      const Weight w = make_weight(type, V, H, 12);
      const Tensor table = backend.prepare_quantized_embedding(w.q);
      EXPECT_EQ(table.raw(), w.q.data.raw()) << "kept as the file's blocks, not copied";
      EXPECT_EQ(table.nbytes(), w.q.data.nbytes());
      const Tensor float_table = backend.prepare_embedding(w.q.dequantize());
      Tensor got = Tensor::empty({ids.numel(), H}, DType::F32), want = Tensor::empty({ids.numel(), H}, DType::F32);
      backend.embedding(got, ids, table);
      backend.embedding(want, ids, float_table);
      EXPECT_EQ(0, std::memcmp(got.raw(), want.raw(), got.nbytes())) << gguf::ggml_type_name(type) << " " << dtype_name(compute);
    }
    // A float16 GGUF table: the usual float table in the compute dtype.
    std::mt19937 rng(4);
    const Tensor f = Tensor::from_floats(random_values(static_cast<size_t>(V * H), rng), {V, H}, DType::F16);
    const Tensor table = backend.prepare_quantized_embedding(gguf::QuantizedMatrix::from_float(f));
    EXPECT_EQ(table.dtype(), compute);
  }
}
