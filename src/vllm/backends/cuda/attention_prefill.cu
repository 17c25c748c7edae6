// Prefill / chunked-prefill attention on tensor cores (float16 / bfloat16), FlashAttention-2
// style. A block of 4 warps takes 64 query rows of one sequence and one query head; each warp owns
// 16 rows. K and V tiles of 64 keys are gathered from the paged cache through the block table into
// shared memory with cp.async (the next K tile loads during P·V, the next V tile during Q·Kᵀ);
// scores, the online softmax (base 2) and the output stay in registers in float32, with mma.sync
// m16n8k16 products and ldmatrix fragment loads. Causal masking by visible length: row t of a
// sequence with L keys and q new tokens sees the first L - q + (t + 1) keys.
//
// A sliding window W masks, besides, the keys before each row's last W, and the key tiles start
// at the tile's first row's window (positions before it are never read: their blocks may be gone
// from the block table), so a tile reads at most W + 64 keys. A soft-cap bends the scores before
// the masking (a template parameter: the plain kernel does not carry the tanh's registers); sinks
// join each row's denominator once, at the end.
//
// An FP8 cache (C = KvFp8, --kv-cache-dtype fp8) is converted to T as its tiles are loaded into
// shared memory (8-byte loads, exact: every e4m3 value is a float16 / bfloat16), without cp.async;
// the K scale rides on the scores' scale and the V scale on the output's normaliser.
#include "vllm/backends/cuda/common.cuh"
#include "vllm/backends/cuda/kv_fp8.cuh"

namespace vllm::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kBM = kPrefillTileM, kBN = 64, kThreads = 128;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float x, float y);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float x, float y) {
  __half2 h = __floats2half2_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float x, float y) {
  __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&h);
}

