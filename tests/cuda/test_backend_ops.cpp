// Every Backend op of CudaBackend against CpuBackend (the reference semantics) on random inputs
// of many shapes: odd sizes, GQA ratios, block sizes 1/16/32, decode, prefill and mixed batches,
// long contexts (split-K decode), sliding windows (keys outside them hold NaN or are kNoBlock),
// soft-capped scores, sinks, a layer of a second KV cache group, GPT-OSS's biased and clamped
// experts. GPU outputs are poisoned with NaN before each op, so an element left unwritten fails. Inputs are rounded to the compute dtype first (for float16 attention, to
// values both float16 and bfloat16 hold exactly, since the CPU's float16 KV cache is bfloat16), so
// the two backends see the same numbers and differ only by accumulation order and output rounding.
// Skips itself when no CUDA device is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <tuple>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/backends/cpu/cpu_moe.h"
#include "vllm/backends/cuda/cuda_backend.h"
#include "vllm/backends/moe_layout.h"
#include "vllm/core/float8.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/quantized_matrix.h"
#include "vllm/kv_cache/kv_cache_manager.h"
#include "vllm/loader/fp8_weights.h"

using namespace vllm;

namespace {

bool have_gpu() {
  static const int n = cuda_device_count();
  return n > 0;
}

// Max error relative to the reference's largest magnitude.
double tolerance(DType t) {
  switch (t) {
    case DType::F32: return 2e-5;
    case DType::F16: return 4e-3;
    default: return 2e-2;
  }
}

std::string dname(DType t) { return std::string(dtype_name(t)); }

// Labels through a stream (GCC 12 warns falsely, -Wrestrict, on chains of const char* + string&&).
template <typename... A>
std::string str(const A&... parts) {
  std::ostringstream o;
  (o << ... << parts);
  return o.str();
}
std::string lbl(const char* what, const std::string& where) { return str(what, where); }

class Ops : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device visible";
    gpu_ = std::make_unique<CudaBackend>(GetParam());
    cpu_ = std::make_unique<CpuBackend>(GetParam());
    rng_.seed(1234 + static_cast<unsigned>(GetParam()));
  }
  DType dt() const { return GetParam(); }

  float round_to(float v, DType t) const {
    switch (t) {
      case DType::F16: return f16_to_f32(f32_to_f16(v));
      case DType::BF16: return bf16_to_f32(f32_to_bf16(v));
      default: return v;
    }
  }
  // Host float32 tensor of uniform values in [lo, hi), rounded to the compute dtype (and to
  // bfloat16 as well when `both` is set).
  Tensor rand(const Shape& s, float lo = -1.0f, float hi = 1.0f, bool both = false) {
    std::uniform_real_distribution<float> d(lo, hi);
    Tensor t = Tensor::empty(s, DType::F32);
    for (int64_t i = 0; i < t.numel(); ++i) {
      float v = round_to(d(rng_), dt());
      if (both) v = round_to(round_to(v, DType::BF16), dt());
      t.data<float>()[i] = v;
    }
    return t;
  }
  Tensor nan_host(const Shape& s) {
    Tensor t = Tensor::empty(s, DType::F32);
    std::fill(t.data<float>(), t.data<float>() + t.numel(), NAN);
    return t;
  }
  Tensor nan_gpu(const Shape& s) { return gpu_->upload(nan_host(s), dt()); }
  Tensor up(const Tensor& h) { return gpu_->upload(h, dt()); }
  Tensor ints(const std::vector<int32_t>& v) {
    Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
    std::copy(v.begin(), v.end(), t.data<int32_t>());
    return t;
  }

  void expect_close(const Tensor& gpu_t, const Tensor& ref, const std::string& where, double tol_scale = 1.0) {
    expect_close_host(gpu_->download_f32(gpu_t), ref, where, tol_scale);
  }
  // g: the GPU's result, already on the host in float32.
  void expect_close_host(const Tensor& g, const Tensor& ref, const std::string& where, double tol_scale = 1.0) {
    Tensor r = ref.dtype() == DType::F32 ? ref : ref.to_dtype(DType::F32);
    ASSERT_EQ(g.numel(), r.numel()) << where;
    double max_ref = 0, max_err = 0;
    int64_t bad = -1, worst = 0;
    for (int64_t i = 0; i < r.numel(); ++i) {
      const double a = g.data<float>()[i], b = r.data<float>()[i];
      if (!std::isfinite(a) && std::isfinite(b)) {
        if (bad < 0) bad = i;
        continue;
      }
      max_ref = std::max(max_ref, std::fabs(b));
      if (std::fabs(a - b) > max_err) max_err = std::fabs(a - b), worst = i;
    }
    EXPECT_LT(bad, 0) << where << ": non-finite GPU output at element " << bad << " (reference " << r.data<float>()[bad] << ")";
    const double rel = max_err / std::max(max_ref, 1e-6);
    EXPECT_LE(rel, tolerance(dt()) * tol_scale)
        << where << " [" << dname(dt()) << "]: max error " << max_err << " at " << worst << " (gpu " << g.data<float>()[worst]
        << ", cpu " << r.data<float>()[worst] << "), reference max " << max_ref;
  }

  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<CpuBackend> cpu_;
  std::mt19937 rng_;
};

TEST_P(Ops, UploadDownloadFillZero) {
  for (int64_t n : {1, 7, 4096, 100003}) {
    Tensor h = rand({n});
    Tensor d = up(h);
    Tensor back = gpu_->download_f32(d);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back.data<float>()[i], h.data<float>()[i]) << i;
    // Upload from another stored dtype converts on the device.
    Tensor hb = h.to_dtype(DType::BF16);
    Tensor db = gpu_->upload(hb, dt());
    Tensor backb = gpu_->download_f32(db);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(backb.data<float>()[i], round_to(bf16_to_f32(hb.data<uint16_t>()[i]), dt()));
    gpu_->fill_zero(d);
    back = gpu_->download_f32(d);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back.data<float>()[i], 0.0f);
  }
  Tensor iv = ints({3, -1, 7, 1 << 20});
  Tensor div = gpu_->upload(iv, DType::I32);
  Tensor ib = gpu_->download_f32(div);
  EXPECT_EQ(ib.data<float>()[0], 3.0f);
  EXPECT_EQ(ib.data<float>()[3], static_cast<float>(1 << 20));
}

TEST_P(Ops, CopyBlocks) {
  // A paged cache [blocks, kv heads, block size, head dim]; the copies run in order, so block 1
  // is read (into 4) before it is overwritten (by 2). The CPU backend is the reference.
  const Shape shape{6, 2, 16, 64};
  const std::vector<std::pair<int32_t, int32_t>> copies{{1, 4}, {2, 1}, {3, 3}, {0, 5}};
  Tensor hk = rand(shape), hv = rand(shape);
  KVCacheLayer gpu_layer{up(hk), up(hv)};
  KVCacheLayer cpu_layer{hk.to_dtype(dt()), hv.to_dtype(dt())};
  gpu_->copy_blocks(gpu_layer, copies);
  cpu_->copy_blocks(cpu_layer, copies);
  Tensor gk = gpu_->download_f32(gpu_layer.k), gv = gpu_->download_f32(gpu_layer.v);
  Tensor ck = cpu_layer.k.to_dtype(DType::F32), cv = cpu_layer.v.to_dtype(DType::F32);
  for (int64_t i = 0; i < gk.numel(); ++i) {
    ASSERT_EQ(gk.data<float>()[i], ck.data<float>()[i]) << "K element " << i;
    ASSERT_EQ(gv.data<float>()[i], cv.data<float>()[i]) << "V element " << i;
  }
  // Block 4 now holds what block 1 held at first.
  const int64_t per_block = gk.numel() / 6;
  for (int64_t i = 0; i < per_block; ++i) ASSERT_EQ(gk.data<float>()[4 * per_block + i], hk.data<float>()[per_block + i]);
  EXPECT_THROW(gpu_->copy_blocks(gpu_layer, {{0, 6}}), std::exception);
}

TEST_P(Ops, Embedding) {
  struct C { int64_t V, H, T; };
  for (C c : {C{37, 1, 5}, C{100, 7, 1}, C{1000, 64, 300}, C{513, 2051, 17}, C{50, 2048, 3}}) {
    Tensor table = rand({c.V, c.H});
    std::vector<int32_t> ids(static_cast<size_t>(c.T));
    for (auto& i : ids) i = static_cast<int32_t>(rng_() % c.V);
    Tensor hid = ints(ids);
    Tensor ct = cpu_->prepare_embedding(table), gt = gpu_->prepare_embedding(table);
    Tensor co = nan_host({c.T, c.H}), go = nan_gpu({c.T, c.H});
    cpu_->embedding(co, hid, ct);
    gpu_->embedding(go, gpu_->upload(hid, DType::I32), gt);
    expect_close(go, co, str("embedding V=", c.V, " H=", c.H), 0.01);
  }
}

TEST_P(Ops, Linear) {
  struct C { int64_t N, K; };
  // 9000 and 20000 rows: more than the chip's resident warps, so the decode GEMV walks them in rounds.
  for (C c : {C{3, 1}, C{7, 13}, C{64, 64}, C{384, 256}, C{1000, 333}, C{2048, 2048}, C{257, 4096}, C{96, 40},
              C{9000, 512}, C{20000, 64}}) {
    for (int64_t M : {1, 2, 3, 4, 5, 17, 128, 300}) {
      for (bool with_bias : {false, true}) {
        const float s = 1.0f / std::sqrt(static_cast<float>(c.K));
        Tensor w = rand({c.N, c.K}, -s, s), b = with_bias ? rand({c.N}) : Tensor(), x = rand({M, c.K});
        auto cw = cpu_->prepare_linear(w, b);
        auto gw = gpu_->prepare_linear(w, b);
        Tensor co = nan_host({M, c.N}), go = nan_gpu({M, c.N});
        cpu_->linear(co, x, *cw);
        gpu_->linear(go, up(x), *gw);
        expect_close(go, co,
                     str("linear M=", M, " N=", c.N, " K=", c.K, with_bias ? " bias" : ""));
      }
    }
  }
}

// The fused decode steps: against the CPU backend's composition of the plain ops, and (16-bit
// types, where the GPU fuses them into the skinny product) bit for bit against the GPU's own
// unfused sequence.
TEST_P(Ops, FusedLinearEpilogues) {
  struct C { int64_t N, K; };
  for (C c : {C{64, 64}, C{2048, 2048}, C{6144, 2048}, C{2048, 8192}, C{257, 4096}, C{1000, 333},
              C{12000, 1024}}) {
    for (int64_t M : {1, 2, 4, 5, 17}) {
      const float s = 1.0f / std::sqrt(static_cast<float>(c.K));
      Tensor w = rand({c.N, c.K}, -s, s), b = rand({c.N}), x = rand({M, c.K});
      Tensor res = rand({M, c.N}), other = rand({M, c.N});
      auto cw = cpu_->prepare_linear(w, b);
      auto gw = gpu_->prepare_linear(w, b);
      const std::string where = str(" M=", M, " N=", c.N, " K=", c.K);

      Tensor co = nan_host({M, c.N}), go = nan_gpu({M, c.N}), gref = nan_gpu({M, c.N});
      cpu_->linear_gelu_new(co, x, *cw);
      gpu_->linear_gelu_new(go, up(x), *gw);
      expect_close(go, co, "linear_gelu_new" + where);
      gpu_->linear(gref, up(x), *gw);
      gpu_->gelu_new(gref, gref);

      Tensor cres = Tensor::empty({M, c.N}, DType::F32), cscratch = nan_host({M, c.N});
      std::copy(res.data<float>(), res.data<float>() + res.numel(), cres.data<float>());
      cpu_->linear_add_residual(cres, cscratch, x, *cw, other);
      Tensor gres = up(res), gscratch = nan_gpu({M, c.N}), gother = up(other);
      gpu_->linear_add_residual(gres, gscratch, up(x), *gw, gother);
      expect_close(gres, cres, "linear_add_residual" + where);
      Tensor gres2 = up(res), gscratch2 = nan_gpu({M, c.N});
      gpu_->linear(gscratch2, up(x), *gw);
      gpu_->add(gres2, gres2, gother);
      gpu_->add(gres2, gres2, gscratch2);

      if (dt() != DType::F32) {
        Tensor a = gpu_->download_f32(go), e = gpu_->download_f32(gref);
        Tensor ra = gpu_->download_f32(gres), re = gpu_->download_f32(gres2);
        for (int64_t i = 0; i < a.numel(); ++i) {
          ASSERT_EQ(a.data<float>()[i], e.data<float>()[i]) << "fused gelu differs from unfused" << where << " at " << i;
          ASSERT_EQ(ra.data<float>()[i], re.data<float>()[i]) << "fused residual differs from unfused" << where << " at " << i;
        }
      }
    }
  }
}

