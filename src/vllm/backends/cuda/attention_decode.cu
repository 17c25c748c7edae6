// Decode attention (one query per sequence) over the paged KV cache, split-K over the context.
//
// A block handles one sequence, one KV head (up to GMAX of its query heads: a GQA group shares
// every K/V load) and one partition of the context. LK lanes own one key at a time, each lane 16
// bytes (8 elements) of the head, so D = 8 * LK; the block's 128 threads form 128 / LK key slots
// that walk the partition independently with their own online softmax (float32, base 2), and
// merge at the end through warp shuffles and shared memory. With several partitions each writes
// its unnormalised output and (max, sum), and the last of them to finish combines them. The new
// token's K/V are taken from qkv (and, for decode-only batches, written to the cache here).
//
// The softmax's variations cost nothing when off: a sliding window only moves where the keys
// start (the partitions cut the window, so blocks before it are never read and a long context
// costs what the window does); soft-capping is a uniform branch after each score's reduction
// (q is then scaled by scale / cap, and the score becomes cap * log2(e) * tanh(q·k)); sinks join
// the denominator once per head, where the output is normalised (the direct path or the combine),
// never per partition.
//
// An FP8 cache (C = KvFp8, --kv-cache-dtype fp8) gives each lane 8 bytes of a key instead of 16;
// they are converted in registers, the K scale rides on q and the V scale on the merged output.
// The new token's K/V are quantized as kv_write does before they join (and, with write_kv, are
// stored), so every key goes through the same rounding.
#include "vllm/backends/cuda/common.cuh"
#include "vllm/backends/cuda/kv_fp8.cuh"

namespace vllm::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 128;

