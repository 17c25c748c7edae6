// Activation quantization, kernel dispatch and threading of the quantized-weight products
// (quant_gemm.h). Compiled for baseline x86-64: the vector code is in quant_dot_avx2.cpp and
// quant_dot_avx512.cpp, reached through function pointers.
#include "vllm/backends/cpu/quant_gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "vllm/core/dtype.h"
#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"

namespace vllm::cpu {

using gguf::GgmlType;

namespace {

bool k_family(GgmlType t) { return t == GgmlType::kQ4_K || t == GgmlType::kQ5_K || t == GgmlType::kQ6_K; }

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Per-thread scratch for the quantized activations, grown as needed and kept.
struct ActScratch {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> sums;
  std::vector<int16_t> bsums;
};
thread_local ActScratch t_acts;

// Below both, one thread does the whole product (waking the pool costs ~5 us).
constexpr size_t kSerialBytes = size_t{128} << 10;
constexpr double kSerialOps = 2.0e6;
// Activation rows per pass over the weights: a block of rows whose int8 copy stays in L2 while
// every weight row of the thread's range meets it.
constexpr int64_t kActBlockBytes = int64_t{192} << 10;
// Weight bytes per chunk that a thread takes at a time.
constexpr int64_t kChunkBytes = int64_t{96} << 10;

}  // namespace

std::string_view quant_isa_name(QuantIsa isa) {
  switch (isa) {
    case QuantIsa::kScalar: return "scalar";
    case QuantIsa::kAvx2: return "avx2";
    case QuantIsa::kAvx512Vnni: return "avx512_vnni";
  }
  return "?";
}

bool quant_isa_supported(QuantIsa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case QuantIsa::kScalar: return true;
    case QuantIsa::kAvx2: return isa_supported(Isa::kAvx2);
    case QuantIsa::kAvx512Vnni: return isa_supported(Isa::kAvx512) && f.avx512vnni;
  }
  return false;
}

QuantIsa quant_isa_for(Isa isa) {
  if (isa >= Isa::kAvx512 && quant_isa_supported(QuantIsa::kAvx512Vnni)) return QuantIsa::kAvx512Vnni;
  if (isa >= Isa::kAvx2 && quant_isa_supported(QuantIsa::kAvx2)) return QuantIsa::kAvx2;
  return QuantIsa::kScalar;
}

bool quant_type_supported(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || k_family(type);
}

namespace detail {

QuantDotKernel quant_kernel(QuantIsa isa, GgmlType type) {
  switch (isa) {
    case QuantIsa::kScalar: return scalar_quant_kernel(type);
    case QuantIsa::kAvx2: return avx2_quant_kernel(type);
    case QuantIsa::kAvx512Vnni: return avx512vnni_quant_kernel(type);
  }
  return nullptr;
}

bool paired_act_layout(QuantIsa isa, GgmlType type) {
  return isa == QuantIsa::kAvx512Vnni && (type == GgmlType::kQ4_K || type == GgmlType::kQ5_K);
}

void pair_act_quants(int8_t* q, int64_t k) {
  for (int64_t b = 0; b < k; b += 128) {
    int8_t tmp[32];
    std::memcpy(tmp, q + b + 32, 32);
    std::memcpy(q + b + 32, q + b + 64, 32);
    std::memcpy(q + b + 64, tmp, 32);
  }
}

void quantize_act_q8_0(const float* x, int64_t k, int8_t* q, float* d, int32_t* sums) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float scale = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    d[b] = f16_to_f32(f32_to_f16(scale));
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) {
      // Round half to even, as the vector quantizer llama.cpp runs on x86 (vroundps).
      const int v = static_cast<int>(std::nearbyint(xb[j] * id));
      q[32 * b + j] = static_cast<int8_t>(v);
      s += v;
    }
    sums[b] = s;
  }
}

void quantize_act_q8_k(const float* x, int64_t k, int8_t* q, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < k / 256; ++b) {
    const float* xb = x + 256 * b;
    float max = 0, amax = 0;
    for (int j = 0; j < 256; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    if (amax == 0.0f) {
      d[b] = 0.0f;
      std::fill(q + 256 * b, q + 256 * (b + 1), 0);
      std::fill(bsums + 16 * b, bsums + 16 * (b + 1), 0);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; ++j) q[256 * b + j] = static_cast<int8_t>(std::min(127, gguf::nearest_int(iscale * xb[j])));
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[256 * b + 16 * g + l];
      bsums[16 * b + g] = static_cast<int16_t>(s);
    }
    d[b] = 1 / iscale;
  }
}

}  // namespace detail

