// Static inputs of captured decode graphs: the step's tensors are copied in, the rest padded.
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

__global__ void pack_decode_inputs_kernel(const int32_t* ids, const int32_t* pos, const int64_t* slots,
                                          const int32_t* seq_lens, int64_t S, int32_t* s_ids, int32_t* s_pos,
                                          int64_t* s_slots, int32_t* s_qsl, int32_t* s_lens, int32_t* s_rows, int64_t B) {
  pdl_begin();
  for (int64_t i = threadIdx.x; i <= B; i += blockDim.x) {
    s_qsl[i] = static_cast<int32_t>(i);
    if (i == B) break;
    const bool real = i < S;
    s_ids[i] = real ? ids[i] : 0;
    s_pos[i] = real ? pos[i] : 0;
    s_slots[i] = real ? slots[i] : -1;
    s_lens[i] = real ? seq_lens[i] : 0;
    s_rows[i] = static_cast<int32_t>(i);
  }
}

}  // namespace

void pack_decode_inputs(const int32_t* ids, const int32_t* pos, const int64_t* slots, const int32_t* seq_lens, int64_t S,
                        int32_t* s_ids, int32_t* s_pos, int64_t* s_slots, int32_t* s_qsl, int32_t* s_lens, int32_t* s_rows,
                        int64_t B, cudaStream_t stream) {
  launch_k(pack_decode_inputs_kernel, 1, 256, 0, stream, ids, pos, slots, seq_lens, S, s_ids, s_pos, s_slots, s_qsl, s_lens,
                                                   s_rows, B);
  check_launch("pack_decode_inputs");
}

}  // namespace vllm::cuda
