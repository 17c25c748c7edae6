// GGUF block types on the device (gguf_ops.cpp keeps a GGUF file's quantized weights as they are):
// the skinny product for decode, which dequantizes each block in registers, and the dequantization
// of a weight into the compute dtype for the 16-bit (or float32) cuBLASLt product of larger batches.
//
// Both read a row of blocks as "units": a unit is what one lane decodes from one block at a time,
// a few runs of 16 consecutive weights (their offsets within the block fixed by the type), with
// the block's scales as ggml defines them (src/vllm/gguf/block_formats.cpp's dequantizers are the
// reference, formula for formula):
//   Q8_0  (34-byte blocks of 32):   2 units of 1 run   (16 int8 quants, 2-byte loads)
//   Q4_0  (18-byte blocks of 32):   1 unit  of 2 runs  (16 bytes of nibbles, 2-byte loads)
//   Q4_K  (144-byte blocks of 256): 8 units of 2 runs  (one 16-byte load of nibbles)
//   Q5_K  (176-byte blocks of 256): 8 units of 2 runs  (16-byte loads of nibbles and of high bits)
//   Q6_K  (210-byte blocks of 256): 4 units of 4 runs  (2-byte loads: blocks are only 2-aligned)
//   dense (compute dtype T):        1 unit  of 1 run   (16 weights of T: the float parts of a
//                                                       layer whose other parts are quantized)
// Q4_K and Q5_K blocks are 16-byte multiples, so their segments (each at a 256-byte aligned
// offset) get 16-byte loads; Q8_0, Q4_0 and Q6_K blocks are only 2-byte aligned within a row.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// 16 bytes from a 2-byte aligned address, as 8 two-byte loads (through L1: a warp's loads of
// neighbouring units share their sectors).
__device__ __forceinline__ void load16_u2(const uint8_t* p, uint16_t (&v)[8]) {
  const auto* q = reinterpret_cast<const unsigned short*>(p);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = __ldg(q + i);
}
__device__ __forceinline__ uint8_t byte_of(const uint16_t (&v)[8], int i) {
  return static_cast<uint8_t>(v[i >> 1] >> (8 * (i & 1)));
}
__device__ __forceinline__ uint8_t byte_of(const uint4& v, int i) {
  const uint32_t w = i < 4 ? v.x : i < 8 ? v.y : i < 12 ? v.z : v.w;
  return static_cast<uint8_t>(w >> (8 * (i & 3)));
}

// The traits of each kind: block geometry, the raw bytes of a unit (load), and its decoding into
// runs of 16 weights (decode calls f(run offset within the block, weights[16]) for each run).
template <GgufKind Q, typename T>
struct Kind;

template <typename T>
struct Kind<GgufKind::kQ8_0, T> {
  static constexpr int kElems = 32, kBytes = 34, kUnits = 2;
  struct Raw {
    uint16_t d;
    uint16_t q[8];
  };
  static __device__ __forceinline__ Raw load(const uint8_t* blk, int u) {
    Raw r;
    r.d = __ldg(reinterpret_cast<const unsigned short*>(blk));
    load16_u2(blk + 2 + 16 * u, r.q);
    return r;
  }
  template <typename F>
  static __device__ __forceinline__ void decode(const Raw& r, int u, F&& f) {
    const float d = half_bits_to_float(r.d);
    float w[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) w[e] = static_cast<float>(static_cast<int8_t>(byte_of(r.q, e))) * d;
    f(16 * u, w);
  }
};