// Phi's parallel block input side (LayerNorm, then the QKV and fc1 + GELU products of the one
// normalised row) against the CPU's composition of the plain ops; on the GPU's fused path (16-bit
// types, 1 to 4 rows, rows of up to 48 KiB), also against the GPU's own unfused sequence, within
// one rounding step of the output (the combined rows may split K among warps differently).
TEST_P(Ops, FusedLayerNormQkvMlpUp) {
  struct C { int64_t K, N1, N2; };
  for (C c : {C{2048, 6144, 8192}, C{64, 96, 200}, C{3072, 9216, 1000}, C{512, 33, 77}, C{1000, 48, 64}}) {
    for (int64_t M : {1, 2, 3, 4, 5, 9}) {
      const float s = 1.0f / std::sqrt(static_cast<float>(c.K));
      Tensor hidden = rand({M, c.K}, -2.0f, 2.0f), nw = rand({c.K}, 0.5f, 1.5f), nb = rand({c.K}, -0.5f, 0.5f);
      Tensor w1 = rand({c.N1, c.K}, -s, s), b1 = rand({c.N1}), w2 = rand({c.N2, c.K}, -s, s), b2 = rand({c.N2});
      auto cw1 = cpu_->prepare_linear(w1, b1), cw2 = cpu_->prepare_linear(w2, b2);
      auto gw1 = gpu_->prepare_linear(w1, b1), gw2 = gpu_->prepare_linear(w2, b2);
      Tensor cnw = cpu_->prepare_vector(nw), cnb = cpu_->prepare_vector(nb);
      Tensor gnw = gpu_->prepare_vector(nw), gnb = gpu_->prepare_vector(nb);
      const std::string where = str(" M=", M, " K=", c.K, " N1=", c.N1, " N2=", c.N2);

      Tensor cx = nan_host({M, c.K}), cq = nan_host({M, c.N1}), cu = nan_host({M, c.N2});
      cpu_->layer_norm_qkv_mlp_up(cx, cq, cu, hidden, cnw, cnb, 1e-5f, *cw1, *cw2);
      Tensor gh = up(hidden), gx = nan_gpu({M, c.K}), gq = nan_gpu({M, c.N1}), gu = nan_gpu({M, c.N2});
      gpu_->layer_norm_qkv_mlp_up(gx, gq, gu, gh, gnw, gnb, 1e-5f, *gw1, *gw2);
      expect_close(gq, cq, "layer_norm_qkv_mlp_up qkv" + where);
      expect_close(gu, cu, "layer_norm_qkv_mlp_up up" + where);

      Tensor rx = nan_gpu({M, c.K}), rq = nan_gpu({M, c.N1}), ru = nan_gpu({M, c.N2});
      gpu_->layer_norm(rx, gh, gnw, gnb, 1e-5f);
      gpu_->linear(rq, rx, *gw1);
      gpu_->linear_gelu_new(ru, rx, *gw2);
      for (auto [a, e, what] : {std::tuple{&gq, &rq, "qkv"}, std::tuple{&gu, &ru, "up"}}) {
        Tensor ha = gpu_->download_f32(*a), he = gpu_->download_f32(*e);
        float worst = 0.0f, scale = 0.0f;
        for (int64_t i = 0; i < ha.numel(); ++i) {
          worst = std::max(worst, std::abs(ha.data<float>()[i] - he.data<float>()[i]));
          scale = std::max(scale, std::abs(he.data<float>()[i]));
        }
        // One output rounding of the dtype (2^-10 of the largest value for float16, 2^-7 for
        // bfloat16), twice over for the GELU of a rounded product; float32 runs the same ops.
        const float ulp = dt() == DType::F16 ? 1.0f / 1024 : (dt() == DType::BF16 ? 1.0f / 128 : 1e-5f);
        EXPECT_LE(worst, 2.0f * ulp * scale) << "fused " << what << " vs unfused on the GPU" << where;
      }
    }
  }
}

TEST_P(Ops, Norms) {
  struct C { int64_t rows, H; };
  // Both paths: rows that fit registers (H a multiple of 16 bytes, up to 4 packs a thread) and the rest.
  for (C c : {C{1, 1}, C{3, 7}, C{5, 64}, C{17, 2048}, C{2, 5120}, C{4, 8191}, C{300, 128}, C{2, 32768}, C{3, 12288}}) {
    const std::string where = str(" rows=", c.rows, " H=", c.H);
    Tensor x = rand({c.rows, c.H}, -2.0f, 3.0f), w = rand({c.H}, 0.5f, 1.5f), b = rand({c.H});
    Tensor cw = cpu_->prepare_vector(w), cb = cpu_->prepare_vector(b);
    Tensor gw = gpu_->prepare_vector(w), gb = gpu_->prepare_vector(b);
    Tensor gx = up(x);
    {
      Tensor co = nan_host({c.rows, c.H}), go = nan_gpu({c.rows, c.H});
      cpu_->layer_norm(co, x, cw, cb, 1e-5f);
      gpu_->layer_norm(go, gx, gw, gb, 1e-5f);
      if (c.H > 1) expect_close(go, co, lbl("layer_norm", where));
    }
    {
      Tensor co = nan_host({c.rows, c.H}), go = nan_gpu({c.rows, c.H});
      cpu_->rms_norm(co, x, cw, 1e-6f);
      gpu_->rms_norm(go, gx, gw, 1e-6f);
      expect_close(go, co, lbl("rms_norm", where));
    }
    {
      Tensor res = rand({c.rows, c.H}), cres = res.to_dtype(DType::F32), gres = up(res);
      Tensor co = nan_host({c.rows, c.H}), go = nan_gpu({c.rows, c.H});
      cpu_->add_rms_norm(co, cres, x, cw, 1e-6f);
      gpu_->add_rms_norm(go, gres, gx, gw, 1e-6f);
      expect_close(go, co, lbl("add_rms_norm out", where));
      expect_close(gres, cres, lbl("add_rms_norm residual", where));
    }
  }
  // Per-head weights (groups of weight.numel() features).
  Tensor x = rand({7, 4 * 64}), w = rand({64}, 0.5f, 1.5f);
  Tensor co = nan_host({7, 256}), go = nan_gpu({7, 256});
  cpu_->rms_norm(co, x, cpu_->prepare_vector(w), 1e-6f);
  gpu_->rms_norm(go, up(x), gpu_->prepare_vector(w), 1e-6f);
  expect_close(go, co, "rms_norm per head");
}

TEST_P(Ops, ElementWise) {
  struct C { int64_t rows, cols; };
  for (C c : {C{1, 1}, C{3, 7}, C{5, 64}, C{17, 2048}, C{2, 5121}, C{300, 96}}) {
    const std::string where = str(" ", c.rows, "x", c.cols);
    Tensor a = rand({c.rows, c.cols}, -4.0f, 4.0f), b = rand({c.rows, c.cols});
    Tensor ga = up(a), gb = up(b);
    {
      Tensor co = nan_host({c.rows, c.cols}), go = nan_gpu({c.rows, c.cols});
      cpu_->add(co, a, b);
      gpu_->add(go, ga, gb);
      expect_close(go, co, lbl("add", where));
      Tensor ca = a.to_dtype(DType::F32), ga2 = up(a);
      cpu_->add(ca, ca, b);
      gpu_->add(ga2, ga2, gb);
      expect_close(ga2, ca, lbl("add in place", where));
    }
    {
      Tensor co = nan_host({c.rows, c.cols}), go = nan_gpu({c.rows, c.cols});
      cpu_->gelu_new(co, a);
      gpu_->gelu_new(go, ga);
      expect_close(go, co, lbl("gelu_new", where));
      Tensor ca = a.to_dtype(DType::F32), ga2 = up(a);
      cpu_->gelu_new(ca, ca);
      gpu_->gelu_new(ga2, ga2);
      expect_close(ga2, ca, lbl("gelu_new in place", where));
    }
    {
      Tensor gu = rand({c.rows, 2 * c.cols}, -4.0f, 4.0f);
      Tensor co = nan_host({c.rows, c.cols}), go = nan_gpu({c.rows, c.cols});
      cpu_->silu_and_mul(co, gu);
      gpu_->silu_and_mul(go, up(gu));
      expect_close(go, co, lbl("silu_and_mul", where));
      Tensor co2 = nan_host({c.rows, c.cols}), go2 = nan_gpu({c.rows, c.cols});
      cpu_->gelu_tanh_and_mul(co2, gu);
      gpu_->gelu_tanh_and_mul(go2, up(gu));
      expect_close(go2, co2, lbl("gelu_tanh_and_mul", where));
    }
    {
      // Gemma's embedding normalizer and final logit soft-cap, in place; caps that bend the values
      // strongly (2) and barely (30, Gemma 2's).
      Tensor ca = a.to_dtype(DType::F32), ga2 = up(a);
      cpu_->scale(ca, 11.5f);
      gpu_->scale(ga2, 11.5f);
      expect_close(ga2, ca, lbl("scale", where));
      for (float cap : {2.0f, 30.0f}) {
        Tensor gb2 = up(ca), cb = gpu_->download_f32(gb2);  // the same (rounded) input on both sides
        cpu_->softcap(cb, cap);
        gpu_->softcap(gb2, cap);
        expect_close(gb2, cb, lbl(str("softcap ", cap).c_str(), where));
      }
    }
    {
      std::vector<int32_t> rows;
      for (int64_t r = 0; r < c.rows; r += 2) rows.push_back(static_cast<int32_t>(c.rows - 1 - r));
      Tensor hr = ints(rows);
      const int64_t R = static_cast<int64_t>(rows.size());
      Tensor co = nan_host({R, c.cols}), go = nan_gpu({R, c.cols});
      cpu_->gather_rows(co, a, hr);
      gpu_->gather_rows(go, ga, gpu_->upload(hr, DType::I32));
      expect_close(go, co, lbl("gather_rows", where), 0.01);
    }
  }
}

TEST_P(Ops, RotaryAndQkNorm) {
  struct C { int64_t nh, nkv, hd, rot; };
  for (C c : {C{2, 2, 64, 64}, C{4, 2, 64, 32}, C{8, 1, 128, 128}, C{3, 1, 32, 16}, C{5, 5, 80, 40}, C{32, 32, 64, 32},
              C{2, 1, 256, 256}}) {
    const std::string where = str(" nh=", c.nh, " nkv=", c.nkv, " hd=", c.hd, " rot=", c.rot);
    AttentionShape s{c.nh, c.nkv, c.hd};
    const int64_t T = 37;
    Tensor qkv = rand({T, s.qkv_width()}, -2.0f, 2.0f);
    std::vector<int32_t> pos(T);
    for (auto& p : pos) p = static_cast<int32_t>(rng_() % 4096);
    pos[0] = 0;
    Tensor hp = ints(pos);
    std::vector<float> inv(static_cast<size_t>(c.rot / 2));
    for (size_t i = 0; i < inv.size(); ++i)
      inv[i] = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(c.rot)) * (i % 3 == 0 ? 0.25f : 1.0f);
    Tensor hinv = Tensor::from_floats(inv, {static_cast<int64_t>(inv.size())});
    RotaryEmbedding crope{c.rot, cpu_->upload(hinv, DType::F32)}, grope{c.rot, gpu_->upload(hinv, DType::F32)};
    Tensor cq = qkv.to_dtype(DType::F32), gq = up(qkv);
    cpu_->rotary(cq, hp, crope, s);
    gpu_->rotary(gq, gpu_->upload(hp, DType::I32), grope, s);
    expect_close(gq, cq, lbl("rotary", where));

    Tensor qw = rand({c.hd}, 0.5f, 1.5f), kw = rand({c.hd}, 0.5f, 1.5f);
    Tensor cq2 = qkv.to_dtype(DType::F32), gq2 = up(qkv);
    cpu_->qk_rms_norm(cq2, cpu_->prepare_vector(qw), cpu_->prepare_vector(kw), s, 1e-6f);
    gpu_->qk_rms_norm(gq2, gpu_->prepare_vector(qw), gpu_->prepare_vector(kw), s, 1e-6f);
    expect_close(gq2, cq2, lbl("qk_rms_norm", where));
  }
}

// ---------------------------------------------------------------------------------------------
// FP8 linear layers (CudaBackend::prepare_fp8_linear): e4m3 weights with per-tensor, per-channel
// or block scales, fused parts with scales of their own, against a host reference of the same
// math in float64: the dequantized weights (quantize_fp8 then dequantize_fp8, the CPU's weights)
// times the activations as the path taken reads them: as they are (the skinny FP8 product, the
// W8A16 fallback), or quantized per token to e4m3 (cuBLASLt's FP8 product: the reference quantizes
// each row with quantize_fp8, the formulas quantize_rows_e4m3 runs). Each case also checks which
// path ran, so that a shape meant for FP8 tensor cores cannot quietly take the fallback.

using Fp8Path = CudaBackend::Fp8LinearPath;

const char* path_name(Fp8Path p) {
  switch (p) {
    case Fp8Path::kNone: return "none";
    case Fp8Path::kGemv: return "skinny FP8 product";
    case Fp8Path::kFp8Gemm: return "FP8 tensor-core product";
    case Fp8Path::kDequantizedGemm: return "dequantized (W8A16) product";
  }
  return "?";
}

