#include "vllm/sampling/selection.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "vllm/sampling/vec_math.h"

namespace vllm::selection {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Heap scans test whole blocks of this many elements at once against the threshold.
constexpr int64_t kSkipBlock = 64;

inline float no_nan(float v) { return std::isnan(v) ? kNegInf : v; }

// For std's max-heap functions: the front is the element that ranks last, the one to evict.
inline bool heap_order(const ScoredToken& a, const ScoredToken& b) { return ranks_before(a, b); }
}  // namespace

void top_n(const float* x, int64_t size, int64_t n, std::vector<ScoredToken>& out) {
  out.clear();
  n = std::min(n, size);
  if (n <= 0) return;
  out.reserve(static_cast<size_t>(n));
  int64_t i = 0;
  for (; i < n; ++i) out.push_back({no_nan(x[i]), static_cast<int32_t>(i)});
  std::make_heap(out.begin(), out.end(), heap_order);
  float threshold = out.front().value;
  // Ids rise as we scan, so a later element enters only with a strictly larger value; whole
  // blocks whose (vectorised) maximum is not above the threshold are skipped.
  while (i < size) {
    int64_t end = std::min(size, i + kSkipBlock);
    if (end - i == kSkipBlock && !(vecmath::row_max(x + i, kSkipBlock) > threshold)) {
      i = end;
      continue;
    }
    for (; i < end; ++i) {
      if (x[i] > threshold) {
        std::pop_heap(out.begin(), out.end(), heap_order);
        out.back() = {x[i], static_cast<int32_t>(i)};
        std::push_heap(out.begin(), out.end(), heap_order);
        threshold = out.front().value;
      }
    }
  }
  std::sort_heap(out.begin(), out.end(), heap_order);  // ascending in heap_order: best first
}

namespace {
// Orders like the float values: negative floats get all bits flipped, the rest the sign bit
// set. Branch-free (signs are random, so a branch would mispredict half the time); NaN keys,
// which would land above +inf, are sent to the bottom with -inf.
inline uint32_t order_key(float v) {
  const uint32_t b = std::bit_cast<uint32_t>(v);
  const uint32_t k = b ^ (static_cast<uint32_t>(static_cast<int32_t>(b) >> 31) | 0x80000000u);
  constexpr uint32_t kPosInfKey = 0xFF800000u, kNegInfKey = 0x007FFFFFu;
  return k > kPosInfKey ? kNegInfKey : k;
}
}  // namespace

float kth_largest(const float* x, int64_t size, int64_t k, TopKScratch& s) {
  k = std::clamp<int64_t>(k, 1, size);
  // Counts per value of the key's top 12 bits (sign, exponent, 3 mantissa bits), in two
  // interleaved tables so equal neighbours do not serialise on one counter.
  constexpr int kShift = 20;
  constexpr size_t kBuckets = size_t{1} << (32 - kShift);
  s.counts.assign(2 * kBuckets, 0);
  uint32_t* c0 = s.counts.data();
  uint32_t* c1 = s.counts.data() + kBuckets;
  const int64_t pairs = size / 2;
  for (int64_t j = 0; j < pairs; ++j) {
    ++c0[order_key(x[2 * j]) >> kShift];
    ++c1[order_key(x[2 * j + 1]) >> kShift];
  }
  if (size % 2) ++c0[order_key(x[size - 1]) >> kShift];
  // The bucket holding the k-th largest, and its rank inside that bucket.
  int64_t remaining = k;
  uint32_t target_bucket = 0;
  for (size_t b = kBuckets; b-- > 0;) {
    const int64_t count = int64_t{c0[b]} + int64_t{c1[b]};
    if (count >= remaining) {
      target_bucket = static_cast<uint32_t>(b);
      break;
    }
    remaining -= count;
  }
  s.bucket.clear();
  for (int64_t j = 0; j < size; ++j)
    if ((order_key(x[j]) >> kShift) == target_bucket) s.bucket.push_back(x[j] == x[j] ? x[j] : kNegInf);
  auto nth = s.bucket.begin() + (remaining - 1);
  std::nth_element(s.bucket.begin(), nth, s.bucket.end(), std::greater<float>());
  return *nth;
}

float top_k_candidates(const float* x, int64_t size, int64_t k, std::vector<ScoredToken>& out, TopKScratch& s) {
  out.clear();
  k = std::clamp<int64_t>(k, 1, size);
  if (k > 128) {
    // Radix selection for the threshold, then one pass to gather; the maximum comes free.
    const float kth = kth_largest(x, size, k, s);
    float max = kNegInf;
    for (int64_t i = 0; i < size; ++i) {
      if (x[i] >= kth && x[i] > kNegInf) {
        out.push_back({x[i], static_cast<int32_t>(i)});
        max = std::max(max, x[i]);
      }
    }
    return max;
  }

  // One pass with a heap of the k best. An element equal to the threshold when it is turned
  // away or evicted is a tie of the final k-th value if the threshold never rises above it,
  // so those are kept aside and the ones equal to the final threshold join the candidates.
  auto& heap = s.heap;
  auto& ties = s.ties;
  heap.clear();
  ties.clear();
  int64_t i = 0;
  for (; i < k; ++i) heap.push_back({no_nan(x[i]), static_cast<int32_t>(i)});
  std::make_heap(heap.begin(), heap.end(), heap_order);
  float threshold = heap.front().value;
  while (i < size) {
    const int64_t end = std::min(size, i + kSkipBlock);
    if (end - i == kSkipBlock) {
      // Skip blocks with nothing above the threshold and no finite tie of it.
      const float block_max = vecmath::row_max(x + i, kSkipBlock);
      if (block_max < threshold || (block_max == threshold && !(block_max > kNegInf))) {
        i = end;
        continue;
      }
    }
    for (; i < end; ++i) {
      const float v = x[i];
      if (v > threshold) {
        std::pop_heap(heap.begin(), heap.end(), heap_order);
        if (heap.back().value == threshold && threshold > kNegInf) ties.push_back(heap.back());
        heap.back() = {v, static_cast<int32_t>(i)};
        std::push_heap(heap.begin(), heap.end(), heap_order);
        threshold = heap.front().value;
      } else if (v == threshold && v > kNegInf) {
        ties.push_back({v, static_cast<int32_t>(i)});
      }
    }
  }
  float max = kNegInf;
  for (const auto& t : heap) {
    if (t.value > kNegInf) out.push_back(t);
    max = std::max(max, t.value);
  }
  for (const auto& t : ties)
    if (t.value == threshold) out.push_back(t);
  return max;
}

