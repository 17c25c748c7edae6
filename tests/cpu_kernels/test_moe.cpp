// The CPU mixture-of-experts op (cpu_moe.cpp) against a plain reference in double precision:
// routing (softmax, top-k with ties to the lower index, optional renormalisation) and the whole
// layer, with GPT-OSS's biases and clamped SwiGLU too; experts that no token routes to are never used (their weights are NaN here); a token's
// output does not depend on the other tokens of the batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/backends/cpu/cpu_moe.h"
#include "vllm/backends/moe_layout.h"

using namespace vllm;

namespace {

struct RefRoute {
  std::vector<int32_t> ids;
  std::vector<double> weights;
};

RefRoute ref_route(const std::vector<double>& logits, int64_t K, bool renormalize) {
  const int64_t E = static_cast<int64_t>(logits.size());
  double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
  std::vector<double> p(logits.size());
  for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(logits[e] - mx));
  for (double& v : p) v /= sum;
  std::vector<int32_t> idx(logits.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  RefRoute r;
  double chosen = 0;
  for (int64_t k = 0; k < K; ++k) r.ids.push_back(idx[k]), chosen += p[idx[k]];
  for (int64_t k = 0; k < K; ++k) r.weights.push_back(renormalize ? p[r.ids[k]] / chosen : p[r.ids[k]]);
  return r;
}

TEST(MoeRouting, MatchesPlainReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 2.0f);
  for (auto [E, K] : {std::pair<int64_t, int64_t>{8, 2}, {4, 2}, {16, 4}, {3, 1}, {5, 5}}) {
    for (bool renorm : {true, false}) {
      const int64_t T = 37;
      std::vector<float> logits(static_cast<size_t>(T * E));
      for (float& v : logits) v = d(rng);
      std::vector<int32_t> ids(static_cast<size_t>(T * K));
      std::vector<float> w(static_cast<size_t>(T * K));
      cpu::moe_route(logits.data(), T, E, {K, renorm}, ids.data(), w.data());
      for (int64_t t = 0; t < T; ++t) {
        RefRoute r = ref_route(std::vector<double>(logits.begin() + t * E, logits.begin() + (t + 1) * E), K, renorm);
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) {
          EXPECT_EQ(ids[t * K + k], r.ids[k]) << "E=" << E << " K=" << K << " t=" << t;
          EXPECT_NEAR(w[t * K + k], r.weights[k], 1e-7) << "E=" << E << " K=" << K << " t=" << t;
          sum += w[t * K + k];
        }
        if (renorm) {
          EXPECT_NEAR(sum, 1.0, 1e-6);
        }
      }
    }
  }
}

TEST(MoeRouting, TiesGoToTheLowerExpert) {
  std::vector<float> logits = {0.5f, 1.0f, 1.0f, 1.0f, 0.0f};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  cpu::moe_route(logits.data(), 1, 5, {2, true}, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2}));
  EXPECT_FLOAT_EQ(w[0], 0.5f);
  EXPECT_FLOAT_EQ(w[1], 0.5f);
}

// A random layer and its reference output in double.
struct Layer {
  int64_t T, H, I, E, K;
  bool renorm;
  std::vector<float> x, router, gate_up, down;  // [T,H], [E,H], [E,2I,H], [E,H,I]
  // GPT-OSS's additions (empty / 0: none): router bias [E], gate_up bias [E,2I], down bias [E,H],
  // and the clamped SwiGLU's limit.
  std::vector<float> router_bias, gate_up_bias, down_bias;
  float swiglu_limit = 0;
};

Layer random_layer(int64_t T, int64_t H, int64_t I, int64_t E, int64_t K, bool renorm, unsigned seed) {
  Layer L{T, H, I, E, K, renorm, {}, {}, {}, {}, {}, {}, {}, 0};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, size_t n, float scale) {
    v.resize(n);
    for (float& f : v) f = u(rng) * scale;
  };
  fill(L.x, static_cast<size_t>(T * H), 1.0f);
  fill(L.router, static_cast<size_t>(E * H), 0.5f);
  fill(L.gate_up, static_cast<size_t>(E * 2 * I * H), 0.2f);
  fill(L.down, static_cast<size_t>(E * H * I), 0.2f);
  return L;
}

