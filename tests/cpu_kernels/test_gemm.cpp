// linear() on every ISA this CPU can run, against a double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "vllm/backends/cpu/gemm.h"
#include "vllm/core/error.h"

using namespace vllm;
using namespace vllm::cpu;

namespace {

const Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmxBf16};
const DType kWeightDtypes[] = {DType::F32, DType::F16, DType::BF16};

// A NaN with a payload nothing computes, to tell "untouched" from "written with NaN".
float poison() {
  uint32_t bits = 0x7fc0beefu;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
bool is_poison(float f) { return std::memcmp(&f, "\xef\xbe\xc0\x7f", 4) == 0; }

std::vector<float> random_values(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Problem {
  int64_t M, N, K, ldx, ldy;
  std::vector<float> x;  // [M, ldx], NaN past K
  Tensor w;              // [N, K] float32
  std::vector<float> bias;
};

Problem make_problem(int64_t M, int64_t N, int64_t K, int64_t x_pad, int64_t y_pad, uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p{M, N, K, K + x_pad, N + y_pad, {}, {}, {}};
  p.x.assign(static_cast<size_t>(M * p.ldx), std::numeric_limits<float>::quiet_NaN());
  for (int64_t m = 0; m < M; ++m) {
    auto row = random_values(static_cast<size_t>(K), rng);
    std::copy(row.begin(), row.end(), p.x.begin() + m * p.ldx);
  }
  p.w = Tensor::from_floats(random_values(static_cast<size_t>(N * K), rng), {N, K});
  p.bias = random_values(static_cast<size_t>(N), rng);
  return p;
}

// Runs linear on a poisoned output (with two extra rows) and checks the result against a double
// reference of what the kernel is meant to multiply; returns the output.
std::vector<float> run_and_check(const Problem& p, const PackedWeight& pw, bool with_bias, ThreadPool& pool,
                                 const std::string& what) {
  const int64_t M = p.M, N = p.N, K = p.K;
  std::vector<float> y(static_cast<size_t>((M + 2) * p.ldy), poison());
  linear(p.x.data(), M, p.ldx, pw, with_bias ? p.bias.data() : nullptr, y.data(), p.ldy, pool);

  // The kernel multiplies the weight as stored, and on the vdpbf16ps / tdpbf16ps paths x rounded
  // to bf16.
  const Tensor wq = pw.unpack();
  const float* wv = wq.data<float>();
  const bool round_x = (pw.isa() == Isa::kAvx512Bf16 || pw.isa() == Isa::kAmxBf16) && pw.dtype() == DType::BF16;
  std::vector<double> xr(static_cast<size_t>(K));
  int bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t k = 0; k < K; ++k) {
      float v = p.x[static_cast<size_t>(m * p.ldx + k)];
      xr[static_cast<size_t>(k)] = round_x ? bf16_to_f32(f32_to_bf16(v)) : v;
    }
    for (int64_t n = 0; n < p.ldy; ++n) {
      const float got = y[static_cast<size_t>(m * p.ldy + n)];
      if (n >= N) {
        if (!is_poison(got) && bad++ < 5) ADD_FAILURE() << what << ": padding y[" << m << "][" << n << "] written";
        continue;
      }
      double ref = with_bias ? p.bias[static_cast<size_t>(n)] : 0.0, mag = std::fabs(ref);
      for (int64_t k = 0; k < K; ++k) {
        double t = xr[static_cast<size_t>(k)] * wv[n * K + k];
        ref += t;
        mag += std::fabs(t);
      }
      // float32 accumulation: at most ~2 roundings (product, sum) per term.
      const double tol = 2.0 * (static_cast<double>(K) + 2.0) * std::ldexp(1.0, -24) * mag + 1e-30;
      if (!(std::fabs(got - ref) <= tol) && bad++ < 5)
        ADD_FAILURE() << what << ": y[" << m << "][" << n << "] = " << got << ", expected " << ref << " (tol " << tol
                      << ")";
    }
  }
  for (size_t i = static_cast<size_t>(M * p.ldy); i < y.size(); ++i)
    if (!is_poison(y[i]) && bad++ < 5) ADD_FAILURE() << what << ": row past M written";
  return y;
}

