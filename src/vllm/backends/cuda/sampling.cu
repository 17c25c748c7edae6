// The GPU's sampler: one block of 1,024 threads per row, reading the logits where the LM head
// left them, so that only token ids cross to the host (see DeviceSamplingRow for the rule).
//
// Nothing sorts the row. top-k's threshold is the k-th largest logit, found by radix selection
// on the logits' order-preserving bit patterns (four passes of 8 bits, counting); top-p's cut
// likewise by radix selection on the weights' bit patterns, summing masses; the draw walks the
// row in token-id order. Passes re-read the logits (two bytes a token in 16-bit types) rather
// than keep a float copy of the row.
//
// Determinism: weights become integer masses (units of 2^-32; weights are at most 1), so every
// sum is exact and the same in any order: the atomics of the histograms and the threads' timing
// change nothing, and a row samples the same token whatever the batch around it. A weight below
// 2^-32 of the top token's has no mass and is never drawn (a probability below 2.3e-10).
#include <cfloat>

#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
using u64 = unsigned long long;

// Larger floats give larger keys (for -inf too; NaN never gets here).
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ u64 mass_of(float w) { return __float2ull_rz(w * 4294967296.0f); }

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

template <typename T>
struct RowView {
  const T* logits;
  const uint32_t* mask;  // nullptr: unconstrained
  int64_t vocab;
  // Token i's logit as the sampler sees it: NaN and tokens the bitmask forbids are -inf.
  __device__ __forceinline__ float logit(int64_t i) const {
    float x = to_float(logits[i]);
    if (x != x) x = -INFINITY;
    if (mask && !((mask[i >> 5] >> (i & 31)) & 1u)) x = -INFINITY;
    return x;
  }
};

// What temperature, top-k and min-p leave of token i: its weight relative to the top token (0:
// out).
struct Weights {
  float max_logit, inv_temp, min_p;
  uint32_t min_key;  // top-k: logits whose key is below are out (0: no top-k)
  template <typename T>
  __device__ __forceinline__ float operator()(const RowView<T>& row, int64_t i) const {
    const float x = row.logit(i);
    if (order_key(x) < min_key) return 0.0f;
    const float w = expf((x - max_logit) * inv_temp);
    return w >= min_p ? w : 0.0f;
  }
};

struct Shared {
  u64 hist[256];
  u64 warp_total[kWarps];
  float best_value[kWarps];
  int64_t best_id[kWarps];
  int64_t found;
  u64 above;
  uint32_t digit;
};

// Each warp owns a contiguous span of token ids (read 32 at a time, coalesced), so that a
// running sum in id order is a sum over the warps before plus a walk inside one warp.
__device__ __forceinline__ int64_t warp_span(int64_t vocab) { return (vocab + kWarps * 32 - 1) / (kWarps * 32) * 32; }

// s.warp_total[w] = sum of amount(i) over warp w's span. Ends with the block synchronized.
template <typename Amount>
__device__ void span_totals(int64_t vocab, Amount amount, Shared& s) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t span = warp_span(vocab), begin = warp * span, end = imin(vocab, begin + span);
  u64 acc = 0;
  for (int64_t i = begin + lane; i < end; i += 32) acc += amount(i);
  acc = warp_sum_u64(acc);
  if (lane == 0) s.warp_total[warp] = acc;
  __syncthreads();
}

__device__ __forceinline__ u64 block_total(const Shared& s) {
  u64 t = 0;
  for (int w = 0; w < kWarps; ++w) t += s.warp_total[w];
  return t;
}

