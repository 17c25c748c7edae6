#include "vllm/backends/cpu/cpu_backend.h"

#include <cmath>
#include <cstring>

#include "vllm/backends/cpu/gemm.h"
#include "vllm/backends/cpu/quant_gemm.h"
#include "vllm/backends/cpu/vec.h"
#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"

namespace vllm {

namespace {

// A CPU linear weight: y = x · Wᵀ + b on float32 activations, however W is stored.
class CpuLinear : public LinearWeight {
 public:
  virtual void apply(const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy, ThreadPool& pool) const = 0;
};

// W repacked in the compute dtype for the GEMM kernels (gemm.h).
class CpuLinearWeight final : public CpuLinear {
 public:
  CpuLinearWeight(cpu::PackedWeight w, Tensor bias) : w_(std::move(w)), bias_(std::move(bias)) {}
  int64_t out_features() const override { return w_.n(); }
  int64_t in_features() const override { return w_.k(); }
  size_t bytes() const override { return w_.bytes() + (bias_.defined() ? bias_.nbytes() : 0); }
  void apply(const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy, ThreadPool& pool) const override {
    cpu::linear(x, M, ldx, w_, bias_.defined() ? bias_.data<float>() : nullptr, y, ldy, pool);
  }

 private:
  cpu::PackedWeight w_;
  Tensor bias_;
};

// W as row segments of GGUF types (a GGUF file's q, k and v may differ in type): quantized ones
// kept as the file stores them and multiplied by the int8 kernels (quant_gemm.h), others packed
// for the GEMM kernels. Each segment writes its own columns of y.
class CpuQuantLinearWeight final : public CpuLinear {
 public:
  struct Segment {
    int64_t col0 = 0;
    gguf::QuantizedMatrix quantized;  // set for types the int8 kernels take
    cpu::PackedWeight packed;         // else
  };
  CpuQuantLinearWeight(std::vector<Segment> segments, int64_t n, int64_t k, Tensor bias, cpu::QuantIsa isa)
      : segments_(std::move(segments)), n_(n), k_(k), bias_(std::move(bias)), isa_(isa) {}
  int64_t out_features() const override { return n_; }
  int64_t in_features() const override { return k_; }
  size_t bytes() const override {
    size_t b = bias_.defined() ? bias_.nbytes() : 0;
    for (const auto& s : segments_) b += s.packed.empty() ? s.quantized.data.nbytes() : s.packed.bytes();
    return b;
  }
  void apply(const float* x, int64_t M, int64_t ldx, float* y, int64_t ldy, ThreadPool& pool) const override {
    for (const auto& s : segments_) {
      const float* b = bias_.defined() ? bias_.data<float>() + s.col0 : nullptr;
      if (s.packed.empty())
        cpu::quant_linear(x, M, ldx, s.quantized, b, y + s.col0, ldy, isa_, pool);
      else
        cpu::linear(x, M, ldx, s.packed, b, y + s.col0, ldy, pool);
    }
  }

 private:
  std::vector<Segment> segments_;
  int64_t n_, k_;
  Tensor bias_;
  cpu::QuantIsa isa_;
};

// Row-parallel loop over the pool with a grain that keeps tiny tensors on one thread.
template <typename F>
void for_rows(ThreadPool& pool, int64_t rows, int64_t row_cost, F&& fn) {
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(row_cost, 1));
  pool.parallel_for(rows, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) fn(r);
  }, grain);
}

void check_f32(const Tensor& t, const char* what) {
  VLLM_CHECK(t.dtype() == DType::F32 && t.device() == Device::kCPU, std::string(what) + " must be a float32 host tensor");
}

}  // namespace

CpuBackend::CpuBackend(DType compute_dtype, ThreadPool& pool) : compute_dtype_(compute_dtype), pool_(pool) {
  if (compute_dtype != DType::F32 && compute_dtype != DType::BF16 && compute_dtype != DType::F16)
    throw Error("compute dtype must be float32, bfloat16 or float16");
}

CpuBackend::CpuBackend(DType compute_dtype, int num_threads)
    : compute_dtype_(compute_dtype), own_pool_(std::make_unique<ThreadPool>(num_threads)), pool_(*own_pool_) {
  if (compute_dtype != DType::F32 && compute_dtype != DType::BF16 && compute_dtype != DType::F16)
    throw Error("compute dtype must be float32, bfloat16 or float16");
}

Tensor CpuBackend::download_f32(const Tensor& t) {
  if (t.dtype() == DType::F32) return t;  // already host float32; callers copy what they keep
  return t.to_dtype(DType::F32);
}

void CpuBackend::fill_zero(Tensor& t) { std::memset(t.raw(), 0, t.nbytes()); }

