// CudaBackend: construction, memory (device tensors, uploads, downloads), weights, and the
// element-wise and matrix ops. The rest: moe_ops.cpp, attention_ops.cpp, step.cpp.
#include "vllm/backends/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "vllm/backends/cuda/backend_impl.h"
#include "vllm/backends/cuda/kernels.h"
#include "vllm/backends/cuda/linear.h"
#include "vllm/core/error.h"
#include "vllm/core/logging.h"

namespace vllm {

namespace cuda {

bool g_pdl = false;

void fail(const std::string& message) { throw Error("CUDA backend: " + message, ErrorKind::kInternal); }

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    const bool oom = err == cudaErrorMemoryAllocation;
    throw Error(std::string(oom ? "CUDA out of memory in " : "CUDA error in ") + what + ": " + cudaGetErrorString(err),
                oom ? ErrorKind::kInvalidArgument : ErrorKind::kInternal);
  }
}

void check_launch(const char* what) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string("CUDA kernel ") + what + " failed: " + cudaGetErrorString(err), ErrorKind::kInternal);
}

}  // namespace cuda

using cuda::check;
using namespace cuda_detail;

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

CudaBackend::CudaBackend(DType compute_dtype, int device) : compute_dtype_(compute_dtype), impl_(std::make_unique<Impl>()) {
  if (compute_dtype != DType::F32 && compute_dtype != DType::BF16 && compute_dtype != DType::F16)
    throw Error("compute dtype must be float32, bfloat16 or float16");
  const int n = cuda_device_count();
  if (device < 0 || device >= n)
    throw Error("CUDA device " + std::to_string(device) + " is not visible (" + std::to_string(n) + " devices)",
                ErrorKind::kUnsupported);
  Impl& I = *impl_;
  I.device = device;
  check(cudaSetDevice(device), "cudaSetDevice");
  I.ctx = std::make_shared<StreamContext>();
  I.ctx->device = device;
  check(cudaStreamCreateWithFlags(&I.ctx->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  I.stream = I.ctx->stream;
  check(cudaDeviceGetAttribute(&I.num_sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  cudaMemPool_t pool;
  check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  uint64_t threshold = UINT64_MAX;  // keep freed memory in the pool: per-step allocations stay cheap
  check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), "cudaMemPoolSetAttribute");
  check(cudaHostAlloc(reinterpret_cast<void**>(&I.staging), I.staging_cap, cudaHostAllocDefault), "cudaHostAlloc(staging)");
  I.gemm = std::make_unique<cuda::LtGemm>(I.stream);
  if (const char* e = std::getenv("VLLM_CUDA_GEMV")) I.use_gemv = std::string(e) != "0";
  if (const char* e = std::getenv("VLLM_CUDA_FP8")) I.use_fp8 = std::string(e) != "0";
  if (const char* e = std::getenv("VLLM_CUDA_GGUF")) I.use_gguf = std::string(e) != "0";
  if (const char* e = std::getenv("VLLM_MOE_GEMM_ROWS"); e && *e) I.moe_gemm_min_rows = std::max(0LL, std::atoll(e));
  cudaDeviceProp prop{};
  const bool have_prop = cudaGetDeviceProperties(&prop, device) == cudaSuccess;
  const char* pdl = std::getenv("VLLM_CUDA_PDL");
  cuda::g_pdl = have_prop && prop.major >= 9 && !(pdl && std::string(pdl) == "0");
  if (have_prop)
    VLLM_LOG_INFO("CUDA backend on {} ({} SMs, {:.1f} GiB), compute dtype {}", prop.name, I.num_sms,
                  static_cast<double>(prop.totalGlobalMem) / (1 << 30), dtype_name(compute_dtype));
}

CudaBackend::~CudaBackend() = default;

// ---------------------------------------------------------------------------------------------
// Memory

Tensor CudaBackend::empty(const Shape& shape, DType dtype) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(impl_->alloc(bytes), 0, dtype, shape);
}

Tensor CudaBackend::upload(const Tensor& src, DType dtype) {
  Impl& I = *impl_;
  Tensor out = empty(src.shape(), dtype);
  if (src.numel() == 0) return out;
  if (src.device() == Device::kCUDA) {
    if (src.dtype() == dtype) {
      check(cudaMemcpyAsync(out.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToDevice, I.stream), "cudaMemcpyAsync(D2D)");
    } else {
      VLLM_CHECK(is_float(src.dtype()) && is_float(dtype), "device conversion between float types only");
      cuda::convert(out.raw(), dtype, src.raw(), src.dtype(), src.numel(), I.stream);
    }
    return out;
  }
  if (src.dtype() == dtype) {
    I.copy_h2d(out.raw(), src.raw(), src.nbytes());
  } else if (is_float(src.dtype()) && is_float(dtype)) {
    // Copy as stored, convert on the GPU: no converted host copy of (possibly memory-mapped) weights.
    Tensor tmp = empty(src.shape(), src.dtype());
    I.copy_h2d(tmp.raw(), src.raw(), src.nbytes());
    cuda::convert(out.raw(), dtype, tmp.raw(), src.dtype(), src.numel(), I.stream);
  } else {
    Tensor conv = src.to_dtype(dtype);
    I.copy_h2d(out.raw(), conv.raw(), conv.nbytes());
  }
  return out;
}

Tensor CudaBackend::download_f32(const Tensor& t) {
  Impl& I = *impl_;
  if (t.device() == Device::kCPU) return t.dtype() == DType::F32 ? t : t.to_dtype(DType::F32);
  const int64_t n = t.numel();
  VLLM_CHECK(!I.capturing, "download_f32 during a graph capture");
  if (!is_float(t.dtype())) {
    auto buf = Buffer::host(t.nbytes());
    check(cudaMemcpyAsync(buf->data(), t.raw(), t.nbytes(), cudaMemcpyDeviceToHost, I.stream), "cudaMemcpyAsync(D2H)");
    I.sync();
    return Tensor(buf, 0, t.dtype(), t.shape()).to_dtype(DType::F32);
  }
  const void* src = t.raw();
  Tensor conv;
  if (t.dtype() != DType::F32) {
    conv = empty({n}, DType::F32);
    cuda::convert(conv.raw(), DType::F32, t.raw(), t.dtype(), n, I.stream);
    src = conv.raw();
  }
  auto host = I.pinned->get(static_cast<size_t>(n) * 4);
  if (n > 0)
    check(cudaMemcpyAsync(host->data(), src, static_cast<size_t>(n) * 4, cudaMemcpyDeviceToHost, I.stream),
          "cudaMemcpyAsync(D2H)");
  I.sync();
  return Tensor(host, 0, DType::F32, t.shape());
}

void CudaBackend::fill_zero(Tensor& t) {
  if (t.device() == Device::kCPU) {
    std::memset(t.raw(), 0, t.nbytes());
    return;
  }
  impl_->keep(t);
  check(cudaMemsetAsync(t.raw(), 0, t.nbytes(), impl_->stream), "cudaMemsetAsync");
}

void CudaBackend::synchronize() { impl_->sync(); }

size_t CudaBackend::available_kv_bytes(double util) {
  Impl& I = *impl_;
  I.sync();
  cudaMemPool_t pool;
  check(cudaDeviceGetDefaultMemPool(&pool, I.device), "cudaDeviceGetDefaultMemPool");
  check(cudaMemPoolTrimTo(pool, 0), "cudaMemPoolTrimTo");  // freed memory counts as free
  size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  const double used = static_cast<double>(total_b - free_b);
  // Room for what comes later: graphs' logits, cuBLASLt plans, fragmentation.
  const double reserve = 512.0 * (1 << 20);
  const double budget = util * static_cast<double>(total_b) - used - reserve;
  VLLM_LOG_INFO("GPU memory: {:.2f} GiB total, {:.2f} GiB in use after profiling, {:.2f} GiB for the KV cache at "
                "--gpu-memory-utilization {}",
                total_b / double(1 << 30), used / double(1 << 30), std::max(0.0, budget) / double(1 << 30), util);
  return budget > 0 ? static_cast<size_t>(budget) : 0;
}

// ---------------------------------------------------------------------------------------------
// Weights

std::shared_ptr<LinearWeight> CudaBackend::prepare_linear(const Tensor& w, const Tensor& bias) {
  VLLM_CHECK(w.dim() == 2, "linear weight must be 2-D");
  Tensor dw = upload(w, compute_dtype_);
  Tensor db;
  if (bias.defined()) {
    VLLM_CHECK(bias.numel() == w.size(0), "bias size must match the weight's rows");
    db = upload(bias.view({w.size(0)}), compute_dtype_);
  }
  return std::make_shared<CudaLinearWeight>(std::move(dw), std::move(db));
}

Tensor CudaBackend::prepare_embedding(const Tensor& table) { return upload(table, compute_dtype_); }

Tensor CudaBackend::prepare_vector(const Tensor& v) { return upload(v, DType::F32); }

std::shared_ptr<ExpertWeights> CudaBackend::prepare_experts(const Tensor& gate_up, const Tensor& down,
                                                            const ExpertOptions& options) {
  VLLM_CHECK(gate_up.dim() == 3 && down.dim() == 3, "expert weights must be 3-D [experts, out, in]");
  const int64_t E = gate_up.size(0), I2 = gate_up.size(1), H = gate_up.size(2);
  VLLM_CHECK(I2 % 2 == 0 && down.size(0) == E && down.size(1) == H && down.size(2) == I2 / 2,
             "expert weights: gate_up [E, 2I, H] and down [E, H, I] disagree");
  VLLM_CHECK(!options.gate_up_bias.defined() || options.gate_up_bias.numel() == E * I2,
             "expert weights: gate_up bias must be [E, 2I]");
  VLLM_CHECK(!options.down_bias.defined() || options.down_bias.numel() == E * H, "expert weights: down bias must be [E, H]");
  VLLM_CHECK(options.swiglu_limit >= 0 && std::isfinite(options.swiglu_limit), "expert weights: swiglu limit");
  // GPT-OSS's biases stay float32, as the CPU adds them to its float32 sums.
  auto f32 = [&](const Tensor& b) { return b.defined() ? upload(b, DType::F32) : Tensor(); };
  return std::make_shared<CudaExpertWeights>(upload(gate_up, compute_dtype_), upload(down, compute_dtype_),
                                             f32(options.gate_up_bias), f32(options.down_bias), options.swiglu_limit,
                                             options.swiglu_alpha);
}

// ---------------------------------------------------------------------------------------------
// Ops

void CudaBackend::embedding(Tensor& out, const Tensor& ids, const Tensor& table) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "embedding output");
  check_dev(ids, DType::I32, "token ids");
  check_act(table, compute_dtype_, "embedding table");
  I.keep(out), I.keep(ids), I.keep(table);
  const int64_t T = ids.numel(), H = table.size(1);
  VLLM_CHECK(out.numel() == T * H, "embedding output shape");
  cuda::gather_rows(out.raw(), table.raw(), ids.data<int32_t>(), T, table.size(0),
                    H * static_cast<int64_t>(dtype_size(compute_dtype_)), I.stream);
}