// After span_totals over the same amounts: the first id whose running sum in id order exceeds
// `target` (< the total). Ends with the block synchronized.
template <typename Amount>
__device__ int64_t find_running_sum(int64_t vocab, Amount amount, u64 target, Shared& s) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == 0) s.found = -1;
  u64 before = lane < warp ? s.warp_total[lane] : 0;
  before = warp_sum_u64(before);
  const u64 mine = s.warp_total[warp];
  __syncthreads();
  if (before <= target && target < before + mine) {
    const int64_t span = warp_span(vocab), begin = warp * span, end = imin(vocab, begin + span);
    u64 acc = before;
    for (int64_t c = begin; c < end; c += 32) {
      const int64_t i = c + lane;
      u64 m = i < end ? amount(i) : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const u64 t = __shfl_up_sync(kFull, m, o);
        if (lane >= o) m += t;
      }
      const unsigned hit = __ballot_sync(kFull, acc + m > target);
      if (hit) {
        if (lane == 0) s.found = c + __ffs(hit) - 1;
        break;
      }
      acc += __shfl_sync(kFull, m, 31);
    }
  }
  __syncthreads();
  return s.found;
}

// Radix selection from the top over 32-bit keys: the key K with
//   above < target <= above + at,   above = the amounts of keys > K, at = those of keys == K,
// where key(i) gives (has a key, the key) and amount(i) what it counts. Four passes of 8 bits.
struct Selected {
  uint32_t key;
  u64 above, at;
};
template <typename Key, typename Amount>
__device__ Selected radix_select(int64_t vocab, Key key, Amount amount, double target, Shared& s) {
  uint32_t prefix = 0, prefix_mask = 0;
  u64 above = 0, at = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += kThreads) s.hist[d] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      uint32_t k;
      if (!key(i, &k) || (k & prefix_mask) != prefix) continue;
      const u64 a = amount(i);
      if (a) atomicAdd(&s.hist[(k >> shift) & 255u], a);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l holds digits 255 - 8l down to 248 - 8l: lanes in order walk the digits from the top.
      const int lane = threadIdx.x;
      u64 mine = 0;
      for (int j = 0; j < 8; ++j) mine += s.hist[255 - 8 * lane - j];
      u64 incl = mine;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const u64 t = __shfl_up_sync(kFull, incl, o);
        if (lane >= o) incl += t;
      }
      const u64 excl = incl - mine;
      const bool crosses = static_cast<double>(above + incl) >= target && static_cast<double>(above + excl) < target;
      const unsigned who = __ballot_sync(kFull, crosses);
      // No lane crosses only through rounding at the very end: take the last digit with any amount.
      const int chosen = who ? __ffs(who) - 1 : 31;
      if (lane == chosen) {
        u64 acc = above + excl;
        int digit = 255 - 8 * lane - 7;
        for (int j = 0; j < 8; ++j) {
          const int d = 255 - 8 * lane - j;
          if (static_cast<double>(acc + s.hist[d]) >= target) {
            digit = d;
            break;
          }
          acc += s.hist[d];
        }
        s.digit = static_cast<uint32_t>(digit);
        s.above = acc;
      }
    }
    __syncthreads();
    prefix |= s.digit << shift;
    prefix_mask |= 255u << shift;
    above = s.above;
    at = s.hist[s.digit];
    __syncthreads();
  }
  return {prefix, above, at};
}