Fp8WeightLayout per_tensor() { return Fp8WeightLayout{}; }
Fp8WeightLayout per_channel() { return Fp8WeightLayout{Fp8ScaleLayout::kPerChannel}; }
Fp8WeightLayout blocks(int64_t rows, int64_t cols) { return Fp8WeightLayout{Fp8ScaleLayout::kBlock, rows, cols}; }

// The parts of one FP8 layer and the weights they stand for.
struct Fp8Layer {
  std::vector<Fp8Matrix> parts;
  Tensor dequantized;  // F32 [N, K]: each part's e4m3 values times its scales
  int64_t N = 0, K = 0;
};

struct Fp8Case {
  std::vector<int64_t> rows;  // the fused parts' rows (q, k, v; gate, up; or one)
  int64_t K;
  std::vector<Fp8WeightLayout> layouts;  // one a part
  std::vector<int64_t> Ms;
  std::string label() const {
    std::ostringstream o;
    o << "rows=";
    for (size_t p = 0; p < rows.size(); ++p) o << (p ? "+" : "") << rows[p];
    o << " K=" << K << " [";
    for (size_t p = 0; p < layouts.size(); ++p) {
      const Fp8WeightLayout& l = layouts[p];
      o << (p ? "," : "")
        << (l.scales == Fp8ScaleLayout::kPerTensor ? std::string("tensor")
            : l.scales == Fp8ScaleLayout::kPerChannel ? std::string("channel")
                                                      : str("block", l.block_rows, "x", l.block_cols));
    }
    o << "]";
    return o.str();
  }
};

class Fp8Ops : public Ops {
 protected:
  // Random parts quantized as a checkpoint would be (quantize_fp8): each part of its own magnitude
  // (so fused per-tensor parts have different scales) and rows of different magnitudes (so that
  // channel and block scales differ too).
  Fp8Layer layer(const Fp8Case& c) {
    Fp8Layer L;
    L.K = c.K;
    for (int64_t r : c.rows) L.N += r;
    L.dequantized = Tensor::empty({L.N, c.K}, DType::F32);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    int64_t at = 0;
    for (size_t p = 0; p < c.rows.size(); ++p) {
      const float magnitude = static_cast<float>(p + 1) / std::sqrt(static_cast<float>(c.K));
      Tensor w = Tensor::empty({c.rows[p], c.K}, DType::F32);
      for (int64_t r = 0; r < c.rows[p]; ++r)
        for (int64_t k = 0; k < c.K; ++k)
          w.data<float>()[r * c.K + k] = u(rng_) * magnitude * (1.0f + static_cast<float>(r % 7) / 3.0f);
      Fp8Quantized q = quantize_fp8(w, c.layouts[p]);
      const Tensor d = dequantize_fp8(q.weight, Float8Format::kE4M3, q.scale, c.layouts[p], "test scale");
      std::copy(d.data<float>(), d.data<float>() + d.numel(), L.dequantized.data<float>() + at * c.K);
      L.parts.push_back(Fp8Matrix{q.weight, q.scale, c.layouts[p]});
      at += c.rows[p];
    }
    return L;
  }

  // out[m, n] = sum_k a[m, k] * w[n, k] + bias[n] in float64, a being x or (quantized) each row of
  // x as e4m3 values times its per-token scale.
  static Tensor reference(const Tensor& x, const Tensor& w, const Tensor& bias, bool quantized_activations) {
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    Tensor out = Tensor::empty({M, N}, DType::F32);
    std::vector<double> a(static_cast<size_t>(K));
    for (int64_t m = 0; m < M; ++m) {
      if (quantized_activations) {
        const Fp8Quantized q = quantize_fp8(x.slice_rows(m, m + 1), Fp8WeightLayout{});
        const double s = q.scale.data<float>()[0];
        for (int64_t k = 0; k < K; ++k) a[static_cast<size_t>(k)] = s * e4m3_to_f32(q.weight.data<uint8_t>()[k]);
      } else {
        for (int64_t k = 0; k < K; ++k) a[static_cast<size_t>(k)] = x.data<float>()[m * K + k];
      }
      for (int64_t n = 0; n < N; ++n) {
        double acc = bias.defined() ? bias.data<float>()[n] : 0.0;
        const float* wr = w.data<float>() + n * K;
        for (int64_t k = 0; k < K; ++k) acc += a[static_cast<size_t>(k)] * wr[k];
        out.data<float>()[m * N + n] = static_cast<float>(acc);
      }
    }
    return out;
  }

  // expect_close row by row: each row's error against that row's largest reference value, so that
  // a row of large activations does not loosen the check of the others (per-token scales).
  void expect_rows_close(const Tensor& gpu_t, const Tensor& ref, const std::string& where) {
    const Tensor g = gpu_->download_f32(gpu_t);
    for (int64_t m = 0; m < ref.size(0); ++m)
      expect_close_host(g.slice_rows(m, m + 1), ref.slice_rows(m, m + 1), str(where, " row ", m));
  }

  // The paths linear() may take: the skinny product for up to 8 rows (K % 16 == 0, blocks a power
  // of two 16-weight chunks wide); beyond, FP8 tensor cores for per-row scales (K and N multiples
  // of 16: cuBLASLt's FP8 products want 16-byte aligned rows; another N may take either way), the
  // W8A16 fallback for blocks and the rest.
  static std::vector<Fp8Path> expected_paths(const Fp8Case& c, int64_t M) {
    bool has_blocks = false, pow2_chunks = true;
    for (const auto& l : c.layouts)
      if (l.scales == Fp8ScaleLayout::kBlock) {
        has_blocks = true;
        const int64_t chunks = l.block_cols / 16;
        pow2_chunks = pow2_chunks && l.block_cols % 16 == 0 && (chunks & (chunks - 1)) == 0;
      }
    int64_t N = 0;
    for (int64_t r : c.rows) N += r;
    if (M <= 8 && c.K % 16 == 0 && (!has_blocks || pow2_chunks)) return {Fp8Path::kGemv};
    if (!has_blocks && c.K % 16 == 0)
      return N % 16 == 0 ? std::vector<Fp8Path>{Fp8Path::kFp8Gemm}
                         : std::vector<Fp8Path>{Fp8Path::kFp8Gemm, Fp8Path::kDequantizedGemm};
    return {Fp8Path::kDequantizedGemm};
  }

  // Runs one case at every M, with and without a bias.
  void check_case(const Fp8Case& c) {
    const Fp8Layer L = layer(c);
    for (bool with_bias : {false, true}) {
      const Tensor bias = with_bias ? rand({L.N}, -0.5f, 0.5f) : Tensor();
      auto gw = gpu_->prepare_fp8_linear(L.parts, bias);
      ASSERT_EQ(gw->out_features(), L.N);
      ASSERT_EQ(gw->in_features(), L.K);
      for (int64_t M : c.Ms) {
        Tensor x = rand({M, L.K}, -2.0f, 2.0f);
        // A row of zeros (its scale is 1 and its codes are 0) and a row of large values.
        if (M > 3) std::fill(x.data<float>() + 3 * L.K, x.data<float>() + 4 * L.K, 0.0f);
        if (M > 4)
          for (int64_t k = 0; k < L.K; ++k) x.data<float>()[4 * L.K + k] = round_to(x.data<float>()[4 * L.K + k] * 300.0f, dt());
        Tensor go = nan_gpu({M, L.N});
        gpu_->linear(go, up(x), *gw);
        const std::string where = str("fp8 linear ", c.label(), " M=", M, with_bias ? " bias" : "");
        const Fp8Path path = gpu_->last_fp8_linear_path();
        if (dt() == DType::F32) {
          // float32 compute keeps the dequantized weights and the float32 product.
          EXPECT_EQ(path, Fp8Path::kNone) << where;
          expect_rows_close(go, reference(x, L.dequantized, bias, false), where);
          continue;
        }
        const std::vector<Fp8Path> expected = expected_paths(c, M);
        EXPECT_NE(std::find(expected.begin(), expected.end(), path), expected.end())
            << where << ": took the " << path_name(path) << ", expected the " << path_name(expected[0]);
        expect_rows_close(go, reference(x, L.dequantized, bias, path == Fp8Path::kFp8Gemm), lbl(path_name(path), " " + where));
      }
    }
  }
};

TEST_P(Fp8Ops, PerTensorAndPerChannel) {
  const std::vector<int64_t> all_m{1, 2, 7, 8, 9, 64, 300};
  for (const Fp8Case& c : {
           Fp8Case{{1008}, 336, {per_tensor()}, all_m},
           Fp8Case{{1008}, 1024, {per_channel()}, all_m},
           // q, k and v with three per-tensor scales: one scale per output row on the GPU.
           Fp8Case{{208, 64, 64}, 512, {per_tensor(), per_tensor(), per_tensor()}, all_m},
           // gate and up, per channel; a per-tensor part beside a per-channel one.
           Fp8Case{{688, 688}, 256, {per_channel(), per_channel()}, all_m},
           Fp8Case{{96, 96}, 160, {per_tensor(), per_channel()}, all_m},
           // More rows than the chip's resident warps (the skinny product walks them in rounds),
           // and a projection of a real model's proportions.
           Fp8Case{{9008}, 512, {per_channel()}, {1, 5, 8, 16}},
           Fp8Case{{2048, 512, 512}, 2048, {per_tensor(), per_tensor(), per_tensor()}, {1, 4, 8, 64}},
       })
    check_case(c);
}

TEST_P(Fp8Ops, BlockScales) {
  const std::vector<int64_t> all_m{1, 2, 7, 8, 9, 64, 300};
  for (const Fp8Case& c : {
           // Ragged last block row and column (300 = 2 x 128 + 44, 400 = 3 x 128 + 16).
           Fp8Case{{300}, 400, {blocks(128, 128)}, all_m},
           // Fused parts whose rows are not whole blocks: each keeps its own grid rows.
           Fp8Case{{200, 72, 72}, 384, {blocks(128, 128), blocks(128, 128), blocks(128, 128)}, all_m},
           // Small blocks (two 16-weight chunks wide); a per-tensor part beside block parts.
           Fp8Case{{100, 60}, 208, {blocks(16, 32), per_tensor()}, all_m},
           // Blocks 48 wide (three chunks): no skinny product, the W8A16 fallback at every M.
           Fp8Case{{64}, 96, {blocks(32, 48)}, {1, 8, 9}},
       })
    check_case(c);
}

// K not a multiple of 16: neither FP8 product takes it (16-byte rows), the fallback does.
TEST_P(Fp8Ops, InputWidthNotAMultipleOf16) {
  check_case(Fp8Case{{72}, 40, {per_tensor()}, {1, 8, 9, 33}});
  check_case(Fp8Case{{48, 24}, 200, {per_channel(), per_channel()}, {2, 17}});
}

// An output width cuBLASLt's FP8 product may not take (333 columns of 16-bit output: rows of 666
// bytes; also the per-tensor q, k, v below, 344 rows): whichever product runs matches its
// reference, and the test says which ran.
TEST_P(Fp8Ops, OddOutputWidth) {
  check_case(Fp8Case{{200, 72, 72}, 512, {per_tensor(), per_tensor(), per_tensor()}, {1, 9, 64}});
  const Fp8Case c{{333}, 336, {per_tensor()}, {1, 9, 64}};
  const Fp8Layer L = layer(c);
  const Tensor bias = rand({L.N});
  auto gw = gpu_->prepare_fp8_linear(L.parts, bias);
  for (int64_t M : c.Ms) {
    Tensor x = rand({M, L.K}, -2.0f, 2.0f), go = nan_gpu({M, L.N});
    gpu_->linear(go, up(x), *gw);
    const Fp8Path path = gpu_->last_fp8_linear_path();
    if (dt() != DType::F32 && M <= 8) {
      EXPECT_EQ(path, Fp8Path::kGemv) << "M=" << M;
    }
    if (dt() != DType::F32 && M > 8) {
      EXPECT_TRUE(path == Fp8Path::kFp8Gemm || path == Fp8Path::kDequantizedGemm) << path_name(path);
    }
    std::printf("[ fp8      ] %s N=333 M=%lld: %s\n", dname(dt()).c_str(), static_cast<long long>(M), path_name(path));
    expect_rows_close(go, reference(x, L.dequantized, bias, path == Fp8Path::kFp8Gemm), str("odd N M=", M));
  }
}