// C: the cache's element type, T or KvFp8.
template <typename T, typename C, int LK, int GMAX>
__global__ void __launch_bounds__(kThreads) decode_kernel(AttentionArgs a, const int32_t* __restrict__ items,
                                                          int num_splits, float* __restrict__ part_o,
                                                          float* __restrict__ part_ml, int* __restrict__ counters,
                                                          bool write_kv) {
  constexpr int E = 8, D = LK * E, SLOTS = kThreads / LK, U = GMAX <= 2 ? 4 : 2, NW = kThreads / 32;
  constexpr bool kFp8 = kIsKvFp8<C>;
  using Raw = std::conditional_t<kFp8, uint2, uint4>;  // one lane's 8 elements of a key
  __shared__ float sm_m[NW][GMAX], sm_l[NW][GMAX];
  __shared__ __align__(16) float sm_acc[NW][GMAX][D];
  __shared__ bool sm_last;

  const int tid = threadIdx.x, lane = tid % LK, slot = tid / LK, warp = tid / 32;
  const int64_t nh = a.num_heads, nkv = a.num_kv_heads, bs = a.block_size;
  const int64_t group = nh / nkv;
  const int64_t chunks = (group + GMAX - 1) / GMAX;
  const int64_t g = blockIdx.x / chunks;
  const int64_t h0 = g * group + (blockIdx.x % chunks) * GMAX;
  const int nheads = static_cast<int>(imin(GMAX, g * group + group - h0));
  const int64_t item = blockIdx.y;
  const int64_t seq = items ? items[item] : item;
  const int64_t L = a.seq_lens[seq];
  // The keys the query (position L - 1) sees: [first, L), its last `window` with a window.
  const int64_t first = a.window > 0 ? imax(0, L - a.window) : 0;
  const int64_t n_keys = L - first;
  // This sequence's partitions: whole passes of the block (SLOTS * U keys), at most num_splits,
  // and at least 256 keys (as the host plans them for the longest sequence). Cut from its own
  // keys, not the batch's longest (a CUDA graph plans for max_model_len): a short context runs
  // as one partition that writes its output directly, without the merge's extra round trips.
  constexpr int64_t kPass = SLOTS * U;
  constexpr int64_t kMinPart = (256 + kPass - 1) / kPass * kPass;
  const int64_t part_size = imax(kMinPart, ((n_keys + num_splits - 1) / num_splits + kPass - 1) / kPass * kPass);
  const int64_t start = first + blockIdx.z * part_size;
  if (blockIdx.z > 0 && start >= L) return;
  const int64_t end = imin(L, start + part_size);
  const int64_t token = a.query_start_loc[seq + 1] - 1;
  // Only the partitions that hold keys do work; when that is one, it writes the output itself.
  const int nparts = static_cast<int>(imax(1, imin(num_splits, (n_keys + part_size - 1) / part_size)));
  const bool direct = nparts == 1;

  const C* kc = static_cast<const C*>(a.k_cache);
  const C* vc = static_cast<const C*>(a.v_cache);
  const int32_t* table = a.block_tables + seq * a.max_blocks_per_seq;
  // The cached keys and values were written by earlier steps, and the inputs uploaded before the
  // step's first kernel: start fetching the first round of them into L2 while the kernel before
  // (which produces q and the new token's K/V) finishes.
  {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = start + u * SLOTS + slot;
      if (j < end && j != L - 1) {
        const int64_t off = ((table[j / bs] * nkv + g) * bs + j % bs) * D + lane * E;
        asm volatile("prefetch.global.L2 [%0];" ::"l"(kc + off));
        asm volatile("prefetch.global.L2 [%0];" ::"l"(vc + off));
      }
    }
  }
  pdl_begin();

  const T* qrow = static_cast<const T*>(a.qkv) + token * a.width;
  // The new token's K and V come straight from qkv; one block per KV head also stores them.
  const T* new_k = qrow + (nh + g) * D + lane * E;
  const T* new_v = qrow + (nh + nkv + g) * D + lane * E;
  Raw new_kr{}, new_vr{};  // an FP8 cache's: the new token's K/V as the cache holds them
  if constexpr (kFp8) {
    new_kr = kv_quantize8(new_k, a.k_scale);
    new_vr = kv_quantize8(new_v, a.v_scale);
  }
  if (write_kv && L > 0 && (L - 1 - first) / part_size == blockIdx.z && blockIdx.x % chunks == 0 && slot == 0) {
    const int64_t s = a.slot_mapping[token];
    if (s >= 0) {
      const int64_t off = ((s / bs * nkv + g) * bs + s % bs) * D + lane * E;
      if constexpr (kFp8) {
        *reinterpret_cast<uint2*>(static_cast<C*>(const_cast<void*>(a.k_cache)) + off) = new_kr;
        *reinterpret_cast<uint2*>(static_cast<C*>(const_cast<void*>(a.v_cache)) + off) = new_vr;
      } else {
        *reinterpret_cast<uint4*>(static_cast<T*>(const_cast<void*>(a.k_cache)) + off) = *reinterpret_cast<const uint4*>(new_k);
        *reinterpret_cast<uint4*>(static_cast<T*>(const_cast<void*>(a.v_cache)) + off) = *reinterpret_cast<const uint4*>(new_v);
      }
    }
  }

  // Scores are kept in base 2 (exp2f): q carries scale * log2(e), or with a soft-cap scale / cap,
  // the tanh's argument, and the cap's log2(e) multiplies the tanh.
  const bool capped = a.softcap > 0.0f;
  float qs = capped ? a.scale / a.softcap : a.scale * kLog2e;
  if constexpr (kFp8) qs *= a.k_scale;
  const float cap_l2 = a.softcap * kLog2e;
  float q[GMAX][E], acc[GMAX][E], m[GMAX], l[GMAX];