template <typename T>
struct Kind<GgufKind::kQ4_0, T> {
  static constexpr int kElems = 32, kBytes = 18, kUnits = 1;
  struct Raw {
    uint16_t d;
    uint16_t q[8];
  };
  static __device__ __forceinline__ Raw load(const uint8_t* blk, int) {
    Raw r;
    r.d = __ldg(reinterpret_cast<const unsigned short*>(blk));
    load16_u2(blk + 2, r.q);
    return r;
  }
  template <typename F>
  static __device__ __forceinline__ void decode(const Raw& r, int, F&& f) {
    const float d = half_bits_to_float(r.d);
    float w[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) w[e] = static_cast<float>((byte_of(r.q, e) & 0xF) - 8) * d;
    f(0, w);
#pragma unroll
    for (int e = 0; e < 16; ++e) w[e] = static_cast<float>((byte_of(r.q, e) >> 4) - 8) * d;
    f(16, w);
  }
};

// Q4_K / Q5_K: unit u = 2c + h covers bytes 32c + 16h .. +15 of qs, whose low nibbles are weights
// 64c + 16h + l of sub-block 2c and high nibbles weights 64c + 32 + 16h + l of sub-block 2c + 1
// (l = 0..15); Q5_K's fifth bits are bits 2c and 2c + 1 of qh[16h + l].
__device__ __forceinline__ void k4_scale_min(int j, const uint32_t (&sc)[3], float d, float dmin, float& ds, float& dm) {
  // Byte i of the 12 (j is not known at compile time: selects, not an indexed array, which would
  // go to local memory).
  auto q = [&](int i) {
    const uint32_t word = i < 4 ? sc[0] : i < 8 ? sc[1] : sc[2];
    return (word >> (8 * (i & 3))) & 0xFFu;
  };
  uint32_t s, m;
  if (j < 4) {
    s = q(j) & 63;
    m = q(j + 4) & 63;
  } else {
    s = (q(j + 4) & 0xF) | ((q(j - 4) >> 6) << 4);
    m = (q(j + 4) >> 4) | ((q(j) >> 6) << 4);
  }
  ds = d * static_cast<float>(s);
  dm = dmin * static_cast<float>(m);
}

template <bool kFive>
struct KQuant {
  static constexpr int kElems = 256, kBytes = kFive ? 176 : 144, kUnits = 8;
  struct Raw {
    uint32_t dm;
    uint32_t sc[3];
    uint4 qs;
    uint4 qh;
  };
  static __device__ __forceinline__ Raw load(const uint8_t* blk, int u) {
    const int c = u >> 1, h = u & 1;
    Raw r;
    const auto* w32 = reinterpret_cast<const unsigned int*>(blk);
    r.dm = __ldg(w32);
#pragma unroll
    for (int i = 0; i < 3; ++i) r.sc[i] = __ldg(w32 + 1 + i);
    r.qs = __ldcs(reinterpret_cast<const uint4*>(blk + (kFive ? 48 : 16) + 32 * c + 16 * h));
    r.qh = kFive ? __ldg(reinterpret_cast<const uint4*>(blk + 16 + 16 * h)) : make_uint4(0, 0, 0, 0);
    return r;
  }
  template <typename F>
  static __device__ __forceinline__ void decode(const Raw& r, int u, F&& f) {
    const int c = u >> 1, h = u & 1;
    const float d = half_bits_to_float(static_cast<uint16_t>(r.dm & 0xFFFF));
    const float dmin = half_bits_to_float(static_cast<uint16_t>(r.dm >> 16));
    float d1, m1, d2, m2;
    k4_scale_min(2 * c, r.sc, d, dmin, d1, m1);
    k4_scale_min(2 * c + 1, r.sc, d, dmin, d2, m2);
    float w[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) {
      int lo = byte_of(r.qs, e) & 0xF;
      if (kFive) lo += (byte_of(r.qh, e) >> (2 * c)) & 1 ? 16 : 0;
      w[e] = d1 * static_cast<float>(lo) - m1;
    }
    f(64 * c + 16 * h, w);
#pragma unroll
    for (int e = 0; e < 16; ++e) {
      int hi = byte_of(r.qs, e) >> 4;
      if (kFive) hi += (byte_of(r.qh, e) >> (2 * c + 1)) & 1 ? 16 : 0;
      w[e] = d2 * static_cast<float>(hi) - m2;
    }
    f(64 * c + 32 + 16 * h, w);
  }
};
template <typename T>
struct Kind<GgufKind::kQ4_K, T> : KQuant<false> {};
template <typename T>
struct Kind<GgufKind::kQ5_K, T> : KQuant<true> {};