void CudaBackend::linear(Tensor& out, const Tensor& x, const LinearWeight& lw) {
  Impl& I = *impl_;
  const auto& w = static_cast<const CudaLinearWeight&>(lw);
  check_act(out, compute_dtype_, "linear output");
  check_act(x, compute_dtype_, "linear input");
  const int64_t M = x.size(0), K = x.size(1), N = w.out_features();
  VLLM_CHECK(K == w.in_features() && out.size(0) == M && out.size(1) == N, "linear shapes");
  I.keep(out), I.keep(x);
  if (w.is_fp8()) return fp8_linear(I, compute_dtype_, out, x, w);
  if (w.is_gguf()) return gguf_linear(I, compute_dtype_, out, x, w);
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
  if (I.use_gemv && cuda::gemv_supported(compute_dtype_, M, N, K, x.raw(), w.weight().raw()))
    cuda::gemv(compute_dtype_, out.raw(), x.raw(), w.weight().raw(), bias, M, N, K, I.stream);
  else
    I.gemm->run(compute_dtype_, out.raw(), x.raw(), w.weight().raw(), bias, M, N, K);
}

void CudaBackend::linear_gelu_new(Tensor& out, const Tensor& x, const LinearWeight& lw) {
  Impl& I = *impl_;
  const auto& w = static_cast<const CudaLinearWeight&>(lw);
  const int64_t M = x.size(0), K = x.size(1), N = w.out_features();
  const bool fused = w.is_fp8()    ? fp8_gemv_applies(I, compute_dtype_, x, w)
                     : w.is_gguf() ? gguf_gemv_applies(I, compute_dtype_, x, w)
                                   : I.use_gemv && cuda::gemv_supported(compute_dtype_, M, N, K, x.raw(), w.weight().raw());
  if (!fused) return Backend::linear_gelu_new(out, x, lw);
  check_act(out, compute_dtype_, "linear output");
  check_act(x, compute_dtype_, "linear input");
  VLLM_CHECK(K == w.in_features() && out.size(0) == M && out.size(1) == N, "linear shapes");
  I.keep(out), I.keep(x);
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
  if (w.is_fp8())
    cuda::gemv_fp8(compute_dtype_, out.raw(), x.raw(), w.fp8(), bias, M, N, K, I.stream, cuda::GemvEpilogue::kGelu);
  else if (w.is_gguf())
    gguf_linear(I, compute_dtype_, out, x, w, cuda::GemvEpilogue::kGelu);
  else
    cuda::gemv(compute_dtype_, out.raw(), x.raw(), w.weight().raw(), bias, M, N, K, I.stream, cuda::GemvEpilogue::kGelu);
}

