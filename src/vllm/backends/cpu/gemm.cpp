// Packing, ISA dispatch and threading of the matrix products (gemm.h). Compiled for baseline
// x86-64: the vector code is in gemm_avx2.cpp / gemm_avx512.cpp, reached through function pointers.
#include "vllm/backends/cpu/gemm.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vllm/core/error.h"

namespace vllm::cpu {

using detail::GemmArgs;
using detail::GemmKernel;

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Packed weights of 4 MiB and more go on 2 MiB-aligned memory marked for transparent huge pages:
// the kernels stream them, and fewer TLB misses keep the stream going.
std::shared_ptr<void> allocate_packed(size_t bytes) {
  const bool huge = bytes >= (size_t{4} << 20);
  const size_t align = huge ? kHugePage : 64;
  const size_t rounded = static_cast<size_t>(round_up(static_cast<int64_t>(std::max<size_t>(bytes, 1)),
                                                      static_cast<int64_t>(align)));
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw Error("out of host memory packing a weight of " + std::to_string(bytes) + " bytes", ErrorKind::kInternal);
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

// One element of the source weight as float32.
float source_value(const void* base, DType dtype, size_t i) {
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return 0.0f;
  }
}

// Copies row n of the source [N, K] into panel position (column) `col` of the packed panel.
template <typename T>
void place_row(const void* src_row, DType src_dtype, DType dst_dtype, int64_t K, T* panel, int64_t nr, int64_t col,
               bool pairs) {
  for (int64_t k = 0; k < K; ++k) {
    T v;
    if (src_dtype == dst_dtype) {
      std::memcpy(&v, static_cast<const char*>(src_row) + k * sizeof(T), sizeof(T));
    } else {
      float f = source_value(src_row, src_dtype, static_cast<size_t>(k));
      if constexpr (sizeof(T) == 4) {
        v = f;
      } else {
        v = dst_dtype == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
      }
    }
    const int64_t at = pairs ? (k / 2) * 2 * nr + 2 * col + (k & 1) : k * nr + col;
    panel[at] = v;
  }
}

bool valid_weight_dtype(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

// Per-thread scratch for the bf16 copy of the activations.
struct Scratch {
  uint16_t* data = nullptr;
  size_t capacity = 0;  // elements
  ~Scratch() { std::free(data); }
  uint16_t* get(size_t elements) {
    if (elements > capacity) {
      std::free(data);
      size_t bytes = static_cast<size_t>(round_up(static_cast<int64_t>(elements * 2), 64));
      data = static_cast<uint16_t*>(std::aligned_alloc(64, bytes));
      if (!data) {
        capacity = 0;
        throw Error("out of host memory for the activation scratch", ErrorKind::kInternal);
      }
      capacity = elements;
    }
    return data;
  }
};
thread_local Scratch t_scratch;

// Tuning constants (see benchmarks/cpu/gemm_bench.cpp).
constexpr int64_t kKBlock = 1024;         // k per block when several row tiles share a weight block
// Below both of these, one thread does the whole product: waking the pool's workers costs
// ~5 us, as long as one thread takes to stream 256 KiB or to do ~2 MFLOP.
constexpr size_t kSerialBytes = size_t{256} << 10;
constexpr double kSerialFlops = 2.0e6;

}  // namespace

int64_t panel_width_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
    case Isa::kAvx512Bf16:
    case Isa::kAmxBf16: return 64;
    case Isa::kAvx2:
    case Isa::kScalar: return 16;
  }
  return 16;
}

namespace detail {

GemmKernel gemm_kernel(Isa isa, DType dtype) {
  switch (isa) {
    case Isa::kScalar: return scalar_kernel(dtype);
    case Isa::kAvx2: return avx2_kernel(dtype);
    case Isa::kAvx512: return avx512_kernel(dtype);
    case Isa::kAvx512Bf16: return avx512_bf16_kernel(dtype);
    case Isa::kAmxBf16: return dtype == DType::BF16 ? amx_bf16_kernel() : avx512_bf16_kernel(dtype);
  }
  return nullptr;
}

int64_t kernel_rows(Isa isa, DType dtype) {
  switch (isa) {
    case Isa::kScalar: return 4;
    case Isa::kAvx2: return 6;
    case Isa::kAvx512: return dtype == DType::BF16 ? 4 : 6;
    case Isa::kAvx512Bf16: return 6;
    case Isa::kAmxBf16: return dtype == DType::BF16 ? 16 : 6;  // one tile of rows
  }
  return 4;
}

}  // namespace detail