// With an identity weight every output is one activation, exactly: the skinny product gives x
// itself, the FP8 product x's per-token e4m3 value times its scale (quantize_fp8's bytes: round to
// nearest even, saturation at 448, an all-zero row's scale 1), each within one rounding of the
// output dtype. The sums of the other tests would hide an activation rounded the wrong way.
TEST_P(Fp8Ops, IdentityWeightShowsTheActivationsTheProductRead) {
  if (dt() == DType::F32) GTEST_SKIP() << "float32 compute dequantizes FP8 weights";
  const int64_t K = 256;
  Tensor eye = Tensor::empty({K, K}, DType::F32);
  std::fill(eye.data<float>(), eye.data<float>() + eye.numel(), 0.0f);
  for (int64_t k = 0; k < K; ++k) eye.data<float>()[k * K + k] = 1.0f;
  Fp8Quantized q = quantize_fp8(eye, Fp8WeightLayout{});
  auto gw = gpu_->prepare_fp8_linear({Fp8Matrix{q.weight, q.scale, Fp8WeightLayout{}}}, Tensor());
  const float ulp = dt() == DType::F16 ? 1.0f / 1024 : 1.0f / 128;
  for (int64_t M : {1, 8, 64}) {
    // Values over many binades, ties of e4m3 rounding among them, a zero row.
    Tensor x = rand({M, K}, -1.0f, 1.0f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = round_to(x.data<float>()[i] * std::ldexp(1.0f, static_cast<int>(i % 13) - 6), dt());
    if (M > 2) std::fill(x.data<float>() + 2 * K, x.data<float>() + 3 * K, 0.0f);
    Tensor go = nan_gpu({M, K});
    gpu_->linear(go, up(x), *gw);
    const Fp8Path path = gpu_->last_fp8_linear_path();
    const Tensor ref = reference(x, eye, Tensor(), path == Fp8Path::kFp8Gemm);
    const Tensor g = gpu_->download_f32(go);
    for (int64_t i = 0; i < g.numel(); ++i) {
      const float want = ref.data<float>()[i], got = g.data<float>()[i];
      // One rounding of the output, relative; fp16's subnormal spacing absolute.
      ASSERT_LE(std::fabs(got - want), ulp * std::fabs(want) + 6e-8f)
          << path_name(path) << " M=" << M << " element " << i << ": got " << got << ", want " << want << " (x "
          << x.data<float>()[i] << ")";
    }
  }
}

// An FP8 weight holds half the bytes of the same weight in 16 bits (plus its scales).
TEST_P(Fp8Ops, DeviceBytesAreHalfOfSixteenBit) {
  if (dt() == DType::F32) GTEST_SKIP() << "float32 compute dequantizes FP8 weights";
  for (const Fp8Case& c : {Fp8Case{{4096}, 4096, {per_tensor()}, {}}, Fp8Case{{4096, 1024, 1024}, 4096, {per_channel(), per_channel(), per_channel()}, {}},
                           Fp8Case{{4096}, 4096, {blocks(128, 128)}, {}}}) {
    const Fp8Layer L = layer(c);
    auto fp8 = gpu_->prepare_fp8_linear(L.parts, Tensor());
    auto plain = gpu_->prepare_linear(L.dequantized, Tensor());
    const double ratio = static_cast<double>(fp8->bytes()) / static_cast<double>(plain->bytes());
    EXPECT_GE(ratio, 0.5) << c.label();
    EXPECT_LE(ratio, 0.51) << c.label() << ": " << fp8->bytes() << " bytes against " << plain->bytes();
  }
}

// The fused decode steps on FP8 weights: for up to 8 rows the skinny FP8 product with the epilogue
// (bit for bit the unfused sequence on the GPU), beyond that the plain ops; Phi's fused norm and
// two products take the separate steps.
TEST_P(Fp8Ops, FusedDecodeSteps) {
  if (dt() == DType::F32) GTEST_SKIP() << "float32 compute dequantizes FP8 weights";
  for (const Fp8Case& c : {Fp8Case{{512}, 256, {per_channel()}, {1, 3, 8, 17}}, Fp8Case{{300}, 400, {blocks(128, 128)}, {1, 5, 9}}}) {
    const Fp8Layer L = layer(c);
    const Tensor b = rand({L.N}, -0.5f, 0.5f);
    auto gw = gpu_->prepare_fp8_linear(L.parts, b);
    for (int64_t M : c.Ms) {
      const std::string where = str(c.label(), " M=", M);
      Tensor x = up(rand({M, L.K})), res = rand({M, L.N}), other = up(rand({M, L.N}));
      Tensor fused = nan_gpu({M, L.N}), unfused = nan_gpu({M, L.N});
      gpu_->linear_gelu_new(fused, x, *gw);
      gpu_->linear(unfused, x, *gw);
      gpu_->gelu_new(unfused, unfused);
      Tensor fres = up(res), scratch = nan_gpu({M, L.N}), ures = up(res), uscratch = nan_gpu({M, L.N});
      gpu_->linear_add_residual(fres, scratch, x, *gw, other);
      gpu_->linear(uscratch, x, *gw);
      gpu_->add(ures, ures, other);
      gpu_->add(ures, ures, uscratch);
      for (auto [a, e, what] : {std::tuple{&fused, &unfused, "gelu"}, std::tuple{&fres, &ures, "residual"}}) {
        const Tensor ha = gpu_->download_f32(*a), he = gpu_->download_f32(*e);
        for (int64_t i = 0; i < ha.numel(); ++i) {
          ASSERT_TRUE(std::isfinite(ha.data<float>()[i])) << what << " " << where << " at " << i;
          ASSERT_EQ(ha.data<float>()[i], he.data<float>()[i]) << "fused " << what << " differs from unfused, " << where << " at " << i;
        }
      }
    }
  }
  // layer_norm_qkv_mlp_up with FP8 weights: the norm, then the two products.
  const Fp8Layer q = layer(Fp8Case{{96, 32, 32}, 128, {per_tensor(), per_tensor(), per_tensor()}, {}});
  const Fp8Layer u = layer(Fp8Case{{256}, 128, {per_channel()}, {}});
  auto wq = gpu_->prepare_fp8_linear(q.parts, rand({q.N})), wu = gpu_->prepare_fp8_linear(u.parts, rand({u.N}));
  Tensor nw = gpu_->prepare_vector(rand({128}, 0.5f, 1.5f)), nb = gpu_->prepare_vector(rand({128}));
  for (int64_t M : {1, 3, 12}) {
    Tensor h = up(rand({M, 128}, -2.0f, 2.0f));
    Tensor x = nan_gpu({M, 128}), oq = nan_gpu({M, q.N}), ou = nan_gpu({M, u.N});
    gpu_->layer_norm_qkv_mlp_up(x, oq, ou, h, nw, nb, 1e-5f, *wq, *wu);
    Tensor rx = nan_gpu({M, 128}), rq = nan_gpu({M, q.N}), ru = nan_gpu({M, u.N});
    gpu_->layer_norm(rx, h, nw, nb, 1e-5f);
    gpu_->linear(rq, rx, *wq);
    gpu_->linear_gelu_new(ru, rx, *wu);
    for (auto [a, e] : {std::pair{&oq, &rq}, std::pair{&ou, &ru}}) {
      const Tensor ha = gpu_->download_f32(*a), he = gpu_->download_f32(*e);
      for (int64_t i = 0; i < ha.numel(); ++i) ASSERT_EQ(ha.data<float>()[i], he.data<float>()[i]) << "M=" << M << " at " << i;
    }
  }
}

// One attention step: sequences with `ctx` cached tokens and `q` new ones.
struct SeqSpec {
  int64_t ctx, q;
};

// Where the layer's K/V are in the step's KV cache groups.
struct GroupSpec {
  // The layer reads KV cache group 1 (ForwardInputs::more_kv_groups); group 0 holds a decoy: valid
  // blocks elsewhere in a wider table, with slots there, so that reading or writing through group
  // 0's tables or slots fails the comparison.
  bool second_group = false;
  // With a sliding window, the blocks wholly before the window of a sequence's first new token are
  // kNoBlock, as KVCacheManager leaves them (false: real blocks that hold NaN, which any read
  // spreads into the output). Either way the positions before that window in its first block
  // hold NaN, so a kernel that reads a key outside its window fails.
  bool passed_no_block = true;
};

class AttentionOps : public Ops {
 protected:
  // s.sinks, when defined, is a host tensor (the CPU's); the GPU gets it through prepare_vector.
  void run(const AttentionShape& s, int64_t bs, const std::vector<SeqSpec>& seqs, const std::string& label,
           GroupSpec gs = {}) {
    const int64_t S = static_cast<int64_t>(seqs.size()), W = s.sliding_window;
    const int64_t nkv = s.num_kv_heads, hd = s.head_dim;
    // The first key position any of the sequence's new tokens sees: the window of the first one.
    auto window_start = [&](const SeqSpec& q) { return W > 0 ? std::max<int64_t>(0, q.ctx + 1 - W) : 0; };
    int64_t T = 0, max_blocks = 1, total_blocks = 0, max_q = 0, max_len = 0;
    for (const auto& q : seqs) {
      T += q.q;
      const int64_t nb = (q.ctx + q.q + bs - 1) / bs;
      max_blocks = std::max(max_blocks, nb);
      total_blocks += nb - (gs.passed_no_block ? window_start(q) / bs : 0);
      max_q = std::max(max_q, q.q);
      max_len = std::max(max_len, q.ctx + q.q);
    }
    const int64_t num_blocks = total_blocks + 3;
    std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng_);

    Tensor tables = Tensor::zeros({S, max_blocks}, DType::I32), slots = Tensor::empty({T}, DType::I64);
    std::vector<int32_t> qsl(static_cast<size_t>(S) + 1), lens(static_cast<size_t>(S)), pos(static_cast<size_t>(T));
    std::vector<std::pair<int64_t, int64_t>> poisoned;  // (block, offset) of K/V rows set to NaN
    size_t next = 0;
    int64_t t = 0;
    for (int64_t i = 0; i < S; ++i) {
      const auto& q = seqs[static_cast<size_t>(i)];
      const int64_t nb = (q.ctx + q.q + bs - 1) / bs, first = window_start(q);
      int32_t* row = tables.data<int32_t>() + i * max_blocks;
      for (int64_t b = 0; b < nb; ++b) {
        const bool passed = b < first / bs;
        row[b] = passed && gs.passed_no_block ? kNoBlock : perm[next++];
        for (int64_t o = 0; o < bs && b * bs + o < first; ++o)
          if (row[b] != kNoBlock) poisoned.emplace_back(row[b], o);
      }
      qsl[static_cast<size_t>(i)] = static_cast<int32_t>(t);
      lens[static_cast<size_t>(i)] = static_cast<int32_t>(q.ctx + q.q);
      for (int64_t p = q.ctx; p < q.ctx + q.q; ++p, ++t) {
        pos[static_cast<size_t>(t)] = static_cast<int32_t>(p);
        slots.data<int64_t>()[t] = static_cast<int64_t>(row[p / bs]) * bs + p % bs;
      }
    }
    qsl[static_cast<size_t>(S)] = static_cast<int32_t>(T);
    // Group 0's decoy (second_group): any valid blocks, one more column, and slots through them.
    const int64_t decoy_blocks = max_blocks + 1;
    Tensor decoy_tables = Tensor::empty({S, decoy_blocks}, DType::I32), decoy_slots = Tensor::empty({T}, DType::I64);
    std::uniform_int_distribution<int32_t> any_block(0, static_cast<int32_t>(num_blocks - 1));
    for (int64_t i = 0; i < S * decoy_blocks; ++i) decoy_tables.data<int32_t>()[i] = any_block(rng_);
    for (int64_t i = 0, tt = 0; i < S; ++i)
      for (int64_t p = seqs[static_cast<size_t>(i)].ctx; p < lens[static_cast<size_t>(i)]; ++p, ++tt)
        decoy_slots.data<int64_t>()[tt] = static_cast<int64_t>(decoy_tables.data<int32_t>()[i * decoy_blocks + p / bs]) * bs + p % bs;

    auto inputs = [&](Backend& b, bool device) {
      ForwardInputs in;
      in.num_tokens = T;
      in.num_seqs = S;
      in.max_query_len = max_q;
      in.max_seq_len = max_len;
      in.block_size = bs;
      auto put = [&](const Tensor& h, DType d) { return device ? b.upload(h, d) : h; };
      in.positions = put(ints(pos), DType::I32);
      in.query_start_loc = put(ints(qsl), DType::I32);
      in.seq_lens = put(ints(lens), DType::I32);
      in.host_query_start_loc = qsl;
      in.host_seq_lens = lens;
      if (gs.second_group) {
        in.max_blocks_per_seq = decoy_blocks;
        in.slot_mapping = put(decoy_slots, DType::I64);
        in.block_tables = put(decoy_tables, DType::I32);
        in.more_kv_groups.push_back({put(slots, DType::I64), put(tables, DType::I32), max_blocks});
      } else {
        in.max_blocks_per_seq = max_blocks;
        in.slot_mapping = put(slots, DType::I64);
        in.block_tables = put(tables, DType::I32);
      }
      return in;
    };
    ForwardInputs cin = inputs(*cpu_, false), gin = inputs(*gpu_, true);

    // Both caches start from the same random contents (values exact in float16 and bfloat16), NaN
    // where no query may look.
    const Shape cshape{num_blocks, nkv, bs, hd};
    Tensor k0 = rand(cshape, -1.0f, 1.0f, true), v0 = rand(cshape, -1.0f, 1.0f, true);
    for (const auto& [block, off] : poisoned)
      for (int64_t g = 0; g < nkv; ++g) {
        const int64_t at = ((block * nkv + g) * bs + off) * hd;
        std::fill(k0.data<float>() + at, k0.data<float>() + at + hd, NAN);
        std::fill(v0.data<float>() + at, v0.data<float>() + at + hd, NAN);
      }
    const int group = gs.second_group ? 1 : 0;
    // An FP8 KV cache (gpu_->use_fp8_kv_cache()): the GPU's cache gets the e4m3 bytes of k0 / k_scale
    // (v0 / v_scale), the CPU's what they decode to times the scale, so both hold the same numbers.
    const bool fp8 = gpu_->fp8_kv_cache();
    Tensor kb, vb;
    if (fp8) {
      kb = to_e4m3(k0, fp8_k_scale_);
      vb = to_e4m3(v0, fp8_v_scale_);
      k0 = from_e4m3(kb, fp8_k_scale_);
      v0 = from_e4m3(vb, fp8_v_scale_);
    }
    KVCacheLayer ccache{k0.to_dtype(cpu_->kv_cache_dtype()), v0.to_dtype(cpu_->kv_cache_dtype()), group};
    KVCacheLayer gcache{fp8 ? gpu_->upload(kb, DType::U8) : up(k0), fp8 ? gpu_->upload(vb, DType::U8) : up(v0), group};
    if (fp8) {
      gcache.k_scale = fp8_k_scale_;
      gcache.v_scale = fp8_v_scale_;
    }
    AttentionShape gshape = s;
    if (s.sinks.defined()) gshape.sinks = gpu_->prepare_vector(s.sinks);
    gpu_->check_attention(gshape);
    Tensor qkv = rand({T, s.qkv_width()}, -2.0f, 2.0f, true);
    if (fp8) {  // the step's own K/V too: values the GPU's quantization keeps exactly
      const int64_t k_begin = s.num_heads * hd, v_begin = k_begin + nkv * hd, end = v_begin + nkv * hd;
      for (int64_t r = 0; r < T; ++r)
        for (int64_t c = k_begin; c < end; ++c) {
          float& x = qkv.data<float>()[r * s.qkv_width() + c];
          const float sc = c < v_begin ? fp8_k_scale_ : fp8_v_scale_;
          x = e4m3_to_f32(f32_to_e4m3(x / sc)) * sc;
        }
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Tensor co = nan_host({T, s.num_heads * hd}), go = nan_gpu({T, s.num_heads * hd});
    cpu_->attention(co, qkv, ccache, cin, s, scale);
    gpu_->attention(go, up(qkv), gcache, gin, gshape, scale);
    const std::string where =
        str(label, " nh=", s.num_heads, " nkv=", nkv, " hd=", hd, " bs=", bs, W > 0 ? str(" window=", W) : "",
            s.logit_softcap > 0 ? str(" softcap=", s.logit_softcap) : "", s.sinks.defined() ? " sinks" : "",
            gs.second_group ? " group=1" : "", W > 0 && !gs.passed_no_block ? " passed=NaN blocks" : "",
            fp8 ? str(" fp8 kv k_scale=", fp8_k_scale_, " v_scale=", fp8_v_scale_) : "");
    expect_close(go, co, lbl("attention ", where));
    if (fp8) {  // the bytes decoded (the CPU's cache holds the same values, NaN where poisoned)
      expect_close_host(from_e4m3(bytes(gcache.k), fp8_k_scale_), ccache.k, lbl("K cache ", where), 0.01);
      expect_close_host(from_e4m3(bytes(gcache.v), fp8_v_scale_), ccache.v, lbl("V cache ", where), 0.01);
    } else {
      expect_close(gcache.k, ccache.k, lbl("K cache ", where), 0.01);
      expect_close(gcache.v, ccache.v, lbl("V cache ", where), 0.01);
    }
  }

  // Host float32 -> e4m3 bytes of x / scale (U8), and back (times the scale).
  static Tensor to_e4m3(const Tensor& x, float scale) {
    Tensor b = Tensor::empty(x.shape(), DType::U8);
    for (int64_t i = 0; i < x.numel(); ++i) b.data<uint8_t>()[i] = f32_to_e4m3(x.data<float>()[i] / scale);
    return b;
  }
  static Tensor from_e4m3(const Tensor& b, float scale) {
    Tensor x = Tensor::empty(b.shape(), DType::F32);
    for (int64_t i = 0; i < b.numel(); ++i) x.data<float>()[i] = e4m3_to_f32(b.data<uint8_t>()[i]) * scale;
    return x;
  }
  // A U8 device tensor's bytes on the host.
  Tensor bytes(const Tensor& dev) {
    Tensor f = gpu_->download_f32(dev);
    Tensor b = Tensor::empty(dev.shape(), DType::U8);
    for (int64_t i = 0; i < f.numel(); ++i) b.data<uint8_t>()[i] = static_cast<uint8_t>(f.data<float>()[i]);
    return b;
  }
  // The FP8 KV cache's scales for the next runs. Powers of two in 16-bit compute: e4m3 * scale is
  // then a float16 and a bfloat16 value (the CPU's 16-bit cache is bfloat16), so the CPU holds
  // exactly what the GPU decodes; any scale in float32.
  float fp8_k_scale_ = 1.0f, fp8_v_scale_ = 1.0f;

  // [n] float32 sink logits in [lo, hi) (host).
  Tensor sinks(int64_t n, float lo, float hi) { return rand({n}, lo, hi); }
};

TEST_P(AttentionOps, DecodePrefillMixed) {
  struct H { int64_t nh, nkv, hd; };
  for (H h : {H{2, 2, 64}, H{4, 1, 64}, H{8, 2, 128}, H{6, 2, 64}, H{12, 2, 128}, H{16, 1, 64}, H{2, 1, 32}, H{3, 3, 80},
              H{4, 2, 256}}) {
    AttentionShape s{h.nh, h.nkv, h.hd};
    for (int64_t bs : {1, 16, 32}) {
      std::uniform_int_distribution<int64_t> ctx(0, 300), q(2, 150);
      std::vector<SeqSpec> decode, prefill, mixed;
      for (int i = 0; i < 5; ++i) decode.push_back({ctx(rng_) + 1, 1});
      for (int i = 0; i < 3; ++i) prefill.push_back({0, q(rng_)});
      prefill.push_back({0, 1});
      mixed = {{ctx(rng_), 1}, {0, q(rng_)}, {ctx(rng_) + 5, q(rng_)}, {ctx(rng_), 1}, {7, 70}, {0, 1}, {130, 129}};
      run(s, bs, decode, "decode");
      run(s, bs, prefill, "prefill");
      run(s, bs, mixed, "mixed");
      if (testing::Test::HasFailure()) return;
    }
  }
}

TEST_P(AttentionOps, LongContextSplitDecode) {
  for (int64_t bs : {16, 32}) {
    run({8, 2, 64}, bs, {{3000, 1}, {4999, 1}, {17, 1}}, "long decode");
    run({4, 4, 128}, bs, {{2047, 1}}, "long decode single");
    run({4, 4, 64}, bs, {{1500, 1}, {0, 300}, {900, 40}}, "long mixed");
    // Qwen3-30B-A3B's heads (32 over 4 KV heads of 128) at batch 1: one head per block.
    run({32, 4, 128}, bs, {{63, 1}}, "gqa batch 1");
    run({32, 4, 128}, bs, {{2500, 1}}, "gqa batch 1 long");
  }
}

TEST_P(AttentionOps, PhiShapeBatch) {
  // The benchmark's shape: 32 heads of 64, block 16; a decode batch of 64 at context 2048 and a
  // prefill chunk next to decodes.
  std::vector<SeqSpec> decode(64, SeqSpec{2047, 1});
  run({32, 32, 64}, 16, decode, "phi decode");
  std::vector<SeqSpec> mixed(8, SeqSpec{500, 1});
  mixed.push_back({0, 1024});
  mixed.push_back({1024, 512});
  run({32, 32, 64}, 16, mixed, "phi mixed");
}

// Sliding windows against the CPU on every kernel (decode, prefill tiles, generic: head sizes 24,
// 32, 80 take the generic path, and float32 always), with windows shorter than, equal to and
// longer than the contexts; the window's edge falls inside prefill chunks and inside blocks.
TEST_P(AttentionOps, SlidingWindow) {
  struct H { int64_t nh, nkv, hd; };
  for (H h : {H{4, 1, 64}, H{8, 2, 128}, H{4, 2, 256}, H{3, 3, 80}, H{3, 1, 32}, H{4, 2, 24}}) {
    for (int64_t bs : {1, 16, 32}) {
      for (int64_t W : {1, 7, 64, 300}) {
        AttentionShape s{h.nh, h.nkv, h.hd};
        s.sliding_window = W;
        // Decode with ctx + 1 keys below, at and above W; prefill chunks from position 0 shorter
        // and longer than W; chunks resuming mid-sequence next to decodes.
        const std::vector<SeqSpec> decode = {{W - 1, 1}, {W, 1}, {0, 1}, {W / 2, 1}, {W + 37, 1}, {3 * W + 5, 1}, {299, 1}};
        const std::vector<SeqSpec> prefill = {{0, W}, {0, W + 1}, {0, 150}, {0, 1}, {0, std::max<int64_t>(1, W / 2)}};
        const std::vector<SeqSpec> mixed = {{W - 1, 1}, {0, 130}, {W + 20, 70}, {2 * W, 1}, {5, 64}, {200, 129}, {W, W}};
        run(s, bs, decode, "window decode");
        run(s, bs, prefill, "window prefill");
        run(s, bs, mixed, "window mixed");
        if (testing::Test::HasFailure()) return;
      }
    }
  }
}

// Long contexts through split-K decode: the partitions cut the window, not the context, and the
// keys before it are never read (NaN there).
TEST_P(AttentionOps, SlidingWindowLongContextSplitDecode) {
  for (int64_t bs : {16, 32}) {
    for (int64_t W : {256, 1000, 4096, 8192}) {
      AttentionShape s{8, 2, 64};
      s.sliding_window = W;
      run(s, bs, {{3000, 1}, {4999, 1}, {17, 1}}, "long window decode");
      s = {4, 4, 128};
      s.sliding_window = W;
      run(s, bs, {{2047, 1}}, "long window decode single");
      s = {4, 4, 64};
      s.sliding_window = W;
      run(s, bs, {{1500, 1}, {0, 300}, {900, 40}, {W + 3, 1}}, "long window mixed");
      s = {32, 4, 128};
      s.sliding_window = W;
      run(s, bs, {{2500, 1}}, "long window gqa batch 1");
      s = {8, 1, 256};
      s.sliding_window = W;
      run(s, bs, {{3000, 1}, {1200, 1}, {W - 1, 1}}, "long window hd 256");
      if (testing::Test::HasFailure()) return;
    }
  }
}

// A layer of KV cache group 1 (a model with sliding and full layers): its own block tables (with
// kNoBlock where the window has passed, or NaN blocks there) and its own slots, never group 0's.
TEST_P(AttentionOps, SecondKvCacheGroupWithPassedBlocks) {
  struct H { int64_t nh, nkv, hd; };
  for (bool no_block : {true, false}) {
    for (int64_t bs : {1, 16, 32}) {
      for (int64_t W : {5, 40, 1000}) {
        for (H h : {H{8, 2, 64}, H{4, 2, 256}, H{3, 3, 80}, H{3, 1, 32}}) {
          AttentionShape s{h.nh, h.nkv, h.hd};
          s.sliding_window = W;
          const GroupSpec g1{true, no_block};
          run(s, bs, {{300, 1}, {1500, 1}, {39, 1}, {0, 1}, {W, 1}}, "group 1 decode", g1);
          run(s, bs, {{300, 1}, {200, 90}, {0, 70}, {1000, 5}, {40, 1}, {W - 1, 2}}, "group 1 mixed", g1);
          run(s, bs, {{0, 100}, {64, 64}}, "group 1 prefill", g1);
          // Group 0 itself may be a sliding group too (every layer sliding): passed blocks there.
          run(s, bs, {{300, 1}, {200, 90}, {1000, 1}}, "group 0", GroupSpec{false, no_block});
          if (testing::Test::HasFailure()) return;
        }
      }
    }
  }
  // Full attention in group 1 (Gemma 3's full layers next to the sliding group 0).
  run({8, 2, 64}, 16, {{300, 1}, {200, 90}, {2500, 1}}, "full attention", GroupSpec{true, true});
}

// Soft-capped scores (Gemma 2: tanh(s / cap) * cap after the scale). The scores here are of order
// 1, so caps 0.5 and 2 bend them strongly and 50 (Gemma 2's) barely.
TEST_P(AttentionOps, SoftCap) {
  struct H { int64_t nh, nkv, hd; };
  for (H h : {H{4, 1, 64}, H{8, 4, 256}, H{8, 2, 128}, H{3, 3, 80}, H{3, 1, 32}, H{4, 2, 24}}) {
    for (float cap : {0.5f, 2.0f, 50.0f}) {
      for (int64_t bs : {1, 16}) {
        AttentionShape s{h.nh, h.nkv, h.hd};
        s.logit_softcap = cap;
        std::uniform_int_distribution<int64_t> ctx(0, 300), q(2, 150);
        std::vector<SeqSpec> decode, prefill;
        for (int i = 0; i < 5; ++i) decode.push_back({ctx(rng_) + 1, 1});
        for (int i = 0; i < 3; ++i) prefill.push_back({0, q(rng_)});
        const std::vector<SeqSpec> mixed = {{ctx(rng_), 1}, {0, q(rng_)}, {ctx(rng_) + 5, q(rng_)}, {7, 70}, {130, 129}};
        run(s, bs, decode, "softcap decode");
        run(s, bs, prefill, "softcap prefill");
        run(s, bs, mixed, "softcap mixed");
        if (testing::Test::HasFailure()) return;
      }
    }
  }
  for (float cap : {1.0f, 50.0f}) {
    AttentionShape s{8, 2, 64};
    s.logit_softcap = cap;
    run(s, 16, {{3000, 1}, {4999, 1}, {17, 1}}, "softcap long decode");
    s = {32, 4, 128};
    s.logit_softcap = cap;
    run(s, 16, {{2500, 1}}, "softcap gqa batch 1 long");
  }
}

// Sinks (GPT-OSS: one logit per query head in the softmax's denominator). Sinks near the scores'
// scale change every output; large ones take most of the weight; very negative ones change
// nothing. With split-K decode a sink counted once per partition instead of once would be far off.
TEST_P(AttentionOps, Sinks) {
  struct H { int64_t nh, nkv, hd; };
  struct R { float lo, hi; };
  for (H h : {H{4, 1, 64}, H{8, 2, 128}, H{4, 2, 256}, H{3, 3, 80}, H{3, 1, 32}, H{4, 2, 24}}) {
    for (R r : {R{-3.0f, 3.0f}, R{4.0f, 7.0f}, R{-30.0f, -20.0f}}) {
      for (int64_t bs : {1, 16}) {
        AttentionShape s{h.nh, h.nkv, h.hd};
        s.sinks = sinks(h.nh, r.lo, r.hi);
        std::uniform_int_distribution<int64_t> ctx(0, 300), q(2, 150);
        std::vector<SeqSpec> decode, prefill;
        for (int i = 0; i < 5; ++i) decode.push_back({ctx(rng_) + 1, 1});
        decode.push_back({0, 1});
        for (int i = 0; i < 3; ++i) prefill.push_back({0, q(rng_)});
        const std::vector<SeqSpec> mixed = {{ctx(rng_), 1}, {0, q(rng_)}, {ctx(rng_) + 5, q(rng_)}, {7, 70}, {130, 129}};
        run(s, bs, decode, "sinks decode");
        run(s, bs, prefill, "sinks prefill");
        run(s, bs, mixed, "sinks mixed");
        if (testing::Test::HasFailure()) return;
      }
    }
  }
  for (int64_t bs : {16, 32}) {
    // Sinks of the order of log(sum of the weights) over thousands of keys: comparable to the sum.
    AttentionShape s{8, 2, 64};
    s.sinks = sinks(8, 6.0f, 10.0f);
    run(s, bs, {{3000, 1}, {4999, 1}, {17, 1}}, "sinks long decode");
    run(s, bs, {{1500, 1}, {0, 300}, {900, 40}}, "sinks long mixed");
    s = {32, 4, 128};
    s.sinks = sinks(32, 6.0f, 10.0f);
    run(s, bs, {{2500, 1}}, "sinks gqa batch 1 long");
    s = {4, 4, 128};
    s.sinks = sinks(4, -1.0f, 8.0f);
    run(s, bs, {{2047, 1}}, "sinks long decode single");
    if (testing::Test::HasFailure()) return;
  }
}

// The variations together, as the models have them: GPT-OSS (window and sinks, in a second KV
// cache group beside full-attention layers with sinks), Gemma 2 (window and soft-cap), the golden
// tests' tiny models' shapes, and all three at once.
TEST_P(AttentionOps, ModelCombinations) {
  for (int64_t bs : {16, 32}) {
    for (GroupSpec g : {GroupSpec{false, true}, GroupSpec{true, true}, GroupSpec{true, false}}) {
      AttentionShape gptoss{8, 1, 64};
      gptoss.sliding_window = 128;
      gptoss.sinks = sinks(8, -1.0f, 4.0f);
      run(gptoss, bs, {{100, 1}, {127, 1}, {128, 1}, {1000, 1}, {3000, 1}}, "gpt-oss decode", g);
      run(gptoss, bs, {{0, 200}, {0, 128}}, "gpt-oss prefill", g);
      run(gptoss, bs, {{500, 1}, {0, 300}, {1000, 64}, {127, 2}}, "gpt-oss mixed", g);
      for (float cap : {50.0f, 1.0f}) {
        AttentionShape gemma2{8, 4, 256};
        gemma2.sliding_window = 64;
        gemma2.logit_softcap = cap;
        run(gemma2, bs, {{63, 1}, {64, 1}, {500, 1}, {2000, 1}}, "gemma 2 decode", g);
        run(gemma2, bs, {{0, 150}, {70, 30}, {300, 1}}, "gemma 2 mixed", g);
      }
      AttentionShape all{4, 2, 128};
      all.sliding_window = 100;
      all.logit_softcap = 2.0f;
      all.sinks = sinks(4, 0.0f, 5.0f);
      run(all, bs, {{99, 1}, {2500, 1}, {0, 250}, {400, 70}}, "window softcap sinks", g);
      // tiny-gptoss (3 heads over 1 of 32, window 12) and tiny-gemma2 (4 over 2 of 24, window 12, cap 50).
      AttentionShape tiny_gptoss{3, 1, 32};
      tiny_gptoss.sliding_window = 12;
      tiny_gptoss.sinks = sinks(3, -1.0f, 2.0f);
      run(tiny_gptoss, bs, {{11, 1}, {40, 1}, {0, 30}, {20, 9}}, "tiny-gptoss", g);
      AttentionShape tiny_gemma2{4, 2, 24};
      tiny_gemma2.sliding_window = 12;
      tiny_gemma2.logit_softcap = 50.0f;
      run(tiny_gemma2, bs, {{11, 1}, {40, 1}, {0, 30}, {20, 9}}, "tiny-gemma2", g);
      if (testing::Test::HasFailure()) return;
    }
  }
  // Full-attention layers with sinks (GPT-OSS's other half) over long contexts.
  AttentionShape full{8, 1, 64};
  full.sinks = sinks(8, 5.0f, 9.0f);
  run(full, 16, {{3000, 1}, {4999, 1}, {0, 200}}, "gpt-oss full layer");
}

// --kv-cache-dtype fp8: K/V stored as e4m3(x / scale) and read as e4m3 * scale by every kernel
// (decode with and without split-K, prefill tiles, the generic path for head sizes 32/80 and
// float32), with scales other than 1 (K and V different) and, last, scales so small that values
// saturate at +-448. The CPU reference runs on the same e4m3-rounded K/V.
TEST_P(AttentionOps, Fp8KvCache) {
  gpu_->use_fp8_kv_cache();
  ASSERT_EQ(gpu_->kv_cache_dtype(), DType::U8);
  const bool f32 = dt() == DType::F32;
  fp8_k_scale_ = f32 ? 0.37f : 0.5f;
  fp8_v_scale_ = f32 ? 1.7f : 0.25f;
  struct H { int64_t nh, nkv, hd; };
  for (H h : {H{2, 2, 64}, H{4, 1, 64}, H{8, 2, 128}, H{3, 3, 80}, H{2, 1, 32}, H{4, 2, 256}}) {
    AttentionShape s{h.nh, h.nkv, h.hd};
    for (int64_t bs : {1, 16}) {
      run(s, bs, {{17, 1}, {300, 1}, {1, 1}, {64, 1}}, "fp8 decode");
      run(s, bs, {{0, 150}, {0, 1}, {0, 64}}, "fp8 prefill");
      run(s, bs, {{40, 1}, {0, 99}, {70, 30}, {130, 129}, {5, 1}}, "fp8 mixed");
      if (testing::Test::HasFailure()) return;
    }
  }
  run({8, 2, 64}, 16, {{3000, 1}, {4999, 1}, {17, 1}}, "fp8 long decode");
  run({32, 4, 128}, 16, {{2500, 1}}, "fp8 gqa batch 1 long");
  AttentionShape window{4, 2, 128};
  window.sliding_window = 64;
  run(window, 16, {{63, 1}, {500, 1}, {2000, 1}}, "fp8 window decode");
  run(window, 16, {{0, 150}, {70, 30}, {300, 1}}, "fp8 window mixed", GroupSpec{true, true});
  AttentionShape all{4, 2, 64};
  all.sliding_window = 100;
  all.logit_softcap = 2.0f;
  all.sinks = sinks(4, 0.0f, 5.0f);
  run(all, 16, {{99, 1}, {2500, 1}, {0, 250}, {400, 70}}, "fp8 window softcap sinks");
  // Saturation: |x| / scale beyond 448 stores +-448 (K and V here reach 2 / 2^-8 = 512).
  fp8_k_scale_ = 1.0f / 256;
  fp8_v_scale_ = 1.0f / 128;
  run({4, 2, 64}, 16, {{40, 1}, {0, 70}, {300, 1}}, "fp8 saturating");
  run({3, 3, 80}, 16, {{40, 1}, {0, 70}}, "fp8 saturating generic");
}

// copy_blocks moves an FP8 cache's blocks byte for byte; attention refuses a cache of another dtype.
TEST_P(AttentionOps, Fp8KvCacheCopyBlocksAndChecks) {
  gpu_->use_fp8_kv_cache();
  const Shape shape{6, 2, 16, 64};
  Tensor hk = Tensor::empty(shape, DType::U8), hv = Tensor::empty(shape, DType::U8);
  for (int64_t i = 0; i < hk.numel(); ++i) {
    hk.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7 % 251);
    hv.data<uint8_t>()[i] = static_cast<uint8_t>(i * 13 % 241);
  }
  KVCacheLayer layer{gpu_->upload(hk, DType::U8), gpu_->upload(hv, DType::U8)};
  gpu_->copy_blocks(layer, {{1, 4}, {2, 1}, {0, 5}});
  Tensor gk = bytes(layer.k), gv = bytes(layer.v);
  const int64_t per_block = hk.numel() / 6;
  auto expect_block = [&](const Tensor& got, const Tensor& host, int64_t dst, int64_t src, const char* what) {
    for (int64_t i = 0; i < per_block; ++i)
      ASSERT_EQ(got.data<uint8_t>()[dst * per_block + i], host.data<uint8_t>()[src * per_block + i]) << what << " block " << dst;
  };
  for (const Tensor* t : {&gk, &gv}) {
    const Tensor& h = t == &gk ? hk : hv;
    expect_block(*t, h, 4, 1, "copied");
    expect_block(*t, h, 1, 2, "copied");
    expect_block(*t, h, 5, 0, "copied");
    expect_block(*t, h, 3, 3, "untouched");
  }
  KVCacheLayer wrong{up(rand(shape)), up(rand(shape))};  // a compute-dtype cache
  EXPECT_THROW(gpu_->copy_blocks(wrong, {{0, 1}}), std::exception);
}

