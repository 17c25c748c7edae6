// Throughput of vllm::cpu::linear on the phi-1_5 shapes (hidden 2048, MLP 8192, vocab 51200).
//
//   gemm_bench [--isa scalar|avx2|avx512|avx512_bf16] [--dtype bf16|f16|f32] [--threads T]
//              [--m 1,8,32,128,512] [--shapes qkv,dense,fc1,fc2,lm_head] [--bw GB/s] [--hot]
//              [--min-time S] [--rounds R]
//
// Weights are "cold": the timed calls cycle through enough packed copies of the weight (>= 1 GiB
// in all) that every call streams its weight from DRAM, as in a real forward pass, where every
// layer's weights are used once per step. --hot reuses a single copy (cache-resident if it fits).
//
// Reported per shape and M: time per call (best of R rounds of >= S seconds each), GFLOP/s
// (2·M·N·K / t), weight GB/s (packed weight bytes / t), % of the measured DRAM read bandwidth
// (memory-bound, small M), pair% (M <= 32: a plain vector read of as many cold bytes, by the same
// threads, timed interleaved with the calls, over the call's time: the same comparison as %bw but
// immune to the bandwidth drifting while the benchmark runs, which it does on a shared machine)
// and % of the measured peak multiply-add throughput (large M).
//
// The bandwidth is measured here as in membw_bench (T threads reading a 1 GiB buffer with the
// widest vector loads, best of 10) unless --bw is given. The peak is measured, not looked up:
// T threads each run 24 independent chains of the kernel's multiply-add instruction (vdpbf16ps
// zmm = 64 flops, vfmadd231ps zmm = 32, ymm = 16); the sum of their rates (each in its own
// thread's CPU time, so that other processes on the machine do not lower it) is the peak. The
// products themselves are timed in wall-clock time: run on a quiet machine.
#include <immintrin.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vllm/backends/cpu/gemm.h"
#include "vllm/core/thread_pool.h"

using namespace vllm;
using namespace vllm::cpu;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- machine limits ----

#define VLLM_R8(op, a, b)                                                                                         \
  op " %%" a ",%%" b ",%%zmm0\n\t" op " %%" a ",%%" b ",%%zmm1\n\t" op " %%" a ",%%" b ",%%zmm2\n\t" op " %%" a \
     ",%%" b ",%%zmm3\n\t" op " %%" a ",%%" b ",%%zmm4\n\t" op " %%" a ",%%" b ",%%zmm5\n\t" op " %%" a ",%%" b  \
     ",%%zmm6\n\t" op " %%" a ",%%" b ",%%zmm7\n\t"
#define VLLM_R8B(op, a, b)                                                                                          \
  op " %%" a ",%%" b ",%%zmm8\n\t" op " %%" a ",%%" b ",%%zmm9\n\t" op " %%" a ",%%" b ",%%zmm10\n\t" op " %%" a \
     ",%%" b ",%%zmm11\n\t" op " %%" a ",%%" b ",%%zmm12\n\t" op " %%" a ",%%" b ",%%zmm13\n\t" op " %%" a ",%%" b \
     ",%%zmm14\n\t" op " %%" a ",%%" b ",%%zmm15\n\t"
#define VLLM_R8C(op, a, b)                                                                                            \
  op " %%" a ",%%" b ",%%zmm16\n\t" op " %%" a ",%%" b ",%%zmm17\n\t" op " %%" a ",%%" b ",%%zmm18\n\t" op " %%" a \
     ",%%" b ",%%zmm19\n\t" op " %%" a ",%%" b ",%%zmm20\n\t" op " %%" a ",%%" b ",%%zmm21\n\t" op " %%" a ",%%" b   \
     ",%%zmm22\n\t" op " %%" a ",%%" b ",%%zmm23\n\t"
#define VLLM_CLOBBER24                                                                                                \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", \
      "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23"

