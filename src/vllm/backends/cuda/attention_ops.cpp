// CudaBackend's attention: the paged KV cache's block copies, the checks of a layer's shape, and
// each step's work lists (decode sequences, prefill tiles, generic tokens) for the kernels. Every
// kernel runs the softmax's variations (sliding window, soft-cap, sinks) and reads the K/V of the
// layer's KV cache group through that group's block tables. An FP8 KV cache (use_fp8_kv_cache)
// is e4m3 bytes, written and read with the layer's KVCacheLayer::k_scale / v_scale.
#include <cmath>

#include "vllm/backends/cuda/backend_impl.h"

namespace vllm {

using namespace cuda_detail;

void CudaBackend::copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) {
  Impl& I = *impl_;
  for (Tensor* t : {&cache.k, &cache.v}) {
    check_dev(*t, kv_cache_dtype(), "copy_blocks cache");
    I.keep(*t);
    const int64_t num_blocks = t->size(0);
    const size_t block_bytes = t->nbytes() / static_cast<size_t>(num_blocks);  // a block is contiguous
    auto* base = static_cast<unsigned char*>(t->raw());
    // On the step's stream, so the copies land before the forward pass that follows reads them.
    for (const auto& [src, dst] : src_dst) {
      VLLM_CHECK(src >= 0 && src < num_blocks && dst >= 0 && dst < num_blocks, "copy_blocks: block out of range");
      if (src != dst)
        check(cudaMemcpyAsync(base + static_cast<size_t>(dst) * block_bytes, base + static_cast<size_t>(src) * block_bytes,
                              block_bytes, cudaMemcpyDeviceToDevice, I.stream),
              "cudaMemcpyAsync(copy_blocks)");
    }
  }
}

void CudaBackend::check_attention(const AttentionShape& s) const {
  VLLM_CHECK(s.sliding_window >= 0 && s.logit_softcap >= 0 && std::isfinite(s.logit_softcap),
             "attention: sliding window and soft-cap must not be negative");
  VLLM_CHECK(!s.sinks.defined() || (s.sinks.device() == Device::kCUDA && s.sinks.dtype() == DType::F32 &&
                                    s.sinks.numel() == s.num_heads),
             "attention: sinks must be float32 [num_heads] on the GPU (prepare_vector)");
}

