// Throughput of vllm::cpu::quant_linear (GGUF block weights times int8-quantized activations) on
// the phi-1_5 shapes (hidden 2048, MLP 8192, vocab 51200).
//
//   quant_gemm_bench [--types q4_k,q6_k,q8_0,q5_k,q4_0] [--isa scalar|avx2|avx512_vnni]
//                    [--threads T] [--m 1,4,8,32,512] [--shapes qkv,dense,fc1,fc2,lm_head,token]
//                    [--min-time S] [--rounds R] [--hot]
//
// Weights are cold: the timed calls cycle through enough copies of the weight (>= 1 GiB in all)
// that every call streams it from DRAM, as in a forward pass. The shape "token" is one decode
// step's matrix products: 24 layers of (qkv, dense, fc1, fc2) in the type, then the LM head in
// Q6_K (Q8_0 for q8_0), as a Q4_K_M-like file of the phi-1_5 shape has them, each layer its own
// weights; its rate is tokens/s of the products alone (M rows each). --hot reuses one copy of a
// single matrix (cache-resident if it fits): the kernels' arithmetic cost without DRAM.
//
// Columns: time per call (best of R rounds of >= S seconds), weight GB/s (block bytes / time),
// GOP/s (2·M·N·K / time), pair% (M <= 32: a plain vector read of as many cold bytes by the same
// threads, timed interleaved with the calls, over the call's time: how close to the memory bound
// a call runs, immune to the bandwidth drifting on a shared machine), the read bandwidth of
// those plain reads, and the CPU time per call (all threads; best round), which a busy machine
// inflates less than the wall time.
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

#include "vllm/backends/cpu/quant_gemm.h"
#include "vllm/core/thread_pool.h"
#include "vllm/gguf/block_formats.h"

using namespace vllm;
using namespace vllm::cpu;
using gguf::GgmlType;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU time of the whole process (all threads): on a shared machine, what the calls cost while they
// ran, whatever time the threads spent waiting for a core.
double process_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

__attribute__((target("avx2"))) uint64_t read256(const char* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t v[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)));
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}
volatile uint64_t g_sink;

// Every thread reads its share of [p, p + bytes) in 4 KiB units.
void pool_read(ThreadPool& pool, const char* p, size_t bytes) {
  pool.parallel_for(static_cast<int64_t>(bytes >> 12), [&](int, int64_t b, int64_t e) {
    g_sink = read256(p + (b << 12), static_cast<size_t>(e - b) << 12);
  });
}

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

// A weight [n, k] of `type`: 16 distinct rows quantized from random values by the reference
// quantizers (realistic scales), repeated. Timing depends on the bytes' count, not their values.
gguf::QuantizedMatrix make_weight(GgmlType type, int64_t n, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.05f);
  gguf::QuantizedMatrix w;
  w.type = type;
  w.cols = k;
  const size_t rb = w.row_bytes();
  w.data = Tensor::empty({n, static_cast<int64_t>(rb)}, DType::U8);
  std::vector<float> v(static_cast<size_t>(k));
  uint8_t* d = w.data.data<uint8_t>();
  for (int64_t r = 0; r < std::min<int64_t>(n, 16); ++r) {
    for (auto& f : v) f = dist(rng);
    gguf::quantize_row(type, v.data(), d + static_cast<size_t>(r) * rb, k);
  }
  for (int64_t r = 16; r < n; ++r) std::memcpy(d + static_cast<size_t>(r) * rb, d + static_cast<size_t>(r % 16) * rb, rb);
  return w;
}

gguf::QuantizedMatrix copy_of(const gguf::QuantizedMatrix& w) {
  gguf::QuantizedMatrix c = w;
  c.data = Tensor::empty(w.data.shape(), DType::U8);
  std::memcpy(c.data.raw(), w.data.raw(), w.data.nbytes());
  return c;
}

struct LinearShape {
  const char* name;
  int64_t n, k;
};
const LinearShape kShapes[] = {{"qkv", 6144, 2048}, {"dense", 2048, 2048}, {"fc1", 8192, 2048}, {"fc2", 2048, 8192}, {"lm_head", 51200, 2048}};
constexpr int kLayers = 24;