// Every variation is accepted at load (check_attention) and malformed ones are errors.
TEST(CudaAttention, AcceptsWindowSoftcapAndSinks) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device visible";
  CudaBackend gpu(DType::BF16);
  AttentionShape plain;
  plain.num_heads = 4, plain.num_kv_heads = 2, plain.head_dim = 64;
  EXPECT_NO_THROW(gpu.check_attention(plain));
  AttentionShape all = plain;
  all.sliding_window = 4096;
  all.logit_softcap = 50.0f;
  all.sinks = gpu.prepare_vector(Tensor::from_floats({0.1f, 0.2f, 0.3f, 0.4f}, {4}));
  EXPECT_NO_THROW(gpu.check_attention(all));
  AttentionShape host_sinks = plain;  // not uploaded
  host_sinks.sinks = Tensor::from_floats({0.1f, 0.2f, 0.3f, 0.4f}, {4});
  EXPECT_THROW(gpu.check_attention(host_sinks), Error);
  AttentionShape short_sinks = plain;  // one per query head is needed
  short_sinks.sinks = gpu.prepare_vector(Tensor::from_floats({0.1f, 0.2f}, {2}));
  EXPECT_THROW(gpu.check_attention(short_sinks), Error);
  AttentionShape negative = plain;
  negative.sliding_window = -1;
  EXPECT_THROW(gpu.check_attention(negative), Error);
}