std::string describe(Isa isa, DType dt, int64_t M, int64_t N, int64_t K, bool bias) {
  return std::string(isa_name(isa)) + "/" + std::string(dtype_name(dt)) + " M=" + std::to_string(M) +
         " N=" + std::to_string(N) + " K=" + std::to_string(K) + (bias ? " +bias" : "");
}

class GemmIsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << isa_name(GetParam()) << " not supported by this CPU";
  }
};

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) { return std::string(isa_name(info.param)); }

}  // namespace

TEST_P(GemmIsaTest, MatchesReferenceOnManyShapes) {
  const Isa isa = GetParam();
  ThreadPool pool(2);
  uint32_t seed = 1;
  for (int64_t N : {1, 5, 17, 64, 100, 257})
    for (int64_t K : {1, 5, 17, 64, 100, 257}) {
      for (DType dt : kWeightDtypes) {
        Problem base = make_problem(130, N, K, 3, 5, seed++);
        PackedWeight pw = PackedWeight::pack(base.w, dt, isa);
        ASSERT_EQ(pw.n(), N);
        ASSERT_EQ(pw.k(), K);
        ASSERT_EQ(pw.dtype(), dt);
        ASSERT_EQ(pw.isa(), isa);
        for (int64_t M : {1, 2, 3, 7, 16, 33, 130}) {
          Problem p = base;
          p.M = M;
          p.x.resize(static_cast<size_t>(M * p.ldx));
          const bool bias = (M + N + K) % 2 == 0;
          run_and_check(p, pw, bias, pool, describe(isa, dt, M, N, K, bias));
          if (M == 7) run_and_check(p, pw, !bias, pool, describe(isa, dt, M, N, K, !bias));
        }
      }
    }
}

// Several k blocks (K > the block length) with several row tiles, and multi-threaded shapes.
TEST_P(GemmIsaTest, MatchesReferenceOnLargerShapes) {
  const Isa isa = GetParam();
  ThreadPool pool(3);
  uint32_t seed = 1000;
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{33, 200, 601}, {13, 130, 1030}, {1, 1000, 777},
                         {70, 64, 512}})
    for (DType dt : kWeightDtypes) {
      Problem p = make_problem(M, N, K, 16, 1, seed++);
      PackedWeight pw = PackedWeight::pack(p.w, dt, isa);
      run_and_check(p, pw, true, pool, describe(isa, dt, M, N, K, true));
    }
}

// The packed weight holds the source rounded to the compute dtype (nearest even), whatever the
// source dtype.
TEST_P(GemmIsaTest, PackConvertsDtypes) {
  const Isa isa = GetParam();
  std::mt19937 rng(7);
  const int64_t N = 37, K = 29;
  std::vector<float> v = random_values(static_cast<size_t>(N * K), rng, -3.0f, 3.0f);
  for (DType src : kWeightDtypes) {
    Tensor w = Tensor::from_floats(v, {N, K}, src);
    std::vector<float> as_source = w.to_floats();
    for (DType dt : kWeightDtypes) {
      PackedWeight pw = PackedWeight::pack(w, dt, isa);
      EXPECT_GE(pw.bytes(), static_cast<size_t>(N * K) * dtype_size(dt));
      Tensor u = pw.unpack();
      for (int64_t i = 0; i < N * K; ++i) {
        float s = as_source[static_cast<size_t>(i)];
        float expect = dt == DType::F32 ? s : dt == DType::F16 ? f16_to_f32(f32_to_f16(s)) : bf16_to_f32(f32_to_bf16(s));
        ASSERT_EQ(u.data<float>()[i], expect) << dtype_name(src) << " -> " << dtype_name(dt) << " at " << i;
      }
    }
  }
}