// 24 instructions per iteration, on 24 independent accumulators.
__attribute__((target("avx512f,avx512bf16"))) void loop_dpbf16(int64_t n) {
  asm volatile("vpxord %%zmm30,%%zmm30,%%zmm30\n\tvpxord %%zmm31,%%zmm31,%%zmm31" ::: "xmm30", "xmm31");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(VLLM_R8("vdpbf16ps", "zmm30", "zmm31") VLLM_R8B("vdpbf16ps", "zmm30", "zmm31")
                     VLLM_R8C("vdpbf16ps", "zmm30", "zmm31")::: VLLM_CLOBBER24);
}
__attribute__((target("avx512f"))) void loop_fma512(int64_t n) {
  asm volatile("vpxord %%zmm30,%%zmm30,%%zmm30\n\tvpxord %%zmm31,%%zmm31,%%zmm31" ::: "xmm30", "xmm31");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(VLLM_R8("vfmadd231ps", "zmm30", "zmm31") VLLM_R8B("vfmadd231ps", "zmm30", "zmm31")
                     VLLM_R8C("vfmadd231ps", "zmm30", "zmm31")::: VLLM_CLOBBER24);
}
__attribute__((target("avx2,fma"))) void loop_fma256(int64_t n) {
  // 12 chains (16 ymm registers), twice per iteration: 24 instructions.
  asm volatile("vpxor %%ymm14,%%ymm14,%%ymm14\n\tvpxor %%ymm15,%%ymm15,%%ymm15" ::: "xmm14", "xmm15");
  for (int64_t i = 0; i < n; ++i)
    asm volatile(
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm0\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm1\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm2\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm3\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm4\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm5\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm6\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm7\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm8\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm9\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm10\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm11\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm0\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm1\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm2\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm3\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm4\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm5\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm6\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm7\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm8\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm9\n\t"
        "vfmadd231ps %%ymm14,%%ymm15,%%ymm10\n\tvfmadd231ps %%ymm14,%%ymm15,%%ymm11\n\t" ::
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11");
}

// Clock of one core: a chain of dependent 1-cycle adds.
__attribute__((noinline)) int64_t add_chain(int64_t n) {
  int64_t x = 0;
  for (int64_t i = 0; i < n; ++i) asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
  return x;
}

// CPU time of the calling thread: the limits below are what a core does while it runs, which on
// a shared machine is not all the time.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double measure_ghz() {
  const int64_t n = 20'000'000;
  double best = 1e30;
  for (int r = 0; r < 15; ++r) {
    const double t0 = thread_seconds();
    add_chain(n);
    best = std::min(best, thread_seconds() - t0);
  }
  return 4.0 * static_cast<double>(n) / best / 1e9;
}

// Instructions per second of `loop` on all threads of the pool at once: the sum over threads of
// each one's best rate in its own CPU time (30 runs).
double measure_rate(ThreadPool& pool, void (*loop)(int64_t)) {
  const int64_t iters = 1'000'000;
  const int t = pool.num_threads();
  std::vector<double> best(static_cast<size_t>(t), 1e30);
  for (int r = 0; r < 30; ++r) {
    pool.parallel_for(t, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double t0 = thread_seconds();
        loop(iters);
        best[static_cast<size_t>(i)] = std::min(best[static_cast<size_t>(i)], thread_seconds() - t0);
      }
    });
  }
  double rate = 0.0;
  for (double b : best) rate += 24.0 * static_cast<double>(iters) / b;
  return rate;
}

// Folds a vector to one value (a store: GCC 12 warns inside _mm512_reduce_*, PR 105593).
__attribute__((target("avx512f"))) uint64_t fold512(__m512i v) {
  alignas(64) uint64_t a[8];
  _mm512_store_si512(a, v);
  return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

__attribute__((target("avx512f"))) uint64_t read512(const char* p, size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
  }
  return fold512(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
}
__attribute__((target("avx2"))) uint64_t read256(const char* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0;
  for (size_t i = 0; i + 64 <= bytes; i += 64) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
  }
  alignas(32) uint64_t v[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), _mm256_xor_si256(a0, a1));
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}
volatile uint64_t g_sink;

// Every thread reads its share of [p, p + bytes) (4 KiB units).
void pool_read(ThreadPool& pool, const char* p, size_t bytes) {
  const bool z = isa_supported(Isa::kAvx512);
  pool.parallel_for(static_cast<int64_t>(bytes >> 12), [&](int, int64_t b, int64_t e) {
    const char* q = p + (b << 12);
    const size_t n = static_cast<size_t>(e - b) << 12;
    g_sink = z ? read512(q, n) : read256(q, n);
  });
}