QuantIsa parse_quant_isa(const std::string& s) {
  for (QuantIsa i : {QuantIsa::kScalar, QuantIsa::kAvx2, QuantIsa::kAvx512Vnni})
    if (s == quant_isa_name(i)) return i;
  std::fprintf(stderr, "unknown --isa %s (scalar, avx2, avx512_vnni)\n", s.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  QuantIsa isa = quant_isa_for(detect_isa());
  int threads = 2;
  std::vector<int64_t> ms = {1, 4, 8, 32, 512};
  std::vector<std::string> type_names = {"q4_k", "q6_k", "q8_0"};
  std::vector<std::string> shape_names = {"qkv", "dense", "fc1", "fc2", "lm_head", "token"};
  double min_time = 0.25;
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
    if (a == "--isa") isa = parse_quant_isa(next());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--m") {
      ms.clear();
      for (auto& s : split(next())) ms.push_back(std::atoll(s.c_str()));
    } else if (a == "--types") type_names = split(next());
    else if (a == "--shapes") shape_names = split(next());
    else if (a == "--min-time") min_time = std::atof(next().c_str());
    else if (a == "--rounds") rounds = std::atoi(next().c_str());
    else if (a == "--hot") hot = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--types q4_k,...] [--isa scalar|avx2|avx512_vnni] [--threads T] [--m 1,8,...] "
                   "[--shapes qkv,dense,fc1,fc2,lm_head,token] [--min-time S] [--rounds R] [--hot]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!quant_isa_supported(isa)) {
    std::fprintf(stderr, "%s kernels cannot run on this CPU\n", std::string(quant_isa_name(isa)).c_str());
    return 2;
  }
  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\n");
  ThreadPool pool(threads);
  std::printf("kernels %s, %d threads, %s; times: best of %d rounds of >= %.2f s\n",
              std::string(quant_isa_name(isa)).c_str(), threads,
              hot ? "hot weights (one copy, reused)" : "cold weights (each call reads DRAM)", rounds, min_time);
  std::printf("pair%% = time of a plain read of the same bytes (same threads, interleaved) / time of the call; "
              "rdGB/s = that read's rate\n\n");
  std::printf("| type | shape | N | K | M | time us | cpu us | weight GB/s | GOP/s | pair%% | rdGB/s | tok/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(1);
  for (const std::string& tn : type_names) {
    std::string upper = tn;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto type = gguf::ggml_type_from_name(upper);
    if (!type || !quant_type_supported(*type)) {
      std::fprintf(stderr, "unsupported type %s\n", tn.c_str());
      return 2;
    }
    for (const std::string& sn : shape_names) {
      // The calls of one timed unit: one matrix (cycled through copies), or one token's products.
      std::vector<std::vector<gguf::QuantizedMatrix>> units;
      int64_t max_n = 0, max_k = 0;
      double ops_per_row = 0;
      if (sn == "token") {
        const GgmlType head = *type == GgmlType::kQ8_0 ? GgmlType::kQ8_0 : GgmlType::kQ6_K;
        std::vector<gguf::QuantizedMatrix> proto;
        for (int s = 0; s < 4; ++s) proto.push_back(make_weight(*type, kShapes[s].n, kShapes[s].k, rng));
        units.emplace_back();
        for (int l = 0; l < kLayers; ++l)
          for (const auto& p : proto) units.back().push_back(copy_of(p));
        units.back().push_back(make_weight(head, kShapes[4].n, kShapes[4].k, rng));
        max_n = kShapes[4].n;
        max_k = 8192;
      } else {
        auto it = std::find_if(std::begin(kShapes), std::end(kShapes), [&](const LinearShape& s) { return sn == s.name; });
        if (it == std::end(kShapes)) {
          std::fprintf(stderr, "unknown shape %s\n", sn.c_str());
          return 2;
        }
        units.push_back({make_weight(*type, it->n, it->k, rng)});
        const size_t bytes = units[0][0].data.nbytes();
        const size_t copies = hot ? 1 : std::max<size_t>(2, ((size_t{1} << 30) + bytes - 1) / bytes);
        while (units.size() < copies) units.push_back({copy_of(units[0][0])});
        max_n = it->n;
        max_k = it->k;
      }
      size_t unit_bytes = 0;
      for (const auto& w : units[0]) {
        unit_bytes += w.data.nbytes();
        ops_per_row += 2.0 * static_cast<double>(w.rows()) * static_cast<double>(w.cols);
      }
      const int64_t max_m = *std::max_element(ms.begin(), ms.end());
      std::vector<float> x(static_cast<size_t>(max_m * max_k)), y(static_cast<size_t>(max_m * max_n));
      std::normal_distribution<float> xd(0.0f, 1.0f);
      for (auto& f : x) f = xd(rng);
      for (int64_t m : ms) {
        size_t next = 0;
        auto call = [&] {
          for (const auto& w : units[next]) quant_linear(x.data(), m, w.cols, w, nullptr, y.data(), w.rows(), isa, pool);
          next = (next + 1) % units.size();
        };
        auto raw = [&] {
          for (const auto& w : units[next]) pool_read(pool, static_cast<const char*>(w.data.raw()), w.data.nbytes() & ~size_t{4095});
          next = (next + 1) % units.size();
        };
        call();  // warm-up: page faults, scratch
        double best = 1e30, best_raw = 1e30, best_cpu = 1e30;
        for (int r = 0; r < rounds; ++r) {
          int64_t calls = 0;
          double spent = 0, spent_raw = 0, cpu = 0;
          const auto t0 = Clock::now();
          do {
            const auto t1 = Clock::now();
            const double c1 = process_seconds();
            call();
            cpu += process_seconds() - c1;
            spent += seconds_since(t1);
            ++calls;
            if (m <= 32) {
              const auto t2 = Clock::now();
              raw();
              spent_raw += seconds_since(t2);
            }
          } while (seconds_since(t0) < min_time || calls < 3);
          best = std::min(best, spent / static_cast<double>(calls));
          best_cpu = std::min(best_cpu, cpu / static_cast<double>(calls));
          if (spent_raw > 0) best_raw = std::min(best_raw, spent_raw / static_cast<double>(calls));
        }
        char pair[16] = "-", rd[16] = "-", tok[16] = "-";
        if (best_raw < 1e29) {
          std::snprintf(pair, sizeof pair, "%.0f%%", 100.0 * best_raw / best);
          std::snprintf(rd, sizeof rd, "%.1f", static_cast<double>(unit_bytes) / best_raw / 1e9);
        }
        if (sn == "token") std::snprintf(tok, sizeof tok, "%.1f", static_cast<double>(m) / best);
        const long long n = units[0].size() == 1 ? static_cast<long long>(units[0][0].rows()) : 0;
        const long long k = units[0].size() == 1 ? static_cast<long long>(units[0][0].cols) : 0;
        std::printf("| %s | %s | %lld | %lld | %lld | %.1f | %.1f | %.1f | %.1f | %s | %s | %s |\n", upper.c_str(), sn.c_str(), n,
                    k, static_cast<long long>(m), best * 1e6, best_cpu * 1e6, static_cast<double>(unit_bytes) / best / 1e9,
                    ops_per_row * static_cast<double>(m) / best / 1e9, pair, rd, tok);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