PackedWeight PackedWeight::pack(const Tensor& w, DType compute_dtype, Isa isa) {
  if (!w.defined() || w.device() != Device::kCPU || w.dim() != 2)
    throw Error("PackedWeight::pack: expected a 2-D host tensor [N, K]");
  if (!valid_weight_dtype(w.dtype()))
    throw Error("PackedWeight::pack: unsupported weight dtype " + std::string(dtype_name(w.dtype())));
  if (!valid_weight_dtype(compute_dtype))
    throw Error("PackedWeight::pack: unsupported compute dtype " + std::string(dtype_name(compute_dtype)));
  if (!isa_supported(isa))
    throw Error("PackedWeight::pack: this CPU cannot run " + std::string(isa_name(isa)) + " kernels",
                ErrorKind::kUnsupported);
  if (!detail::gemm_kernel(isa, compute_dtype))
    throw Error("PackedWeight::pack: " + std::string(isa_name(isa)) + " kernels are not built in",
                ErrorKind::kUnsupported);

  PackedWeight pw;
  pw.n_ = w.size(0);
  pw.k_ = w.size(1);
  pw.dtype_ = compute_dtype;
  pw.isa_ = isa;
  pw.nr_ = panel_width_for(isa);
  pw.panels_ = ceil_div(pw.n_, pw.nr_);
  const bool pairs = compute_dtype == DType::BF16;
  pw.kp_ = pairs ? round_up(pw.k_, isa == Isa::kAmxBf16 ? 32 : 2) : pw.k_;
  const size_t esize = dtype_size(compute_dtype);
  pw.bytes_ = static_cast<size_t>(pw.panels_ * pw.kp_ * pw.nr_) * esize;
  pw.storage_ = allocate_packed(pw.bytes_);
  pw.data_ = pw.storage_.get();

  const int64_t N = pw.n_, K = pw.k_, nr = pw.nr_, kp = pw.kp_;
  const DType src_dtype = w.dtype();
  const char* src = static_cast<const char*>(w.raw());
  const size_t src_row_bytes = static_cast<size_t>(K) * dtype_size(src_dtype);
  char* dst = static_cast<char*>(pw.storage_.get());
  const size_t panel_bytes = static_cast<size_t>(kp * nr) * esize;
  auto fill = [&](int, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      char* panel = dst + static_cast<size_t>(p) * panel_bytes;
      std::memset(panel, 0, panel_bytes);
      for (int64_t col = 0; col < nr && p * nr + col < N; ++col) {
        const void* row = src + static_cast<size_t>(p * nr + col) * src_row_bytes;
        if (esize == 4)
          place_row(row, src_dtype, compute_dtype, K, reinterpret_cast<float*>(panel), nr, col, pairs);
        else
          place_row(row, src_dtype, compute_dtype, K, reinterpret_cast<uint16_t*>(panel), nr, col, pairs);
      }
    }
  };
  if (pw.bytes_ >= (size_t{1} << 20))
    ThreadPool::global().parallel_for(pw.panels_, fill);
  else
    fill(0, 0, pw.panels_);
  return pw;
}

Tensor PackedWeight::unpack() const {
  Tensor out = Tensor::empty({n_, k_}, DType::F32);
  float* o = out.data<float>();
  const bool pairs = dtype_ == DType::BF16;
  for (int64_t n = 0; n < n_; ++n) {
    const int64_t p = n / nr_, col = n % nr_;
    const size_t base = static_cast<size_t>(p * kp_ * nr_);
    for (int64_t k = 0; k < k_; ++k) {
      const size_t at = base + static_cast<size_t>(pairs ? (k / 2) * 2 * nr_ + 2 * col + (k & 1) : k * nr_ + col);
      float v;
      switch (dtype_) {
        case DType::F32: v = static_cast<const float*>(data_)[at]; break;
        case DType::F16: v = f16_to_f32(static_cast<const uint16_t*>(data_)[at]); break;
        default: v = bf16_to_f32(static_cast<const uint16_t*>(data_)[at]); break;
      }
      o[n * k_ + k] = v;
    }
  }
  return out;
}