std::shared_ptr<LinearWeight> CpuBackend::prepare_linear(const Tensor& w, const Tensor& bias) {
  VLLM_CHECK(w.dim() == 2, "linear weight must be 2-D");
  Tensor converted = w.dtype() == compute_dtype_ ? w : w.to_dtype(compute_dtype_);
  Tensor b;
  if (bias.defined()) {
    VLLM_CHECK(bias.numel() == w.size(0), "bias size must match the weight's rows");
    b = bias.to_dtype(DType::F32);
  }
  return std::make_shared<CpuLinearWeight>(cpu::PackedWeight::pack(converted, compute_dtype_), std::move(b));
}

std::shared_ptr<LinearWeight> CpuBackend::prepare_quantized_linear(const std::vector<gguf::QuantizedMatrix>& parts,
                                                                   const Tensor& bias) {
  VLLM_CHECK(!parts.empty(), "a linear weight has at least one part");
  const int64_t k = parts[0].cols;
  int64_t n = 0;
  for (const auto& p : parts) {
    VLLM_CHECK(p.cols == k, "the parts of a linear weight have one width");
    n += p.rows();
  }
  Tensor b;
  if (bias.defined()) {
    VLLM_CHECK(bias.numel() == n, "bias size must match the weight's rows");
    b = bias.to_dtype(DType::F32);
  }
  // Runs of consecutive parts that go the same way become one segment: a run of one quantized
  // type (concatenated; a single part stays where it is, in the file's mapping), or a run of
  // anything else, dequantized and packed in the compute dtype.
  std::vector<CpuQuantLinearWeight::Segment> segments;
  int64_t row = 0;
  for (size_t i = 0; i < parts.size();) {
    const bool quantized = cpu::quant_type_supported(parts[i].type);
    size_t j = i + 1;
    while (j < parts.size() && (quantized ? parts[j].type == parts[i].type : !cpu::quant_type_supported(parts[j].type))) ++j;
    std::vector<gguf::QuantizedMatrix> run(parts.begin() + static_cast<std::ptrdiff_t>(i),
                                           parts.begin() + static_cast<std::ptrdiff_t>(j));
    CpuQuantLinearWeight::Segment seg;
    seg.col0 = row;
    if (quantized) {
      seg.quantized = gguf::QuantizedMatrix::concat_rows(run);
      row += seg.quantized.rows();
    } else {
      int64_t rows = 0;
      for (const auto& p : run) rows += p.rows();
      Tensor w = Tensor::empty({rows, k}, DType::F32);
      int64_t at = 0;
      for (const auto& p : run) {
        Tensor d = p.dequantize();
        std::memcpy(w.data<float>() + at * k, d.data<float>(), d.nbytes());
        at += p.rows();
      }
      seg.packed = cpu::PackedWeight::pack(w.to_dtype(compute_dtype_), compute_dtype_);
      row += rows;
    }
    segments.push_back(std::move(seg));
    i = j;
  }
  return std::make_shared<CpuQuantLinearWeight>(std::move(segments), n, k, std::move(b),
                                                cpu::quant_isa_for(cpu::detect_isa()));
}

Tensor CpuBackend::prepare_embedding(const Tensor& table) {
  // The table stays in the compute dtype (half the memory for bf16); rows are widened on gather.
  return table.to_dtype(compute_dtype_);
}

Tensor CpuBackend::prepare_quantized_embedding(const gguf::QuantizedMatrix& table) {
  if (!gguf::ggml_type_is_quantized(table.type)) return prepare_embedding(table.dequantize());
  VLLM_CHECK(gguf::ggml_type_supported(table.type), "embedding table type");
  std::lock_guard<std::mutex> lock(quantized_tables_mutex_);
  quantized_tables_[table.data.raw()] = table.type;
  return table.data;
}

void CpuBackend::embedding(Tensor& out, const Tensor& ids, const Tensor& table) {
  embed(out, ids, table, 0, false);
}

void CpuBackend::vocab_parallel_embedding(Tensor& out, const Tensor& ids, const Tensor& table, int64_t first_id) {
  embed(out, ids, table, first_id, true);
}

