// Paged attention for any dtype and head size up to 256: one warp per (query token, head), one key
// at a time with an online softmax in float32. The reference-grade path (float32 compute, odd
// head sizes); the decode and prefill kernels are the fast paths. A sliding window starts the key
// loop at the query's window (earlier blocks are never read), a soft-cap bends each score, and a
// sink joins the denominator at the end. An FP8 cache (C = KvFp8) is read as e4m3 * scale: the
// K scale multiplies q, the V scale the output.
#include "vllm/backends/cuda/common.cuh"
#include "vllm/backends/cuda/kv_fp8.cuh"

namespace vllm::cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;

// C: the cache's element type, T or KvFp8.
template <typename T, typename C>
__global__ void __launch_bounds__(128) generic_attention_kernel(AttentionArgs a, const int32_t* __restrict__ items) {
  pdl_begin();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t h = blockIdx.y * 4 + warp;
  if (h >= a.num_heads) return;
  int64_t token, seq;
  if (items) {
    token = items[2 * blockIdx.x];
    seq = items[2 * blockIdx.x + 1];
  } else {
    seq = blockIdx.x;
    token = a.query_start_loc[seq];
  }
  const int64_t hd = a.head_dim, nkv = a.num_kv_heads, bs = a.block_size;
  const int64_t g = h / (a.num_heads / nkv);
  const int64_t q_end = a.query_start_loc[seq + 1];
  const int64_t visible = a.seq_lens[seq] - (q_end - 1 - token);
  const int64_t first = a.window > 0 ? imax(0, visible - a.window) : 0;
  const T* qrow = static_cast<const T*>(a.qkv) + token * a.width + h * hd;
  const C* kc = static_cast<const C*>(a.k_cache);
  const C* vc = static_cast<const C*>(a.v_cache);
  const int32_t* table = a.block_tables + seq * a.max_blocks_per_seq;
  // Base-2 scores: q carries scale * log2(e), or with a soft-cap scale / cap (the tanh's argument).
  const bool capped = a.softcap > 0.0f;
  float qs = capped ? a.scale / a.softcap : a.scale * kLog2e;
  if constexpr (kIsKvFp8<C>) qs *= a.k_scale;
  const float cap_l2 = a.softcap * kLog2e;
  float q[8], acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t e = lane + 32 * i;
    q[i] = e < hd ? to_float(qrow[e]) * qs : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = first; j < visible; ++j) {
    const int64_t page = table[j / bs];
    const int64_t base = ((page * nkv + g) * bs + j % bs) * hd;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t e = lane + 32 * i;
      if (e < hd) s += q[i] * to_float(kc[base + e]);
    }
    s = warp_sum(s);
    if (capped) s = cap_l2 * tanhf(s);
    const float m_new = fmaxf(m, s);
    const float alpha = exp2f(m - m_new), p = exp2f(s - m_new);
    l = l * alpha + p;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t e = lane + 32 * i;
      acc[i] = acc[i] * alpha + (e < hd ? p * to_float(vc[base + e]) : 0.0f);
    }
    m = m_new;
  }
  float inv = l > 0.0f ? 1.0f / l : 0.0f;
  if (a.sinks != nullptr && m != -INFINITY) inv = sink_scale(m, l, a.sinks[h] * kLog2e);
  if constexpr (kIsKvFp8<C>) inv *= a.v_scale;
  T* orow = static_cast<T*>(a.out) + token * a.num_heads * hd + h * hd;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t e = lane + 32 * i;
    if (e < hd) orow[e] = from_float<T>(acc[i] * inv);
  }
}

}  // namespace

void generic_attention(DType t, const AttentionArgs& a, const int32_t* items, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (a.head_dim > 256) fail("attention: head_dim above 256 is not supported on CUDA");
  dim3 grid(static_cast<unsigned>(n), ceil_div(a.num_heads, 4));
  if (a.kv_fp8) {
    VLLM_DISPATCH_FLOAT(t, T, launch_k(generic_attention_kernel<T, KvFp8>, grid, 128, 0, stream, a, items));
  } else {
    VLLM_DISPATCH_FLOAT(t, T, launch_k(generic_attention_kernel<T, T>, grid, 128, 0, stream, a, items));
  }
  check_launch("generic_attention");
}

}  // namespace vllm::cuda