void CudaBackend::attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                            const AttentionShape& s, float scale) {
  check_attention(s);
  Impl& I = *impl_;
  const DType dt = compute_dtype_;
  check_act(out, dt, "attention output");
  check_act(qkv, dt, "attention qkv");
  check_dev(cache.k, kv_cache_dtype(), "K cache");
  check_dev(cache.v, kv_cache_dtype(), "V cache");
  if (fp8_kv_)
    VLLM_CHECK(std::isfinite(cache.k_scale) && cache.k_scale > 0 && std::isfinite(cache.v_scale) && cache.v_scale > 0,
               "attention: an FP8 KV cache's k_scale and v_scale must be positive and finite");
  VLLM_CHECK(s.num_kv_heads > 0 && s.num_heads % s.num_kv_heads == 0, "query heads must be a multiple of KV heads");
  // The layer's KV cache group: where its K/V go (slot mapping) and where its keys are (block
  // tables; a sliding group's hold kNoBlock for blocks its window has passed, which the kernels
  // never read).
  const KVGroupInputs kv = in.kv_group(cache.group);
  check_dev(kv.slot_mapping, DType::I64, "attention slot mapping");
  check_dev(kv.block_tables, DType::I32, "attention block tables");
  I.keep(out), I.keep(qkv), I.keep(cache.k), I.keep(cache.v);
  I.keep(kv.slot_mapping), I.keep(in.seq_lens), I.keep(in.query_start_loc), I.keep(kv.block_tables);
  if (s.sinks.defined()) I.keep(s.sinks);
  const int64_t T = in.num_tokens, S = in.num_seqs, hd = s.head_dim;
  if (T == 0) return;

  cuda::AttentionArgs a;
  a.out = out.raw();
  a.qkv = qkv.raw();
  a.k_cache = cache.k.raw();
  a.v_cache = cache.v.raw();
  a.seq_lens = in.seq_lens.data<int32_t>();
  a.query_start_loc = in.query_start_loc.data<int32_t>();
  a.block_tables = kv.block_tables.data<int32_t>();
  a.width = s.qkv_width();
  a.num_heads = s.num_heads;
  a.num_kv_heads = s.num_kv_heads;
  a.head_dim = hd;
  a.block_size = in.block_size;
  a.max_blocks_per_seq = kv.max_blocks_per_seq;
  a.slot_mapping = kv.slot_mapping.data<int64_t>();
  a.scale = scale;
  a.window = s.sliding_window;
  a.softcap = s.logit_softcap;
  a.sinks = s.sinks.defined() ? s.sinks.data<float>() : nullptr;
  a.kv_fp8 = fp8_kv_;
  if (fp8_kv_) {  // per-layer constants: a captured graph keeps them
    a.k_scale = cache.k_scale;
    a.v_scale = cache.v_scale;
  }

  const bool aligned = aligned16(qkv.raw()) && aligned16(out.raw()) && aligned16(cache.k.raw()) &&
                       aligned16(cache.v.raw());
  const bool fast_decode = aligned && cuda::decode_supported(dt, hd);
  const bool fast_prefill = aligned && cuda::prefill_supported(dt, hd);
  const bool decode_only = in.max_query_len <= 1;
  if (!(decode_only && fast_decode))  // the decode kernel stores a decode batch's K/V itself
    cuda::kv_write(dt, cache.k.raw(), cache.v.raw(), qkv.raw(), a.slot_mapping, T, s.qkv_width(),
                   s.num_heads, s.num_kv_heads, hd, in.block_size, I.stream, a.kv_fp8, a.k_scale, a.v_scale);

  // Split-K decode over `n` sequences whose longest context is max_len (a query reads at most the
  // window's keys, so splits are planned for those).
  auto run_decode = [&](const int32_t* items, int64_t n, int64_t max_len, bool write_kv) {
    if (s.sliding_window > 0) max_len = std::min(max_len, s.sliding_window);
    const int gmax = cuda::decode_heads_per_block(s.num_heads, s.num_kv_heads, n, I.num_sms);
    const int64_t grid_x = cuda::decode_grid_x(s.num_heads, s.num_kv_heads, gmax);
    const int64_t blocks = n * grid_x;
    const int64_t target = 4 * static_cast<int64_t>(I.num_sms);
    int64_t splits = blocks >= target ? 1 : (target + blocks - 1) / blocks;
    // At least 256 keys a partition for the longest sequence; the kernel cuts each sequence's own
    // context into at most this many.
    splits = std::max<int64_t>(1, std::min<int64_t>(splits, (max_len + 255) / 256));
    float* po = nullptr;
    float* pml = nullptr;
    int* counters = nullptr;
    if (splits > 1) {
      const int64_t need = n * s.num_heads * splits * (hd + 2);
      if (!I.attn_partials.defined() || I.attn_partials.numel() < need) {
        VLLM_CHECK(!I.capturing, "attention scratch must not grow during graph capture");
        I.attn_partials = empty({std::max<int64_t>(need, 1 << 20)}, DType::F32);
      }
      if (!I.attn_counters.defined() || I.attn_counters.numel() < n * grid_x) {
        VLLM_CHECK(!I.capturing, "attention counters must not grow during graph capture");
        I.attn_counters = empty({std::max<int64_t>(n * grid_x, 1 << 16)}, DType::I32);
        fill_zero(I.attn_counters);
      }
      I.keep(I.attn_partials);
      I.keep(I.attn_counters);
      po = I.attn_partials.data<float>();
      pml = po + n * s.num_heads * splits * hd;
      counters = I.attn_counters.data<int32_t>();
    }
    cuda::decode_attention(dt, a, items, n, splits, gmax, po, pml, counters, write_kv, I.stream);
  };

  if (decode_only) {  // every sequence has one new token (T == S)
    VLLM_CHECK(T == S, "a decode batch has one token per sequence");
    if (fast_decode) run_decode(nullptr, S, std::max<int64_t>(1, in.max_seq_len), true);
    else cuda::generic_attention(dt, a, nullptr, S, I.stream);
    return;
  }

  // Mixed batch: work lists built on the host from the step's host copies and uploaded in one
  // piece, once per step (every layer sees the same lists).
  VLLM_CHECK(static_cast<int64_t>(in.host_query_start_loc.size()) == S + 1, "host query_start_loc");
  Impl::StepLists& L = I.lists;
  if (!(L.qsl == in.host_query_start_loc && L.lens == in.host_seq_lens && L.head_dim == hd &&
        L.fast_decode == fast_decode && L.fast_prefill == fast_prefill)) {
    std::vector<int32_t> dec, tiles, gen;
    int64_t dec_max_len = 1;
    for (int64_t q = 0; q < S; ++q) {
      const int32_t b = in.host_query_start_loc[q], e = in.host_query_start_loc[q + 1];
      const int32_t qlen = e - b;
      if (qlen <= 0) continue;
      if (qlen == 1 && fast_decode) {
        dec.push_back(static_cast<int32_t>(q));
        dec_max_len = std::max<int64_t>(dec_max_len, in.host_seq_lens[q]);
      } else if (fast_prefill) {
        for (int32_t r = 0; r < qlen; r += cuda::kPrefillTileM) {
          tiles.push_back(static_cast<int32_t>(q));
          tiles.push_back(r);
        }
      } else {
        for (int32_t t = b; t < e; ++t) {
          gen.push_back(t);
          gen.push_back(static_cast<int32_t>(q));
        }
      }
    }
    Tensor lists = Tensor::empty({static_cast<int64_t>(dec.size() + tiles.size() + gen.size())}, DType::I32);
    std::copy(dec.begin(), dec.end(), lists.data<int32_t>());
    std::copy(tiles.begin(), tiles.end(), lists.data<int32_t>() + dec.size());
    std::copy(gen.begin(), gen.end(), lists.data<int32_t>() + dec.size() + tiles.size());
    L.device = upload(lists, DType::I32);
    L.qsl = in.host_query_start_loc;
    L.lens = in.host_seq_lens;
    L.head_dim = hd;
    L.fast_decode = fast_decode;
    L.fast_prefill = fast_prefill;
    L.n_dec = static_cast<int64_t>(dec.size());
    L.n_tiles = static_cast<int64_t>(tiles.size() / 2);
    L.n_gen = static_cast<int64_t>(gen.size() / 2);
    L.dec_max_len = dec_max_len;
  }
  Tensor dlists = L.device;
  const int32_t* base = dlists.data<int32_t>();
  if (L.n_tiles > 0) cuda::prefill_attention(dt, a, base + L.n_dec, L.n_tiles, I.stream);
  if (L.n_dec > 0) run_decode(base, L.n_dec, L.dec_max_len, false);
  if (L.n_gen > 0) cuda::generic_attention(dt, a, base + L.n_dec + 2 * L.n_tiles, L.n_gen, I.stream);
}

}  // namespace vllm