#pragma unroll
  for (int hh = 0; hh < GMAX; ++hh) {
    m[hh] = -INFINITY;
    l[hh] = 0.0f;
    if (hh < nheads) {
      Pack<T> p = load_pack(qrow + (h0 + hh) * D + lane * E);
#pragma unroll
      for (int e = 0; e < E; ++e) q[hh][e] = to_float(p.v[e]) * qs;
    } else {
#pragma unroll
      for (int e = 0; e < E; ++e) q[hh][e] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < E; ++e) acc[hh][e] = 0.0f;
  }

  for (int64_t base = start; base < end; base += SLOTS * U) {
    Raw kv[U], vv[U];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = base + u * SLOTS + slot;
      valid[u] = j < end;
      if (valid[u]) {
        if (j == L - 1) {
          if constexpr (kFp8) {
            kv[u] = new_kr;
            vv[u] = new_vr;
          } else {
            kv[u] = __ldg(reinterpret_cast<const uint4*>(new_k));
            vv[u] = __ldg(reinterpret_cast<const uint4*>(new_v));
          }
        } else {
          const int64_t page = table[j / bs];
          const int64_t off = ((page * nkv + g) * bs + j % bs) * D + lane * E;
          kv[u] = __ldg(reinterpret_cast<const Raw*>(kc + off));
          vv[u] = __ldg(reinterpret_cast<const Raw*>(vc + off));
        }
      } else {
        kv[u] = Raw{};
        vv[u] = Raw{};
      }
    }
    float s[U][GMAX];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[E];
      if constexpr (kFp8) {
        const uint8_t* kb = reinterpret_cast<const uint8_t*>(&kv[u]);
#pragma unroll
        for (int e = 0; e < E; ++e) kf[e] = kv_fp8_to_float(kb[e]);
      } else {
        const Pack<T>& kp = *reinterpret_cast<const Pack<T>*>(&kv[u]);
#pragma unroll
        for (int e = 0; e < E; ++e) kf[e] = to_float(kp.v[e]);
      }
#pragma unroll
      for (int hh = 0; hh < GMAX; ++hh) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < E; ++e) d = fmaf(q[hh][e], kf[e], d);
#pragma unroll
        for (int o = LK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        if (capped) d = cap_l2 * tanhf(d);
        s[u][hh] = valid[u] ? d : -INFINITY;
      }
    }
#pragma unroll
    for (int hh = 0; hh < GMAX; ++hh) {
      float mx = s[0][hh];
#pragma unroll
      for (int u = 1; u < U; ++u) mx = fmaxf(mx, s[u][hh]);
      if (mx == -INFINITY) continue;
      const float m_new = fmaxf(m[hh], mx);
      const float alpha = exp2f(m[hh] - m_new);
      l[hh] *= alpha;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[hh][e] *= alpha;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float p = exp2f(s[u][hh] - m_new);
        l[hh] += p;
        if constexpr (kFp8) {
          const uint8_t* vb = reinterpret_cast<const uint8_t*>(&vv[u]);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[hh][e] = fmaf(p, kv_fp8_to_float(vb[e]), acc[hh][e]);
        } else {
          const Pack<T>& vp = *reinterpret_cast<const Pack<T>*>(&vv[u]);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[hh][e] = fmaf(p, to_float(vp.v[e]), acc[hh][e]);
        }
      }
      m[hh] = m_new;
    }
  }

  // Merge the key slots of each warp (lanes with the same `lane` hold the same features).