void CudaBackend::layer_norm_qkv_mlp_up(Tensor& x, Tensor& qkv, Tensor& up, const Tensor& hidden,
                                        const Tensor& norm_w, const Tensor& norm_b, float eps,
                                        const LinearWeight& lw_qkv, const LinearWeight& lw_up) {
  Impl& I = *impl_;
  const auto& wq = static_cast<const CudaLinearWeight&>(lw_qkv);
  const auto& wu = static_cast<const CudaLinearWeight&>(lw_up);
  // FP8 and GGUF weights take the separate steps (the norm, then their skinny products).
  if (wq.is_fp8() || wu.is_fp8() || wq.is_gguf() || wu.is_gguf())
    return Backend::layer_norm_qkv_mlp_up(x, qkv, up, hidden, norm_w, norm_b, eps, lw_qkv, lw_up);
  const int64_t M = hidden.size(0), K = hidden.size(1);
  cuda::GemvNormPair a;
  a.x = hidden.raw();
  a.eps = eps;
  a.out1 = qkv.raw();
  a.w1 = wq.weight().raw();
  a.bias1 = wq.bias().defined() ? wq.bias().raw() : nullptr;
  a.n1 = wq.out_features();
  a.out2 = up.raw();
  a.w2 = wu.weight().raw();
  a.bias2 = wu.bias().defined() ? wu.bias().raw() : nullptr;
  a.n2 = wu.out_features();
  if (!I.use_gemv || wq.in_features() != K || wu.in_features() != K || norm_w.numel() != K ||
      !cuda::gemv_norm_pair_supported(compute_dtype_, M, K, a))
    return Backend::layer_norm_qkv_mlp_up(x, qkv, up, hidden, norm_w, norm_b, eps, lw_qkv, lw_up);
  check_act(hidden, compute_dtype_, "layer_norm input");
  check_act(qkv, compute_dtype_, "qkv output");
  check_act(up, compute_dtype_, "mlp up output");
  check_dev(norm_w, DType::F32, "layer_norm weight");
  check_dev(norm_b, DType::F32, "layer_norm bias");
  VLLM_CHECK(qkv.size(0) == M && qkv.size(1) == a.n1 && up.size(0) == M && up.size(1) == a.n2,
             "layer_norm_qkv_mlp_up shapes");
  I.keep(hidden), I.keep(qkv), I.keep(up);
  a.norm_w = norm_w.data<float>();
  a.norm_b = norm_b.data<float>();
  cuda::gemv_norm_pair(compute_dtype_, a, M, K, I.stream);
}

