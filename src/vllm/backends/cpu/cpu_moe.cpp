// Mixture of experts on the CPU: route every token, group the (token, expert) pairs by expert
// (moe_layout.h, the grouping the CUDA kernels build too), gather each active expert's rows into
// one packed block and run its gate/up product, SwiGLU and down product over the block (one
// matrix product per active expert and projection, threaded by the GEMM over rows and columns),
// then sum each token's weighted expert outputs in expert order.
// Experts that no token routes to are never read.
#include "vllm/backends/cpu/cpu_moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/backends/cpu/gemm.h"
#include "vllm/backends/cpu/vec.h"
#include "vllm/backends/moe_layout.h"
#include "vllm/core/error.h"

namespace vllm {

namespace cpu {

void moe_route(const float* logits, int64_t T, int64_t E, const MoeRouting& routing, int32_t* ids, float* weights) {
  const int64_t K = routing.top_k;
  VLLM_CHECK(K >= 1 && K <= E, "moe: top_k must be in [1, num_experts]");
  std::vector<double> p(static_cast<size_t>(E));
  std::vector<char> taken(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits + t * E;
    double mx = l[0];
    for (int64_t e = 1; e < E; ++e) mx = std::max<double>(mx, l[e]);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (p[static_cast<size_t>(e)] = std::exp(static_cast<double>(l[e]) - mx));
    for (auto& v : p) v /= sum;
    std::fill(taken.begin(), taken.end(), 0);
    double chosen = 0;
    for (int64_t k = 0; k < K; ++k) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e)
        if (!taken[static_cast<size_t>(e)] && (best < 0 || p[static_cast<size_t>(e)] > p[static_cast<size_t>(best)])) best = e;
      taken[static_cast<size_t>(best)] = 1;
      ids[t * K + k] = static_cast<int32_t>(best);
      chosen += p[static_cast<size_t>(best)];
    }
    for (int64_t k = 0; k < K; ++k) {
      double w = p[static_cast<size_t>(ids[t * K + k])];
      weights[t * K + k] = static_cast<float>(routing.renormalize ? w / chosen : w);
    }
  }
}

}  // namespace cpu

namespace {

// One packed gate/up [2I, H] and down [H, I] weight per expert, their float32 biases (if any)
// and the activation between them.
class CpuExpertWeights final : public ExpertWeights {
 public:
  CpuExpertWeights(std::vector<cpu::PackedWeight> gate_up, std::vector<cpu::PackedWeight> down, int64_t H, int64_t I,
                   Tensor gate_up_bias, Tensor down_bias, float swiglu_limit, float swiglu_alpha)
      : gate_up_(std::move(gate_up)), down_(std::move(down)), H_(H), I_(I), gate_up_bias_(std::move(gate_up_bias)),
        down_bias_(std::move(down_bias)), swiglu_limit_(swiglu_limit), swiglu_alpha_(swiglu_alpha) {
    for (size_t e = 0; e < gate_up_.size(); ++e) bytes_ += gate_up_[e].bytes() + down_[e].bytes();
    if (gate_up_bias_.defined()) bytes_ += gate_up_bias_.nbytes();
    if (down_bias_.defined()) bytes_ += down_bias_.nbytes();
  }
  int64_t num_experts() const override { return static_cast<int64_t>(gate_up_.size()); }
  int64_t hidden_size() const override { return H_; }
  int64_t intermediate_size() const override { return I_; }
  size_t bytes() const override { return bytes_; }
  const cpu::PackedWeight& gate_up(int64_t e) const { return gate_up_[static_cast<size_t>(e)]; }
  const cpu::PackedWeight& down(int64_t e) const { return down_[static_cast<size_t>(e)]; }
  const float* gate_up_bias(int64_t e) const {
    return gate_up_bias_.defined() ? gate_up_bias_.data<float>() + e * 2 * I_ : nullptr;
  }
  const float* down_bias(int64_t e) const { return down_bias_.defined() ? down_bias_.data<float>() + e * H_ : nullptr; }
  // out[I] = act(gate[I], up[I])
  void activate(float* out, const float* gate, const float* up) const {
    if (swiglu_limit_ > 0) {
      cpu::clamped_swiglu_row(out, gate, up, I_, swiglu_limit_, swiglu_alpha_);
    } else {
      cpu::silu_mul_row(out, gate, up, I_);
    }
  }