#pragma unroll
  for (int o = LK; o < 32; o <<= 1) {
#pragma unroll
    for (int hh = 0; hh < GMAX; ++hh) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[hh], o);
      const float lo = __shfl_xor_sync(0xffffffffu, l[hh], o);
      const float M = fmaxf(m[hh], mo);
      const float a1 = M == -INFINITY ? 0.0f : exp2f(m[hh] - M);
      const float a2 = M == -INFINITY ? 0.0f : exp2f(mo - M);
      l[hh] = l[hh] * a1 + lo * a2;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const float ao = __shfl_xor_sync(0xffffffffu, acc[hh][e], o);
        acc[hh][e] = acc[hh][e] * a1 + ao * a2;
      }
      m[hh] = M;
    }
  }
  // Then the warps, through shared memory.
  if ((tid & 31) < LK) {
#pragma unroll
    for (int hh = 0; hh < GMAX; ++hh) {
      if (lane == 0) {
        sm_m[warp][hh] = m[hh];
        sm_l[warp][hh] = l[hh];
      }
#pragma unroll
      for (int e = 0; e < E; ++e) sm_acc[warp][hh][lane * E + e] = acc[hh][e];
    }
  }
  __syncthreads();
  if (tid < LK) {
#pragma unroll
    for (int hh = 0; hh < GMAX; ++hh) {
      if (hh >= nheads) break;
      float M = -INFINITY;
#pragma unroll
      for (int w = 0; w < NW; ++w) M = fmaxf(M, sm_m[w][hh]);
      float lsum = 0.0f, o[E];
#pragma unroll
      for (int e = 0; e < E; ++e) o[e] = 0.0f;
#pragma unroll
      for (int w = 0; w < NW; ++w) {
        const float f = M == -INFINITY ? 0.0f : exp2f(sm_m[w][hh] - M);
        lsum += f * sm_l[w][hh];
#pragma unroll
        for (int e = 0; e < E; ++e) o[e] += f * sm_acc[w][hh][lane * E + e];
      }
      if constexpr (kFp8) {  // the V scale, once per output (the partials carry it into the merge)
#pragma unroll
        for (int e = 0; e < E; ++e) o[e] *= a.v_scale;
      }
      const int64_t h = h0 + hh;
      if (direct) {
        float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
        if (a.sinks != nullptr && M != -INFINITY) inv = sink_scale(M, lsum, a.sinks[h] * kLog2e);
        Pack<T> r;
#pragma unroll
        for (int e = 0; e < E; ++e) r.v[e] = from_float<T>(o[e] * inv);
        store_pack(static_cast<T*>(a.out) + token * nh * D + h * D + lane * E, r);
      } else {
        const int64_t idx = (item * nh + h) * num_splits + blockIdx.z;
        float4* dst = reinterpret_cast<float4*>(part_o + idx * D + lane * E);
        dst[0] = make_float4(o[0], o[1], o[2], o[3]);
        dst[1] = make_float4(o[4], o[5], o[6], o[7]);
        if (lane == 0) {
          part_ml[idx * 2] = M;
          part_ml[idx * 2 + 1] = lsum;
        }
      }
    }
  }
  if (direct) return;

  // Split context: the last partition block of this (sequence, head chunk) to finish merges them.
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    int* counter = counters + item * gridDim.x + blockIdx.x;
    const int prev = atomicAdd(counter, 1);
    sm_last = prev == nparts - 1;
    if (sm_last) *counter = 0;  // ready for the next launch
  }
  __syncthreads();
  if (!sm_last) return;
  __threadfence();
  for (int k = tid; k < nheads * D; k += kThreads) {
    const int hh = k / D, d = k % D;
    const int64_t h = h0 + hh;
    const int64_t base = (item * nh + h) * num_splits;
    float M = -INFINITY;
    for (int p = 0; p < nparts; ++p) M = fmaxf(M, __ldcg(part_ml + (base + p) * 2));
    float denom = 0.0f, o = 0.0f;
    for (int p = 0; p < nparts; ++p) {
      const float f = M == -INFINITY ? 0.0f : exp2f(__ldcg(part_ml + (base + p) * 2) - M);
      denom += f * __ldcg(part_ml + (base + p) * 2 + 1);
      o += f * __ldcg(part_o + (base + p) * D + d);
    }
    // The sink joins the denominator here, once, over every partition's sum.
    const float r = a.sinks != nullptr && M != -INFINITY ? o * sink_scale(M, denom, a.sinks[h] * kLog2e)
                    : denom > 0.0f                      ? o / denom
                                                        : 0.0f;
    static_cast<T*>(a.out)[token * nh * D + h * D + d] = from_float<T>(r);
  }
}