void CudaBackend::linear_add_residual(Tensor& residual, Tensor& scratch, const Tensor& x, const LinearWeight& lw,
                                      const Tensor& other) {
  Impl& I = *impl_;
  const auto& w = static_cast<const CudaLinearWeight&>(lw);
  const int64_t M = x.size(0), K = x.size(1), N = w.out_features();
  const bool fused = w.is_fp8()    ? fp8_gemv_applies(I, compute_dtype_, x, w)
                     : w.is_gguf() ? gguf_gemv_applies(I, compute_dtype_, x, w)
                                   : I.use_gemv && cuda::gemv_supported(compute_dtype_, M, N, K, x.raw(), w.weight().raw());
  if (!fused) return Backend::linear_add_residual(residual, scratch, x, lw, other);
  check_act(residual, compute_dtype_, "residual");
  check_act(other, compute_dtype_, "residual addend");
  check_act(x, compute_dtype_, "linear input");
  VLLM_CHECK(K == w.in_features() && residual.size(0) == M && residual.size(1) == N && other.numel() == M * N,
             "linear_add_residual shapes");
  I.keep(residual), I.keep(other), I.keep(x);
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
  if (w.is_fp8())
    cuda::gemv_fp8(compute_dtype_, residual.raw(), x.raw(), w.fp8(), bias, M, N, K, I.stream,
                   cuda::GemvEpilogue::kResidual, other.raw());
  else if (w.is_gguf())
    gguf_linear(I, compute_dtype_, residual, x, w, cuda::GemvEpilogue::kResidual, &other);
  else
    cuda::gemv(compute_dtype_, residual.raw(), x.raw(), w.weight().raw(), bias, M, N, K, I.stream,
               cuda::GemvEpilogue::kResidual, other.raw());
}

