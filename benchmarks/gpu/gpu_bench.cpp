// GPU micro-benchmarks for run_gpu_bench.sh:
//   gpu_bench copy                 device-to-device copy bandwidth (bytes read + written), GB/s
//   gpu_bench attn B CTX [NH NKV HD BS]   decode attention alone (CudaBackend::attention, float16):
//                                  B sequences at context CTX; GB/s of K/V read
//   gpu_bench gemv N K [M EPI]     the decode GEMV alone (float16, M activation rows, epilogue 0 none,
//                                  1 gelu, 2 residual), back to back with programmatic dependent
//                                  launch as in a decode step, over 8 weight copies (more than L2);
//                                  GB/s of weights read. VLLM_GEMV_W forces the warps per row.
//   gpu_bench gemv_fp8 N K [M B]   the same with FP8 weights (cuda::gemv_fp8: e4m3 bytes, one scale
//                                  per row, or 128x128 block scales with B=1); GB/s of e4m3 bytes.
//   gpu_bench gemv_gguf TYPE N K [M]   the same with GGUF blocks (cuda::gemv_gguf, TYPE Q8_0, Q4_0,
//                                  Q4_K, Q5_K or Q6_K; float16 activations); GB/s of the blocks'
//                                  bytes (compare the time, or gemv's GB/s, for the fp16 weight).
// Each prints one line "name value unit"; times are medians of event-timed repetitions.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "vllm/backends/cuda/cuda_backend.h"
#include "vllm/backends/cuda/kernels.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/ggml_types.h"

using namespace vllm;

namespace {

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The median time of one call of run(n)'s work (n calls), over 7 rounds of 64 on `stream` between
// events, after 16 calls of warm-up.
double median_us_per_call(cudaStream_t stream, const std::function<void(int)>& run, const char* what) {
  run(16);
  ck(cudaStreamSynchronize(stream), "warm-up");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> us;
  const int reps = 64;
  for (int r = 0; r < 7; ++r) {
    cudaEventRecord(e0, stream);
    run(reps);
    cudaEventRecord(e1, stream);
    ck(cudaEventSynchronize(e1), what);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    us.push_back(1e3 * t / reps);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return median(us);
}

int copy_bench() {
  const size_t bytes = size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  ck(cudaMalloc(&a, bytes), "cudaMalloc");
  ck(cudaMalloc(&b, bytes), "cudaMalloc");
  ck(cudaMemset(a, 1, bytes), "cudaMemset");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> ms;
  for (int i = 0; i < 13; ++i) {
    cudaEventRecord(e0);
    ck(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (i >= 3) ms.push_back(t);
  }
  const double m = median(ms);
  std::printf("copy_bandwidth %.1f GB/s (2 GiB copy, read+write, median %.3f ms)\n", 2.0 * bytes / (m * 1e-3) / 1e9, m);
  return 0;
}

int attn_bench(int64_t B, int64_t ctx, int64_t nh, int64_t nkv, int64_t hd, int64_t bs) {
  CudaBackend be(DType::F16);
  const int64_t blocks_per = (ctx + bs - 1) / bs, num_blocks = B * blocks_per;
  const Shape cshape{num_blocks, nkv, bs, hd};
  // Random-looking cache contents, generated on the host in slices and uploaded.
  auto fill = [&](uint32_t seed) {
    Tensor dev = be.empty(cshape, DType::F16);
    const int64_t n = dev.numel(), slice = int64_t{1} << 24;
    Tensor host = Tensor::empty({slice}, DType::F16);
    uint32_t x = seed;
    for (int64_t off = 0; off < n; off += slice) {
      const int64_t c = std::min(slice, n - off);
      for (int64_t i = 0; i < c; ++i) {
        x = x * 1664525u + 1013904223u;
        host.data<uint16_t>()[i] = f32_to_f16(static_cast<float>(static_cast<int32_t>(x >> 8) % 2001 - 1000) * 1e-3f);
      }
      Tensor part = be.upload(host.slice_rows(0, c), DType::F16);
      cudaMemcpy(static_cast<uint16_t*>(dev.raw()) + off, part.raw(), static_cast<size_t>(c) * 2, cudaMemcpyDeviceToDevice);
    }
    return dev;
  };
  KVCacheLayer cache{fill(1), fill(2)};
  AttentionShape s{nh, nkv, hd};
  std::vector<float> q(static_cast<size_t>(B * s.qkv_width()));
  uint32_t x = 7;
  for (auto& v : q) x = x * 1664525u + 1013904223u, v = static_cast<float>(static_cast<int32_t>(x >> 8) % 2001 - 1000) * 1e-3f;
  Tensor qkv = be.upload(Tensor::from_floats(q, {B, s.qkv_width()}), DType::F16);
  Tensor out = be.empty({B, nh * hd}, DType::F16);
  Tensor tables = Tensor::empty({B, blocks_per}, DType::I32), slots = Tensor::empty({B}, DType::I64);
  Tensor qsl = Tensor::empty({B + 1}, DType::I32), lens = Tensor::empty({B}, DType::I32);
  ForwardInputs in;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t b = 0; b < blocks_per; ++b) tables.data<int32_t>()[i * blocks_per + b] = static_cast<int32_t>(i * blocks_per + b);
    slots.data<int64_t>()[i] = (i * blocks_per + (ctx - 1) / bs) * bs + (ctx - 1) % bs;
    qsl.data<int32_t>()[i] = static_cast<int32_t>(i);
    lens.data<int32_t>()[i] = static_cast<int32_t>(ctx);
    in.host_query_start_loc.push_back(static_cast<int32_t>(i));
    in.host_seq_lens.push_back(static_cast<int32_t>(ctx));
  }
  qsl.data<int32_t>()[B] = static_cast<int32_t>(B);
  in.host_query_start_loc.push_back(static_cast<int32_t>(B));
  in.num_tokens = in.num_seqs = B;
  in.max_query_len = 1;
  in.max_seq_len = ctx;
  in.max_blocks_per_seq = blocks_per;
  in.block_size = bs;
  in.slot_mapping = be.upload(slots, DType::I64);
  in.query_start_loc = be.upload(qsl, DType::I32);
  in.seq_lens = be.upload(lens, DType::I32);
  in.block_tables = be.upload(tables, DType::I32);
  be.synchronize();
  const float scale = 0.125f;
  for (int i = 0; i < 3; ++i) be.attention(out, qkv, cache, in, s, scale);
  be.synchronize();
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> ms;
  const int reps = 20;
  for (int r = 0; r < 7; ++r) {
    // The backend uses its own stream; synchronise around legacy-stream events.
    be.synchronize();
    cudaEventRecord(e0);
    cudaEventSynchronize(e0);
    for (int i = 0; i < reps; ++i) be.attention(out, qkv, cache, in, s, scale);
    be.synchronize();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t / reps);
  }
  const double m = median(ms);
  const double kv_bytes = 2.0 * static_cast<double>(B) * static_cast<double>(ctx) * static_cast<double>(nkv * hd) * 2.0;
  std::printf("decode_attention B=%lld ctx=%lld nh=%lld nkv=%lld hd=%lld bs=%lld: %.3f ms, %.1f GB/s of K/V\n",
              static_cast<long long>(B), static_cast<long long>(ctx), static_cast<long long>(nh), static_cast<long long>(nkv),
              static_cast<long long>(hd), static_cast<long long>(bs), m, kv_bytes / (m * 1e-3) / 1e9);
  return 0;
}