template <typename T, typename C, int LK>
void launch_lk(const AttentionArgs& a, const int32_t* items, int64_t n_items, int num_splits, int gmax,
               float* part_o, float* part_ml, int* counters, bool write_kv, cudaStream_t stream) {
  const int64_t group = a.num_heads / a.num_kv_heads;
  auto go = [&](auto gmax_tag) {
    constexpr int GMAX = decltype(gmax_tag)::value;
    const int64_t chunks = (group + GMAX - 1) / GMAX;
    dim3 grid(static_cast<unsigned>(a.num_kv_heads * chunks), static_cast<unsigned>(n_items), static_cast<unsigned>(num_splits));
    launch_k(decode_kernel<T, C, LK, GMAX>, grid, kThreads, 0, stream, a, items, num_splits, part_o, part_ml, counters,
                                                               write_kv);
  };
  switch (gmax) {
    case 1: go(std::integral_constant<int, 1>{}); break;
    case 2: go(std::integral_constant<int, 2>{}); break;
    case 4: go(std::integral_constant<int, 4>{}); break;
    case 8: go(std::integral_constant<int, 8>{}); break;
    default: fail("decode attention: heads per block must be 1, 2, 4 or 8");
  }
}

template <typename T, typename C>
void launch_c(const AttentionArgs& a, const int32_t* items, int64_t n_items, int num_splits, int gmax, float* part_o,
              float* part_ml, int* counters, bool write_kv, cudaStream_t stream) {
  switch (a.head_dim) {
    case 64: launch_lk<T, C, 8>(a, items, n_items, num_splits, gmax, part_o, part_ml, counters, write_kv, stream); break;
    case 128: launch_lk<T, C, 16>(a, items, n_items, num_splits, gmax, part_o, part_ml, counters, write_kv, stream); break;
    case 256: launch_lk<T, C, 32>(a, items, n_items, num_splits, gmax, part_o, part_ml, counters, write_kv, stream); break;
    default: fail("decode attention: unsupported head_dim");
  }
}

template <typename T>
void launch(const AttentionArgs& a, const int32_t* items, int64_t n_items, int num_splits, int gmax, float* part_o,
            float* part_ml, int* counters, bool write_kv, cudaStream_t stream) {
  if (a.kv_fp8) launch_c<T, KvFp8>(a, items, n_items, num_splits, gmax, part_o, part_ml, counters, write_kv, stream);
  else launch_c<T, T>(a, items, n_items, num_splits, gmax, part_o, part_ml, counters, write_kv, stream);
  check_launch("decode_attention");
}

}  // namespace

bool decode_supported(DType t, int64_t head_dim) {
  return (t == DType::F16 || t == DType::BF16) && (head_dim == 64 || head_dim == 128 || head_dim == 256);
}

int decode_heads_per_block(int64_t num_heads, int64_t num_kv_heads, int64_t n_items, int64_t num_sms) {
  const int64_t group = num_heads / num_kv_heads;
  int gmax = group == 1 ? 1 : group == 2 ? 2 : group <= 4 ? 4 : 8;
  // Halve while the blocks would not fill every SM once: the heads of a group then read their
  // shared K/V separately, but at the same time, so mostly from L2.
  while (gmax > 1 && n_items * num_kv_heads * ((group + gmax - 1) / gmax) < num_sms) gmax /= 2;
  return gmax;
}

int64_t decode_grid_x(int64_t num_heads, int64_t num_kv_heads, int heads_per_block) {
  const int64_t group = num_heads / num_kv_heads;
  return num_kv_heads * ((group + heads_per_block - 1) / heads_per_block);
}

void decode_attention(DType t, const AttentionArgs& a, const int32_t* items, int64_t n_items, int64_t num_splits, int heads_per_block, float* part_o, float* part_ml, int* counters, bool write_kv,
                      cudaStream_t stream) {
  if (n_items == 0) return;
  const int ns = static_cast<int>(num_splits);
  if (t == DType::F16) launch<__half>(a, items, n_items, ns, heads_per_block, part_o, part_ml, counters, write_kv, stream);
  else if (t == DType::BF16)
    launch<__nv_bfloat16>(a, items, n_items, ns, heads_per_block, part_o, part_ml, counters, write_kv, stream);
  else fail("decode attention: 16-bit types only");
}

}  // namespace vllm::cuda
