// Row gathers: the embedding lookup and gather_rows (the rows whose logits a step needs).
#include "vllm/backends/cuda/common.cuh"

namespace vllm::cuda {

namespace {

// One block per output row; Word is uint4 (16-byte rows) or uint8_t.
template <typename Word>
__global__ void gather_kernel(Word* __restrict__ out, const Word* __restrict__ table, const int32_t* __restrict__ idx,
                              int64_t table_rows, int64_t words) {
  pdl_begin();
  const int64_t r = blockIdx.x;
  const int64_t src = idx[r];
  Word* o = out + r * words;
  if (src < 0 || src >= table_rows) {
    for (int64_t i = threadIdx.x; i < words; i += blockDim.x) o[i] = Word{};
    return;
  }
  const Word* s = table + src * words;
  for (int64_t i = threadIdx.x; i < words; i += blockDim.x) o[i] = s[i];
}

}  // namespace

void gather_rows(void* out, const void* table, const int32_t* idx, int64_t rows, int64_t table_rows, int64_t row_bytes,
                 cudaStream_t stream) {
  if (rows == 0) return;
  if (row_bytes % 16 == 0 && aligned16(out) && aligned16(table)) {
    const int64_t words = row_bytes / 16;
    const int threads = static_cast<int>(std::min<int64_t>(256, (words + 31) / 32 * 32));
    launch_k(gather_kernel<uint4>, static_cast<unsigned>(rows), threads, 0, stream, 
        static_cast<uint4*>(out), static_cast<const uint4*>(table), idx, table_rows, words);
  } else {
    const int threads = static_cast<int>(std::min<int64_t>(256, (row_bytes + 31) / 32 * 32));
    launch_k(gather_kernel<uint8_t>, static_cast<unsigned>(rows), threads, 0, stream, 
        static_cast<uint8_t*>(out), static_cast<const uint8_t*>(table), idx, table_rows, row_bytes);
  }
  check_launch("gather_rows");
}

}  // namespace vllm::cuda
