// Memory bandwidth of this machine, as the CPU kernels see it: each thread streams its own
// contiguous part of a large buffer with vector loads (read), or copies its part (copy).
//
//   membw_bench [--mib N] [--runs R] [--threads T1,T2,...] [--no-huge]
//
// Read GB/s = bytes read / s. Copy GB/s = (bytes read + bytes written) / s, STREAM's convention.
// Best of R runs. The buffer is 2 MiB aligned and marked for transparent huge pages (as packed
// weights are) unless --no-huge.
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vllm/backends/cpu/cpu_features.h"
#include "vllm/core/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

// Folds a vector to one value (a store: GCC 12 warns inside _mm512_reduce_*, PR 105593).
__attribute__((target("avx512f"))) uint64_t fold512(__m512i v) {
  alignas(64) uint64_t a[8];
  _mm512_store_si512(a, v);
  return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

__attribute__((target("avx512f"))) uint64_t read_avx512(const char* p, size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
  }
  __m512i s = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  return fold512(s);
}

__attribute__((target("avx512f"))) uint64_t read_avx512_prefetch(const char* p, size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    _mm_prefetch(p + i + 2048, _MM_HINT_T0);
    _mm_prefetch(p + i + 2048 + 64, _MM_HINT_T0);
    _mm_prefetch(p + i + 2048 + 128, _MM_HINT_T0);
    _mm_prefetch(p + i + 2048 + 192, _MM_HINT_T0);
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
  }
  __m512i s = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
  return fold512(s);
}

__attribute__((target("avx2"))) uint64_t read_avx2(const char* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  alignas(32) uint64_t v[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

__attribute__((target("avx512f"))) uint64_t copy_avx512(char* dst, const char* src, size_t bytes) {
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    __m512i v0 = _mm512_load_si512(src + i), v1 = _mm512_load_si512(src + i + 64);
    __m512i v2 = _mm512_load_si512(src + i + 128), v3 = _mm512_load_si512(src + i + 192);
    _mm512_store_si512(dst + i, v0);
    _mm512_store_si512(dst + i + 64, v1);
    _mm512_store_si512(dst + i + 128, v2);
    _mm512_store_si512(dst + i + 192, v3);
  }
  return 0;
}

__attribute__((target("avx512f"))) uint64_t copy_avx512_nt(char* dst, const char* src, size_t bytes) {
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    __m512i v0 = _mm512_load_si512(src + i), v1 = _mm512_load_si512(src + i + 64);
    __m512i v2 = _mm512_load_si512(src + i + 128), v3 = _mm512_load_si512(src + i + 192);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), v0);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 64), v1);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 128), v2);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 192), v3);
  }
  _mm_sfence();
  return 0;
}

__attribute__((target("avx2"))) uint64_t copy_avx2(char* dst, const char* src, size_t bytes) {
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    __m256i v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(src + i + 32 * j));
    for (int j = 0; j < 4; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i + 32 * j), v[j]);
  }
  return 0;
}

uint64_t copy_memcpy(char* dst, const char* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
  return 0;
}

volatile uint64_t g_sink;

// Best time over `runs` of every thread doing op on its contiguous share of [0, bytes).
template <typename Op>
double best_seconds(vllm::ThreadPool& pool, size_t bytes, int runs, Op op) {
  const size_t unit = 4096;
  const int64_t units = static_cast<int64_t>(bytes / unit);
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    pool.parallel_for(units, [&](int, int64_t b, int64_t e) {
      g_sink = op(static_cast<size_t>(b) * unit, static_cast<size_t>(e - b) * unit);
    });
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 1024;
  int runs = 7;
  bool huge = true;
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mib" && i + 1 < argc) mib = static_cast<size_t>(std::atol(argv[++i]));
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) thread_counts = parse_list(argv[++i]);
    else if (a == "--no-huge") huge = false;
    else {
      std::fprintf(stderr, "usage: %s [--mib N] [--runs R] [--threads 1,2] [--no-huge]\n", argv[0]);
      return 2;
    }
  }
  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\nISA: %s; buffer %zu MiB (%s pages); best of %d runs\n",
              std::string(vllm::cpu::isa_name(vllm::cpu::hardware_isa())).c_str(), mib,
              huge ? "transparent huge" : "4 KiB", runs);

  const size_t bytes = mib << 20;
  char* buf = static_cast<char*>(std::aligned_alloc(size_t{2} << 20, bytes));
  if (!buf) {
    std::fprintf(stderr, "cannot allocate %zu MiB\n", mib);
    return 1;
  }
  if (huge) madvise(buf, bytes, MADV_HUGEPAGE);

  const bool avx512 = vllm::cpu::isa_supported(vllm::cpu::Isa::kAvx512);
  const bool avx2 = vllm::cpu::isa_supported(vllm::cpu::Isa::kAvx2);
  std::printf("\n%-28s %8s %10s\n", "test", "threads", "GB/s");
  for (int t : thread_counts) {
    vllm::ThreadPool pool(t);
    // First touch by the threads that will read it.
    pool.parallel_for(static_cast<int64_t>(bytes / 4096), [&](int, int64_t b, int64_t e) {
      std::memset(buf + b * 4096, static_cast<int>(b & 0x7f) + 1, static_cast<size_t>(e - b) * 4096);
    });
    auto report = [&](const char* name, double moved, double s) {
      std::printf("%-28s %8d %10.1f\n", name, t, moved / s / 1e9);
      std::fflush(stdout);
    };
    if (avx512) {
      report("read avx512", static_cast<double>(bytes),
             best_seconds(pool, bytes, runs, [&](size_t o, size_t n) { return read_avx512(buf + o, n); }));
      report("read avx512 + prefetch", static_cast<double>(bytes),
             best_seconds(pool, bytes, runs, [&](size_t o, size_t n) { return read_avx512_prefetch(buf + o, n); }));
    }
    if (avx2)
      report("read avx2", static_cast<double>(bytes),
             best_seconds(pool, bytes, runs, [&](size_t o, size_t n) { return read_avx2(buf + o, n); }));
    // Copy: first half to second half.
    const size_t half = bytes / 2;
    if (avx512) {
      report("copy avx512", 2.0 * static_cast<double>(half),
             best_seconds(pool, half, runs, [&](size_t o, size_t n) { return copy_avx512(buf + half + o, buf + o, n); }));
      report("copy avx512 non-temporal", 2.0 * static_cast<double>(half),
             best_seconds(pool, half, runs,
                          [&](size_t o, size_t n) { return copy_avx512_nt(buf + half + o, buf + o, n); }));
    }
    if (avx2)
      report("copy avx2", 2.0 * static_cast<double>(half),
             best_seconds(pool, half, runs, [&](size_t o, size_t n) { return copy_avx2(buf + half + o, buf + o, n); }));
    report("copy memcpy", 2.0 * static_cast<double>(half),
           best_seconds(pool, half, runs, [&](size_t o, size_t n) { return copy_memcpy(buf + half + o, buf + o, n); }));
  }
  std::free(buf);
  return 0;
}