void CpuBackend::embed(Tensor& out, const Tensor& ids, const Tensor& table, int64_t first_id, bool zeros_outside) {
  check_f32(out, "embedding output");
  const int64_t T = ids.numel(), H = out.size(1), V = table.size(0);
  gguf::GgmlType block_type = gguf::GgmlType::kF32;
  if (table.dtype() == DType::U8) {
    std::lock_guard<std::mutex> lock(quantized_tables_mutex_);
    const auto it = quantized_tables_.find(table.raw());
    VLLM_CHECK(it != quantized_tables_.end(), "a U8 embedding table comes from prepare_quantized_embedding");
    block_type = it->second;
    VLLM_CHECK(static_cast<size_t>(table.size(1)) == gguf::ggml_row_bytes(block_type, H), "embedding table width");
  } else {
    VLLM_CHECK(table.size(1) == H, "embedding table width");
  }
  const int32_t* id = ids.data<int32_t>();
  for_rows(pool_, T, H, [&](int64_t t) {
    const int64_t row = id[t] - first_id;
    float* o = out.data<float>() + t * H;
    if (zeros_outside && (row < 0 || row >= V)) {  // another rank's share of the vocabulary
      std::memset(o, 0, static_cast<size_t>(H) * 4);
      return;
    }
    VLLM_CHECK(row >= 0 && row < V, "token id out of range");
    switch (table.dtype()) {
      case DType::F32: std::memcpy(o, table.data<float>() + row * H, static_cast<size_t>(H) * 4); break;
      case DType::BF16: cpu::bf16_to_f32_row(o, table.data<uint16_t>() + row * H, H); break;
      case DType::F16: cpu::f16_to_f32_row(o, table.data<uint16_t>() + row * H, H); break;
      case DType::U8:
        gguf::dequantize_row(block_type, table.data<uint8_t>() + static_cast<size_t>(row) * static_cast<size_t>(table.size(1)),
                             o, H);
        // As a table dequantized at load and kept in the compute dtype would give the row.
        if (compute_dtype_ == DType::BF16)
          for (int64_t i = 0; i < H; ++i) o[i] = bf16_to_f32(f32_to_bf16(o[i]));
        else if (compute_dtype_ == DType::F16)
          for (int64_t i = 0; i < H; ++i) o[i] = f16_to_f32(f32_to_f16(o[i]));
        break;
      default: VLLM_CHECK(false, "embedding table dtype");
    }
  });
}

void CpuBackend::linear(Tensor& out, const Tensor& x, const LinearWeight& w) {
  const auto& cw = static_cast<const CpuLinear&>(w);
  check_f32(out, "linear output");
  check_f32(x, "linear input");
  const int64_t M = x.size(0);
  VLLM_CHECK(x.size(1) == cw.in_features() && out.size(1) == cw.out_features() && out.size(0) == M, "linear shapes");
  cw.apply(x.data<float>(), M, x.size(1), out.data<float>(), out.size(1), pool_);
}

void CpuBackend::layer_norm(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const int64_t H = weight.numel(), rows = x.numel() / H;
  const float* w = weight.data<float>();
  const float* b = bias.data<float>();
  for_rows(pool_, rows, H, [&](int64_t r) {
    const float* xi = x.data<float>() + r * H;
    float* o = out.data<float>() + r * H;
    double mean = 0;
    for (int64_t i = 0; i < H; ++i) mean += xi[i];
    mean /= static_cast<double>(H);
    double var = 0;
    for (int64_t i = 0; i < H; ++i) var += (xi[i] - mean) * (xi[i] - mean);
    var /= static_cast<double>(H);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < H; ++i) o[i] = (xi[i] - m) * inv * w[i] + b[i];
  });
}

namespace {
void rms_norm_row(float* o, const float* xi, const float* w, int64_t H, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < H; ++i) ss += static_cast<double>(xi[i]) * xi[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(H) + eps));
  for (int64_t i = 0; i < H; ++i) o[i] = xi[i] * inv * w[i];
}
}  // namespace

void CpuBackend::rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
  const int64_t H = weight.numel(), rows = x.numel() / H;
  for_rows(pool_, rows, H, [&](int64_t r) {
    rms_norm_row(out.data<float>() + r * H, x.data<float>() + r * H, weight.data<float>(), H, eps);
  });
}

void CpuBackend::add_rms_norm(Tensor& out, Tensor& residual, const Tensor& x, const Tensor& weight, float eps) {
  const int64_t H = weight.numel(), rows = x.numel() / H;
  for_rows(pool_, rows, H, [&](int64_t r) {
    float* res = residual.data<float>() + r * H;
    const float* xi = x.data<float>() + r * H;
    for (int64_t i = 0; i < H; ++i) res[i] += xi[i];
    rms_norm_row(out.data<float>() + r * H, res, weight.data<float>(), H, eps);
  });
}

void CpuBackend::add(Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t n = out.numel();
  const int64_t cols = out.dim() == 2 ? out.size(1) : n;
  for_rows(pool_, n / cols, cols, [&](int64_t r) {
    float* o = out.data<float>() + r * cols;
    const float* pa = a.data<float>() + r * cols;
    const float* pb = b.data<float>() + r * cols;
    for (int64_t i = 0; i < cols; ++i) o[i] = pa[i] + pb[i];
  });
}