int gemv_bench(int64_t N, int64_t K, int64_t M, int epi) {
  CudaBackend be(DType::F16);  // sets up programmatic dependent launch as the engine does
  constexpr int kCopies = 8;
  const size_t wbytes = static_cast<size_t>(N * K) * 2;
  std::vector<void*> w(kCopies);
  void *x = nullptr, *bias = nullptr, *out = nullptr, *other = nullptr;
  // Random-looking fp16 bits in a safe range (exponent below 0x3c00: magnitudes under 1).
  std::vector<uint16_t> host(static_cast<size_t>(N * K));
  uint32_t st = 12345;
  for (auto& h : host) {
    st = st * 1664525u + 1013904223u;
    h = static_cast<uint16_t>((st >> 16) & 0xb7ffu);
  }
  for (auto& p : w) {
    ck(cudaMalloc(&p, wbytes), "cudaMalloc");
    ck(cudaMemcpy(p, host.data(), wbytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ck(cudaMalloc(&x, static_cast<size_t>(M * K) * 2), "cudaMalloc");
  ck(cudaMemcpy(x, host.data(), static_cast<size_t>(M * K) * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  ck(cudaMalloc(&bias, static_cast<size_t>(N) * 2), "cudaMalloc");
  ck(cudaMemcpy(bias, host.data(), static_cast<size_t>(N) * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  ck(cudaMalloc(&out, static_cast<size_t>(M * N) * 2), "cudaMalloc");
  ck(cudaMalloc(&other, static_cast<size_t>(M * N) * 2), "cudaMalloc");
  ck(cudaMemcpy(other, host.data(), static_cast<size_t>(M * N) * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  ck(cudaMemcpy(out, host.data(), static_cast<size_t>(M * N) * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  cudaStream_t stream;
  ck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  const auto e = static_cast<cuda::GemvEpilogue>(epi);
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) cuda::gemv(DType::F16, out, x, w[i % kCopies], bias, M, N, K, stream, e, other);
  };
  const double m = median_us_per_call(stream, run, "gemv");
  const char* forced = std::getenv("VLLM_GEMV_W");
  std::printf("gemv N=%lld K=%lld M=%lld epi=%d W=%s: %.2f us, %.0f GB/s of weights\n", static_cast<long long>(N),
              static_cast<long long>(K), static_cast<long long>(M), epi, forced ? forced : "auto", m,
              static_cast<double>(wbytes) / (m * 1e-6) / 1e9);
  for (auto p : w) cudaFree(p);
  cudaFree(x);
  cudaFree(bias);
  cudaFree(out);
  cudaFree(other);
  cudaStreamDestroy(stream);
  return 0;
}

int gemv_fp8_bench(int64_t N, int64_t K, int64_t M, bool blocks) {
  CudaBackend be(DType::F16);  // sets up programmatic dependent launch as the engine does
  constexpr int kCopies = 8;
  const size_t wbytes = static_cast<size_t>(N * K);
  std::vector<void*> w(kCopies);
  // e4m3 bytes of magnitude below 1 (exponent field under 7), either sign; activations float16.
  std::vector<uint8_t> host(wbytes);
  uint32_t st = 12345;
  for (auto& h : host) {
    st = st * 1664525u + 1013904223u;
    h = static_cast<uint8_t>((st >> 16) & 0xb7u);
  }
  for (auto& p : w) {
    ck(cudaMalloc(&p, wbytes), "cudaMalloc");
    ck(cudaMemcpy(p, host.data(), wbytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  const int64_t grid_cols = (K + 127) / 128, grid_rows = (N + 127) / 128;
  std::vector<float> scales(static_cast<size_t>(blocks ? grid_rows * grid_cols : N), 0.01f);
  std::vector<int32_t> row_map(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) row_map[static_cast<size_t>(n)] = static_cast<int32_t>(n / 128);
  std::vector<uint16_t> xh(static_cast<size_t>(M * K), 0x3555);  // float16 0.333
  void *x = nullptr, *out = nullptr, *sc = nullptr, *map = nullptr;
  ck(cudaMalloc(&x, xh.size() * 2), "cudaMalloc");
  ck(cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  ck(cudaMalloc(&out, static_cast<size_t>(M * N) * 2), "cudaMalloc");
  ck(cudaMalloc(&sc, scales.size() * 4), "cudaMalloc");
  ck(cudaMemcpy(sc, scales.data(), scales.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  ck(cudaMalloc(&map, row_map.size() * 4), "cudaMalloc");
  ck(cudaMemcpy(map, row_map.data(), row_map.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
  cudaStream_t stream;
  ck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      cuda::Fp8Weight fw;
      fw.w = static_cast<const uint8_t*>(w[i % kCopies]);
      fw.scales = static_cast<const float*>(sc);
      fw.row_map = blocks ? static_cast<const int32_t*>(map) : nullptr;
      fw.block_cols = blocks ? 128 : 0;
      fw.grid_cols = blocks ? grid_cols : 0;
      cuda::gemv_fp8(DType::F16, out, x, fw, nullptr, M, N, K, stream);
    }
  };
  const double m = median_us_per_call(stream, run, "gemv_fp8");
  std::printf("gemv_fp8 N=%lld K=%lld M=%lld %s: %.2f us, %.0f GB/s of weights\n", static_cast<long long>(N),
              static_cast<long long>(K), static_cast<long long>(M), blocks ? "blocks" : "per-row", m,
              static_cast<double>(wbytes) / (m * 1e-6) / 1e9);
  for (auto p : w) cudaFree(p);
  cudaFree(x);
  cudaFree(out);
  cudaFree(sc);
  cudaFree(map);
  cudaStreamDestroy(stream);
  return 0;
}

int gemv_gguf_bench(const std::string& type_name, int64_t N, int64_t K, int64_t M) {
  using gguf::GgmlType;
  const auto type = gguf::ggml_type_from_name(type_name);
  cuda::GgufKind kind;
  if (type == GgmlType::kQ8_0) kind = cuda::GgufKind::kQ8_0;
  else if (type == GgmlType::kQ4_0) kind = cuda::GgufKind::kQ4_0;
  else if (type == GgmlType::kQ4_K) kind = cuda::GgufKind::kQ4_K;
  else if (type == GgmlType::kQ5_K) kind = cuda::GgufKind::kQ5_K;
  else if (type == GgmlType::kQ6_K) kind = cuda::GgufKind::kQ6_K;
  else {
    std::fprintf(stderr, "gemv_gguf: TYPE is one of Q8_0, Q4_0, Q4_K, Q5_K, Q6_K\n");
    return 2;
  }
  if (K % cuda::gguf_block_elems(kind) != 0) {
    std::fprintf(stderr, "gemv_gguf: K must be a multiple of %lld for %s\n",
                 static_cast<long long>(cuda::gguf_block_elems(kind)), type_name.c_str());
    return 2;
  }
  CudaBackend be(DType::F16);  // sets up programmatic dependent launch as the engine does
  constexpr int kCopies = 8;
  const size_t row_bytes = gguf::ggml_row_bytes(*type, K), wbytes = row_bytes * static_cast<size_t>(N);
  // 16 distinct rows of random weights (quantizing every row of a large matrix takes long on the
  // host; the kernel's time does not depend on the values), repeated.
  constexpr int64_t kRows = 16;
  std::vector<uint8_t> rows(row_bytes * kRows), host(wbytes);
  std::vector<float> f(static_cast<size_t>(K));
  uint32_t st = 12345;
  for (int64_t r = 0; r < kRows; ++r) {
    for (auto& v : f) {
      st = st * 1664525u + 1013904223u;
      v = (static_cast<float>((st >> 8) & 0xFFFF) / 65536.0f - 0.5f) * 0.05f;
    }
    gguf::quantize_row(*type, f.data(), rows.data() + static_cast<size_t>(r) * row_bytes, K);
  }
  for (int64_t n = 0; n < N; ++n)
    std::copy(rows.begin() + static_cast<std::ptrdiff_t>(n % kRows * static_cast<int64_t>(row_bytes)),
              rows.begin() + static_cast<std::ptrdiff_t>((n % kRows + 1) * static_cast<int64_t>(row_bytes)),
              host.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(n) * row_bytes));
  std::vector<void*> w(kCopies);
  for (auto& p : w) {
    ck(cudaMalloc(&p, wbytes), "cudaMalloc");
    ck(cudaMemcpy(p, host.data(), wbytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  std::vector<uint16_t> xh(static_cast<size_t>(M * K), 0x3555);  // float16 0.333
  void *x = nullptr, *out = nullptr;
  ck(cudaMalloc(&x, xh.size() * 2), "cudaMalloc");
  ck(cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  ck(cudaMalloc(&out, static_cast<size_t>(M * N) * 2), "cudaMalloc");
  cudaStream_t stream;
  ck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const cuda::GgufSegment seg{kind, static_cast<const uint8_t*>(w[i % kCopies]), N, 0};
      cuda::gemv_gguf(DType::F16, out, x, seg, nullptr, M, N, K, stream);
    }
  };
  const double m = median_us_per_call(stream, run, "gemv_gguf");
  std::printf("gemv_gguf %s N=%lld K=%lld M=%lld: %.2f us, %.0f GB/s of blocks (%.1f MB)\n", type_name.c_str(),
              static_cast<long long>(N), static_cast<long long>(K), static_cast<long long>(M), m,
              static_cast<double>(wbytes) / (m * 1e-6) / 1e9, static_cast<double>(wbytes) / 1e6);
  for (auto p : w) cudaFree(p);
  cudaFree(x);
  cudaFree(out);
  cudaStreamDestroy(stream);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "gpu_bench: no CUDA device\n");
    return 2;
  }
  std::string mode = argc > 1 ? argv[1] : "copy";
  if (mode == "copy") return copy_bench();
  if (mode == "attn") {
    auto arg = [&](int i, int64_t d) { return argc > i ? std::atoll(argv[i]) : d; };
    return attn_bench(arg(2, 64), arg(3, 2048), arg(4, 32), arg(5, 32), arg(6, 64), arg(7, 16));
  }
  if (mode == "gemv" && argc > 3) {
    auto arg = [&](int i, int64_t d) { return argc > i ? std::atoll(argv[i]) : d; };
    return gemv_bench(arg(2, 2048), arg(3, 2048), arg(4, 1), static_cast<int>(arg(5, 0)));
  }
  if (mode == "gemv_fp8" && argc > 3) {
    auto arg = [&](int i, int64_t d) { return argc > i ? std::atoll(argv[i]) : d; };
    return gemv_fp8_bench(arg(2, 2048), arg(3, 2048), arg(4, 1), arg(5, 0) != 0);
  }
  if (mode == "gemv_gguf" && argc > 4) {
    auto arg = [&](int i, int64_t d) { return argc > i ? std::atoll(argv[i]) : d; };
    return gemv_gguf_bench(argv[2], arg(3, 2048), arg(4, 2048), arg(5, 1));
  }
  std::fprintf(stderr,
               "usage: gpu_bench copy | attn [B CTX NH NKV HD BS] | gemv N K [M EPI] | gemv_fp8 N K [M B] | "
               "gemv_gguf TYPE N K [M]\n");
  return 2;
}