 private:
  std::vector<cpu::PackedWeight> gate_up_, down_;
  int64_t H_, I_;
  Tensor gate_up_bias_, down_bias_;
  float swiglu_limit_, swiglu_alpha_;
  size_t bytes_ = 0;
};

// Scratch of the calling thread, grown as needed and kept (the step thread calls moe()).
float* scratch(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

std::shared_ptr<ExpertWeights> CpuBackend::prepare_experts(const Tensor& gate_up, const Tensor& down,
                                                           const ExpertOptions& options) {
  VLLM_CHECK(gate_up.dim() == 3 && down.dim() == 3, "expert weights must be 3-D [experts, out, in]");
  const int64_t E = gate_up.size(0), I2 = gate_up.size(1), H = gate_up.size(2);
  VLLM_CHECK(I2 % 2 == 0 && down.size(0) == E && down.size(1) == H && down.size(2) == I2 / 2,
             "expert weights: gate_up [E, 2I, H] and down [E, H, I] disagree");
  VLLM_CHECK(!options.gate_up_bias.defined() || options.gate_up_bias.numel() == E * I2,
             "expert weights: gate_up bias must be [E, 2I]");
  VLLM_CHECK(!options.down_bias.defined() || options.down_bias.numel() == E * H, "expert weights: down bias must be [E, H]");
  VLLM_CHECK(options.swiglu_limit >= 0 && std::isfinite(options.swiglu_limit), "expert weights: swiglu limit");
  auto f32 = [](const Tensor& t) { return t.defined() ? t.to_dtype(DType::F32) : Tensor(); };
  std::vector<cpu::PackedWeight> gu, dn;
  for (int64_t e = 0; e < E; ++e) {
    Tensor g = gate_up.slice_rows(e, e + 1).view({I2, H});
    Tensor d = down.slice_rows(e, e + 1).view({H, I2 / 2});
    gu.push_back(cpu::PackedWeight::pack(g.dtype() == compute_dtype_ ? g : g.to_dtype(compute_dtype_), compute_dtype_));
    dn.push_back(cpu::PackedWeight::pack(d.dtype() == compute_dtype_ ? d : d.to_dtype(compute_dtype_), compute_dtype_));
  }
  return std::make_shared<CpuExpertWeights>(std::move(gu), std::move(dn), H, I2 / 2, f32(options.gate_up_bias),
                                            f32(options.down_bias), options.swiglu_limit, options.swiglu_alpha);
}

void CpuBackend::moe(Tensor& out, const Tensor& x, const LinearWeight& router, const ExpertWeights& experts,
                     const MoeRouting& routing) {
  const auto& ew = static_cast<const CpuExpertWeights&>(experts);
  VLLM_CHECK(x.dtype() == DType::F32 && out.dtype() == DType::F32, "moe: activations must be float32");
  const int64_t T = x.size(0), H = x.size(1), E = ew.num_experts(), I = ew.intermediate_size(), K = routing.top_k;
  VLLM_CHECK(H == ew.hidden_size() && out.size(0) == T && out.size(1) == H, "moe: activation shapes");
  VLLM_CHECK(router.in_features() == H && router.out_features() == E, "moe: router shape");
  if (T == 0) return;

  // Thread-local buffers: the lambdas below run on pool threads, so they use the raw pointers
  // taken here, never the thread_local names.
  thread_local std::vector<float> logits_buf, weights_buf, rows_buf, gu_buf, act_buf, y_buf;
  thread_local std::vector<int32_t> ids_buf;
  float* logits = scratch(logits_buf, T * E);
  Tensor logits_t(std::make_shared<Buffer>(logits, static_cast<size_t>(T * E) * 4, Device::kCPU, nullptr), 0,
                  DType::F32, {T, E});
  linear(logits_t, x, router);
  ids_buf.resize(static_cast<size_t>(T * K));
  const int32_t* ids = ids_buf.data();
  float* w = scratch(weights_buf, T * K);
  cpu::moe_route(logits, T, E, routing, ids_buf.data(), w);

  // Group the T*K assignments by expert (moe_layout.h: tokens in order within an expert);
  // layout.pos[a] is the row of assignment a in the expert outputs.
  const moe::ExpertLayout layout = moe::group_by_expert(ids, T, K, E);
  const std::vector<int32_t>& start = layout.offsets;
  const int32_t* order = layout.order.data();
  const std::vector<int32_t>& pos = layout.pos;

  float* rows = scratch(rows_buf, T * K * H);
  float* gu = scratch(gu_buf, T * K * 2 * I);
  float* act = scratch(act_buf, T * K * I);
  float* y = scratch(y_buf, T * K * H);
  const float* xd = x.data<float>();
  pool_.parallel_for(T * K, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      std::memcpy(rows + r * H, xd + (order[r] / K) * H, static_cast<size_t>(H) * 4);
  }, std::max<int64_t>(1, 16384 / H));
  for (int64_t e = 0; e < E; ++e) {
    const int64_t r0 = start[static_cast<size_t>(e)], n = start[static_cast<size_t>(e + 1)] - r0;
    if (n == 0) continue;  // not routed to: its weights stay untouched
    cpu::linear(rows + r0 * H, n, H, ew.gate_up(e), ew.gate_up_bias(e), gu + r0 * 2 * I, 2 * I, pool_);
    pool_.parallel_for(n, [&](int, int64_t b, int64_t end) {
      for (int64_t r = r0 + b; r < r0 + end; ++r) ew.activate(act + r * I, gu + r * 2 * I, gu + r * 2 * I + I);
    }, std::max<int64_t>(1, 16384 / I));
    cpu::linear(act + r0 * I, n, I, ew.down(e), ew.down_bias(e), y + r0 * H, H, pool_);
  }
  // Each token's weighted sum, in ascending expert order (as transformers' loop over experts).
  float* o = out.data<float>();
  pool_.parallel_for(T, [&](int, int64_t b, int64_t end) {
    std::vector<int64_t> slots(static_cast<size_t>(K));
    for (int64_t t = b; t < end; ++t) {
      for (int64_t k = 0; k < K; ++k) slots[static_cast<size_t>(k)] = t * K + k;
      std::sort(slots.begin(), slots.end(),
                [&](int64_t a1, int64_t a2) { return ids[a1] < ids[a2]; });
      float* ot = o + t * H;
      std::memset(ot, 0, static_cast<size_t>(H) * 4);
      for (int64_t a : slots) cpu::axpy_f32(ot, w[a], y + pos[static_cast<size_t>(a)] * H, H);
    }
  }, std::max<int64_t>(1, 16384 / (H * K)));
}

}  // namespace vllm