// ---------------------------------------------------------------------------------------------
// Mixture of experts: CudaBackend::moe against CpuBackend::moe, through both GPU paths (grouped
// skinny products, and grouped tensor-core tiles for 16-bit types), and the device routing and
// grouping against the CPU's routing and moe::group_by_expert.

struct MoeCase {
  int64_t T, E, K, H, I;
  bool renorm;
};

std::string moe_label(const MoeCase& c) {
  return str("T=", c.T, " E=", c.E, " K=", c.K, " H=", c.H, " I=", c.I, c.renorm ? " renorm" : "");
}

class MoeOps : public Ops {
 protected:
  // A backend whose moe() takes the tensor-core tiles whenever the shapes allow (tiles) or never.
  std::unique_ptr<CudaBackend> gpu_path(bool tiles) {
    setenv("VLLM_MOE_GEMM_ROWS", tiles ? "0" : "1000000000", 1);
    auto b = std::make_unique<CudaBackend>(dt());
    unsetenv("VLLM_MOE_GEMM_ROWS");
    return b;
  }

  struct Layer {
    Tensor x, router, gate_up, down;  // host float32, values of the compute dtype
    Tensor router_bias;               // [E] (GPT-OSS) or undefined
  };
  Layer random_layer(const MoeCase& c) {
    Layer L;
    L.x = rand({c.T, c.H});
    // Router logits of spread about 2: routing decisions with real margins.
    const float rs = 3.5f / std::sqrt(static_cast<float>(c.H));
    L.router = rand({c.E, c.H}, -rs, rs);
    const float gs = 1.5f / std::sqrt(static_cast<float>(c.H)), ds = 1.5f / std::sqrt(static_cast<float>(c.I));
    L.gate_up = rand({c.E, 2 * c.I, c.H}, -gs, gs);
    L.down = rand({c.E, c.H, c.I}, -ds, ds);
    return L;
  }