// The same bits whatever the number of threads, and whatever else is in the batch.
TEST_P(GemmIsaTest, DeterministicAcrossThreadsAndBatch) {
  const Isa isa = GetParam();
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (DType dt : kWeightDtypes) {
    Problem p = make_problem(67, 300, 520, 0, 0, 42);
    PackedWeight pw = PackedWeight::pack(p.w, dt, isa);
    for (int64_t M : {1, 7, 67}) {
      std::vector<std::vector<float>> outs;
      for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
        std::vector<float> y(static_cast<size_t>(M * p.N));
        linear(p.x.data(), M, p.ldx, pw, p.bias.data(), y.data(), p.N, *pool);
        outs.push_back(std::move(y));
      }
      EXPECT_EQ(std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * 4), 0)
          << isa_name(isa) << "/" << dtype_name(dt) << " M=" << M << ": 1 vs 2 threads";
      EXPECT_EQ(std::memcmp(outs[0].data(), outs[2].data(), outs[0].size() * 4), 0)
          << isa_name(isa) << "/" << dtype_name(dt) << " M=" << M << ": 1 vs 3 threads";
      // Row by row, alone, gives the same bits as within the batch.
      for (int64_t m : {int64_t{0}, M / 2, M - 1}) {
        std::vector<float> y1(static_cast<size_t>(p.N));
        linear(p.x.data() + m * p.ldx, 1, p.ldx, pw, p.bias.data(), y1.data(), p.N, pool2);
        EXPECT_EQ(std::memcmp(y1.data(), outs[1].data() + m * p.N, y1.size() * 4), 0)
            << isa_name(isa) << "/" << dtype_name(dt) << " row " << m << " of M=" << M;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, GemmIsaTest, ::testing::ValuesIn(kAllIsas), isa_param_name);

TEST(Gemm, PanelWidths) {
  EXPECT_EQ(panel_width_for(Isa::kAvx512Bf16), 64);
  EXPECT_EQ(panel_width_for(Isa::kAvx2), 16);
}

TEST(Gemm, RejectsBadArguments) {
  Tensor w = Tensor::from_floats(std::vector<float>(12, 1.0f), {3, 4});
  EXPECT_THROW(PackedWeight::pack(w.view({12}), DType::F32, Isa::kScalar), Error);
  EXPECT_THROW(PackedWeight::pack(Tensor::zeros({3, 4}, DType::I32), DType::F32, Isa::kScalar), Error);
  EXPECT_THROW(PackedWeight::pack(w, DType::I32, Isa::kScalar), Error);
  for (Isa isa : kAllIsas)
    if (!isa_supported(isa)) {
      EXPECT_THROW(PackedWeight::pack(w, DType::F32, isa), Error);
    }
  PackedWeight pw = PackedWeight::pack(w, DType::F32, Isa::kScalar);
  std::vector<float> x(8, 1.0f), y(6, 0.0f);
  EXPECT_THROW(linear(x.data(), 2, 3, pw, nullptr, y.data(), 3), Error);  // ldx < K
  EXPECT_THROW(linear(x.data(), 2, 4, pw, nullptr, y.data(), 2), Error);  // ldy < N
  EXPECT_THROW(linear(x.data(), 2, 4, PackedWeight(), nullptr, y.data(), 3), Error);
  linear(x.data(), 0, 4, pw, nullptr, nullptr, 3);  // M = 0: nothing to do
  linear(x.data(), 2, 4, pw, nullptr, y.data(), 3);
  for (float v : y) EXPECT_EQ(v, 4.0f);
}

TEST(Gemm, EmptyKGivesBias) {
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    for (DType dt : kWeightDtypes) {
      PackedWeight pw = PackedWeight::pack(Tensor::zeros({5, 0}, DType::F32), dt, isa);
      std::vector<float> bias = {1, 2, 3, 4, 5}, y(10, poison());
      linear(nullptr, 2, 0, pw, bias.data(), y.data(), 5);
      for (int i = 0; i < 10; ++i) EXPECT_EQ(y[static_cast<size_t>(i)], bias[static_cast<size_t>(i % 5)]);
    }
  }
}