void CpuBackend::rotary(Tensor& qkv, const Tensor& positions, const RotaryEmbedding& rope, const AttentionShape& s) {
  const int64_t T = qkv.size(0), width = s.qkv_width(), half = rope.rotary_dim / 2;
  const int64_t heads = s.num_heads + s.num_kv_heads;  // query and key heads are contiguous
  const float* inv_freq = rope.inv_freq.data<float>();
  const int32_t* pos = positions.data<int32_t>();
  for_rows(pool_, T, heads * s.head_dim, [&](int64_t t) {
    float cs[512], sn[512];
    VLLM_CHECK(half <= 512, "rotary dimension too large");
    for (int64_t i = 0; i < half; ++i) {
      // Angles in float32, as transformers computes them.
      float angle = static_cast<float>(pos[t]) * inv_freq[i];
      cs[i] = std::cos(angle);
      sn[i] = std::sin(angle);
    }
    float* row = qkv.data<float>() + t * width;
    for (int64_t h = 0; h < heads; ++h) {
      float* x = row + h * s.head_dim;
      for (int64_t i = 0; i < half; ++i) {
        float x1 = x[i], x2 = x[i + half];
        x[i] = x1 * cs[i] - x2 * sn[i];
        x[i + half] = x2 * cs[i] + x1 * sn[i];
      }
    }
  });
}

void CpuBackend::qk_rms_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, const AttentionShape& s,
                             float eps) {
  const int64_t T = qkv.size(0), width = s.qkv_width(), hd = s.head_dim;
  for_rows(pool_, T, width, [&](int64_t t) {
    float* row = qkv.data<float>() + t * width;
    for (int64_t h = 0; h < s.num_heads; ++h) rms_norm_row(row + h * hd, row + h * hd, q_weight.data<float>(), hd, eps);
    for (int64_t h = s.num_heads; h < s.num_heads + s.num_kv_heads; ++h)
      rms_norm_row(row + h * hd, row + h * hd, k_weight.data<float>(), hd, eps);
  });
}

void CpuBackend::gelu_new(Tensor& out, const Tensor& x) {
  const int64_t cols = x.size(1);
  for_rows(pool_, x.size(0), cols, [&](int64_t r) {
    cpu::gelu_tanh_row(out.data<float>() + r * cols, x.data<float>() + r * cols, cols);
  });
}

void CpuBackend::silu_and_mul(Tensor& out, const Tensor& gate_up) {
  const int64_t I = out.size(1);
  for_rows(pool_, out.size(0), I, [&](int64_t r) {
    const float* g = gate_up.data<float>() + r * 2 * I;
    cpu::silu_mul_row(out.data<float>() + r * I, g, g + I, I);
  });
}

void CpuBackend::gelu_tanh_and_mul(Tensor& out, const Tensor& gate_up) {
  const int64_t I = out.size(1);
  for_rows(pool_, out.size(0), I, [&](int64_t r) {
    const float* g = gate_up.data<float>() + r * 2 * I;
    cpu::gelu_tanh_mul_row(out.data<float>() + r * I, g, g + I, I);
  });
}

void CpuBackend::scale(Tensor& x, float s) {
  check_f32(x, "scale input");
  const int64_t cols = x.dim() == 2 ? x.size(1) : x.numel();
  for_rows(pool_, x.numel() / cols, cols, [&](int64_t r) {
    float* row = x.data<float>() + r * cols;
    for (int64_t i = 0; i < cols; ++i) row[i] *= s;
  });
}

void CpuBackend::softcap(Tensor& x, float cap) {
  check_f32(x, "softcap input");
  VLLM_CHECK(cap > 0, "softcap: the cap must be positive");
  const int64_t cols = x.dim() == 2 ? x.size(1) : x.numel();
  for_rows(pool_, x.numel() / cols, cols, [&](int64_t r) {
    float* row = x.data<float>() + r * cols;
    for (int64_t i = 0; i < cols; ++i) row[i] = std::tanh(row[i] / cap) * cap;
  });
}

void CpuBackend::gather_rows(Tensor& out, const Tensor& x, const Tensor& rows) {
  const int64_t cols = x.size(1);
  const int32_t* idx = rows.data<int32_t>();
  for (int64_t r = 0; r < rows.numel(); ++r)
    std::memcpy(out.data<float>() + r * cols, x.data<float>() + static_cast<int64_t>(idx[r]) * cols,
                static_cast<size_t>(cols) * 4);
}

void CpuBackend::copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) {
  for (Tensor* t : {&cache.k, &cache.v}) {
    const int64_t num_blocks = t->size(0);
    const size_t block_bytes = t->nbytes() / static_cast<size_t>(num_blocks);  // a block is contiguous
    auto* base = static_cast<unsigned char*>(t->raw());
    for (const auto& [src, dst] : src_dst) {
      VLLM_CHECK(src >= 0 && src < num_blocks && dst >= 0 && dst < num_blocks, "copy_blocks: block out of range");
      if (src != dst)
        std::memcpy(base + static_cast<size_t>(dst) * block_bytes, base + static_cast<size_t>(src) * block_bytes,
                    block_bytes);
    }
  }
}

}  // namespace vllm