// Q6_K (ql[128], qh[64], scales[16], d): unit u = 2h + g covers l = 16g .. 16g + 15 of half h,
// that is weights 128h + 32k + l (k = 0..3) with sub-block scale scales[8h + g + 2k]:
// k = 0, 1 take the low nibbles of ql[64h + l] and ql[64h + 32 + l], k = 2, 3 their high
// nibbles, and bits 2k..2k+1 of qh[32h + l] are the top two bits.
template <typename T>
struct Kind<GgufKind::kQ6_K, T> {
  static constexpr int kElems = 256, kBytes = 210, kUnits = 4;
  struct Raw {
    uint16_t a[8], b[8], h[8];
    int8_t sc[4];
    uint16_t d;
  };
  static __device__ __forceinline__ Raw load(const uint8_t* blk, int u) {
    const int hh = u >> 1, g = u & 1;
    Raw r;
    load16_u2(blk + 64 * hh + 16 * g, r.a);
    load16_u2(blk + 64 * hh + 32 + 16 * g, r.b);
    load16_u2(blk + 128 + 32 * hh + 16 * g, r.h);
    const auto* sc = reinterpret_cast<const signed char*>(blk + 192 + 8 * hh + g);
#pragma unroll
    for (int k = 0; k < 4; ++k) r.sc[k] = static_cast<int8_t>(__ldg(sc + 2 * k));
    r.d = __ldg(reinterpret_cast<const unsigned short*>(blk + 208));
    return r;
  }
  template <typename F>
  static __device__ __forceinline__ void decode(const Raw& r, int u, F&& f) {
    const int hh = u >> 1, g = u & 1;
    const float d = half_bits_to_float(r.d);
    float w[16];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float ds = d * static_cast<float>(r.sc[k]);
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const uint8_t ql = (k & 1) ? byte_of(r.b, e) : byte_of(r.a, e);
        const int low = (k < 2) ? (ql & 0xF) : (ql >> 4);
        const int q = (low | (((byte_of(r.h, e) >> (2 * k)) & 3) << 4)) - 32;
        w[e] = ds * static_cast<float>(q);
      }
      f(128 * hh + 32 * k + 16 * g, w);
    }
  }
};

// The float parts of a mixed layer, stored in the compute dtype: blocks of 16 weights.
template <typename T>
struct Kind<GgufKind::kDense, T> {
  static constexpr int kElems = 16, kBytes = 16 * static_cast<int>(sizeof(T)), kUnits = 1;
  static constexpr int kLoads = static_cast<int>(sizeof(T));  // 16-byte loads a unit
  struct Raw {
    uint4 v[kLoads];
  };
  static __device__ __forceinline__ Raw load(const uint8_t* blk, int) {
    Raw r;
#pragma unroll
    for (int i = 0; i < kLoads; ++i) r.v[i] = __ldcs(reinterpret_cast<const uint4*>(blk) + i);
    return r;
  }
  template <typename F>
  static __device__ __forceinline__ void decode(const Raw& r, int, F&& f) {
    const T* t = reinterpret_cast<const T*>(r.v);
    float w[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) w[e] = to_float(t[e]);
    f(0, w);
  }
};

// 16 consecutive activations (16-byte aligned) as float32.
template <typename T>
__device__ __forceinline__ void load_x16(const T* p, float (&v)[16]) {
  constexpr int E = Pack<T>::N;
#pragma unroll
  for (int i = 0; i < 16 / E; ++i) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p) + i);
    const Pack<T>& pk = *reinterpret_cast<const Pack<T>*>(&raw);
#pragma unroll
    for (int e = 0; e < E; ++e) v[i * E + e] = to_float(pk.v[e]);
  }
}