double measure_read_bw(ThreadPool& pool) {
  const size_t bytes = size_t{1} << 30;
  char* buf = static_cast<char*>(std::aligned_alloc(size_t{2} << 20, bytes));
  madvise(buf, bytes, MADV_HUGEPAGE);
  const int64_t units = static_cast<int64_t>(bytes >> 12);
  pool.parallel_for(units, [&](int, int64_t b, int64_t e) {
    std::memset(buf + (b << 12), 1, static_cast<size_t>(e - b) << 12);
  });
  const bool z = isa_supported(Isa::kAvx512);
  double best = 1e30;
  for (int r = 0; r < 10; ++r) {
    auto t0 = Clock::now();
    pool.parallel_for(units, [&](int, int64_t b, int64_t e) {
      const char* p = buf + (b << 12);
      const size_t n = static_cast<size_t>(e - b) << 12;
      g_sink = z ? read512(p, n) : read256(p, n);
    });
    best = std::min(best, seconds_since(t0));
  }
  std::free(buf);
  return static_cast<double>(bytes) / best / 1e9;
}

// ---- the benchmark ----

struct LinearShape {
  const char* name;
  int64_t n, k;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = detect_isa();
  DType dtype = DType::BF16;
  int threads = 2;
  std::vector<int64_t> ms = {1, 8, 32, 128, 512};
  std::vector<std::string> shape_names = {"qkv", "dense", "fc1", "fc2", "lm_head"};
  double bw = 0.0, min_time = 0.25;
  int rounds = 5;
  bool hot = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--isa") isa = parse_isa(next());
    else if (a == "--dtype") dtype = parse_dtype(next());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--m") {
      ms.clear();
      for (auto& s : split(next())) ms.push_back(std::atoll(s.c_str()));
    } else if (a == "--shapes") shape_names = split(next());
    else if (a == "--bw") bw = std::atof(next().c_str());
    else if (a == "--min-time") min_time = std::atof(next().c_str());
    else if (a == "--rounds") rounds = std::atoi(next().c_str());
    else if (a == "--hot") hot = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--isa I] [--dtype bf16|f16|f32] [--threads T] [--m 1,8,...] [--shapes qkv,...] "
                   "[--bw GB/s] [--hot] [--min-time S] [--rounds R]\n",
                   argv[0]);
      return 2;
    }
  }
  const std::vector<LinearShape> all_shapes = {
      {"qkv", 6144, 2048}, {"dense", 2048, 2048}, {"fc1", 8192, 2048}, {"fc2", 2048, 8192}, {"lm_head", 51200, 2048}};

  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n");

  ThreadPool pool(threads);
  const double ghz = measure_ghz();
  double peak_flops = 0.0, flop_per_instr = 0.0;
  const char* peak_what = "none";
  if (isa == Isa::kAvx512Bf16 && dtype == DType::BF16) {
    flop_per_instr = 64.0;
    peak_flops = flop_per_instr * measure_rate(pool, loop_dpbf16);
    peak_what = "vdpbf16ps zmm (16 lanes x 2 products x 2 flop = 64 flop)";
  } else if (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16) {
    flop_per_instr = 32.0;
    peak_flops = flop_per_instr * measure_rate(pool, loop_fma512);
    peak_what = "vfmadd231ps zmm (32 flop)";
  } else if (isa == Isa::kAvx2) {
    flop_per_instr = 16.0;
    peak_flops = flop_per_instr * measure_rate(pool, loop_fma256);
    peak_what = "vfmadd231ps ymm (16 flop)";
  }
  if (bw <= 0.0) bw = measure_read_bw(pool);
  std::printf("ISA %s, weights %s, %d threads, %s weights\n", std::string(isa_name(isa)).c_str(),
              std::string(dtype_name(dtype)).c_str(), threads,
              hot ? "hot (one copy, reused)" : "cold (cycling through copies, >= 1 GiB in all: each call reads DRAM)");
  std::printf("core clock ~%.2f GHz (chain of dependent 1-cycle adds, thread CPU time, best of 15)\n", ghz);
  std::printf("read bandwidth: %.1f GB/s (%d threads reading 1 GiB, best of 10)\n", bw, threads);
  if (peak_flops > 0)
    std::printf("peak: %.0f GFLOP/s measured = %d threads x %.2f instr/cycle x %.0f flop x %.2f GHz; instr = %s\n",
                peak_flops / 1e9, threads, peak_flops / flop_per_instr / threads / (ghz * 1e9), flop_per_instr, ghz,
                peak_what);
  {  // fork/join cost of the pool, paid once per linear()
    const int iters = 5000;
    double best = 1e30;
    for (int r = 0; r < 10; ++r) {
      auto t0 = Clock::now();
      for (int i = 0; i < iters; ++i) pool.parallel_for(threads, [](int, int64_t, int64_t) {});
      best = std::min(best, seconds_since(t0) / iters);
    }
    std::printf("empty parallel_for on the pool: %.2f us (best average of 10 x %d)\n", best * 1e6, iters);
  }
  std::printf("columns: wGB/s = packed weight bytes / time; %%bw = wGB/s / read bandwidth; pair%% = time of a\n"
              "plain read of the same bytes (cold, same threads, interleaved with the calls) / time of the call;\n"
              "%%peak = GFLOP/s / peak. Times: best of %d rounds of >= %.2f s.\n\n",
              rounds, min_time);
  std::printf("%-8s %6s %6s %5s %10s %9s %8s %7s %7s %7s\n", "shape", "N", "K", "M", "time_us", "GFLOP/s", "wGB/s",
              "%bw", "pair%", "%peak");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const std::string& sn : shape_names) {
    auto it = std::find_if(all_shapes.begin(), all_shapes.end(), [&](const LinearShape& s) { return sn == s.name; });
    if (it == all_shapes.end()) {
      std::fprintf(stderr, "unknown shape %s\n", sn.c_str());
      return 2;
    }
    const LinearShape s = *it;
    Tensor w = Tensor::empty({s.n, s.k}, dtype);
    {
      std::vector<float> v(static_cast<size_t>(s.n * s.k));
      for (auto& f : v) f = dist(rng) * 0.05f;
      w = Tensor::from_floats(v, {s.n, s.k}, dtype);
    }
    std::vector<PackedWeight> copies;
    copies.push_back(PackedWeight::pack(w, dtype, isa));
    const size_t wbytes = copies[0].bytes();
    const size_t want = hot ? 1 : std::max<size_t>(2, ((size_t{1} << 30) + wbytes - 1) / wbytes);
    while (copies.size() < want) copies.push_back(PackedWeight::pack(w, dtype, isa));
    w = Tensor();

    const int64_t max_m = *std::max_element(ms.begin(), ms.end());
    std::vector<float> x(static_cast<size_t>(max_m * s.k)), y(static_cast<size_t>(max_m * s.n));
    for (auto& f : x) f = dist(rng);
    std::vector<float> bias(static_cast<size_t>(s.n), 0.01f);

    for (int64_t m : ms) {
      const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(s.n) * static_cast<double>(s.k);
      size_t next = 0;
      auto call = [&] {
        linear(x.data(), m, s.k, copies[next], bias.data(), y.data(), s.n, pool);
        next = (next + 1) % copies.size();
      };
      auto raw = [&] {
        pool_read(pool, static_cast<const char*>(copies[next].data()), wbytes & ~size_t{4095});
        next = (next + 1) % copies.size();
      };
      call();  // warm-up (page faults of y, scratch)
      double best = 1e30, best_raw = 1e30;
      for (int r = 0; r < rounds; ++r) {
        int64_t calls = 0;
        double spent = 0.0, spent_raw = 0.0;
        auto t0 = Clock::now();
        do {
          auto t1 = Clock::now();
          call();
          spent += seconds_since(t1);
          ++calls;
          if (m <= 32) {  // paired plain read of as many bytes, for the memory-bound sizes
            auto t2 = Clock::now();
            raw();
            spent_raw += seconds_since(t2);
          }
        } while (seconds_since(t0) < min_time || calls < 3);
        best = std::min(best, spent / static_cast<double>(calls));
        if (spent_raw > 0) best_raw = std::min(best_raw, spent_raw / static_cast<double>(calls));
      }
      const double gflops = flops / best / 1e9, wgbs = static_cast<double>(wbytes) / best / 1e9;
      char pair[16] = "-";
      if (best_raw < 1e29)
        std::snprintf(pair, sizeof(pair), "%.0f%%",
                      100.0 * best_raw * static_cast<double>(wbytes) / static_cast<double>(wbytes & ~size_t{4095}) / best);
      std::printf("%-8s %6lld %6lld %5lld %10.1f %9.1f %8.1f %6.1f%% %7s %6.1f%%\n", s.name, static_cast<long long>(s.n),
                  static_cast<long long>(s.k), static_cast<long long>(m), best * 1e6, gflops, wgbs, 100.0 * wgbs / bw,
                  pair, peak_flops > 0 ? 100.0 * gflops * 1e9 / peak_flops : 0.0);
      std::fflush(stdout);
    }
  }
  return 0;
}