// A GPT-OSS-style layer: biases everywhere, and weights wide enough that the SwiGLU clamp bites.
Layer random_gpt_oss_layer(int64_t T, int64_t H, int64_t I, int64_t E, int64_t K, unsigned seed) {
  Layer L = random_layer(T, H, I, E, K, true, seed);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, size_t n, float scale) {
    v.resize(n);
    for (float& f : v) f = u(rng) * scale;
  };
  for (float& w : L.gate_up) w *= 4.0f;  // gate/up values of several units: past the limit of 1.5 below
  fill(L.router_bias, static_cast<size_t>(E), 0.5f);
  fill(L.gate_up_bias, static_cast<size_t>(E * 2 * I), 0.5f);
  fill(L.down_bias, static_cast<size_t>(E * H), 0.5f);
  L.swiglu_limit = 1.5f;
  return L;
}

std::vector<RefRoute> ref_routes(const Layer& L) {
  std::vector<RefRoute> out;
  for (int64_t t = 0; t < L.T; ++t) {
    std::vector<double> logits(static_cast<size_t>(L.E));
    for (int64_t e = 0; e < L.E; ++e) {
      for (int64_t h = 0; h < L.H; ++h) logits[e] += double(L.x[t * L.H + h]) * L.router[e * L.H + h];
      if (!L.router_bias.empty()) logits[e] += L.router_bias[e];
    }
    out.push_back(ref_route(logits, L.K, L.renorm));
  }
  return out;
}

std::vector<double> ref_moe(const Layer& L) {
  std::vector<double> out(static_cast<size_t>(L.T * L.H), 0.0);
  auto routes = ref_routes(L);
  for (int64_t t = 0; t < L.T; ++t) {
    for (int64_t k = 0; k < L.K; ++k) {
      const int64_t e = routes[t].ids[k];
      std::vector<double> act(static_cast<size_t>(L.I));
      for (int64_t i = 0; i < L.I; ++i) {
        double g = 0, up = 0;
        for (int64_t h = 0; h < L.H; ++h) {
          g += double(L.x[t * L.H + h]) * L.gate_up[(e * 2 * L.I + i) * L.H + h];
          up += double(L.x[t * L.H + h]) * L.gate_up[(e * 2 * L.I + L.I + i) * L.H + h];
        }
        if (!L.gate_up_bias.empty()) g += L.gate_up_bias[e * 2 * L.I + i], up += L.gate_up_bias[e * 2 * L.I + L.I + i];
        if (L.swiglu_limit > 0) {  // transformers' GptOssExperts
          const double lim = L.swiglu_limit;
          g = std::min(g, lim);
          up = std::clamp(up, -lim, lim);
          act[i] = (up + 1) * g / (1 + std::exp(-1.702 * g));
        } else {
          act[i] = g / (1 + std::exp(-g)) * up;
        }
      }
      for (int64_t h = 0; h < L.H; ++h) {
        double y = L.down_bias.empty() ? 0.0 : L.down_bias[e * L.H + h];
        for (int64_t i = 0; i < L.I; ++i) y += act[i] * L.down[(e * L.H + h) * L.I + i];
        out[t * L.H + h] += routes[t].weights[k] * y;
      }
    }
  }
  return out;
}

Tensor host(const std::vector<float>& v, Shape shape) { return Tensor::from_floats(v, std::move(shape)); }

std::vector<float> run_moe(CpuBackend& b, const Layer& L, const std::vector<float>& x, int64_t T) {
  auto router = b.prepare_linear(host(L.router, {L.E, L.H}), L.router_bias.empty() ? Tensor() : host(L.router_bias, {L.E}));
  ExpertOptions o;
  if (!L.gate_up_bias.empty()) o.gate_up_bias = host(L.gate_up_bias, {L.E, 2 * L.I});
  if (!L.down_bias.empty()) o.down_bias = host(L.down_bias, {L.E, L.H});
  o.swiglu_limit = L.swiglu_limit;
  auto experts = b.prepare_experts(host(L.gate_up, {L.E, 2 * L.I, L.H}), host(L.down, {L.E, L.H, L.I}), o);
  EXPECT_EQ(experts->num_experts(), L.E);
  EXPECT_EQ(experts->intermediate_size(), L.I);
  Tensor xt = host(x, {T, L.H});
  Tensor out = Tensor::empty({T, L.H}, DType::F32);
  b.moe(out, xt, *router, *experts, {L.K, L.renorm});
  return out.to_floats();
}