// Units a lane loads before it decodes them (loads in flight); fewer for the larger raw units
// (Q6_K's two at 8 activation rows spilled).
template <GgufKind Q, int M>
constexpr int batch_of() {
  return Q == GgufKind::kQ6_K ? (M >= 8 ? 1 : 2) : Q == GgufKind::kQ5_K ? 2 : 4;
}

// One segment (rows of one kind) of the product: a block's kWarps / W row groups each take one row
// (block b, group g: row b * R + g), the W warps of a group strided parts of its units, summed
// through shared memory. Output row r of the segment is column col0 + r of out [rows_m, ldo].
template <typename T, GgufKind Q, int M>
__global__ void __launch_bounds__(kThreads, 2)
    gemv_gguf_kernel(T* __restrict__ out, const T* __restrict__ x, const uint8_t* __restrict__ w,
                     const T* __restrict__ bias, const T* __restrict__ other, GemvEpilogue epi, int rows_m, int rows,
                     int64_t ldo, int64_t col0, int64_t K, int W) {
  using KT = Kind<Q, T>;
  constexpr int B = batch_of<Q, M>();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % W, R = kWarps / W;
  const int row = static_cast<int>(blockIdx.x) * R + warp / W;
  const int nb = static_cast<int>(K / KT::kElems), units = nb * KT::kUnits, stride = W * 32;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  pdl_begin();  // x (and `other`, `out` for the residual) come from earlier kernels
  if (row < rows) {
    const uint8_t* wr = w + static_cast<int64_t>(row) * nb * KT::kBytes;
    for (int u0 = part * 32 + lane; u0 < units; u0 += B * stride) {
      typename KT::Raw raw[B];
#pragma unroll
      for (int i = 0; i < B; ++i) {
        const int u = u0 + i * stride;
        if (u < units) raw[i] = KT::load(wr + static_cast<int64_t>(u / KT::kUnits) * KT::kBytes, u % KT::kUnits);
      }
#pragma unroll
      for (int i = 0; i < B; ++i) {
        const int u = u0 + i * stride;
        if (u < units) {
          const int64_t first = static_cast<int64_t>(u / KT::kUnits) * KT::kElems;
          KT::decode(raw[i], u % KT::kUnits, [&](int offset, const float (&wv)[16]) {
#pragma unroll
            for (int m = 0; m < M; ++m) {
              if (m < rows_m) {
                float xv[16];
                load_x16(x + m * K + first + offset, xv);
                float s = acc[m];
#pragma unroll
                for (int e = 0; e < 16; ++e) s = fmaf(wv[e], xv[e], s);
                acc[m] = s;
              }
            }
          });
        }
      }
    }
  }
  __shared__ float partial[kWarps][M];
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = warp_sum(acc[m]);
    if (lane == 0) partial[warp][m] = v;
  }
  __syncthreads();
  // Lane m of a row's first warp finishes row m of the product, with gemv's epilogues.
  if (row < rows && part == 0 && lane < rows_m) {
    const int m = lane;
    float s = 0.0f;
    for (int q = 0; q < W; ++q) s += partial[warp + q][m];
    const int64_t col = col0 + row;
    const T r = from_float<T>(s + (bias ? to_float(bias[col]) : 0.0f));
    T* o = out + m * ldo + col;
    if (epi == GemvEpilogue::kNone) {
      *o = r;
    } else if (epi == GemvEpilogue::kGelu) {
      *o = from_float<T>(gelu_tanh(to_float(r)));
    } else {
      const T h = from_float<T>(to_float(*o) + to_float(other[m * ldo + col]));
      *o = from_float<T>(to_float(h) + to_float(r));
    }
  }
}

