// The CUDA backend's private parts, shared by its source files (cuda_backend.cpp: memory, weights
// and the element-wise ops; fp8_ops.cpp: FP8 linear layers; moe_ops.cpp; attention_ops.cpp:
// attention and its work planning; step.cpp: decode graphs and the device sampler): the stream,
// the staging and pinned buffers, the prepared weights, and CudaBackend::Impl.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vllm/backends/cuda/cuda_backend.h"
#include "vllm/backends/cuda/kernels.h"
#include "vllm/backends/cuda/linear.h"
#include "vllm/core/error.h"

namespace vllm {

namespace cuda_detail {

using cuda::check;

inline bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

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

// A linear layer's weight [N, K] on the device: in the compute dtype, or in FP8 (FP8 checkpoints,
// --quantization fp8: fp8_ops.cpp) as e4m3 bytes (U8) with float32 scales, cuda::Fp8Weight's two
// layouts: one scale per output row (per-tensor and per-channel checkpoints; fused parts with
// different per-tensor scales become rows of their own scales), or a grid of blocks block_cols
// wide with each output row's grid row in row_map (each fused part keeps its own grid rows).
// Or a GGUF file's blocks (gguf_ops.cpp): the bytes of its segments (U8, each segment at a
// 256-byte aligned offset) with their kinds and rows. The bias is in the compute dtype in every case.
class CudaLinearWeight final : public LinearWeight {
 public:
  struct Gguf {
    std::vector<cuda::GgufSegment> segments;  // pointers into the weight's bytes
    int64_t rows = 0, cols = 0;
  };
  struct Fp8Scales {
    Tensor scales;        // F32: [N] per row, or the block grid [grid rows, grid_cols]
    Tensor row_map;       // I32 [N] with blocks, else undefined
    int64_t block_cols = 0;  // 0: per row
    int64_t grid_cols = 0;
  };
  CudaLinearWeight(Tensor w, Tensor b) : w_(std::move(w)), b_(std::move(b)) {}
  CudaLinearWeight(Tensor w, Tensor b, Fp8Scales fp8) : w_(std::move(w)), b_(std::move(b)), fp8_(std::move(fp8)) {}
  CudaLinearWeight(Tensor bytes, Tensor b, Gguf gguf)
      : w_(std::move(bytes)), b_(std::move(b)), gguf_(std::move(gguf)), is_gguf_(true) {}
  int64_t out_features() const override { return is_gguf_ ? gguf_.rows : w_.size(0); }
  int64_t in_features() const override { return is_gguf_ ? gguf_.cols : w_.size(1); }
  size_t bytes() const override {
    size_t n = w_.nbytes() + (b_.defined() ? b_.nbytes() : 0);
    if (fp8_.scales.defined()) n += fp8_.scales.nbytes();
    if (fp8_.row_map.defined()) n += fp8_.row_map.nbytes();
    return n;
  }
  const Tensor& weight() const { return w_; }
  const Tensor& bias() const { return b_; }
  bool is_fp8() const { return !is_gguf_ && w_.dtype() == DType::U8; }
  bool is_gguf() const { return is_gguf_; }
  const Gguf& gguf() const { return gguf_; }
  // The kernels' view of an FP8 weight.
  cuda::Fp8Weight fp8() const {
    cuda::Fp8Weight f;
    f.w = static_cast<const uint8_t*>(w_.raw());
    f.scales = fp8_.scales.data<float>();
    f.row_map = fp8_.row_map.defined() ? fp8_.row_map.data<int32_t>() : nullptr;
    f.block_cols = fp8_.block_cols;
    f.grid_cols = fp8_.grid_cols;
    return f;
  }

 private:
  Tensor w_, b_;
  Fp8Scales fp8_;
  Gguf gguf_;
  bool is_gguf_ = false;
};

// The experts of one layer on the device, in the compute dtype, laid out as given: gate_up
// [E, 2I, H] (each expert's gate rows, then its up rows) and down [E, H, I], so that an expert's
// rows are one contiguous stretch for its products.
class CudaExpertWeights final : public ExpertWeights {
 public:
  // Biases: float32 on the device, [E, 2I] and [E, H], or undefined; swiglu_limit > 0: the
  // clamped SwiGLU (ExpertOptions).
  CudaExpertWeights(Tensor gate_up, Tensor down, Tensor gate_up_bias = Tensor(), Tensor down_bias = Tensor(),
                    float swiglu_limit = 0.0f, float swiglu_alpha = 1.702f)
      : gate_up_(std::move(gate_up)), down_(std::move(down)), gate_up_bias_(std::move(gate_up_bias)),
        down_bias_(std::move(down_bias)), swiglu_limit_(swiglu_limit), swiglu_alpha_(swiglu_alpha) {}
  int64_t num_experts() const override { return gate_up_.size(0); }
  int64_t hidden_size() const override { return gate_up_.size(2); }
  int64_t intermediate_size() const override { return down_.size(2); }
  size_t bytes() const override {
    return gate_up_.nbytes() + down_.nbytes() + (gate_up_bias_.defined() ? gate_up_bias_.nbytes() : 0) +
           (down_bias_.defined() ? down_bias_.nbytes() : 0);
  }
  const Tensor& gate_up() const { return gate_up_; }
  const Tensor& down() const { return down_; }
  const float* gate_up_bias() const { return gate_up_bias_.defined() ? gate_up_bias_.data<float>() : nullptr; }
  const float* down_bias() const { return down_bias_.defined() ? down_bias_.data<float>() : nullptr; }
  float swiglu_limit() const { return swiglu_limit_; }
  float swiglu_alpha() const { return swiglu_alpha_; }