void quant_linear(const float* x, int64_t M, int64_t ldx, const gguf::QuantizedMatrix& w, const float* bias, float* y,
                  int64_t ldy, QuantIsa isa, ThreadPool& pool) {
  const int64_t N = w.rows(), K = w.cols;
  if (!quant_type_supported(w.type))
    throw Error("no quantized matrix product for GGUF type " + std::string(gguf::ggml_type_name(w.type)),
                ErrorKind::kUnsupported);
  if (M < 0 || ldx < K || ldy < N)
    throw Error("quant_linear: bad shape (M=" + std::to_string(M) + ", K=" + std::to_string(K) + ", ldx=" +
                std::to_string(ldx) + ", N=" + std::to_string(N) + ", ldy=" + std::to_string(ldy) + ")");
  if (M == 0 || N == 0) return;
  detail::QuantDotKernel kernel = detail::quant_kernel(isa, w.type);
  if (!kernel || !quant_isa_supported(isa))
    throw Error("quant_linear: " + std::string(quant_isa_name(isa)) + " kernels cannot run on this CPU",
                ErrorKind::kUnsupported);

  // Quantize the activations, one row at a time (each row's quants depend on that row only).
  const bool kq = k_family(w.type);
  const int64_t bs = kq ? 256 : 32;
  const int64_t ldq = round_up(K, 64), ldd = K / bs, lds = kq ? K / 16 : K / 32;
  ActScratch& s = t_acts;
  if (s.q.size() < static_cast<size_t>(M * ldq)) s.q.resize(static_cast<size_t>(M * ldq));
  if (s.d.size() < static_cast<size_t>(M * ldd)) s.d.resize(static_cast<size_t>(M * ldd));
  if (kq) {
    if (s.bsums.size() < static_cast<size_t>(M * lds)) s.bsums.resize(static_cast<size_t>(M * lds));
  } else if (s.sums.size() < static_cast<size_t>(M * lds)) {
    s.sums.resize(static_cast<size_t>(M * lds));
  }
  const bool paired = detail::paired_act_layout(isa, w.type);
  auto quantize = [&](int, int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      if (kq) {
        detail::quantize_act_q8_k(x + m * ldx, K, s.q.data() + m * ldq, s.d.data() + m * ldd, s.bsums.data() + m * lds);
        if (paired) detail::pair_act_quants(s.q.data() + m * ldq, K);
      } else {
        detail::quantize_act_q8_0(x + m * ldx, K, s.q.data() + m * ldq, s.d.data() + m * ldd, s.sums.data() + m * lds);
      }
    }
  };
  const double ops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const size_t weight_bytes = static_cast<size_t>(N) * w.row_bytes();
  const bool serial = ops < kSerialOps && weight_bytes < kSerialBytes;
  if (!serial && M * K >= (int64_t{1} << 15))
    pool.parallel_for(M, quantize, 4);
  else
    quantize(0, 0, M);

  detail::QuantDotArgs a;
  a.w = w.row(0);
  a.w_row_bytes = w.row_bytes();
  a.k = K;
  a.x.q = s.q.data();
  a.x.ldq = ldq;
  a.x.d = s.d.data();
  a.x.ldd = ldd;
  a.x.sums = kq ? nullptr : s.sums.data();
  a.x.bsums = kq ? s.bsums.data() : nullptr;
  a.x.lds = lds;
  a.bias = bias;
  a.y = y;
  a.ldy = ldy;

  const int64_t m_block = std::max<int64_t>(1, kActBlockBytes / std::max<int64_t>(K, 1));
  auto run = [&](int64_t n0, int64_t n1) {
    for (int64_t m0 = 0; m0 < M; m0 += m_block) kernel(a, n0, n1, m0, std::min(M, m0 + m_block));
  };
  if (serial || pool.num_threads() == 1) {
    run(0, N);
    return;
  }
  // The threads take chunks of weight rows from a shared counter rather than one fixed share
  // each: on a shared machine a thread that loses its core for a while leaves the rest of the
  // rows to the others instead of holding up the whole product. Chunks of about kChunkBytes of
  // weights (at least 16 rows), at least 4 per thread.
  const int64_t threads = pool.num_threads();
  const int64_t rows_by_bytes = std::max<int64_t>(1, kChunkBytes / static_cast<int64_t>(w.row_bytes()));
  const int64_t chunk = round_up(std::max<int64_t>(16, std::min(rows_by_bytes, N / (4 * threads))), 16);
  std::atomic<int64_t> next{0};
  pool.parallel_for(threads, [&](int, int64_t, int64_t) {
    for (int64_t n0 = next.fetch_add(chunk, std::memory_order_relaxed); n0 < N;
         n0 = next.fetch_add(chunk, std::memory_order_relaxed))
      run(n0, std::min(N, n0 + chunk));
  });
}

}  // namespace vllm::cpu