void CudaBackend::layer_norm(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "layer_norm output");
  check_act(x, compute_dtype_, "layer_norm input");
  check_dev(weight, DType::F32, "layer_norm weight");
  check_dev(bias, DType::F32, "layer_norm bias");
  I.keep(out), I.keep(x);
  const int64_t H = weight.numel();
  cuda::layer_norm(compute_dtype_, out.raw(), x.raw(), weight.data<float>(), bias.data<float>(), x.numel() / H, H, eps,
                   I.stream);
}

void CudaBackend::rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "rms_norm output");
  check_act(x, compute_dtype_, "rms_norm input");
  check_dev(weight, DType::F32, "rms_norm weight");
  I.keep(out), I.keep(x);
  const int64_t H = weight.numel();
  cuda::rms_norm(compute_dtype_, out.raw(), x.raw(), weight.data<float>(), x.numel() / H, H, eps, I.stream);
}

void CudaBackend::add_rms_norm(Tensor& out, Tensor& residual, const Tensor& x, const Tensor& weight, float eps) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "add_rms_norm output");
  check_act(residual, compute_dtype_, "add_rms_norm residual");
  check_act(x, compute_dtype_, "add_rms_norm input");
  check_dev(weight, DType::F32, "add_rms_norm weight");
  I.keep(out), I.keep(residual), I.keep(x);
  const int64_t H = weight.numel();
  cuda::add_rms_norm(compute_dtype_, out.raw(), residual.raw(), x.raw(), weight.data<float>(), x.numel() / H, H, eps,
                     I.stream);
}

void CudaBackend::add(Tensor& out, const Tensor& a, const Tensor& b) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "add output");
  check_act(a, compute_dtype_, "add input");
  check_act(b, compute_dtype_, "add input");
  I.keep(out), I.keep(a), I.keep(b);
  cuda::add(compute_dtype_, out.raw(), a.raw(), b.raw(), out.numel(), I.stream);
}