 private:
  Tensor gate_up_, down_, gate_up_bias_, down_bias_;
  float swiglu_limit_, swiglu_alpha_;
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

// The checks the ops make of their tensors.
inline void check_act(const Tensor& t, DType dt, const char* what) {
  VLLM_CHECK(t.defined() && t.device() == Device::kCUDA && t.dtype() == dt,
             std::string(what) + " must be a CUDA tensor of the compute dtype");
}
inline void check_dev(const Tensor& t, DType dt, const char* what) {
  VLLM_CHECK(t.defined() && t.device() == Device::kCUDA && t.dtype() == dt, std::string(what) + ": wrong device or dtype");
}

}  // namespace cuda_detail

using cuda::check;

struct CudaBackend::Impl {
  using StreamContext = cuda_detail::StreamContext;
  using PinnedPool = cuda_detail::PinnedPool;
  using DecodeGraph = cuda_detail::DecodeGraph;
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
  // FP8 linear layers (fp8_ops.cpp): whether FP8 weights stay in FP8 (VLLM_CUDA_FP8=0 dequantizes
  // them at load instead, the baseline of FP8 measurements); the scratch of their products
  // (activations quantized per token, or a weight dequantized for W8A16), grown to the largest
  // step's, never while capturing; and the path the last FP8 product took (for the op tests).
  bool use_fp8 = true;
  Tensor fp8_scratch;
  CudaBackend::Fp8LinearPath fp8_last_path = CudaBackend::Fp8LinearPath::kNone;
  // GGUF linear layers (gguf_ops.cpp): whether quantized GGUF weights stay in their blocks
  // (VLLM_CUDA_GGUF=0 dequantizes them at load instead, the baseline of their measurements), and
  // the path the last product on one took (for the op tests). Their products at many rows
  // dequantize the weight into fp8_scratch (the one scratch of dequantized weights).
  bool use_gguf = true;
  CudaBackend::GgufLinearPath gguf_last_path = CudaBackend::GgufLinearPath::kNone;
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

  char* fp8_scratch_for(size_t bytes) {
    if (!fp8_scratch.defined() || fp8_scratch.nbytes() < bytes) {
      VLLM_CHECK(capturing == nullptr, "the FP8 scratch must not grow during graph capture");
      fp8_scratch = Tensor(alloc(bytes), 0, DType::U8, {static_cast<int64_t>(bytes)});
    }
    keep(fp8_scratch);
    return static_cast<char*>(fp8_scratch.raw());
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

namespace cuda_detail {

// FP8 linear layers (fp8_ops.cpp). Whether linear() on an FP8 weight takes the skinny FP8 product
// for x (few rows), which the fused decode steps reuse with their epilogues.
bool fp8_gemv_applies(const CudaBackend::Impl& I, DType dt, const Tensor& x, const CudaLinearWeight& w);
// out = x · Wᵀ + bias for an FP8 weight W (shapes and dtypes checked by the caller).
void fp8_linear(CudaBackend::Impl& I, DType dt, Tensor& out, const Tensor& x, const CudaLinearWeight& w);

// GGUF linear layers (gguf_ops.cpp). Whether linear() on a GGUF weight takes the skinny product
// (few rows), which the fused decode steps reuse with their epilogues.
bool gguf_gemv_applies(const CudaBackend::Impl& I, DType dt, const Tensor& x, const CudaLinearWeight& w);
// out = x · Wᵀ + bias for a GGUF weight W (shapes and dtypes checked by the caller); epi (and
// other) only where gguf_gemv_applies.
void gguf_linear(CudaBackend::Impl& I, DType dt, Tensor& out, const Tensor& x, const CudaLinearWeight& w,
                 cuda::GemvEpilogue epi = cuda::GemvEpilogue::kNone, const Tensor* other = nullptr);

}  // namespace cuda_detail

}  // namespace vllm