void linear(const float* x, int64_t M, int64_t ldx, const PackedWeight& w, const float* bias, float* y, int64_t ldy,
            ThreadPool& pool) {
  if (w.empty()) throw Error("linear: empty weight");
  const int64_t N = w.n(), K = w.k();
  if (M < 0 || ldx < K || ldy < N)
    throw Error("linear: bad shape (M=" + std::to_string(M) + ", K=" + std::to_string(K) + ", ldx=" +
                std::to_string(ldx) + ", N=" + std::to_string(N) + ", ldy=" + std::to_string(ldy) + ")");
  if (M == 0 || N == 0) return;
  if (!y || (K > 0 && !x)) throw Error("linear: null input or output");
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * ldy + n] = bias ? bias[n] : 0.0f;
    return;
  }
  const Isa isa = w.isa();
  GemmKernel kernel = detail::gemm_kernel(isa, w.dtype());
  if (!kernel || !isa_supported(isa))
    throw Error("linear: weight packed for " + std::string(isa_name(isa)) + ", which this CPU cannot run",
                ErrorKind::kUnsupported);

  GemmArgs g;
  g.x = x;
  g.ldx = ldx;
  g.M = M;
  g.N = N;
  g.K = K;
  g.w = w.data();
  g.nr = w.panel_width();
  g.kp = w.k_padded();
  g.bias = bias;
  g.y = y;
  g.ldy = ldy;

  const int64_t mr = detail::kernel_rows(isa, w.dtype());
  const int64_t row_tiles = ceil_div(M, mr);
  // One row tile: stream each weight panel once, whole. Several: block k so that a block of the
  // panel stays in L1/L2 while every row tile uses it. (Blocking does not change the result: the
  // partial sums go through y unrounded, and every k is still added in ascending order.)
  g.kc = row_tiles == 1 ? round_up(K, 2) : kKBlock;

  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const int threads = (flops < kSerialFlops && w.bytes() < kSerialBytes) ? 1 : pool.num_threads();

  if ((isa == Isa::kAvx512Bf16 || isa == Isa::kAmxBf16) && w.dtype() == DType::BF16) {
    // Activations rounded to bf16 once per call, K padded with zeros to the weight's k_padded.
    // The row stride is kept off multiples of 1 KiB so that the rows of a tile do not share L1
    // sets.
    int64_t ldxb = round_up(w.k_padded(), 32);
    if (ldxb % 512 == 0) ldxb += 32;
    uint16_t* xb = t_scratch.get(static_cast<size_t>(M * ldxb));
    auto convert = [&](int, int64_t m0, int64_t m1) {
      detail::avx512_bf16_convert_rows(x, ldx, K, m0, m1, xb, ldxb, w.k_padded());
    };
    if (threads > 1 && M * K >= (int64_t{1} << 16))
      pool.parallel_for(M, convert, 8);
    else
      convert(0, 0, M);
    g.xb = xb;
    g.ldxb = ldxb;
  }

  const int64_t panels = w.num_panels();
  if (threads == 1) {
    kernel(g, 0, panels, 0, M);
    return;
  }
  // Split the panels among the threads; if there are too few panels for that, split the rows too
  // (tasks ordered panel-major so that a thread's consecutive tasks share a panel).
  int64_t m_blocks = 1;
  if (panels < 4 * threads && row_tiles > 1)
    m_blocks = std::min(row_tiles, ceil_div(4 * threads, panels));
  const int64_t tiles_per_block = ceil_div(row_tiles, m_blocks);
  m_blocks = ceil_div(row_tiles, tiles_per_block);
  if (m_blocks == 1) {
    pool.parallel_for(panels, [&](int, int64_t p0, int64_t p1) { kernel(g, p0, p1, 0, M); });
    return;
  }
  pool.parallel_for(panels * m_blocks, [&](int, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / m_blocks, mb = t % m_blocks;
      const int64_t m0 = mb * tiles_per_block * mr, m1 = std::min(M, m0 + tiles_per_block * mr);
      if (m0 < m1) kernel(g, p, p + 1, m0, m1);
    }
  });
}

}  // namespace vllm::cpu