// One thread a unit: out[row, :] (rows of K in T) = the segment's dequantized rows.
template <typename T, GgufKind Q>
__global__ void dequantize_gguf_kernel(T* __restrict__ out, const uint8_t* __restrict__ w, int64_t rows, int64_t K) {
  using KT = Kind<Q, T>;
  pdl_begin();
  const int64_t nb = K / KT::kElems, per_row = nb * KT::kUnits, total = rows * per_row;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < total;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = g / per_row, u = g % per_row, b = u / KT::kUnits;
    const int j = static_cast<int>(u % KT::kUnits);
    const typename KT::Raw raw = KT::load(w + (row * nb + b) * KT::kBytes, j);
    T* o = out + row * K + b * KT::kElems;
    KT::decode(raw, j, [&](int offset, const float (&wv)[16]) {
      constexpr int E = Pack<T>::N;
#pragma unroll
      for (int i = 0; i < 16 / E; ++i) {
        Pack<T> p;
#pragma unroll
        for (int e = 0; e < E; ++e) p.v[e] = from_float<T>(wv[i * E + e]);
        store_pack(o + offset + i * E, p);
      }
    });
  }
}

int num_sms() {
  static const int sms = [] {
    int dev = 0, n = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    return std::max(1, n);
  }();
  return sms;
}

template <GgufKind Q>
int units_per_row(int64_t K) {
  using KT = Kind<Q, float>;
  return static_cast<int>(K / KT::kElems * KT::kUnits);
}

template <typename T, GgufKind Q, int M>
void launch_gemv_m(T* out, const T* x, const GgufSegment& s, const T* bias, const T* other, GemvEpilogue epi, int rows_m,
                   int64_t ldo, int64_t K, cudaStream_t stream) {
  // Warps a row: more while the rows alone would leave the chip's warps idle (about 16 an SM
  // resident), as long as every lane of a row's warps has a unit.
  const int units = units_per_row<Q>(K);
  const int64_t target = static_cast<int64_t>(num_sms()) * 16;
  int W = 1;
  while (W < kWarps && s.rows * W < target && W * 2 * 32 <= units) W *= 2;
  const int R = kWarps / W;
  const unsigned blocks = ceil_div(s.rows, R);
  launch_k(gemv_gguf_kernel<T, Q, M>, blocks, kThreads, 0, stream, out, x, s.w, bias, other, epi, rows_m,
           static_cast<int>(s.rows), ldo, s.col0, K, W);
}

template <typename T, GgufKind Q>
void launch_gemv(T* out, const T* x, const GgufSegment& s, const T* bias, const T* other, GemvEpilogue epi, int64_t M,
                 int64_t ldo, int64_t K, cudaStream_t stream) {
  const int rows_m = static_cast<int>(M);
  if (M <= 1) launch_gemv_m<T, Q, 1>(out, x, s, bias, other, epi, rows_m, ldo, K, stream);
  else if (M <= 2) launch_gemv_m<T, Q, 2>(out, x, s, bias, other, epi, rows_m, ldo, K, stream);
  else if (M <= 4) launch_gemv_m<T, Q, 4>(out, x, s, bias, other, epi, rows_m, ldo, K, stream);
  else launch_gemv_m<T, Q, 8>(out, x, s, bias, other, epi, rows_m, ldo, K, stream);
}

template <typename T>
void gemv_gguf_t(void* out, const void* x, const GgufSegment& s, const void* bias, const void* other, GemvEpilogue epi,
                 int64_t M, int64_t ldo, int64_t K, cudaStream_t stream) {
  auto o = static_cast<T*>(out);
  auto xx = static_cast<const T*>(x);
  auto b = static_cast<const T*>(bias);
  auto ot = static_cast<const T*>(other);
  switch (s.kind) {
    case GgufKind::kQ8_0: launch_gemv<T, GgufKind::kQ8_0>(o, xx, s, b, ot, epi, M, ldo, K, stream); break;
    case GgufKind::kQ4_0: launch_gemv<T, GgufKind::kQ4_0>(o, xx, s, b, ot, epi, M, ldo, K, stream); break;
    case GgufKind::kQ4_K: launch_gemv<T, GgufKind::kQ4_K>(o, xx, s, b, ot, epi, M, ldo, K, stream); break;
    case GgufKind::kQ5_K: launch_gemv<T, GgufKind::kQ5_K>(o, xx, s, b, ot, epi, M, ldo, K, stream); break;
    case GgufKind::kQ6_K: launch_gemv<T, GgufKind::kQ6_K>(o, xx, s, b, ot, epi, M, ldo, K, stream); break;
    case GgufKind::kDense: launch_gemv<T, GgufKind::kDense>(o, xx, s, b, ot, epi, M, ldo, K, stream); break;
  }
}

