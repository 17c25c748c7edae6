// The CPU activation loops (vec.h) against the exact functions in double precision, and the
// element-wise backend ops built on them (Gemma's gated GELU, embedding scale, soft-capping).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/backends/cpu/vec.h"

namespace {

double gelu_new_exact(double x) { return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
double silu_exact(double x) { return x / (1.0 + std::exp(-x)); }

// Inputs over the range activations meet, both signs, tiny and huge values, and zero.
std::vector<float> inputs() {
  std::vector<float> v{0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, -1e-6f, 1.0f, -1.0f, 30.0f, -30.0f, 200.0f, -200.0f, -3e38f};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-40.0f, 40.0f), narrow(-4.0f, 4.0f);
  for (int i = 0; i < 20000; ++i) v.push_back(i % 2 ? wide(rng) : narrow(rng));
  return v;
}

// Within a few float ulps of the result plus what float rounding of the exponent's argument a
// (e.g. of x^3) becomes through e^a: a relative error of |a| times 2 ulps; with an absolute floor
// of 1e-12 for results near zero (where the old 0.5 x (1 + tanhf(u)) returned exactly 0).
void expect_close(double got, double want, double a, double x, const char* what) {
  const double tol = (1e-6 + std::abs(a) * 2.4e-7) * std::abs(want) + 1e-12;
  ASSERT_LE(std::abs(got - want), tol) << what << "(" << x << ")";
}

TEST(Activations, GeluNewMatchesExact) {
  std::vector<float> x = inputs(), y(x.size());
  vllm::cpu::gelu_tanh_row(y.data(), x.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i])) << "gelu_new(" << x[i] << ")";
    const double want = gelu_new_exact(x[i]);
    if (x[i] > 1e12f) {  // x^3 overflows float; the exact value is x itself
      ASSERT_EQ(y[i], x[i]);
      continue;
    }
    const double u2 = 2 * 0.7978845608028654 * (x[i] + 0.044715 * double(x[i]) * x[i] * x[i]);
    expect_close(y[i], want, u2, x[i], "gelu_new");
  }
  // In place.
  std::vector<float> z = x;
  vllm::cpu::gelu_tanh_row(z.data(), z.data(), static_cast<int64_t>(z.size()));
  EXPECT_EQ(z, y);
}

TEST(Activations, SiluMulMatchesExact) {
  std::vector<float> g = inputs();
  g.push_back(1e30f);  // SiLU(g) = g; times up (|up| < 3) still a float
  std::vector<float> u(g.size()), y(g.size());
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  for (float& v : u) v = d(rng);
  vllm::cpu::silu_mul_row(y.data(), g.data(), u.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i])) << "silu(" << g[i] << ")";
    expect_close(y[i], silu_exact(g[i]) * u[i], g[i], g[i], "silu_mul");
  }
}

TEST(Activations, GeluTanhMulMatchesExact) {
  std::vector<float> g = inputs();
  std::vector<float> u(g.size()), y(g.size());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  for (float& v : u) v = d(rng);
  vllm::cpu::gelu_tanh_mul_row(y.data(), g.data(), u.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i])) << "gelu_tanh(" << g[i] << ")";
    if (g[i] > 1e12f) {  // as gelu_new: the value is x itself
      ASSERT_EQ(y[i], g[i] * u[i]);
      continue;
    }
    const double u2 = 2 * 0.7978845608028654 * (g[i] + 0.044715 * double(g[i]) * g[i] * g[i]);
    expect_close(y[i], gelu_new_exact(g[i]) * u[i], u2, g[i], "gelu_tanh_mul");
  }
}

// GPT-OSS's clamped SwiGLU: (clamp(up, -l, l) + 1) * g * sigmoid(alpha g), g = min(gate, l).
TEST(Activations, ClampedSwigluMatchesExact) {
  std::vector<float> g = inputs();
  std::vector<float> u = inputs(), y(g.size());
  std::reverse(u.begin(), u.end());
  const float limit = 7.0f, alpha = 1.702f;
  vllm::cpu::clamped_swiglu_row(y.data(), g.data(), u.data(), static_cast<int64_t>(g.size()), limit, alpha);
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i])) << "clamped_swiglu(" << g[i] << ", " << u[i] << ")";
    const double gc = std::min<double>(g[i], limit), uc = std::clamp<double>(u[i], -limit, limit);
    const double want = (uc + 1) * gc / (1 + std::exp(-double(alpha) * gc));
    expect_close(y[i], want, alpha * gc, g[i], "clamped_swiglu");
  }
}

TEST(BackendOps, GeluTanhAndMulScaleSoftcap) {
  vllm::CpuBackend b(vllm::DType::F32);
  const int64_t T = 5, I = 37;
  std::vector<float> gu(static_cast<size_t>(T * 2 * I));
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-60.0f, 60.0f);
  for (float& v : gu) v = d(rng);
  vllm::Tensor gate_up = vllm::Tensor::from_floats(gu, {T, 2 * I});
  vllm::Tensor out = vllm::Tensor::empty({T, I}, vllm::DType::F32);
  b.gelu_tanh_and_mul(out, gate_up);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < I; ++i) {
      const double g = gu[t * 2 * I + i], up = gu[t * 2 * I + I + i];
      const double a = 2 * 0.7978845608028654 * (g + 0.044715 * g * g * g);
      expect_close(out.data<float>()[t * I + i], gelu_new_exact(g) * up, a, g, "gelu_tanh_and_mul");
    }
  // scale, then soft-cap at 30: values of a few hundred bend to just under 30, small ones barely.
  vllm::Tensor x = vllm::Tensor::from_floats(gu, {T, 2 * I});
  b.scale(x, 4.0f);
  b.softcap(x, 30.0f);
  for (size_t i = 0; i < gu.size(); ++i) {
    const double want = std::tanh(4.0 * gu[i] / 30.0) * 30.0;
    ASSERT_NEAR(x.data<float>()[i], want, 4e-6 * 30) << gu[i];
  }
}

}  // namespace
