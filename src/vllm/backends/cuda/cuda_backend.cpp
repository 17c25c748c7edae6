#include "vllm/backends/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

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

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

namespace {

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The stream and the state that device-buffer deleters need; outlives the backend while any
// device tensor does.
struct StreamContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  bool capturing = false;
  std::vector<void*> deferred_frees;  // frees requested while a graph was being captured
  ~StreamContext() {
    if (stream) {
      cudaSetDevice(device);
      cudaStreamSynchronize(stream);
      cudaStreamDestroy(stream);
    }
  }
};

// Page-locked host buffers for downloads, recycled when the tensors that hold them die.
class PinnedPool : public std::enable_shared_from_this<PinnedPool> {
 public:
  ~PinnedPool() {
    for (auto& [size, p] : free_) cudaFreeHost(p);
  }
  std::shared_ptr<Buffer> get(size_t bytes) {
    size_t cap = std::max<size_t>((bytes + (size_t{1} << 20) - 1) >> 20 << 20, size_t{1} << 20);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.lower_bound(cap);
      if (it != free_.end() && it->first <= 2 * cap) {
        cap = it->first;
        p = it->second;
        free_.erase(it);
      }
    }
    if (!p) check(cudaHostAlloc(&p, cap, cudaHostAllocDefault), "cudaHostAlloc");
    std::weak_ptr<PinnedPool> self = weak_from_this();
    return std::make_shared<Buffer>(p, bytes, Device::kCPU, [self, cap](void* q) {
      if (auto pool = self.lock()) {
        std::lock_guard<std::mutex> lock(pool->mu_);
        if (pool->free_.size() < 8) {
          pool->free_.emplace(cap, q);
          return;
        }
      }
      cudaFreeHost(q);
    });
  }

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
};

class CudaLinearWeight final : public LinearWeight {
 public:
  CudaLinearWeight(Tensor w, Tensor b) : w_(std::move(w)), b_(std::move(b)) {}
  int64_t out_features() const override { return w_.size(0); }
  int64_t in_features() const override { return w_.size(1); }
  size_t bytes() const override { return w_.nbytes() + (b_.defined() ? b_.nbytes() : 0); }
  const Tensor& weight() const { return w_; }
  const Tensor& bias() const { return b_; }

 private:
  Tensor w_, b_;
};

// The experts of one layer on the device, in the compute dtype, laid out as given: gate_up
// [E, 2I, H] (each expert's gate rows, then its up rows) and down [E, H, I], so that an expert's
// rows are one contiguous stretch for its products.
class CudaExpertWeights final : public ExpertWeights {
 public:
  CudaExpertWeights(Tensor gate_up, Tensor down) : gate_up_(std::move(gate_up)), down_(std::move(down)) {}
  int64_t num_experts() const override { return gate_up_.size(0); }
  int64_t hidden_size() const override { return gate_up_.size(2); }
  int64_t intermediate_size() const override { return down_.size(2); }
  size_t bytes() const override { return gate_up_.nbytes() + down_.nbytes(); }
  const Tensor& gate_up() const { return gate_up_; }
  const Tensor& down() const { return down_; }

 private:
  Tensor gate_up_, down_;
};