void CudaBackend::rotary(Tensor& qkv, const Tensor& positions, const RotaryEmbedding& rope, const AttentionShape& s) {
  Impl& I = *impl_;
  check_act(qkv, compute_dtype_, "rotary qkv");
  check_dev(positions, DType::I32, "positions");
  check_dev(rope.inv_freq, DType::F32, "inv_freq");
  VLLM_CHECK(rope.rotary_dim <= s.head_dim && rope.rotary_dim / 2 <= 512, "rotary dimension");
  I.keep(qkv), I.keep(positions);
  cuda::rotary(compute_dtype_, qkv.raw(), positions.data<int32_t>(), rope.inv_freq.data<float>(), qkv.size(0),
               s.qkv_width(), s.num_heads + s.num_kv_heads, s.head_dim, rope.rotary_dim, I.stream);
}

void CudaBackend::qk_rms_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, const AttentionShape& s,
                              float eps) {
  Impl& I = *impl_;
  check_act(qkv, compute_dtype_, "qk_rms_norm qkv");
  check_dev(q_weight, DType::F32, "q_norm weight");
  check_dev(k_weight, DType::F32, "k_norm weight");
  I.keep(qkv);
  cuda::qk_rms_norm(compute_dtype_, qkv.raw(), q_weight.data<float>(), k_weight.data<float>(), qkv.size(0), s.num_heads,
                    s.num_kv_heads, s.head_dim, eps, I.stream);
}

void CudaBackend::gelu_new(Tensor& out, const Tensor& x) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "gelu output");
  check_act(x, compute_dtype_, "gelu input");
  I.keep(out), I.keep(x);
  cuda::gelu_new(compute_dtype_, out.raw(), x.raw(), x.numel(), I.stream);
}

void CudaBackend::silu_and_mul(Tensor& out, const Tensor& gate_up) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "silu_and_mul output");
  check_act(gate_up, compute_dtype_, "silu_and_mul input");
  I.keep(out), I.keep(gate_up);
  cuda::silu_and_mul(compute_dtype_, out.raw(), gate_up.raw(), out.size(0), out.size(1), I.stream);
}

void CudaBackend::gelu_tanh_and_mul(Tensor& out, const Tensor& gate_up) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "gelu_tanh_and_mul output");
  check_act(gate_up, compute_dtype_, "gelu_tanh_and_mul input");
  VLLM_CHECK(out.dim() == 2 && gate_up.dim() == 2 && gate_up.size(0) == out.size(0) && gate_up.size(1) == 2 * out.size(1),
             "gelu_tanh_and_mul: gate_up must be [T, 2I] for out [T, I]");
  I.keep(out), I.keep(gate_up);
  cuda::gelu_tanh_and_mul(compute_dtype_, out.raw(), gate_up.raw(), out.size(0), out.size(1), I.stream);
}

void CudaBackend::scale(Tensor& x, float s) {
  Impl& I = *impl_;
  check_act(x, compute_dtype_, "scale input");
  I.keep(x);
  cuda::scale(compute_dtype_, x.raw(), s, x.numel(), I.stream);
}

void CudaBackend::softcap(Tensor& x, float cap) {
  Impl& I = *impl_;
  check_act(x, compute_dtype_, "softcap input");
  VLLM_CHECK(cap > 0, "softcap: the cap must be positive");
  I.keep(x);
  cuda::softcap(compute_dtype_, x.raw(), cap, x.numel(), I.stream);
}

void CudaBackend::gather_rows(Tensor& out, const Tensor& x, const Tensor& rows) {
  Impl& I = *impl_;
  check_act(out, compute_dtype_, "gather_rows output");
  check_act(x, compute_dtype_, "gather_rows input");
  check_dev(rows, DType::I32, "gather_rows rows");
  I.keep(out), I.keep(x), I.keep(rows);
  const int64_t cols = x.size(1);
  cuda::gather_rows(out.raw(), x.raw(), rows.data<int32_t>(), rows.numel(), x.size(0),
                    cols * static_cast<int64_t>(dtype_size(compute_dtype_)), I.stream);
}

}  // namespace vllm