template <typename T>
__global__ void __launch_bounds__(kThreads) sample_kernel(const T* __restrict__ logits, int64_t vocab,
                                                          const DeviceSamplingRow* __restrict__ rows,
                                                          const uint32_t* __restrict__ masks, int64_t mask_words,
                                                          int32_t* __restrict__ tokens) {
  pdl_begin();
  __shared__ Shared s;
  const DeviceSamplingRow p = rows[blockIdx.x];
  const RowView<T> row{logits + p.logits_row * vocab, p.mask_row >= 0 ? masks + p.mask_row * mask_words : nullptr,
                       vocab};
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  // The maximum and the first id holding it (the greedy token).
  float best = -INFINITY;
  int64_t best_id = threadIdx.x;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = row.logit(i);
    if (x > best) best = x, best_id = i;
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFull, best, o);
    const int64_t oi = __shfl_xor_sync(kFull, best_id, o);
    if (ov > best || (ov == best && oi < best_id)) best = ov, best_id = oi;
  }
  if (lane == 0) s.best_value[warp] = best, s.best_id[warp] = best_id;
  __syncthreads();
  best = s.best_value[0], best_id = s.best_id[0];
  for (int w = 1; w < kWarps; ++w)
    if (s.best_value[w] > best || (s.best_value[w] == best && s.best_id[w] < best_id))
      best = s.best_value[w], best_id = s.best_id[w];
  int64_t token = -1;

  if (!p.greedy && best > -INFINITY) {
    Weights weight{best, p.inv_temperature, p.min_p, 0u};
    if (p.top_k > 0 && p.top_k < vocab) {
      const Selected kth = radix_select(
          vocab,
          [&](int64_t i, uint32_t* k) {
            *k = order_key(row.logit(i));
            return true;
          },
          [](int64_t) -> u64 { return 1; }, static_cast<double>(p.top_k), s);
      weight.min_key = kth.key;
    }
    // top-p: the cut weight, and how many tokens of exactly that weight it keeps (by id).
    uint32_t cut_bits = 0;
    int64_t last_tied_id = INT64_MAX;
    if (p.top_p < 1.0f) {
      span_totals(vocab, [&](int64_t i) { return mass_of(weight(row, i)); }, s);
      const double target = static_cast<double>(p.top_p) * static_cast<double>(block_total(s));
      if (target > 0) {
        const Selected cut = radix_select(
            vocab,
            [&](int64_t i, uint32_t* k) {
              const float w = weight(row, i);
              *k = __float_as_uint(w);
              return w > 0.0f;
            },
            [&](int64_t i) { return mass_of(weight(row, i)); }, target, s);
        cut_bits = cut.key;
        const u64 each = mass_of(__uint_as_float(cut.key));
        if (each > 0) {
          // Ties j = 0, 1, ... (in id order) are kept while above + j * each < target.
          const double keep = ceil((target - static_cast<double>(cut.above)) / static_cast<double>(each));
          const u64 tied = cut.at / each;
          if (keep >= 1 && keep < static_cast<double>(tied)) {
            auto is_tie = [&](int64_t i) -> u64 { return __float_as_uint(weight(row, i)) == cut_bits ? 1 : 0; };
            span_totals(vocab, is_tie, s);
            last_tied_id = find_running_sum(vocab, is_tie, static_cast<u64>(keep) - 1, s);
          }
        }
      }
    }
    auto kept = [&](int64_t i) -> u64 {
      const float w = weight(row, i);
      if (w <= 0.0f) return 0;
      const uint32_t b = __float_as_uint(w);
      if (b < cut_bits || (b == cut_bits && i > last_tied_id)) return 0;
      return mass_of(w);
    };
    span_totals(vocab, kept, s);
    const u64 total = block_total(s);
    if (total > 0) {
      u64 target = static_cast<u64>(p.u * static_cast<double>(total));
      if (target >= total) target = total - 1;
      token = find_running_sum(vocab, kept, target, s);
    }
  }
  // Greedy rows, and rows where nothing kept any mass: the argmax (token 0 if all is -inf).
  if (token < 0) token = best_id;
  // A fully masked row: the first token the mask allows (0 if none), as the host sampler.
  if (row.mask && !((row.mask[token >> 5] >> (token & 31)) & 1u)) {
    if (threadIdx.x == 0) s.found = INT64_MAX;
    __syncthreads();
    for (int64_t w = threadIdx.x; w < (vocab + 31) / 32; w += kThreads)
      if (row.mask[w]) atomicMin(reinterpret_cast<long long*>(&s.found), static_cast<long long>(w * 32 + __ffs(row.mask[w]) - 1));
    __syncthreads();
    token = s.found < vocab ? s.found : 0;
  }
  if (threadIdx.x == 0) tokens[blockIdx.x] = static_cast<int32_t>(token);
}

}  // namespace

void sample_rows(DType t, const void* logits, int64_t vocab, const DeviceSamplingRow* rows, int64_t n,
                 const uint32_t* masks, int64_t mask_words, int32_t* tokens, cudaStream_t stream) {
  if (n == 0) return;
  VLLM_DISPATCH_FLOAT(t, T,
                      launch_k(sample_kernel<T>, static_cast<unsigned>(n), kThreads, 0, stream,
                               static_cast<const T*>(logits), vocab, rows, masks, mask_words, tokens));
  check_launch("sample_rows");
}

}  // namespace vllm::cuda