template <typename T, GgufKind Q>
void launch_dequantize(T* out, const GgufSegment& s, int64_t K, cudaStream_t stream) {
  const int64_t total = s.rows * units_per_row<Q>(K);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(total, kThreads), 65536));
  launch_k(dequantize_gguf_kernel<T, Q>, blocks, kThreads, 0, stream, out, s.w, s.rows, K);
}

template <typename T>
void dequantize_gguf_t(void* out, const GgufSegment& s, int64_t K, cudaStream_t stream) {
  auto o = static_cast<T*>(out) + s.col0 * K;
  switch (s.kind) {
    case GgufKind::kQ8_0: launch_dequantize<T, GgufKind::kQ8_0>(o, s, K, stream); break;
    case GgufKind::kQ4_0: launch_dequantize<T, GgufKind::kQ4_0>(o, s, K, stream); break;
    case GgufKind::kQ4_K: launch_dequantize<T, GgufKind::kQ4_K>(o, s, K, stream); break;
    case GgufKind::kQ5_K: launch_dequantize<T, GgufKind::kQ5_K>(o, s, K, stream); break;
    case GgufKind::kQ6_K: launch_dequantize<T, GgufKind::kQ6_K>(o, s, K, stream); break;
    case GgufKind::kDense: launch_dequantize<T, GgufKind::kDense>(o, s, K, stream); break;
  }
}

}  // namespace

int64_t gguf_block_elems(GgufKind kind) {
  switch (kind) {
    case GgufKind::kQ8_0:
    case GgufKind::kQ4_0: return 32;
    case GgufKind::kQ4_K:
    case GgufKind::kQ5_K:
    case GgufKind::kQ6_K: return 256;
    case GgufKind::kDense: return 16;
  }
  return 0;
}

bool gemv_gguf_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x) {
  return (t == DType::F32 || t == DType::F16 || t == DType::BF16) && M >= 1 && M <= kGgufGemvMaxRows && K > 0 &&
         K % 32 == 0 && aligned16(x) && N < (int64_t{1} << 30) && K < (int64_t{1} << 30);
}

void gemv_gguf(DType t, void* out, const void* x, const GgufSegment& s, const void* bias, int64_t M, int64_t N,
               int64_t K, cudaStream_t stream, GemvEpilogue epi, const void* other) {
  if (!gemv_gguf_supported(t, M, N, K, x) || K % gguf_block_elems(s.kind) != 0 || s.col0 + s.rows > N)
    fail("gemv_gguf: unsupported shape, dtype or alignment");
  if (s.rows == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, gemv_gguf_t<T>(out, x, s, bias, other, epi, M, N, K, stream));
  check_launch("gemv_gguf");
}

void dequantize_gguf(DType t, void* out, const GgufSegment& s, int64_t K, cudaStream_t stream) {
  if (K % gguf_block_elems(s.kind) != 0 || K % 16 != 0 || !aligned16(out))
    fail("dequantize_gguf: K must be whole blocks and the output 16-byte aligned");
  if (s.rows == 0 || K == 0) return;
  VLLM_DISPATCH_FLOAT(t, T, dequantize_gguf_t<T>(out, s, K, stream));
  check_launch("dequantize_gguf");
}

}  // namespace vllm::cuda