// Byte offsets of one moe() call's buffers in the backend's MoE scratch (256-byte aligned): the
// routing and layout (cuda::MoeBuffers), then the SwiGLU rows act [T*top_k, I] and the expert
// outputs y [T*top_k, H], both in sorted order and the compute dtype.
struct MoeScratchLayout {
  size_t logits = 0, ids = 0, weights = 0, counts = 0, offsets = 0, tile_starts = 0, active = 0, num_active = 0,
         order = 0, pos = 0, act = 0, y = 0, bytes = 0;
  MoeScratchLayout(int64_t T, int64_t E, int64_t K, int64_t H, int64_t I, size_t elem) {
    auto take = [&](int64_t count, size_t size) {
      const size_t at = bytes;
      bytes += (static_cast<size_t>(count) * size + 255) / 256 * 256;
      return at;
    };
    const int64_t n = T * K;
    logits = take(T * E, 4);
    ids = take(n, 4);
    weights = take(n, 4);
    counts = take(E, 4);
    offsets = take(E + 1, 4);
    tile_starts = take(E + 1, 4);
    active = take(E, 4);
    num_active = take(1, 4);
    order = take(n, 4);
    pos = take(n, 4);
    act = take(n * I, elem);
    y = take(n * H, elem);
  }
  cuda::MoeBuffers buffers(char* base) const {
    cuda::MoeBuffers b;
    b.logits = reinterpret_cast<float*>(base + logits);
    b.ids = reinterpret_cast<int32_t*>(base + ids);
    b.weights = reinterpret_cast<float*>(base + weights);
    b.counts = reinterpret_cast<int32_t*>(base + counts);
    b.offsets = reinterpret_cast<int32_t*>(base + offsets);
    b.tile_starts = reinterpret_cast<int32_t*>(base + tile_starts);
    b.active = reinterpret_cast<int32_t*>(base + active);
    b.num_active = reinterpret_cast<int32_t*>(base + num_active);
    b.order = reinterpret_cast<int32_t*>(base + order);
    b.pos = reinterpret_cast<int32_t*>(base + pos);
    return b;
  }
};

// A captured decode step for batches of up to `batch` sequences, with its static inputs.
struct DecodeGraph {
  int64_t batch = 0, block_size = 0, width = 0;
  Tensor ids, pos, slots, qsl, lens, tables, rows;
  Tensor logits;             // where a replay leaves the logits [batch, vocab]
  std::vector<Tensor> refs;  // every tensor the captured kernels touch stays allocated
  cudaGraphExec_t exec = nullptr;
  ~DecodeGraph() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

}  // namespace

struct CudaBackend::Impl {
  int device = 0;
  std::shared_ptr<StreamContext> ctx;
  cudaStream_t stream = nullptr;
  int num_sms = 0;
  // Host -> device staging (page-locked ring; reset whenever the stream has drained).
  char* staging = nullptr;
  size_t staging_cap = size_t{64} << 20, staging_head = 0;
  std::shared_ptr<PinnedPool> pinned = std::make_shared<PinnedPool>();
  std::unique_ptr<cuda::LtGemm> gemm;
  bool use_gemv = true;
  Tensor attn_partials;  // float32 scratch of split decode attention
  Tensor moe_scratch;    // bytes of MoeScratchLayout, grown to the largest step's (never while capturing)
  // moe(): grouped tensor-core tiles once the routed rows average this many per expert
  // (VLLM_MOE_GEMM_ROWS; 0 always takes the tiles, a huge value never), else grouped skinny products.
  // Measured on an H100, qwen3-30b-a3b decode (128 experts, top 8): at 2 rows per expert (batch
  // 32) the skinny products win, 1,053 against 922 tok/s; at 8 (batch 128) the tiles do, 3,121
  // against 1,590: the skinny kernel converts and multiplies every weight once per row, so past a
  // few rows it is bound by its arithmetic, not by the weights' bytes.
  int64_t moe_gemm_min_rows = 4;
  Tensor attn_counters;  // int32 completion counters of split decode attention (kept zeroed)
  // The last mixed batch's attention work lists (decode sequences, prefill tiles, generic tokens).
  struct StepLists {
    std::vector<int32_t> qsl, lens;
    int64_t head_dim = -1, n_dec = 0, n_tiles = 0, n_gen = 0, dec_max_len = 1;
    bool fast_decode = false, fast_prefill = false;
    Tensor device;
  } lists;
  // Graphs.
  bool graphs_enabled = false;
  int64_t graph_max_model_len = 0, graph_max_batch = 0;
  std::map<int64_t, std::unique_ptr<DecodeGraph>> graphs;
  DecodeGraph* capturing = nullptr;

  ~Impl() {
    graphs.clear();
    if (stream) cudaStreamSynchronize(stream);
    if (staging) cudaFreeHost(staging);
  }