TEST(MoeOp, Float32MatchesPlainReference) {
  CpuBackend b(DType::F32);
  for (auto [T, E, K, renorm] : {std::tuple<int64_t, int64_t, int64_t, bool>{1, 8, 2, true}, {9, 8, 2, true},
                                 {33, 4, 2, false}, {64, 16, 4, true}, {5, 3, 1, false}}) {
    Layer L = random_layer(T, 96, 80, E, K, renorm, static_cast<unsigned>(T * 31 + E));
    std::vector<double> want = ref_moe(L);
    std::vector<float> got = run_moe(b, L, L.x, T);
    double scale = 0;
    for (double v : want) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 2e-5 * scale + 1e-6) << "T=" << T << " E=" << E << " K=" << K << " i=" << i;
  }
}

// GPT-OSS's experts: router and expert biases, and the clamped SwiGLU with both clamps active.
TEST(MoeOp, BiasesAndClampedSwigluMatchPlainReference) {
  CpuBackend b(DType::F32);
  for (auto [T, E, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 8, 2}, {19, 8, 2}, {40, 4, 1}}) {
    Layer L = random_gpt_oss_layer(T, 64, 48, E, K, static_cast<unsigned>(T * 7 + E));
    // The clamp must bite on both sides for the test to mean anything.
    int gate_clamped = 0, up_clamped = 0;
    const auto routes = ref_routes(L);
    for (int64_t t = 0; t < T; ++t)
      for (int32_t e : routes[t].ids)
        for (int64_t i = 0; i < L.I; ++i) {
          double g = L.gate_up_bias[e * 2 * L.I + i], up = L.gate_up_bias[e * 2 * L.I + L.I + i];
          for (int64_t h = 0; h < L.H; ++h) {
            g += double(L.x[t * L.H + h]) * L.gate_up[(e * 2 * L.I + i) * L.H + h];
            up += double(L.x[t * L.H + h]) * L.gate_up[(e * 2 * L.I + L.I + i) * L.H + h];
          }
          gate_clamped += g > L.swiglu_limit;
          up_clamped += std::abs(up) > L.swiglu_limit;
        }
    ASSERT_GT(gate_clamped, 0);
    ASSERT_GT(up_clamped, 0);
    std::vector<double> want = ref_moe(L);
    std::vector<float> got = run_moe(b, L, L.x, T);
    double scale = 0;
    for (double v : want) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 2e-5 * scale + 1e-6) << "T=" << T << " E=" << E << " K=" << K << " i=" << i;
  }
}

TEST(MoeOp, Bfloat16CloseToPlainReference) {
  CpuBackend b(DType::BF16);
  Layer L = random_layer(17, 64, 96, 8, 2, true, 11);
  std::vector<double> want = ref_moe(L);
  std::vector<float> got = run_moe(b, L, L.x, L.T);
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-2 * scale) << i;
}

// Experts that no token routes to hold NaN: a path that multiplied them in (even by weight 0)
// would give NaN.
TEST(MoeOp, UnroutedExpertsAreNotUsed) {
  CpuBackend b(DType::F32);
  Layer L = random_layer(3, 32, 48, 16, 2, true, 3);
  std::vector<bool> used(16, false);
  for (const auto& r : ref_routes(L))
    for (int32_t e : r.ids) used[e] = true;
  int unused = 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t e = 0; e < L.E; ++e) {
    if (used[e]) continue;
    ++unused;
    std::fill(L.gate_up.begin() + e * 2 * L.I * L.H, L.gate_up.begin() + (e + 1) * 2 * L.I * L.H, nan);
    std::fill(L.down.begin() + e * L.H * L.I, L.down.begin() + (e + 1) * L.H * L.I, nan);
  }
  ASSERT_GE(unused, 10);
  std::vector<float> got = run_moe(b, L, L.x, L.T);
  for (float v : got) ASSERT_TRUE(std::isfinite(v));
}

// Each token's output is the same, bit for bit, alone or in any batch.
TEST(MoeOp, TokenOutputsDoNotDependOnTheBatch) {
  CpuBackend b(DType::BF16);
  Layer L = random_layer(24, 64, 64, 8, 2, true, 9);
  std::vector<float> all = run_moe(b, L, L.x, L.T);
  for (int64_t t : {0, 7, 23}) {
    std::vector<float> one(L.x.begin() + t * L.H, L.x.begin() + (t + 1) * L.H);
    std::vector<float> got = run_moe(b, L, one, 1);
    for (int64_t h = 0; h < L.H; ++h) ASSERT_EQ(got[h], all[t * L.H + h]) << "token " << t;
  }
}

}  // namespace

