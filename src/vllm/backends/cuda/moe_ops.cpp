// CudaBackend::moe: routing, grouping and the experts' products (moe.cu), and the routing state
// the op tests read back.
#include "vllm/backends/cuda/backend_impl.h"

namespace vllm {

using namespace cuda_detail;

namespace {
// Router logits in float32 (a skinny kernel for a few tokens, else cuBLASLt with a float32
// output), then routing and grouping: everything moe() needs before the experts' products.
void moe_route(CudaBackend::Impl& I, DType dt, const cuda::MoeBuffers& b, const Tensor& x, const CudaLinearWeight& router,
               const MoeRouting& routing) {
  const int64_t T = x.size(0), H = x.size(1), E = router.out_features();
  // GPT-OSS's router has a bias (in the compute dtype, as every linear's).
  const void* bias = router.bias().defined() ? router.bias().raw() : nullptr;
  if (T <= cuda::kMoeRouterMaxTokens) {
    cuda::moe_router_logits(dt, b.logits, x.raw(), router.weight().raw(), bias, T, E, H, I.stream);
  } else {
    // cuBLASLt's bias epilogue needs the output in the bias's dtype: the bias follows apart.
    I.gemm->run(dt, b.logits, x.raw(), router.weight().raw(), nullptr, T, E, H, DType::F32);
    if (bias) cuda::moe_router_bias(dt, b.logits, bias, T, E, I.stream);
  }
  cuda::moe_route_and_group(b, T, E, routing.top_k, routing.renormalize, I.stream);
}

// The checks moe() and moe_routing_state() share.
void check_moe_args(const Tensor& x, const CudaLinearWeight& router, int64_t E, const MoeRouting& routing) {
  VLLM_CHECK(x.dim() == 2 && router.in_features() == x.size(1) && router.out_features() == E, "moe: router shape");
  VLLM_CHECK(!router.bias().defined() || router.bias().numel() == E, "moe: the router's bias must be [E]");
  VLLM_CHECK(!router.is_fp8(), "moe: an FP8 router (routers stay float, as in vLLM)");
  VLLM_CHECK(!router.is_gguf(), "moe: a quantized GGUF router (routers stay float)");
  if (routing.top_k < 1 || routing.top_k > E)
    throw Error("moe: top_k (" + std::to_string(routing.top_k) + ") must be between 1 and the number of experts (" +
                std::to_string(E) + ")");
  if (E > cuda::kMoeMaxExperts || routing.top_k > cuda::kMoeMaxTopK)
    throw Error("mixture-of-experts layers with more than " + std::to_string(cuda::kMoeMaxExperts) + " experts or top_k above " +
                    std::to_string(cuda::kMoeMaxTopK) + " are not supported on the CUDA backend",
                ErrorKind::kUnsupported);
}
}  // namespace

void CudaBackend::moe(Tensor& out, const Tensor& x, const LinearWeight& lrouter, const ExpertWeights& lexperts,
                      const MoeRouting& routing) {
  Impl& I = *impl_;
  const DType dt = compute_dtype_;
  const auto& router = static_cast<const CudaLinearWeight&>(lrouter);
  const auto& ex = static_cast<const CudaExpertWeights&>(lexperts);
  check_act(out, dt, "moe output");
  check_act(x, dt, "moe input");
  const int64_t T = x.size(0), H = ex.hidden_size(), E = ex.num_experts(), Iw = ex.intermediate_size(), K = routing.top_k;
  VLLM_CHECK(x.dim() == 2 && x.size(1) == H && out.dim() == 2 && out.size(0) == T && out.size(1) == H,
             "moe: activation shapes");
  check_moe_args(x, router, E, routing);
  if (T == 0) return;
  const MoeScratchLayout L(T, E, K, H, Iw, dtype_size(dt));
  char* base = I.moe_scratch_for(L.bytes);
  I.keep(out), I.keep(x);
  const cuda::MoeBuffers b = L.buffers(base);
  moe_route(I, dt, b, x, router, routing);

  void* act = base + L.act;
  void* y = base + L.y;
  cuda::MoeProduct up, down;
  up.out = act, up.in = x.raw(), up.w = ex.gate_up().raw(), up.gated = true, up.gather = true, up.N = Iw, up.Kd = H;
  up.bias = ex.gate_up_bias(), up.swiglu_limit = ex.swiglu_limit(), up.swiglu_alpha = ex.swiglu_alpha();
  down.out = y, down.in = act, down.w = ex.down().raw(), down.N = H, down.Kd = Iw, down.bias = ex.down_bias();
  const bool tiles = T * K >= I.moe_gemm_min_rows * E && cuda::moe_gemm_supported(dt, up) && cuda::moe_gemm_supported(dt, down);
  if (tiles) {
    cuda::moe_expert_gemm(dt, up, b, T, E, K, I.stream);
    cuda::moe_expert_gemm(dt, down, b, T, E, K, I.stream);
  } else {
    cuda::moe_expert_gemv(dt, up, b, T, E, K, I.stream);
    cuda::moe_expert_gemv(dt, down, b, T, E, K, I.stream);
  }
  cuda::moe_combine(dt, out.raw(), y, b, T, K, H, I.stream);
}

CudaBackend::MoeRoutingState CudaBackend::moe_routing_state(const Tensor& x, const LinearWeight& lrouter, int64_t E,
                                                            const MoeRouting& routing) {
  Impl& I = *impl_;
  const auto& router = static_cast<const CudaLinearWeight&>(lrouter);
  check_act(x, compute_dtype_, "moe input");
  check_moe_args(x, router, E, routing);
  const int64_t T = x.size(0), H = x.size(1), K = routing.top_k, n = T * K;
  MoeRoutingState st;
  st.tile_rows = cuda::kMoeTileRows;
  if (T == 0) return st;
  const MoeScratchLayout L(T, E, K, H, 1, dtype_size(compute_dtype_));
  char* base = I.moe_scratch_for(L.bytes);
  const cuda::MoeBuffers b = L.buffers(base);
  moe_route(I, compute_dtype_, b, x, router, routing);
  st.ids = I.copy_back<int32_t>(b.ids, n);
  st.weights = I.copy_back<float>(b.weights, n);
  st.layout.counts = I.copy_back<int32_t>(b.counts, E);
  st.layout.offsets = I.copy_back<int32_t>(b.offsets, E + 1);
  st.layout.tile_starts = I.copy_back<int32_t>(b.tile_starts, E + 1);
  const int32_t num_active = I.copy_back<int32_t>(b.num_active, 1)[0];
  VLLM_CHECK(num_active >= 0 && num_active <= E, "moe: active expert count out of range");
  st.layout.active = I.copy_back<int32_t>(b.active, num_active);
  st.layout.order = I.copy_back<int32_t>(b.order, n);
  st.layout.pos = I.copy_back<int32_t>(b.pos, n);
  return st;
}

}  // namespace vllm
