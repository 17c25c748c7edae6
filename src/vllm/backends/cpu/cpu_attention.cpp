// Paged attention on the CPU. K/V of the step's tokens are first written to their slots; then each
// (token, KV head) work item computes the attention of the query heads sharing that KV head over
// the token's visible context, reading K/V block by block through the sequence's block table.
// Each item's result depends only on its own token and context, so batching and chunking never
// change outputs. A sliding window narrows the visible context to the token's last W positions
// (blocks wholly before it are not read); soft-capping bends each score, and sinks add one logit
// per head to the softmax's denominator.
#include <cmath>
#include <cstring>
#include <vector>

#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/backends/cpu/vec.h"
#include "vllm/core/error.h"

namespace vllm {

namespace {

void store_row(void* dst, DType dtype, const float* src, int64_t n) {
  if (dtype == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
  } else {
    cpu::f32_to_bf16_row(static_cast<uint16_t*>(dst), src, n);
  }
}

float dot_row(const float* q, const void* k, DType dtype, int64_t n) {
  return dtype == DType::F32 ? cpu::dot_f32(q, static_cast<const float*>(k), n)
                             : cpu::dot_f32_bf16(q, static_cast<const uint16_t*>(k), n);
}

void axpy_row(float* y, float a, const void* x, DType dtype, int64_t n) {
  if (dtype == DType::F32) {
    cpu::axpy_f32(y, a, static_cast<const float*>(x), n);
  } else {
    cpu::axpy_bf16(y, a, static_cast<const uint16_t*>(x), n);
  }
}

}  // namespace

void CpuBackend::attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                           const AttentionShape& s, float scale) {
  const int64_t T = in.num_tokens, hd = s.head_dim, nh = s.num_heads, nkv = s.num_kv_heads;
  const int64_t group = nh / nkv, width = s.qkv_width(), bs = in.block_size;
  const DType kv_dtype = cache.k.dtype();
  const size_t elem = dtype_size(kv_dtype);
  const int64_t num_blocks = cache.k.size(0);
  char* kbase = static_cast<char*>(cache.k.raw());
  char* vbase = static_cast<char*>(cache.v.raw());
  auto kv_offset = [&](int64_t block, int64_t head, int64_t slot_in_block) {
    return static_cast<size_t>(((block * nkv + head) * bs + slot_in_block) * hd) * elem;
  };

  // The layer's group: its slot mapping and block tables.
  const KVGroupInputs kv = in.kv_group(cache.group);

  // 1. Write this step's K and V into the cache.
  const int64_t* slots = kv.slot_mapping.data<int64_t>();
  pool_.parallel_for(T, [&](int, int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t slot = slots[t];
      VLLM_CHECK(slot >= 0 && slot < num_blocks * bs, "slot out of range");
      const float* row = qkv.data<float>() + t * width;
      for (int64_t g = 0; g < nkv; ++g) {
        store_row(kbase + kv_offset(slot / bs, g, slot % bs), kv_dtype, row + (nh + g) * hd, hd);
        store_row(vbase + kv_offset(slot / bs, g, slot % bs), kv_dtype, row + (nh + nkv + g) * hd, hd);
      }
    }
  }, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, nkv * hd)));

  // Token -> sequence map.
  std::vector<int32_t> seq_of(static_cast<size_t>(T));
  for (int64_t sq = 0; sq < in.num_seqs; ++sq)
    for (int32_t t = in.host_query_start_loc[sq]; t < in.host_query_start_loc[sq + 1]; ++t) seq_of[t] = static_cast<int32_t>(sq);

  const int32_t* tables = kv.block_tables.data<int32_t>();
  const int64_t max_blocks = kv.max_blocks_per_seq;
  const int64_t window = s.sliding_window;
  const float cap = s.logit_softcap;
  VLLM_CHECK(window >= 0 && cap >= 0, "attention: sliding window and soft-cap must not be negative");
  VLLM_CHECK(!s.sinks.defined() || (s.sinks.dtype() == DType::F32 && s.sinks.numel() == nh),
             "attention: sinks must be float32 [num_heads]");
  const float* sinks = s.sinks.defined() ? s.sinks.data<float>() : nullptr;

  // 2. Attention per (token, KV head).
  pool_.parallel_for(T * nkv, [&](int, int64_t b, int64_t e) {
    thread_local std::vector<float> scores;
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / nkv, g = item % nkv;
      const int32_t sq = seq_of[static_cast<size_t>(t)];
      const int64_t q_end = in.host_query_start_loc[static_cast<size_t>(sq) + 1];
      // The token sits at position visible - 1 of its sequence and sees positions [first, visible).
      const int64_t visible = in.host_seq_lens[static_cast<size_t>(sq)] - (q_end - 1 - t);
      const int64_t first = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
      const int64_t n_keys = visible - first;
      const int32_t* table = tables + sq * max_blocks;
      if (scores.size() < static_cast<size_t>(group * n_keys)) scores.resize(static_cast<size_t>(group * n_keys));
      const float* qrow = qkv.data<float>() + t * width;
      // Scores, block by block; each K row is used by all query heads of the group. Score index
      // j - first for key position j.
      for (int64_t j0 = first - first % bs; j0 < visible; j0 += bs) {
        const int64_t block = table[j0 / bs];
        VLLM_CHECK(block >= 0 && block < num_blocks, "attention: a visible block is not in the KV cache");
        const int64_t lo = std::max(j0, first) - j0, n = std::min(bs, visible - j0);
        for (int64_t j = lo; j < n; ++j) {
          const void* krow = kbase + kv_offset(block, g, j);
          for (int64_t h = 0; h < group; ++h) {
            float sc = dot_row(qrow + (g * group + h) * hd, krow, kv_dtype, hd) * scale;
            if (cap > 0) sc = std::tanh(sc / cap) * cap;
            scores[static_cast<size_t>(h * n_keys + j0 + j - first)] = sc;
          }
        }
      }
      for (int64_t h = 0; h < group; ++h) {
        float* sc = scores.data() + h * n_keys;
        // A sink joins the max (as transformers subtracts the max over scores and sink) and the
        // denominator, but has no value row.
        const float sink = sinks ? sinks[g * group + h] : -INFINITY;
        float mx = sink;
        for (int64_t j = 0; j < n_keys; ++j) mx = std::max(mx, sc[j]);
        double sum = sinks ? std::exp(static_cast<double>(sink - mx)) : 0.0;
        for (int64_t j = 0; j < n_keys; ++j) {
          sc[j] = std::exp(sc[j] - mx);
          sum += sc[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < n_keys; ++j) sc[j] *= inv;
      }
      float* orow = out.data<float>() + t * nh * hd;
      for (int64_t h = 0; h < group; ++h) std::memset(orow + (g * group + h) * hd, 0, static_cast<size_t>(hd) * 4);
      for (int64_t j0 = first - first % bs; j0 < visible; j0 += bs) {
        const int64_t block = table[j0 / bs];
        const int64_t lo = std::max(j0, first) - j0, n = std::min(bs, visible - j0);
        for (int64_t j = lo; j < n; ++j) {
          const void* vrow = vbase + kv_offset(block, g, j);
          for (int64_t h = 0; h < group; ++h)
            axpy_row(orow + (g * group + h) * hd, scores[static_cast<size_t>(h * n_keys + j0 + j - first)], vrow,
                     kv_dtype, hd);
        }
      }
    }
  }, 1);
}

}  // namespace vllm