TopPCut top_p_cut(std::span<ScoredToken> e, double target) {
  size_t lo = 0, hi = e.size();
  double above = 0.0;  // mass of the tokens already known to rank before all of e[lo, hi)
  while (lo < hi) {
    float a = e[lo].value, b = e[lo + (hi - lo) / 2].value, c = e[hi - 1].value;
    float pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));  // median of three
    // Three-way partition: [lo, gt) above the pivot, [gt, lt) equal, [lt, hi) below.
    size_t gt = lo, i = lo, lt = hi;
    double mass_above = 0.0, mass_equal = 0.0;
    while (i < lt) {
      float v = e[i].value;
      if (v > pivot) {
        mass_above += v;
        std::swap(e[gt++], e[i++]);
      } else if (v < pivot) {
        std::swap(e[i], e[--lt]);
      } else {
        mass_equal += v;
        ++i;
      }
    }
    if (above + mass_above >= target) {
      hi = gt;  // the cut falls among the larger ones (never empty here: above < target)
      continue;
    }
    if (above + mass_above + mass_equal >= target) {
      // The cut falls among the ties, which rank by id: keep the lowest ids while the mass
      // before each is still below target.
      double acc = above + mass_above;
      size_t keep = 0, ties = lt - gt;
      while (keep < ties && acc < target) {
        acc += static_cast<double>(pivot);
        ++keep;
      }
      auto first = e.begin() + static_cast<std::ptrdiff_t>(gt);
      auto nth = first + static_cast<std::ptrdiff_t>(keep - 1);
      std::nth_element(first, nth, e.begin() + static_cast<std::ptrdiff_t>(lt),
                       [](const ScoredToken& x, const ScoredToken& y) { return x.id < y.id; });
      return {pivot, nth->id};
    }
    above += mass_above + mass_equal;
    lo = lt;
  }
  // Rounding left the whole mass a hair short of target: every entry is kept (and, for
  // top_p_cut_dense, nothing lighter than the lightest entry).
  float lightest = std::numeric_limits<float>::infinity();
  for (const auto& t : e) lightest = std::min(lightest, t.value);
  return {e.empty() ? 0.0f : lightest, std::numeric_limits<int32_t>::max()};
}

TopPCut top_p_cut_dense(const float* w, int64_t size, double target, std::vector<double>& hist,
                        std::vector<ScoredToken>& bucket) {
  // Non-negative floats order like their bit patterns, so bits >> 20 (exponent and the top
  // 3 mantissa bits: 8 buckets per octave) is a monotone bucket key. Two interleaved
  // histograms keep neighbouring tokens in one bucket from serialising on one counter.
  constexpr int kShift = 20;
  constexpr size_t kBuckets = (0x7F800000u >> kShift) + 1;  // up to +inf
  hist.assign(2 * kBuckets, 0.0);
  double* h0 = hist.data();
  double* h1 = hist.data() + kBuckets;
  auto key = [](float v) { return std::bit_cast<uint32_t>(v) >> kShift; };
  // Zero weights (masked tokens, often most of the row) all land in bucket 0, and adding to
  // one counter over and over serialises; they are spread over buckets 0-7, which hold
  // nothing else heavier than a denormal and gain no mass from a zero.
  auto slot = [&](float v, int64_t j) {
    const uint32_t k = key(v);
    return k | (k == 0 ? static_cast<uint32_t>(j & 7) : 0u);
  };
  int64_t i = 0;
  for (; i + 2 <= size; i += 2) {
    h0[slot(w[i], i)] += static_cast<double>(w[i]);
    h1[slot(w[i + 1], i + 1)] += static_cast<double>(w[i + 1]);
  }
  for (; i < size; ++i) h0[slot(w[i], i)] += static_cast<double>(w[i]);

  double above = 0.0;
  size_t cut_bucket = 0;
  bool found = false;
  for (size_t b = kBuckets; b-- > 1;) {  // bucket 0 holds the zeros (and denormals)
    const double mass = h0[b] + h1[b];
    if (mass > 0.0 && above + mass >= target) {
      cut_bucket = b;
      found = true;
      break;
    }
    above += mass;
  }
  if (!found) return {0.0f, std::numeric_limits<int32_t>::max()};  // keep every positive weight

  bucket.clear();
  for (int64_t j = 0; j < size; ++j)
    if (key(w[j]) == cut_bucket) bucket.push_back({w[j], static_cast<int32_t>(j)});
  return top_p_cut(bucket, target - above);
}

}  // namespace vllm::selection
