// Writes the step's K and V heads into the paged cache, layout [blocks, kv_heads, block_size,
// head_dim], at each token's slot (block * block_size + offset). Negative slots are padding. An
// FP8 cache gets e4m3(x / scale) bytes (kv_fp8.cuh).
#include "vllm/backends/cuda/common.cuh"
#include "vllm/backends/cuda/kv_fp8.cuh"

namespace vllm::cuda {

namespace {

// One block per token; threads copy Word-sized pieces of every K and V head.
template <typename Word>
__global__ void kv_write_kernel(Word* kc, Word* vc, const Word* __restrict__ qkv, const int64_t* __restrict__ slots,
                                int64_t width_w, int64_t nh, int64_t nkv, int64_t hd_w, int64_t bs) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  if (slot < 0) return;
  const int64_t block = slot / bs, off = slot % bs;
  const Word* row = qkv + t * width_w;
  const int64_t n = nkv * hd_w;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const int64_t g = k / hd_w, i = k % hd_w;
    const int64_t dst = ((block * nkv + g) * bs + off) * hd_w + i;
    kc[dst] = row[(nh + g) * hd_w + i];
    vc[dst] = row[(nh + nkv + g) * hd_w + i];
  }
}

template <typename Word>
void launch(void* kc, void* vc, const void* qkv, const int64_t* slots, int64_t T, int64_t width_w, int64_t nh, int64_t nkv,
            int64_t hd_w, int64_t bs, cudaStream_t stream) {
  const int threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, (nkv * hd_w + 31) / 32 * 32)));
  launch_k(kv_write_kernel<Word>, static_cast<unsigned>(T), threads, 0, stream, 
      static_cast<Word*>(kc), static_cast<Word*>(vc), static_cast<const Word*>(qkv), slots, width_w, nh, nkv, hd_w, bs);
}

// The FP8 cache: one block per token, one element per thread and step, quantized with the
// layer's scales.
template <typename T>
__global__ void kv_write_fp8_kernel(uint8_t* kc, uint8_t* vc, const T* __restrict__ qkv, const int64_t* __restrict__ slots,
                                    int64_t width, int64_t nh, int64_t nkv, int64_t hd, int64_t bs, float k_scale,
                                    float v_scale) {
  pdl_begin();
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  if (slot < 0) return;
  const int64_t block = slot / bs, off = slot % bs;
  const T* row = qkv + t * width;
  const int64_t n = nkv * hd;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const int64_t g = k / hd, i = k % hd;
    const int64_t dst = ((block * nkv + g) * bs + off) * hd + i;
    kc[dst] = kv_float_to_fp8(to_float(row[(nh + g) * hd + i]), k_scale);
    vc[dst] = kv_float_to_fp8(to_float(row[(nh + nkv + g) * hd + i]), v_scale);
  }
}

}  // namespace

void kv_write(DType t, void* k_cache, void* v_cache, const void* qkv, const int64_t* slots, int64_t T, int64_t width,
              int64_t nh, int64_t nkv, int64_t hd, int64_t bs, cudaStream_t stream, bool kv_fp8, float k_scale,
              float v_scale) {
  if (T == 0) return;
  if (kv_fp8) {
    const int threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, (nkv * hd + 31) / 32 * 32)));
    VLLM_DISPATCH_FLOAT(t, E, launch_k(kv_write_fp8_kernel<E>, static_cast<unsigned>(T), threads, 0, stream,
                                       static_cast<uint8_t*>(k_cache), static_cast<uint8_t*>(v_cache),
                                       static_cast<const E*>(qkv), slots, width, nh, nkv, hd, bs, k_scale, v_scale));
    check_launch("kv_write");
    return;
  }
  const int64_t es = static_cast<int64_t>(dtype_size(t));
  if ((hd * es) % 16 == 0 && aligned16(qkv) && aligned16(k_cache) && aligned16(v_cache)) {
    launch<uint4>(k_cache, v_cache, qkv, slots, T, width * es / 16, nh, nkv, hd * es / 16, bs, stream);
  } else if (es == 4) {
    launch<uint32_t>(k_cache, v_cache, qkv, slots, T, width, nh, nkv, hd, bs, stream);
  } else {
    launch<uint16_t>(k_cache, v_cache, qkv, slots, T, width, nh, nkv, hd, bs, stream);
  }
  check_launch("kv_write");
}

}  // namespace vllm::cuda
