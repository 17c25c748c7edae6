// The CPU activation loops (vec.h) against the exact functions in double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

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

}  // namespace