  // The CPU's router logits, and per token whether its routing is decided by a margin: among the
  // top_k + 1 most probable experts, every two differ by more than 1e-4 of the largest (the GPU
  // sums the logits in another order, so a closer call may go either way on either side).
  std::vector<float> cpu_logits(const Layer& L, const MoeCase& c) {
    auto r = cpu_->prepare_linear(L.router, L.router_bias);
    Tensor logits = Tensor::empty({c.T, c.E}, DType::F32);
    cpu_->linear(logits, L.x, *r);
    return logits.to_floats();
  }
  std::vector<bool> decided(const std::vector<float>& logits, const MoeCase& c) {
    std::vector<bool> out(static_cast<size_t>(c.T));
    for (int64_t t = 0; t < c.T; ++t) {
      std::vector<double> p(logits.begin() + t * c.E, logits.begin() + (t + 1) * c.E);
      const double mx = *std::max_element(p.begin(), p.end());
      double sum = 0;
      for (double& v : p) sum += (v = std::exp(v - mx));
      for (double& v : p) v /= sum;
      std::sort(p.begin(), p.end(), std::greater<double>());
      bool ok = true;
      for (int64_t k = 0; k < std::min(c.K, c.E - 1); ++k) ok = ok && p[k] - p[k + 1] > 1e-4 * p[0];
      out[static_cast<size_t>(t)] = ok;
    }
    return out;
  }

  // Runs moe on `gpu` and the CPU and compares the decided tokens' rows.
  void compare_moe(CudaBackend& gpu, const MoeCase& c, const Layer& L, const std::string& path,
                   const ExpertOptions& eo = {}) {
    const std::string where = lbl(path.c_str(), str(" ", moe_label(c)));
    const MoeRouting routing{c.K, c.renorm};
    auto crouter = cpu_->prepare_linear(L.router, L.router_bias);
    auto cexperts = cpu_->prepare_experts(L.gate_up, L.down, eo);
    auto grouter = gpu.prepare_linear(L.router, L.router_bias);
    auto gexperts = gpu.prepare_experts(L.gate_up, L.down, eo);
    Tensor co = nan_host({c.T, c.H});
    cpu_->moe(co, L.x, *crouter, *cexperts, routing);
    Tensor go = gpu.upload(nan_host({c.T, c.H}), dt());
    gpu.moe(go, gpu.upload(L.x, dt()), *grouter, *gexperts, routing);
    Tensor g = gpu.download_f32(go);
    const std::vector<bool> ok = decided(cpu_logits(L, c), c);
    const int64_t n_ok = std::count(ok.begin(), ok.end(), true);
    // A guard on the random layer, not on the GPU: at most a tenth of the tokens (at least 2) may
    // be near ties, so the comparison keeps nearly every row (33 tokens over 16 experts gave 2).
    EXPECT_GE(n_ok, c.T - std::max<int64_t>(2, c.T / 10)) << where << ": too many near-tied routings";
    std::vector<float> gk, ck;
    for (int64_t t = 0; t < c.T; ++t) {
      if (!ok[static_cast<size_t>(t)]) continue;
      gk.insert(gk.end(), g.data<float>() + t * c.H, g.data<float>() + (t + 1) * c.H);
      ck.insert(ck.end(), co.data<float>() + t * c.H, co.data<float>() + (t + 1) * c.H);
    }
    const int64_t rows = static_cast<int64_t>(gk.size()) / c.H;
    if (rows == 0) return;
    Tensor gt = Tensor::from_floats(gk, {rows, c.H}), ct = Tensor::from_floats(ck, {rows, c.H});
    expect_close_host(gt, ct, where, dt() == DType::F16 ? 2.0 : 1.0);
  }
};

TEST_P(MoeOps, RoutingAndGroupingMatchTheCpu) {
  for (MoeCase c : {MoeCase{1, 8, 2, 64, 0, true}, MoeCase{1, 128, 8, 256, 0, true}, MoeCase{5, 3, 1, 40, 0, false},
                    MoeCase{64, 60, 6, 96, 0, true}, MoeCase{65, 128, 8, 128, 0, false}, MoeCase{300, 8, 2, 64, 0, true},
                    MoeCase{2, 256, 8, 64, 0, true}, MoeCase{40, 1000, 4, 32, 0, false}, MoeCase{9, 1, 1, 16, 0, true},
                    MoeCase{700, 128, 8, 64, 0, true}}) {
    const Layer L = random_layer({c.T, c.E, c.K, c.H, 1, c.renorm});
    const MoeRouting routing{c.K, c.renorm};
    auto grouter = gpu_->prepare_linear(L.router, Tensor());
    const CudaBackend::MoeRoutingState st = gpu_->moe_routing_state(up(L.x), *grouter, c.E, routing);
    const std::vector<float> logits = cpu_logits(L, c);
    std::vector<int32_t> ids(static_cast<size_t>(c.T * c.K));
    std::vector<float> w(ids.size());
    cpu::moe_route(logits.data(), c.T, c.E, routing, ids.data(), w.data());
    const std::vector<bool> ok = decided(logits, c);
    ASSERT_EQ(st.ids.size(), ids.size()) << moe_label(c);
    ASSERT_EQ(st.weights.size(), w.size()) << moe_label(c);
    int64_t compared = 0;
    for (int64_t t = 0; t < c.T; ++t) {
      for (int64_t k = 0; k < c.K; ++k) {
        const size_t a = static_cast<size_t>(t * c.K + k);
        ASSERT_TRUE(st.ids[a] >= 0 && st.ids[a] < c.E) << moe_label(c) << " t=" << t;
        for (int64_t q = 0; q < k; ++q) ASSERT_NE(st.ids[a], st.ids[t * c.K + q]) << moe_label(c) << " t=" << t;
        if (!ok[static_cast<size_t>(t)]) continue;
        ++compared;
        EXPECT_EQ(st.ids[a], ids[a]) << moe_label(c) << " t=" << t << " k=" << k;
        EXPECT_NEAR(st.weights[a], w[a], 1e-4 * std::max(1.0f, std::fabs(w[a]))) << moe_label(c) << " t=" << t;
      }
    }
    EXPECT_GE(compared, (c.T - std::max<int64_t>(1, c.T / 20)) * c.K) << moe_label(c) << ": too many near ties";
    // The device layout is group_by_expert's for the device's own routing, exactly.
    const moe::ExpertLayout want = moe::group_by_expert(st.ids.data(), c.T, c.K, c.E, st.tile_rows);
    EXPECT_EQ(st.layout.counts, want.counts) << moe_label(c);
    EXPECT_EQ(st.layout.offsets, want.offsets) << moe_label(c);
    EXPECT_EQ(st.layout.tile_starts, want.tile_starts) << moe_label(c);
    EXPECT_EQ(st.layout.active, want.active) << moe_label(c);
    EXPECT_EQ(st.layout.order, want.order) << moe_label(c);
    EXPECT_EQ(st.layout.pos, want.pos) << moe_label(c);
    if (testing::Test::HasFailure()) return;
  }
}

TEST_P(MoeOps, MatchesCpuOnBothPaths) {
  // T=1 and small batches (decode), experts most tokens skip (E=128, K=8, few tokens), odd sizes
  // (H or I not a multiple of the 16-byte pack: the scalar forms), top_k 1, tiles partly filled.
  const std::vector<MoeCase> cases = {
      {1, 8, 2, 256, 128, true},   {1, 128, 8, 256, 96, true},  {3, 16, 4, 64, 80, false}, {17, 8, 2, 128, 64, true},
      {64, 4, 2, 96, 200, false},  {200, 8, 2, 256, 192, true}, {300, 128, 8, 128, 64, false},
      {33, 60, 6, 40, 24, true},   {5, 3, 1, 36, 20, false},    {130, 2, 2, 64, 136, true}};
  for (bool tiles : {false, true}) {
    auto gpu = gpu_path(tiles);
    for (const MoeCase& c : cases) {
      compare_moe(*gpu, c, random_layer(c), tiles ? "moe (tiles where supported)" : "moe (skinny products)");
      if (testing::Test::HasFailure()) return;
    }
  }
}

// GPT-OSS's experts: a router with a bias (few tokens: the skinny router kernel; more: cuBLASLt
// then the bias), float32 biases on both products and the clamped SwiGLU (limit 7 as GPT-OSS,
// and 0.5, which clamps most gates and ups of these inputs; 0: biases with the plain SwiGLU).
TEST_P(MoeOps, GptOssExpertsMatchCpuOnBothPaths) {
  const std::vector<MoeCase> cases = {{1, 8, 2, 96, 64, true},    {3, 32, 4, 64, 80, true},  {200, 8, 2, 96, 64, true},
                                      {33, 16, 4, 40, 24, false}, {130, 4, 2, 64, 136, true}, {5, 3, 1, 36, 20, false}};
  for (bool tiles : {false, true}) {
    auto gpu = gpu_path(tiles);
    for (float limit : {7.0f, 0.5f, 0.0f}) {
      for (const MoeCase& c : cases) {
        ExpertOptions eo;
        eo.gate_up_bias = rand({c.E, 2 * c.I}, -0.5f, 0.5f);
        eo.down_bias = rand({c.E, c.H}, -0.5f, 0.5f);
        eo.swiglu_limit = limit;
        Layer L = random_layer(c);
        L.router_bias = rand({c.E}, -1.0f, 1.0f);  // routing on the router's product plus its bias
        compare_moe(*gpu, c, L, str(tiles ? "gpt-oss moe (tiles where supported)" : "gpt-oss moe (skinny)", " limit=", limit),
                    eo);
        if (testing::Test::HasFailure()) return;
      }
    }
  }
}

TEST_P(MoeOps, UnroutedExpertsAreNotRead) {
  // Few tokens over many experts: the experts no token picks hold NaN, which any read would spread.
  const MoeCase c{3, 64, 2, 128, 64, true};
  Layer L = random_layer(c);
  auto grouter = gpu_->prepare_linear(L.router, Tensor());
  const auto st = gpu_->moe_routing_state(up(L.x), *grouter, c.E, {c.K, c.renorm});
  std::vector<bool> used(static_cast<size_t>(c.E), false);
  for (int32_t e : st.ids) used[static_cast<size_t>(e)] = true;
  int unused = 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t e = 0; e < c.E; ++e) {
    if (used[static_cast<size_t>(e)]) continue;
    ++unused;
    std::fill(L.gate_up.data<float>() + e * 2 * c.I * c.H, L.gate_up.data<float>() + (e + 1) * 2 * c.I * c.H, nan);
    std::fill(L.down.data<float>() + e * c.H * c.I, L.down.data<float>() + (e + 1) * c.H * c.I, nan);
  }
  ASSERT_GE(unused, 50);
  for (bool tiles : {false, true}) {
    auto gpu = gpu_path(tiles);
    compare_moe(*gpu, c, L, tiles ? "unrouted NaN experts (tiles)" : "unrouted NaN experts (skinny)");
  }
}

TEST_P(MoeOps, Deterministic) {
  // The same inputs give the same bits, run after run (no float atomics), on both paths.
  const MoeCase c{257, 16, 4, 128, 96, true};
  const Layer L = random_layer(c);
  for (bool tiles : {false, true}) {
    auto gpu = gpu_path(tiles);
    auto router = gpu->prepare_linear(L.router, Tensor());
    auto experts = gpu->prepare_experts(L.gate_up, L.down, ExpertOptions{});
    Tensor x = gpu->upload(L.x, dt());
    Tensor o1 = gpu->upload(nan_host({c.T, c.H}), dt()), o2 = gpu->upload(nan_host({c.T, c.H}), dt());
    gpu->moe(o1, x, *router, *experts, {c.K, c.renorm});
    gpu->moe(o2, x, *router, *experts, {c.K, c.renorm});
    Tensor a = gpu->download_f32(o1), b = gpu->download_f32(o2);
    for (int64_t i = 0; i < a.numel(); ++i) {
      ASSERT_TRUE(std::isfinite(a.data<float>()[i])) << i;
      ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << (tiles ? "tiles " : "skinny ") << i;
    }
  }
}