  void sync() {
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    staging_head = 0;
  }

  std::shared_ptr<Buffer> alloc(size_t bytes) {
    const size_t n = (std::max<size_t>(bytes, 16) + 255) / 256 * 256;
    void* p = nullptr;
    cudaError_t err = cudaMallocAsync(&p, n, stream);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      sync();
      err = cudaMallocAsync(&p, n, stream);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw Error("CUDA out of memory allocating " + std::to_string(bytes) + " bytes (" + std::to_string(free_b >> 20) +
                      " MiB free of " + std::to_string(total_b >> 20) + " MiB): " + cudaGetErrorString(err),
                  ErrorKind::kInvalidArgument);
    }
    std::shared_ptr<StreamContext> c = ctx;
    return std::make_shared<Buffer>(p, bytes, Device::kCUDA, [c](void* q) {
      if (c->capturing) c->deferred_frees.push_back(q);
      else cudaFreeAsync(q, c->stream);
    });
  }

  void copy_h2d(void* dst, const void* src, size_t n) {
    const size_t chunk = staging_cap / 4;
    auto* d = static_cast<char*>(dst);
    auto* s = static_cast<const char*>(src);
    while (n > 0) {
      const size_t c = std::min(n, chunk);
      if (staging_head + c > staging_cap) sync();
      std::memcpy(staging + staging_head, s, c);
      check(cudaMemcpyAsync(d, staging + staging_head, c, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync(H2D)");
      staging_head += c;
      d += c;
      s += c;
      n -= c;
    }
  }

  void keep(const Tensor& t) {
    if (capturing && t.defined()) capturing->refs.push_back(t);
  }

  char* moe_scratch_for(size_t bytes) {
    if (!moe_scratch.defined() || moe_scratch.nbytes() < bytes) {
      VLLM_CHECK(capturing == nullptr, "the MoE scratch must not grow during graph capture");
      moe_scratch = Tensor(alloc(bytes), 0, DType::U8, {static_cast<int64_t>(bytes)});
    }
    keep(moe_scratch);
    return static_cast<char*>(moe_scratch.raw());
  }

  template <typename V>
  std::vector<V> copy_back(const void* src, int64_t n) {
    std::vector<V> out(static_cast<size_t>(n));
    if (n > 0)
      check(cudaMemcpyAsync(out.data(), src, static_cast<size_t>(n) * sizeof(V), cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(D2H)");
    sync();
    return out;
  }
};

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
  if (options.gate_up_bias.defined() || options.down_bias.defined() || options.swiglu_limit > 0)
    throw Error("experts with biases and a clamped SwiGLU (GPT-OSS) are not implemented on the " + name() +
                    " backend yet (run this model with --device cpu)",
                ErrorKind::kUnsupported);
  VLLM_CHECK(gate_up.dim() == 3 && down.dim() == 3, "expert weights must be 3-D [experts, out, in]");
  const int64_t E = gate_up.size(0), I2 = gate_up.size(1), H = gate_up.size(2);
  VLLM_CHECK(I2 % 2 == 0 && down.size(0) == E && down.size(1) == H && down.size(2) == I2 / 2,
             "expert weights: gate_up [E, 2I, H] and down [E, H, I] disagree");
  return std::make_shared<CudaExpertWeights>(upload(gate_up, compute_dtype_), upload(down, compute_dtype_));
}

// ---------------------------------------------------------------------------------------------
// Ops

namespace {
void check_act(const Tensor& t, DType dt, const char* what) {
  VLLM_CHECK(t.defined() && t.device() == Device::kCUDA && t.dtype() == dt,
             std::string(what) + " must be a CUDA tensor of the compute dtype");
}
void check_dev(const Tensor& t, DType dt, const char* what) {
  VLLM_CHECK(t.defined() && t.device() == Device::kCUDA && t.dtype() == dt, std::string(what) + ": wrong device or dtype");
}
}  // namespace

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
  if (!I.use_gemv || !cuda::gemv_supported(compute_dtype_, M, N, K, x.raw(), w.weight().raw()))
    return Backend::linear_gelu_new(out, x, lw);
  check_act(out, compute_dtype_, "linear output");
  check_act(x, compute_dtype_, "linear input");
  VLLM_CHECK(K == w.in_features() && out.size(0) == M && out.size(1) == N, "linear shapes");
  I.keep(out), I.keep(x);
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
  cuda::gemv(compute_dtype_, out.raw(), x.raw(), w.weight().raw(), bias, M, N, K, I.stream, cuda::GemvEpilogue::kGelu);
}

void CudaBackend::layer_norm_qkv_mlp_up(Tensor& x, Tensor& qkv, Tensor& up, const Tensor& hidden,
                                        const Tensor& norm_w, const Tensor& norm_b, float eps,
                                        const LinearWeight& lw_qkv, const LinearWeight& lw_up) {
  Impl& I = *impl_;
  const auto& wq = static_cast<const CudaLinearWeight&>(lw_qkv);
  const auto& wu = static_cast<const CudaLinearWeight&>(lw_up);
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
  if (!I.use_gemv || !cuda::gemv_supported(compute_dtype_, M, N, K, x.raw(), w.weight().raw()))
    return Backend::linear_add_residual(residual, scratch, x, lw, other);
  check_act(residual, compute_dtype_, "residual");
  check_act(other, compute_dtype_, "residual addend");
  check_act(x, compute_dtype_, "linear input");
  VLLM_CHECK(K == w.in_features() && residual.size(0) == M && residual.size(1) == N && other.numel() == M * N,
             "linear_add_residual shapes");
  I.keep(residual), I.keep(other), I.keep(x);
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
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

namespace {
// Router logits in float32 (a skinny kernel for a few tokens, else cuBLASLt with a float32
// output), then routing and grouping: everything moe() needs before the experts' products.
void moe_route(CudaBackend::Impl& I, DType dt, const cuda::MoeBuffers& b, const Tensor& x, const CudaLinearWeight& router,
               const MoeRouting& routing) {
  const int64_t T = x.size(0), H = x.size(1), E = router.out_features();
  if (T <= cuda::kMoeRouterMaxTokens)
    cuda::moe_router_logits(dt, b.logits, x.raw(), router.weight().raw(), T, E, H, I.stream);
  else
    I.gemm->run(dt, b.logits, x.raw(), router.weight().raw(), nullptr, T, E, H, DType::F32);
  cuda::moe_route_and_group(b, T, E, routing.top_k, routing.renormalize, I.stream);
}

// The checks moe() and moe_routing_state() share.
void check_moe_args(const Tensor& x, const CudaLinearWeight& router, int64_t E, const MoeRouting& routing) {
  VLLM_CHECK(x.dim() == 2 && router.in_features() == x.size(1) && router.out_features() == E, "moe: router shape");
  VLLM_CHECK(!router.bias().defined(), "moe: a router with a bias");
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
  down.out = y, down.in = act, down.w = ex.down().raw(), down.N = H, down.Kd = Iw;
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

void CudaBackend::copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) {
  Impl& I = *impl_;
  for (Tensor* t : {&cache.k, &cache.v}) {
    check_dev(*t, compute_dtype_, "copy_blocks cache");
    I.keep(*t);
    const int64_t num_blocks = t->size(0);
    const size_t block_bytes = t->nbytes() / static_cast<size_t>(num_blocks);  // a block is contiguous
    auto* base = static_cast<unsigned char*>(t->raw());
    // On the step's stream, so the copies land before the forward pass that follows reads them.
    for (const auto& [src, dst] : src_dst) {
      VLLM_CHECK(src >= 0 && src < num_blocks && dst >= 0 && dst < num_blocks, "copy_blocks: block out of range");
      if (src != dst)
        check(cudaMemcpyAsync(base + static_cast<size_t>(dst) * block_bytes, base + static_cast<size_t>(src) * block_bytes,
                              block_bytes, cudaMemcpyDeviceToDevice, I.stream),
              "cudaMemcpyAsync(copy_blocks)");
    }
  }
}

void CudaBackend::check_attention(const AttentionShape& s) const {
  auto refuse = [](const std::string& feature) {
    throw Error(feature + " is not implemented on the cuda backend yet (run this model with --device cpu)",
                ErrorKind::kUnsupported);
  };
  if (s.sliding_window > 0) refuse("sliding-window attention (window " + std::to_string(s.sliding_window) + ")");
  if (s.logit_softcap > 0) refuse("attention logit soft-capping");
  if (s.sinks.defined()) refuse("attention sinks");
}

void CudaBackend::attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                            const AttentionShape& s, float scale) {
  check_attention(s);
  Impl& I = *impl_;
  const DType dt = compute_dtype_;
  check_act(out, dt, "attention output");
  check_act(qkv, dt, "attention qkv");
  check_act(cache.k, dt, "K cache");
  check_act(cache.v, dt, "V cache");
  VLLM_CHECK(s.num_kv_heads > 0 && s.num_heads % s.num_kv_heads == 0, "query heads must be a multiple of KV heads");
  // Several KV cache groups come only with sliding-window layers, which check_attention refuses.
  VLLM_CHECK(cache.group == 0, "the CUDA backend runs one KV cache group");
  I.keep(out), I.keep(qkv), I.keep(cache.k), I.keep(cache.v);
  I.keep(in.slot_mapping), I.keep(in.seq_lens), I.keep(in.query_start_loc), I.keep(in.block_tables);
  const int64_t T = in.num_tokens, S = in.num_seqs, hd = s.head_dim;
  if (T == 0) return;

  cuda::AttentionArgs a;
  a.out = out.raw();
  a.qkv = qkv.raw();
  a.k_cache = cache.k.raw();
  a.v_cache = cache.v.raw();
  a.seq_lens = in.seq_lens.data<int32_t>();
  a.query_start_loc = in.query_start_loc.data<int32_t>();
  a.block_tables = in.block_tables.data<int32_t>();
  a.width = s.qkv_width();
  a.num_heads = s.num_heads;
  a.num_kv_heads = s.num_kv_heads;
  a.head_dim = hd;
  a.block_size = in.block_size;
  a.max_blocks_per_seq = in.max_blocks_per_seq;
  a.slot_mapping = in.slot_mapping.data<int64_t>();
  a.scale = scale;

  const bool aligned = aligned16(qkv.raw()) && aligned16(out.raw()) && aligned16(cache.k.raw()) &&
                       aligned16(cache.v.raw());
  const bool fast_decode = aligned && cuda::decode_supported(dt, hd);
  const bool fast_prefill = aligned && cuda::prefill_supported(dt, hd);
  const bool decode_only = in.max_query_len <= 1;
  if (!(decode_only && fast_decode))  // the decode kernel stores a decode batch's K/V itself
    cuda::kv_write(dt, cache.k.raw(), cache.v.raw(), qkv.raw(), in.slot_mapping.data<int64_t>(), T, s.qkv_width(),
                   s.num_heads, s.num_kv_heads, hd, in.block_size, I.stream);

  // Split-K decode over `n` sequences whose longest context is max_len.
  auto run_decode = [&](const int32_t* items, int64_t n, int64_t max_len, bool write_kv) {
    const int gmax = cuda::decode_heads_per_block(s.num_heads, s.num_kv_heads, n, I.num_sms);
    const int64_t grid_x = cuda::decode_grid_x(s.num_heads, s.num_kv_heads, gmax);
    const int64_t blocks = n * grid_x;
    const int64_t target = 4 * static_cast<int64_t>(I.num_sms);
    int64_t splits = blocks >= target ? 1 : (target + blocks - 1) / blocks;
    // At least 256 keys a partition for the longest sequence; the kernel cuts each sequence's own
    // context into at most this many.
    splits = std::max<int64_t>(1, std::min<int64_t>(splits, (max_len + 255) / 256));
    float* po = nullptr;
    float* pml = nullptr;
    int* counters = nullptr;
    if (splits > 1) {
      const int64_t need = n * s.num_heads * splits * (hd + 2);
      if (!I.attn_partials.defined() || I.attn_partials.numel() < need) {
        VLLM_CHECK(!I.capturing, "attention scratch must not grow during graph capture");
        I.attn_partials = empty({std::max<int64_t>(need, 1 << 20)}, DType::F32);
      }
      if (!I.attn_counters.defined() || I.attn_counters.numel() < n * grid_x) {
        VLLM_CHECK(!I.capturing, "attention counters must not grow during graph capture");
        I.attn_counters = empty({std::max<int64_t>(n * grid_x, 1 << 16)}, DType::I32);
        fill_zero(I.attn_counters);
      }
      I.keep(I.attn_partials);
      I.keep(I.attn_counters);
      po = I.attn_partials.data<float>();
      pml = po + n * s.num_heads * splits * hd;
      counters = I.attn_counters.data<int32_t>();
    }
    cuda::decode_attention(dt, a, items, n, splits, gmax, po, pml, counters, write_kv, I.stream);
  };

  if (decode_only) {  // every sequence has one new token (T == S)
    VLLM_CHECK(T == S, "a decode batch has one token per sequence");
    if (fast_decode) run_decode(nullptr, S, std::max<int64_t>(1, in.max_seq_len), true);
    else cuda::generic_attention(dt, a, nullptr, S, I.stream);
    return;
  }

  // Mixed batch: work lists built on the host from the step's host copies and uploaded in one
  // piece, once per step (every layer sees the same lists).
  VLLM_CHECK(static_cast<int64_t>(in.host_query_start_loc.size()) == S + 1, "host query_start_loc");
  Impl::StepLists& L = I.lists;
  if (!(L.qsl == in.host_query_start_loc && L.lens == in.host_seq_lens && L.head_dim == hd &&
        L.fast_decode == fast_decode && L.fast_prefill == fast_prefill)) {
    std::vector<int32_t> dec, tiles, gen;
    int64_t dec_max_len = 1;
    for (int64_t q = 0; q < S; ++q) {
      const int32_t b = in.host_query_start_loc[q], e = in.host_query_start_loc[q + 1];
      const int32_t qlen = e - b;
      if (qlen <= 0) continue;
      if (qlen == 1 && fast_decode) {
        dec.push_back(static_cast<int32_t>(q));
        dec_max_len = std::max<int64_t>(dec_max_len, in.host_seq_lens[q]);
      } else if (fast_prefill) {
        for (int32_t r = 0; r < qlen; r += cuda::kPrefillTileM) {
          tiles.push_back(static_cast<int32_t>(q));
          tiles.push_back(r);
        }
      } else {
        for (int32_t t = b; t < e; ++t) {
          gen.push_back(t);
          gen.push_back(static_cast<int32_t>(q));
        }
      }
    }
    Tensor lists = Tensor::empty({static_cast<int64_t>(dec.size() + tiles.size() + gen.size())}, DType::I32);
    std::copy(dec.begin(), dec.end(), lists.data<int32_t>());
    std::copy(tiles.begin(), tiles.end(), lists.data<int32_t>() + dec.size());
    std::copy(gen.begin(), gen.end(), lists.data<int32_t>() + dec.size() + tiles.size());
    L.device = upload(lists, DType::I32);
    L.qsl = in.host_query_start_loc;
    L.lens = in.host_seq_lens;
    L.head_dim = hd;
    L.fast_decode = fast_decode;
    L.fast_prefill = fast_prefill;
    L.n_dec = static_cast<int64_t>(dec.size());
    L.n_tiles = static_cast<int64_t>(tiles.size() / 2);
    L.n_gen = static_cast<int64_t>(gen.size() / 2);
    L.dec_max_len = dec_max_len;
  }
  Tensor dlists = L.device;
  const int32_t* base = dlists.data<int32_t>();
  if (L.n_tiles > 0) cuda::prefill_attention(dt, a, base + L.n_dec, L.n_tiles, I.stream);
  if (L.n_dec > 0) run_decode(base, L.n_dec, L.dec_max_len, false);
  if (L.n_gen > 0) cuda::generic_attention(dt, a, base + L.n_dec + 2 * L.n_tiles, L.n_gen, I.stream);
}

// ---------------------------------------------------------------------------------------------
// CUDA graphs of decode steps

void CudaBackend::configure_graphs(bool enable, int64_t max_model_len, int64_t max_batch) {
  Impl& I = *impl_;
  I.graphs_enabled = enable && max_model_len > 0 && max_batch > 0;
  if (const char* e = std::getenv("VLLM_CUDA_GRAPHS"); e && std::string(e) == "0") I.graphs_enabled = false;
  I.graph_max_model_len = max_model_len;
  I.graph_max_batch = std::min<int64_t>(max_batch, 512);
  I.graphs.clear();
}

namespace {
int64_t graph_batch_for(int64_t n, int64_t max_batch) {
  int64_t b;
  if (n <= 4) b = n <= 1 ? 1 : n <= 2 ? 2 : 4;
  else if (n <= 64) b = (n + 7) / 8 * 8;
  else if (n <= 128) b = (n + 15) / 16 * 16;
  else b = (n + 31) / 32 * 32;
  return std::min(b, max_batch);
}
}  // namespace

Tensor CudaBackend::forward_step(const ForwardInputs& in, const StepFunction& run) {
  Impl& I = *impl_;
  const int64_t S = in.num_seqs;
  if (!I.graphs_enabled || S == 0 || in.max_query_len != 1 || in.num_tokens != S || in.logits_indices.numel() != S ||
      S > I.graph_max_batch || in.block_size <= 0)
    return run(in);
  const int64_t width = (I.graph_max_model_len + in.block_size - 1) / in.block_size;
  if (in.max_blocks_per_seq > width) return run(in);
  const int64_t B = graph_batch_for(S, I.graph_max_batch);
  if (B < S) return run(in);

  auto it = I.graphs.find(B);
  DecodeGraph* g = it == I.graphs.end() ? nullptr : it->second.get();
  const bool fresh = g == nullptr || g->block_size != in.block_size;
  std::unique_ptr<DecodeGraph> made;
  if (fresh) {
    made = std::make_unique<DecodeGraph>();
    g = made.get();
    g->batch = B;
    g->block_size = in.block_size;
    g->width = width;
    g->ids = empty({B}, DType::I32);
    g->pos = empty({B}, DType::I32);
    g->slots = empty({B}, DType::I64);
    g->qsl = empty({B + 1}, DType::I32);
    g->lens = empty({B}, DType::I32);
    g->tables = empty({B, width}, DType::I32);
    g->rows = empty({B}, DType::I32);
    fill_zero(g->tables);
  }
  cuda::pack_decode_inputs(in.token_ids.data<int32_t>(), in.positions.data<int32_t>(), in.slot_mapping.data<int64_t>(),
                           in.seq_lens.data<int32_t>(), S, g->ids.data<int32_t>(), g->pos.data<int32_t>(),
                           g->slots.data<int64_t>(), g->qsl.data<int32_t>(), g->lens.data<int32_t>(),
                           g->rows.data<int32_t>(), B, I.stream);
  check(cudaMemcpy2DAsync(g->tables.raw(), static_cast<size_t>(width) * 4, in.block_tables.raw(),
                          static_cast<size_t>(in.max_blocks_per_seq) * 4, static_cast<size_t>(in.max_blocks_per_seq) * 4,
                          static_cast<size_t>(S), cudaMemcpyDeviceToDevice, I.stream),
        "cudaMemcpy2DAsync(block tables)");

  ForwardInputs sin;
  sin.num_tokens = B;
  sin.num_seqs = B;
  sin.max_query_len = 1;
  sin.max_seq_len = I.graph_max_model_len;
  sin.max_blocks_per_seq = width;
  sin.block_size = in.block_size;
  sin.token_ids = g->ids;
  sin.positions = g->pos;
  sin.slot_mapping = g->slots;
  sin.query_start_loc = g->qsl;
  sin.seq_lens = g->lens;
  sin.block_tables = g->tables;
  sin.logits_indices = g->rows;
  sin.host_query_start_loc.resize(static_cast<size_t>(B) + 1);
  for (int64_t i = 0; i <= B; ++i) sin.host_query_start_loc[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  sin.host_seq_lens.assign(static_cast<size_t>(B), static_cast<int32_t>(I.graph_max_model_len));

  if (fresh) {
    // This step runs eagerly on the static inputs (its results are the step's), sizing every
    // buffer; then the same work is captured.
    Tensor logits = run(sin);
    I.sync();
    I.capturing = g;
    I.ctx->capturing = true;
    cudaGraph_t graph = nullptr;
    cudaError_t err = cudaStreamBeginCapture(I.stream, cudaStreamCaptureModeThreadLocal);
    if (err == cudaSuccess) {
      try {
        g->logits = run(sin);
      } catch (...) {
        cudaStreamEndCapture(I.stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        I.capturing = nullptr;
        I.ctx->capturing = false;
        throw;
      }
      err = cudaStreamEndCapture(I.stream, &graph);
    }
    I.capturing = nullptr;
    I.ctx->capturing = false;
    for (void* p : I.ctx->deferred_frees) cudaFreeAsync(p, I.stream);
    I.ctx->deferred_frees.clear();
    if (err == cudaSuccess) err = cudaGraphInstantiate(&g->exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (err != cudaSuccess) {
      cudaGetLastError();
      VLLM_LOG_WARN("CUDA graph capture for decode batch {} failed ({}); running eagerly", B, cudaGetErrorString(err));
      I.graphs_enabled = false;
      I.graphs.clear();
      return logits.slice_rows(0, S);
    }
    I.graphs[B] = std::move(made);
    VLLM_LOG_DEBUG("captured a CUDA graph for decode batches of {}", B);
    return logits.slice_rows(0, S);
  }

  check(cudaGraphLaunch(g->exec, I.stream), "cudaGraphLaunch");
  return g->logits.slice_rows(0, S);
}

std::vector<int32_t> CudaBackend::sample_tokens(const Tensor& logits, std::span<const DeviceSamplingRow> rows,
                                                std::span<const uint32_t> masks) {
  Impl& I = *impl_;
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n == 0) return {};
  VLLM_CHECK(logits.device() == Device::kCUDA && logits.dim() == 2, "sample_tokens needs a 2-D device logits tensor");
  const int64_t vocab = logits.size(1), words = (vocab + 31) / 32;
  VLLM_CHECK(static_cast<int64_t>(masks.size()) % words == 0, "token bitmasks of the wrong width");
  for (const DeviceSamplingRow& r : rows)
    VLLM_CHECK(r.logits_row >= 0 && r.logits_row < logits.size(0) &&
                   r.mask_row < static_cast<int64_t>(masks.size()) / words,
               "a sampling row names a logits or mask row that is not there");
  Tensor dev_rows = empty({n * static_cast<int64_t>(sizeof(DeviceSamplingRow))}, DType::U8);
  I.copy_h2d(dev_rows.raw(), rows.data(), rows.size_bytes());
  Tensor dev_masks;
  if (!masks.empty()) {
    dev_masks = empty({static_cast<int64_t>(masks.size())}, DType::I32);
    I.copy_h2d(dev_masks.raw(), masks.data(), masks.size_bytes());
  }
  Tensor tokens = empty({n}, DType::I32);
  cuda::sample_rows(logits.dtype(), logits.raw(), vocab, static_cast<const DeviceSamplingRow*>(dev_rows.raw()), n,
                    dev_masks.defined() ? static_cast<const uint32_t*>(dev_masks.raw()) : nullptr, words,
                    tokens.data<int32_t>(), I.stream);
  return I.copy_back<int32_t>(tokens.raw(), n);
}

}  // namespace vllm