// The grouping by expert (moe_layout.h) that the CPU op uses and the CUDA kernels rebuild on the
// device, against a plain reference: a stable sort of the assignments by expert.
namespace {

std::vector<int32_t> random_routing(std::mt19937& rng, int64_t T, int64_t K, int64_t E) {
  std::vector<int32_t> ids;
  std::vector<int32_t> all(static_cast<size_t>(E));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t t = 0; t < T; ++t) {
    std::shuffle(all.begin(), all.end(), rng);  // K distinct experts per token, as routing gives
    ids.insert(ids.end(), all.begin(), all.begin() + K);
  }
  return ids;
}

TEST(MoeLayout, StableGroupingByExpert) {
  std::mt19937 rng(21);
  struct C { int64_t T, K, E; int32_t tile; };
  for (C c : {C{1, 1, 1, 1}, C{1, 8, 128, 128}, C{5, 2, 8, 4}, C{37, 4, 16, 8}, C{300, 8, 128, 128}, C{64, 2, 3, 16}}) {
    const std::vector<int32_t> ids = random_routing(rng, c.T, c.K, c.E);
    const moe::ExpertLayout L = moe::group_by_expert(ids.data(), c.T, c.K, c.E, c.tile);
    const int64_t n = c.T * c.K;
    // The reference order: assignments stably sorted by expert.
    std::vector<int32_t> want(static_cast<size_t>(n));
    std::iota(want.begin(), want.end(), 0);
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return ids[a] < ids[b]; });
    EXPECT_EQ(L.order, want) << "T=" << c.T << " E=" << c.E;
    for (int64_t a = 0; a < n; ++a) ASSERT_EQ(L.order[L.pos[a]], a);
    int32_t rows = 0, tiles = 0;
    std::vector<int32_t> active;
    for (int64_t e = 0; e < c.E; ++e) {
      const int32_t count = static_cast<int32_t>(std::count(ids.begin(), ids.end(), e));
      ASSERT_EQ(L.counts[e], count);
      ASSERT_EQ(L.offsets[e], rows);
      ASSERT_EQ(L.tile_starts[e], tiles);
      for (int32_t r = rows; r < rows + count; ++r) ASSERT_EQ(ids[L.order[r]], e);
      rows += count;
      tiles += (count + c.tile - 1) / c.tile;
      if (count > 0) active.push_back(static_cast<int32_t>(e));
    }
    EXPECT_EQ(L.offsets[c.E], n);
    EXPECT_EQ(L.tile_starts[c.E], tiles);
    EXPECT_EQ(L.active, active);
    // Grids sized by max_row_tiles cover every routing.
    EXPECT_LE(tiles, moe::max_row_tiles(n, c.E, c.tile));
  }
  const std::vector<int32_t> bad = {0, 3};
  EXPECT_THROW(moe::group_by_expert(bad.data(), 1, 2, 3), Error);
}

TEST(MoeLayout, ExpertOfTileFindsTheOwner) {
  std::mt19937 rng(8);
  for (int round = 0; round < 200; ++round) {
    const int32_t E = 1 + static_cast<int32_t>(rng() % 40);
    std::vector<int32_t> starts(static_cast<size_t>(E + 1), 0);
    for (int32_t e = 0; e < E; ++e) starts[e + 1] = starts[e] + (rng() % 3 == 0 ? 0 : static_cast<int32_t>(rng() % 4));
    for (int32_t tile = 0; tile < starts[E]; ++tile) {
      int32_t owner = -1;
      for (int32_t e = 0; e < E; ++e)
        if (starts[e] <= tile && tile < starts[e + 1]) owner = e;
      ASSERT_EQ(moe::expert_of_tile(tile, starts.data(), E), owner) << "E=" << E << " tile=" << tile;
    }
  }
}

TEST(MoeLayout, MaxRowTilesBoundsTheWorstRouting) {
  // Every expert with one assignment but one that takes the rest: the most partial tiles.
  for (int64_t E : {1, 4, 128}) {
    for (int64_t n : {1, 7, 128, 129, 1000}) {
      const int64_t tile = 16, ones = std::min(E - 1, n - 1);
      int64_t tiles = ones + (n - ones + tile - 1) / tile;
      EXPECT_LE(tiles, moe::max_row_tiles(n, E, tile)) << "E=" << E << " n=" << n;
    }
  }
}

}  // namespace