TEST_P(MoeOps, BadArgumentsAreErrors) {
  const MoeCase c{2, 4, 2, 32, 16, true};
  const Layer L = random_layer(c);
  auto router = gpu_->prepare_linear(L.router, Tensor());
  auto experts = gpu_->prepare_experts(L.gate_up, L.down, ExpertOptions{});
  Tensor x = up(L.x), o = nan_gpu({c.T, c.H});
  EXPECT_THROW(gpu_->moe(o, x, *router, *experts, {5, true}), Error);  // top_k above the expert count
  EXPECT_THROW(gpu_->moe(o, x, *router, *experts, {0, true}), Error);
  Tensor wrong = nan_gpu({c.T, c.H + 8});
  EXPECT_THROW(gpu_->moe(wrong, x, *router, *experts, {2, true}), Error);
  EXPECT_THROW(gpu_->prepare_experts(L.gate_up, L.gate_up, ExpertOptions{}), Error);
  // Biases of the wrong size and a negative SwiGLU limit.
  ExpertOptions short_bias;
  short_bias.gate_up_bias = rand({c.E, c.I});
  EXPECT_THROW(gpu_->prepare_experts(L.gate_up, L.down, short_bias), Error);
  ExpertOptions short_down_bias;
  short_down_bias.down_bias = rand({c.E, c.H - 1});
  EXPECT_THROW(gpu_->prepare_experts(L.gate_up, L.down, short_down_bias), Error);
  ExpertOptions negative;
  negative.swiglu_limit = -1.0f;
  EXPECT_THROW(gpu_->prepare_experts(L.gate_up, L.down, negative), Error);
}

// GGUF linear layers (CudaBackend::prepare_quantized_linear): parts of GGUF block types, quantized
// by the project's quantizers (gguf::quantize_row), kept in their blocks on the GPU. Against the
// float64 product with the dequantized float32 weights (QuantizedMatrix::dequantize, the plain
// dequantizer): the skinny product dequantizes in registers (float32 sums), the product of more
// rows dequantizes to the compute dtype first (so its bfloat16 weights are rounded once more,
// within the dtype's tolerance). Each case also checks which path ran.
using GgufPath = CudaBackend::GgufLinearPath;
using gguf::GgmlType;

const char* path_name(GgufPath p) {
  switch (p) {
    case GgufPath::kNone: return "none";
    case GgufPath::kGemv: return "skinny GGUF product";
    case GgufPath::kDequantizedGemm: return "dequantized product";
  }
  return "?";
}

struct GgufPart {
  GgmlType type;
  int64_t rows;
};

struct GgufLayer {
  std::vector<gguf::QuantizedMatrix> parts;
  Tensor dequantized;  // [N, K] float32
  int64_t N = 0, K = 0;
};

std::string gguf_label(const std::vector<GgufPart>& parts, int64_t K) {
  std::ostringstream o;
  for (size_t i = 0; i < parts.size(); ++i) o << (i ? "+" : "") << gguf::ggml_type_name(parts[i].type) << "x" << parts[i].rows;
  o << " K=" << K;
  return o.str();
}

class GgufOps : public Ops {
 protected:
  // Random parts, each of its own magnitude and with rows of different magnitudes, quantized to
  // their types (float types keep their values, rounded to the type).
  GgufLayer layer(const std::vector<GgufPart>& parts, int64_t K) {
    GgufLayer L;
    L.K = K;
    for (const auto& p : parts) L.N += p.rows;
    L.dequantized = Tensor::empty({L.N, K}, DType::F32);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    int64_t at = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      const float magnitude = static_cast<float>(i + 1) / std::sqrt(static_cast<float>(K));
      std::vector<float> w(static_cast<size_t>(parts[i].rows * K));
      for (int64_t r = 0; r < parts[i].rows; ++r)
        for (int64_t k = 0; k < K; ++k)
          w[static_cast<size_t>(r * K + k)] = u(rng_) * magnitude * (1.0f + static_cast<float>(r % 5) / 2.0f);
      gguf::QuantizedMatrix q;
      q.type = parts[i].type;
      q.cols = K;
      q.data = Tensor::empty({parts[i].rows, static_cast<int64_t>(q.row_bytes())}, DType::U8);
      for (int64_t r = 0; r < parts[i].rows; ++r)
        gguf::quantize_row(q.type, w.data() + r * K, q.data.data<uint8_t>() + static_cast<size_t>(r) * q.row_bytes(), K);
      const Tensor d = q.dequantize();
      std::copy(d.data<float>(), d.data<float>() + d.numel(), L.dequantized.data<float>() + at * K);
      L.parts.push_back(std::move(q));
      at += parts[i].rows;
    }
    return L;
  }

  // out[m, n] = x[m, :] · w[n, :] + bias[n] in float64.
  static Tensor reference(const Tensor& x, const Tensor& w, const Tensor& bias) {
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    Tensor out = Tensor::empty({M, N}, DType::F32);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = bias.defined() ? bias.data<float>()[n] : 0.0;
        const float* wr = w.data<float>() + n * K;
        const float* xr = x.data<float>() + m * K;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(xr[k]) * wr[k];
        out.data<float>()[m * N + n] = static_cast<float>(acc);
      }
    return out;
  }

  // One layer at each M, with and without a bias. `kept`: whether the blocks stay quantized (a
  // layer with a quantized part), else the weight is an ordinary one and no GGUF path runs.
  void check_case(const std::vector<GgufPart>& parts, int64_t K, const std::vector<int64_t>& Ms, bool kept = true) {
    const GgufLayer L = layer(parts, K);
    for (bool with_bias : {false, true}) {
      const Tensor bias = with_bias ? rand({L.N}, -0.5f, 0.5f) : Tensor();
      auto gw = gpu_->prepare_quantized_linear(L.parts, bias);
      ASSERT_EQ(gw->out_features(), L.N);
      ASSERT_EQ(gw->in_features(), L.K);
      for (int64_t M : Ms) {
        const std::string where = str("gguf linear ", gguf_label(parts, K), " M=", M, with_bias ? " bias" : "");
        const Tensor x = rand({M, K}, -1.0f, 1.0f);
        Tensor go = nan_gpu({M, L.N});
        const GgufPath before = gpu_->last_gguf_linear_path();
        gpu_->linear(go, up(x), *gw);
        const GgufPath path = gpu_->last_gguf_linear_path();
        if (kept) {
          const GgufPath want = M <= 8 ? GgufPath::kGemv : GgufPath::kDequantizedGemm;
          EXPECT_EQ(path, want) << where << ": took the " << path_name(path) << ", expected the " << path_name(want);
        } else {
          EXPECT_EQ(path, before) << where << ": a weight of float parts took a GGUF path";
        }
        expect_close(go, reference(x, L.dequantized, bias), lbl(path_name(path), " " + where));
      }
    }
  }
};

const std::vector<int64_t> kGgufMs{1, 3, 8, 64};

// Each type alone: odd row counts, widths of an odd number of blocks, and a decode-sized shape
// (several warps a row for few rows, one warp a row for many).
TEST_P(GgufOps, EachType) {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    check_case({{t, 301}}, 224, kGgufMs);
    check_case({{t, 33}}, 2080, kGgufMs);
  }
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    check_case({{t, 301}}, 768, kGgufMs);
    check_case({{t, 7}}, 4096, kGgufMs);
  }
}

TEST_P(GgufOps, LargeShapes) {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K}) check_case({{t, 4096}}, 1280, {1, 8, 9});
  check_case({{GgmlType::kQ4_K, 1024}}, 11008, {1, 5});
}

// Parts of different types in one layer (Q4_K_M's q and k with a Q6_K v; Q8_0 beside Q4_0), and
// float parts beside quantized ones (kept in the compute dtype as a segment of their own).
TEST_P(GgufOps, MixedParts) {
  check_case({{GgmlType::kQ4_K, 200}, {GgmlType::kQ4_K, 72}, {GgmlType::kQ6_K, 72}}, 512, kGgufMs);
  check_case({{GgmlType::kQ6_K, 40}, {GgmlType::kQ5_K, 24}, {GgmlType::kQ4_K, 24}}, 256, kGgufMs);
  check_case({{GgmlType::kQ8_0, 64}, {GgmlType::kF16, 32}, {GgmlType::kQ4_0, 48}}, 256, kGgufMs);
  check_case({{GgmlType::kF32, 40}, {GgmlType::kBF16, 8}, {GgmlType::kQ5_K, 24}}, 512, kGgufMs);
}

// A layer of float parts only is an ordinary weight (the dense product, no GGUF path).
TEST_P(GgufOps, FloatPartsOnlyTakeThePlainPath) {
  check_case({{GgmlType::kF16, 96}, {GgmlType::kF32, 32}}, 256, {1, 9}, false);
}

// The fused decode steps on GGUF weights: for up to 8 rows the skinny product with the epilogue,
// bit for bit the GPU's unfused sequence; beyond that the plain ops. Phi's fused norm and two
// products take the separate steps, equal to them.
TEST_P(GgufOps, FusedDecodeSteps) {
  const GgufLayer L = layer({{GgmlType::kQ4_K, 256}, {GgmlType::kQ6_K, 64}}, 512);
  const Tensor b = rand({L.N}, -0.5f, 0.5f);
  auto gw = gpu_->prepare_quantized_linear(L.parts, b);
  for (int64_t M : {1, 3, 8, 17}) {
    const std::string where = str("M=", M);
    Tensor x = up(rand({M, L.K})), res = rand({M, L.N}), other = up(rand({M, L.N}));
    Tensor fused = nan_gpu({M, L.N}), unfused = nan_gpu({M, L.N});
    gpu_->linear_gelu_new(fused, x, *gw);
    gpu_->linear(unfused, x, *gw);
    gpu_->gelu_new(unfused, unfused);
    Tensor fres = up(res), scratch = nan_gpu({M, L.N}), ures = up(res), uscratch = nan_gpu({M, L.N});
    gpu_->linear_add_residual(fres, scratch, x, *gw, other);
    gpu_->linear(uscratch, x, *gw);
    gpu_->add(ures, ures, other);
    gpu_->add(ures, ures, uscratch);
    for (auto [a, e, what] : {std::tuple{&fused, &unfused, "gelu"}, std::tuple{&fres, &ures, "residual"}}) {
      const Tensor ha = gpu_->download_f32(*a), he = gpu_->download_f32(*e);
      for (int64_t i = 0; i < ha.numel(); ++i)
        ASSERT_EQ(ha.data<float>()[i], he.data<float>()[i]) << what << " fused differs from unfused, " << where << " at " << i;
    }
    // Phi's parallel block input side: the separate steps on GGUF weights.
    const GgufLayer U = layer({{GgmlType::kQ8_0, 96}}, 512);
    auto gu = gpu_->prepare_quantized_linear(U.parts, Tensor());
    Tensor nw = gpu_->prepare_vector(rand({L.K}, 0.5f, 1.5f)), nb = gpu_->prepare_vector(rand({L.K}, -0.1f, 0.1f));
    Tensor xn = nan_gpu({M, L.K}), qkv = nan_gpu({M, L.N}), upo = nan_gpu({M, U.N});
    gpu_->layer_norm_qkv_mlp_up(xn, qkv, upo, x, nw, nb, 1e-5f, *gw, *gu);
    Tensor xn2 = nan_gpu({M, L.K}), qkv2 = nan_gpu({M, L.N}), upo2 = nan_gpu({M, U.N});
    gpu_->layer_norm(xn2, x, nw, nb, 1e-5f);
    gpu_->linear(qkv2, xn2, *gw);
    gpu_->linear_gelu_new(upo2, xn2, *gu);
    expect_close_host(gpu_->download_f32(qkv), gpu_->download_f32(qkv2), "norm pair qkv " + where, 0.01);
    expect_close_host(gpu_->download_f32(upo), gpu_->download_f32(upo2), "norm pair up " + where, 0.01);
  }
}

// A Q4_K weight holds 4.5 bits a weight: about 0.28 of the same weight in 16 bits (bytes() counts
// the blocks); Q8_0 8.5 bits.
TEST_P(GgufOps, DeviceBytesAreTheBlocks) {
  if (dt() == DType::F32) GTEST_SKIP() << "compared with 16-bit weights";
  for (auto [t, ratio] : {std::pair{GgmlType::kQ4_K, 4.5 / 16}, std::pair{GgmlType::kQ8_0, 8.5 / 16}}) {
    const GgufLayer L = layer({{t, 1024}}, 2048);
    auto q = gpu_->prepare_quantized_linear(L.parts, Tensor());
    auto plain = gpu_->prepare_linear(L.dequantized, Tensor());
    const double r = static_cast<double>(q->bytes()) / static_cast<double>(plain->bytes());
    EXPECT_NEAR(r, ratio, 0.01) << gguf::ggml_type_name(t) << ": " << q->bytes() << " bytes against " << plain->bytes();
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, Ops, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return dname(info.param); });
INSTANTIATE_TEST_SUITE_P(DTypes, Fp8Ops, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return dname(info.param); });
INSTANTIATE_TEST_SUITE_P(DTypes, GgufOps, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return dname(info.param); });
INSTANTIATE_TEST_SUITE_P(DTypes, MoeOps, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return dname(info.param); });
INSTANTIATE_TEST_SUITE_P(DTypes, AttentionOps, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return dname(info.param); });

}  // namespace