// CAPPED: the layer soft-caps its scores (a compile-time choice: the tanh's registers would cost the
// plain kernel some of its own). C: the cache's element type, T or KvFp8.
template <typename T, typename C, int D, bool CAPPED>
__global__ void __launch_bounds__(kThreads) prefill_kernel(AttentionArgs a, const int32_t* __restrict__ tiles) {
  pdl_begin();
  constexpr int STRIDE = D + 8;  // elements; 16 bytes of padding keeps ldmatrix rows on distinct banks
  constexpr int CPR = D / 8;     // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBM * STRIDE;
  T* sV = sK + kBN * STRIDE;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t seq = tiles[2 * blockIdx.x], row0 = tiles[2 * blockIdx.x + 1];
  const int64_t h = blockIdx.y, nh = a.num_heads, nkv = a.num_kv_heads, bs = a.block_size;
  const int64_t g = h / (nh / nkv);
  const int64_t q_begin = a.query_start_loc[seq], qlen = a.query_start_loc[seq + 1] - q_begin;
  const int64_t ctx = a.seq_lens[seq] - qlen;
  const int rows = static_cast<int>(imin(kBM, qlen - row0));
  const int64_t kv_len = ctx + row0 + rows;
  // The first key any row of the tile sees (its first row's window), and the tile of it.
  const int64_t window = a.window;
  const int64_t kv_first = window > 0 ? imax(0, ctx + row0 + 1 - window) : 0;
  const int kt_first = static_cast<int>(kv_first / kBN);
  const int n_tiles = static_cast<int>((kv_len + kBN - 1) / kBN);
  const int32_t* table = a.block_tables + seq * a.max_blocks_per_seq;
  const T* qkv = static_cast<const T*>(a.qkv);
  const C* kc = static_cast<const C*>(a.k_cache);
  const C* vc = static_cast<const C*>(a.v_cache);

  for (int c = tid; c < kBM * CPR; c += kThreads) {
    const int r = c / CPR, cc = c % CPR;
    T* dst = sQ + r * STRIDE + cc * 8;
    if (r < rows) cp_async16(dst, qkv + (q_begin + row0 + r) * a.width + h * D + cc * 8);
    else *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
  }
  cp_async_commit();
  auto load_tile = [&](T* s, const C* cache, int kt) {
    for (int c = tid; c < kBN * CPR; c += kThreads) {
      const int r = c / CPR, cc = c % CPR;
      const int64_t j = static_cast<int64_t>(kt) * kBN + r;
      T* dst = s + r * STRIDE + cc * 8;
      if (j < kv_len && j >= kv_first) {
        const int64_t page = table[j / bs];
        if constexpr (kIsKvFp8<C>) {
          const uint2 raw = __ldg(reinterpret_cast<const uint2*>(cache + ((page * nkv + g) * bs + j % bs) * D + cc * 8));
          store_pack(dst, kv_dequantize8<T>(raw));
        } else {
          cp_async16(dst, cache + ((page * nkv + g) * bs + j % bs) * D + cc * 8);
        }
      } else {
        *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
      }
    }
  };
  load_tile(sK, kc, kt_first);
  cp_async_commit();
  load_tile(sV, vc, kt_first);
  cp_async_commit();
  cp_async_wait<2>();
  __syncthreads();

  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * STRIDE + kk * 16 + (lane >> 4) * 8);

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float qs = a.scale * kLog2e;
  float cap_in = CAPPED ? a.scale / a.softcap : 0.0f;
  const float cap_l2 = a.softcap * kLog2e;
  if constexpr (kIsKvFp8<C>) {  // q·k of the stored keys times k_scale
    qs *= a.k_scale;
    cap_in *= a.k_scale;
  }
  const int r_a = warp * 16 + (lane >> 2);
  const int64_t vis[2] = {ctx + row0 + r_a + 1, ctx + row0 + r_a + 9};
  const int64_t vis_min = ctx + row0 + 1;
  // With a window, row r sees keys from vis - window on (lo); keys below the tile's last row's lo
  // need the mask. Without one, lo = 0 masks nothing.
  const int64_t lo[2] = {window > 0 ? vis[0] - window : 0, window > 0 ? vis[1] - window : 0};
  const int64_t lo_max = window > 0 ? kv_len - window : 0;

  for (int kt = kt_first; kt < n_tiles; ++kt) {
    cp_async_wait<1>();
    __syncthreads();
    float s[kBN / 8][4];
#pragma unroll
    for (int i = 0; i < kBN / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int n2 = 0; n2 < kBN / 16; ++n2) {
        uint32_t b[4];
        ldmatrix_x4(b, sK + (n2 * 16 + (lane & 7) + ((lane >> 4) << 3)) * STRIDE + kk * 16 + ((lane >> 3) & 1) * 8);
        mma<T>(s[2 * n2], qf[kk], b[0], b[1]);
        mma<T>(s[2 * n2 + 1], qf[kk], b[2], b[3]);
      }
    }
    const int64_t kbase = static_cast<int64_t>(kt) * kBN;
    const bool need_mask = kbase + kBN > vis_min || kbase < lo_max;
    if constexpr (CAPPED) {
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) s[nt][i] = cap_l2 * tanhf(s[nt][i] * cap_in);
    } else {
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) s[nt][i] *= qs;
    }
    if (need_mask) {
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int64_t j = kbase + nt * 8 + (lane & 3) * 2 + (i & 1);
          if (j >= vis[i >> 1] || j < lo[i >> 1]) s[nt][i] = -INFINITY;
        }
    }
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[hf], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[hf] - m_use);
      l[hf] *= alpha;
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        o[i][2 * hf] *= alpha;
        o[i][2 * hf + 1] *= alpha;
      }
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        s[nt][2 * hf] = exp2f(s[nt][2 * hf] - m_use);
        s[nt][2 * hf + 1] = exp2f(s[nt][2 * hf + 1] - m_use);
        sum += s[nt][2 * hf] + s[nt][2 * hf + 1];
      }
      l[hf] += sum;
      m[hf] = m_new;
    }
    __syncthreads();  // every warp is done with this K tile
    if (kt + 1 < n_tiles) load_tile(sK, kc, kt + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
#pragma unroll
    for (int k2 = 0; k2 < kBN / 16; ++k2) {
      uint32_t pa[4];
      pa[0] = pack2<T>(s[2 * k2][0], s[2 * k2][1]);
      pa[1] = pack2<T>(s[2 * k2][2], s[2 * k2][3]);
      pa[2] = pack2<T>(s[2 * k2 + 1][0], s[2 * k2 + 1][1]);
      pa[3] = pack2<T>(s[2 * k2 + 1][2], s[2 * k2 + 1][3]);
#pragma unroll
      for (int n2 = 0; n2 < D / 16; ++n2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, sV + (k2 * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * STRIDE + n2 * 16 + (lane >> 4) * 8);
        mma<T>(o[2 * n2], pa, b[0], b[1]);
        mma<T>(o[2 * n2 + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this V tile
    if (kt + 1 < n_tiles) load_tile(sV, vc, kt + 1);
    cp_async_commit();
  }
  cp_async_wait<0>();

#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    l[hf] += __shfl_xor_sync(0xffffffffu, l[hf], 1);
    l[hf] += __shfl_xor_sync(0xffffffffu, l[hf], 2);
    const int r = r_a + hf * 8;
    if (r >= rows) continue;
    float inv = l[hf] > 0.0f ? 1.0f / l[hf] : 0.0f;
    // Every row sees at least its own key, so m is finite.
    if (a.sinks != nullptr) inv = sink_scale(m[hf], l[hf], a.sinks[h] * kLog2e);
    if constexpr (kIsKvFp8<C>) inv *= a.v_scale;
    T* orow = static_cast<T*>(a.out) + (q_begin + row0 + r) * nh * D + h * D;
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt) {
      const uint32_t v = pack2<T>(o[nt][2 * hf] * inv, o[nt][2 * hf + 1] * inv);
      *reinterpret_cast<uint32_t*>(orow + nt * 8 + (lane & 3) * 2) = v;
    }
  }
}

template <typename T, typename C, int D, bool CAPPED>
void launch(const AttentionArgs& a, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  constexpr size_t smem = static_cast<size_t>(kBM + 2 * kBN) * (D + 8) * sizeof(T);
  static bool configured = false;
  if (!configured) {
    check(cudaFuncSetAttribute(prefill_kernel<T, C, D, CAPPED>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "cudaFuncSetAttribute(prefill)");
    configured = true;
  }
  dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(a.num_heads));
  launch_k(prefill_kernel<T, C, D, CAPPED>, grid, kThreads, smem, stream, a, tiles);
}

template <typename T, typename C, int D>
void launch_cap(const AttentionArgs& a, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  if (a.softcap > 0.0f) launch<T, C, D, true>(a, tiles, n_tiles, stream);
  else launch<T, C, D, false>(a, tiles, n_tiles, stream);
}

template <typename T, int D>
void launch_kv(const AttentionArgs& a, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  if (a.kv_fp8) launch_cap<T, KvFp8, D>(a, tiles, n_tiles, stream);
  else launch_cap<T, T, D>(a, tiles, n_tiles, stream);
}

template <typename T>
void launch_d(const AttentionArgs& a, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  switch (a.head_dim) {
    case 32: launch_kv<T, 32>(a, tiles, n_tiles, stream); break;
    case 64: launch_kv<T, 64>(a, tiles, n_tiles, stream); break;
    case 128: launch_kv<T, 128>(a, tiles, n_tiles, stream); break;
    default: fail("prefill attention: unsupported head_dim");
  }
}

}  // namespace

bool prefill_supported(DType t, int64_t head_dim) {
  return (t == DType::F16 || t == DType::BF16) && (head_dim == 32 || head_dim == 64 || head_dim == 128);
}

void prefill_attention(DType t, const AttentionArgs& a, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  if (n_tiles == 0) return;
  if (t == DType::F16) launch_d<__half>(a, tiles, n_tiles, stream);
  else if (t == DType::BF16) launch_d<__nv_bfloat16>(a, tiles, n_tiles, stream);
  else fail("prefill attention: 16-bit types only");
  check_launch("prefill_attention");
}

}  // namespace vllm::cuda
