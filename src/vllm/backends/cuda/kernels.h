// Host-side launchers of the CUDA kernels (one .cu file per kernel family). Pointers are device
// pointers; `DType t` is the element type of the activations (float32, float16 or bfloat16).
// Every launcher enqueues on `stream` and checks the launch; none synchronizes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "vllm/backends/device_sampling.h"
#include "vllm/core/dtype.h"

namespace vllm::cuda {

// Whether kernels are launched with programmatic dependent launch (set by the backend: Hopper and
// later, unless VLLM_CUDA_PDL=0).
extern bool g_pdl;

[[noreturn]] void fail(const std::string& message);
// Throws vllm::Error naming `what` if the last launch failed.
void check_launch(const char* what);
// Throws vllm::Error naming `what` for a failed runtime call.
void check(cudaError_t err, const char* what);

// dst[i] = src[i] converted (float32 / float16 / bfloat16 in any direction).
void convert(void* dst, DType dst_t, const void* src, DType src_t, int64_t n, cudaStream_t stream);

// The device sampler (sampling.cu): tokens[r] for each of n rows (device array) over the logits
// [*, vocab] of type t; masks: [*, mask_words] token bitmasks that rows name by mask_row.
void sample_rows(DType t, const void* logits, int64_t vocab, const DeviceSamplingRow* rows, int64_t n,
                 const uint32_t* masks, int64_t mask_words, int32_t* tokens, cudaStream_t stream);

// out[r] = table[idx[r]] (rows of row_bytes bytes); an index outside [0, table_rows) gives zeros.
void gather_rows(void* out, const void* table, const int32_t* idx, int64_t rows, int64_t table_rows, int64_t row_bytes,
                 cudaStream_t stream);

void rms_norm(DType t, void* out, const void* x, const float* w, int64_t rows, int64_t H, float eps, cudaStream_t stream);
void add_rms_norm(DType t, void* out, void* residual, const void* x, const float* w, int64_t rows, int64_t H, float eps,
                  cudaStream_t stream);
void layer_norm(DType t, void* out, const void* x, const float* w, const float* b, int64_t rows, int64_t H, float eps,
                cudaStream_t stream);
void qk_rms_norm(DType t, void* qkv, const float* q_w, const float* k_w, int64_t T, int64_t num_heads, int64_t num_kv_heads,
                 int64_t head_dim, float eps, cudaStream_t stream);
// Rotate-half rotary on the first rot_dim features of the first `heads` heads of each row.
void rotary(DType t, void* qkv, const int32_t* pos, const float* inv_freq, int64_t T, int64_t width, int64_t heads,
            int64_t head_dim, int64_t rot_dim, cudaStream_t stream);

void gelu_new(DType t, void* out, const void* x, int64_t n, cudaStream_t stream);
void silu_and_mul(DType t, void* out, const void* gate_up, int64_t rows, int64_t I, cudaStream_t stream);
// out[r, :] = gelu_tanh(gate_up[r, :I]) * gate_up[r, I:]   (Gemma's MLP)
void gelu_tanh_and_mul(DType t, void* out, const void* gate_up, int64_t rows, int64_t I, cudaStream_t stream);
// In place over n elements: x *= s; x = tanh(x / cap) * cap.
void scale(DType t, void* x, float s, int64_t n, cudaStream_t stream);
void softcap(DType t, void* x, float cap, int64_t n, cudaStream_t stream);
void add(DType t, void* out, const void* a, const void* b, int64_t n, cudaStream_t stream);
// out[r, :] += bias
void add_bias(DType t, void* out, const void* bias, int64_t rows, int64_t N, cudaStream_t stream);

// Writes each token's K and V heads from qkv into the paged caches at slot_mapping[t] (negative: skip).
// kv_fp8: the caches hold e4m3 bytes, e4m3(k / k_scale) and e4m3(v / v_scale), saturated to +-448
// (the scales are ignored otherwise).
void kv_write(DType t, void* k_cache, void* v_cache, const void* qkv, const int64_t* slots, int64_t T, int64_t width,
              int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t block_size, cudaStream_t stream,
              bool kv_fp8 = false, float k_scale = 1.0f, float v_scale = 1.0f);

// What a skinny product does after r = round(x · Wᵀ + bias): kNone stores r; kGelu stores
// gelu_new(r); kResidual updates out in place to round(round(out + other) + r), the two residual
// adds of a parallel-attention block (Phi) in the order the separate add kernels do them.
enum class GemvEpilogue { kNone, kGelu, kResidual };

// Skinny matrix product for 1..4 rows: out[M, N] = x[M, K] · W[N, K]ᵀ + bias (16-bit types).
bool gemv_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x, const void* w);
void gemv(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream, GemvEpilogue epi = GemvEpilogue::kNone, const void* other = nullptr);
// Phi's parallel block, input side, in one launch for 1 to 4 rows: x̂ = layer_norm(x) (float32
// norm_w / norm_b), out1 = x̂ · w1ᵀ + bias1 [M, n1], out2 = gelu_new(x̂ · w2ᵀ + bias2) [M, n2];
// w1 and w2 share K. x̂ itself is not written. The same formulas as layer_norm then the two
// gemvs; equal to them within rounding (bit for bit where the rows' K fits 256 packs and the
// combined rows get the same warps-per-row split as each matrix alone).
struct GemvNormPair {
  const void* x = nullptr;
  const float* norm_w = nullptr;
  const float* norm_b = nullptr;
  float eps = 0.0f;
  void* out1 = nullptr;
  const void* w1 = nullptr;
  const void* bias1 = nullptr;
  int64_t n1 = 0;
  void* out2 = nullptr;
  const void* w2 = nullptr;
  const void* bias2 = nullptr;
  int64_t n2 = 0;
};
bool gemv_norm_pair_supported(DType t, int64_t M, int64_t K, const GemvNormPair& a);
void gemv_norm_pair(DType t, const GemvNormPair& a, int64_t M, int64_t K, cudaStream_t stream);

// FP8 weights (fp8.cu, gemv.cu): e4m3 bytes [N, K], row-major, with float32 scales. Without
// block_cols, output row n is scaled by scales[n] (per-tensor and per-channel checkpoint scales,
// fused parts with different per-tensor scales). With block_cols > 0, the scales are a grid of
// blocks, block_cols inputs wide: w[n, k] is scaled by scales[row_map[n] * grid_cols + k /
// block_cols] (row_map: the grid row of each output row, so that fused parts keep their own grids
// whatever their row counts).
struct Fp8Weight {
  const uint8_t* w = nullptr;
  const float* scales = nullptr;
  const int32_t* row_map = nullptr;
  int64_t block_cols = 0;
  int64_t grid_cols = 0;
};

// out[n, k] = e4m3(w[n, k]) * scale, in the compute dtype t (W8A16: prefill with block-scaled weights,
// and shapes the FP8 products cannot take).
void dequantize_fp8(DType t, void* out, const Fp8Weight& w, int64_t N, int64_t K, cudaStream_t stream);

// Dynamic per-token quantization of activations x [M, K] (t), as quantize_fp8 (loader/fp8_weights.h)
// does a group: scales[m] = amax(|x[m, :]|) / 448 (1 for an all-zero row) and xq[m, k] =
// e4m3(clamp(x[m, k] * (1 / scales[m]), -448, 448)), rounded to nearest even. K % 16 == 0 and x
// 16-byte aligned (the FP8 products' own requirements).
void quantize_rows_e4m3(DType t, uint8_t* xq, float* scales, const void* x, int64_t M, int64_t K, cudaStream_t stream);

// Skinny products with an FP8 weight for up to kFp8GemvMaxRows rows: out[M, N] = x[M, K] · Wᵀ + bias,
// W the dequantized weight; weights converted in registers, float32 sums, the epilogue as gemv's.
// 16-bit types; K % 16 == 0 (16-byte rows of weights), block_cols (if any) a multiple of 16.
constexpr int64_t kFp8GemvMaxRows = 8;
bool gemv_fp8_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x, const Fp8Weight& w);
void gemv_fp8(DType t, void* out, const void* x, const Fp8Weight& w, const void* bias, int64_t M, int64_t N, int64_t K,
              cudaStream_t stream, GemvEpilogue epi = GemvEpilogue::kNone, const void* other = nullptr);

// GGUF block types (gguf.cu): a linear weight kept as a GGUF file stores it, in segments of rows
// of one kind (gguf_ops.cpp). kDense: rows of the compute dtype (the float parts of a layer whose
// other parts are quantized). A segment's rows are output columns col0 .. col0 + rows - 1.
enum class GgufKind { kQ8_0, kQ4_0, kQ4_K, kQ5_K, kQ6_K, kDense };
struct GgufSegment {
  GgufKind kind = GgufKind::kQ8_0;
  const uint8_t* w = nullptr;  // rows x (K / block elements) blocks, as the file stores them
  int64_t rows = 0;
  int64_t col0 = 0;
};
// Elements a block of the kind holds (K must be a multiple).
int64_t gguf_block_elems(GgufKind kind);
// Skinny product with one segment for up to kGgufGemvMaxRows rows: out[m, col0 + r] = x[m, :] ·
// dequantized row r + bias[col0 + r], out [M, N] (row stride N), the epilogue as gemv's; the
// blocks are dequantized in registers, float32 sums. Any float compute dtype; K % 32 == 0 and
// x 16-byte aligned.
constexpr int64_t kGgufGemvMaxRows = 8;
bool gemv_gguf_supported(DType t, int64_t M, int64_t N, int64_t K, const void* x);
void gemv_gguf(DType t, void* out, const void* x, const GgufSegment& s, const void* bias, int64_t M, int64_t N,
               int64_t K, cudaStream_t stream, GemvEpilogue epi = GemvEpilogue::kNone, const void* other = nullptr);
// The segment's rows dequantized into rows col0 .. col0 + rows - 1 of out [*, K] (type t, 16-byte
// aligned), for the cuBLASLt product of larger batches.
void dequantize_gguf(DType t, void* out, const GgufSegment& s, int64_t K, cudaStream_t stream);

struct AttentionArgs {
  void* out = nullptr;  // [T, num_heads * head_dim]
  const void* qkv = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  const int32_t* seq_lens = nullptr;
  const int32_t* query_start_loc = nullptr;
  const int32_t* block_tables = nullptr;
  const int64_t* slot_mapping = nullptr;
  int64_t width = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0, max_blocks_per_seq = 0;
  float scale = 1.0f;
  // The softmax's variations (AttentionShape): window > 0, a query at position p sees only the keys
  // at positions > p - window (blocks before them are never read: their table entries may be
  // kNoBlock); softcap > 0, each score s becomes tanh(s / softcap) * softcap after the scale;
  // sinks non-null, [num_heads] float32 logits that join each head's softmax denominator only.
  int64_t window = 0;
  float softcap = 0.0f;
  const float* sinks = nullptr;
  // An FP8 KV cache: k_cache / v_cache hold e4m3 bytes, read as e4m3 * k_scale (v_scale); a new
  // token's K/V are stored that way too (kv_write, or the decode kernel) and every kernel reads
  // them back through the same rounding. Otherwise the caches are in the compute dtype.
  bool kv_fp8 = false;
  float k_scale = 1.0f;
  float v_scale = 1.0f;
};

// Decode attention: one query per item, the last token of sequence items[i] (or i when items is
// null), over its seq_lens keys (the last `window` of them with a window); that token's own K/V
// are read from qkv, and with write_kv the kernel also stores them in the cache (no separate
// kv_write). With num_splits > 1 each sequence's own keys are cut in up to num_splits partitions
// (whole passes of the block, so a short sequence in a batch planned for long ones gets few), each
// written to part_o [n_items, num_heads, num_splits, head_dim] and part_ml [..., 2]; the last
// partition block to finish (counters: zeroed ints, one per (item, grid x), left zeroed) combines
// them (and adds the sinks); a sequence with one partition writes its output directly. Blocks
// past a sequence's partitions exit at once.
bool decode_supported(DType t, int64_t head_dim);
// Query heads per decode block (1, 2, 4 or 8, sharing their KV head's loads): the whole GQA
// group when the batch fills the GPU, fewer when n_items sequences would leave most SMs idle
// (batch 1 with 4 KV heads is 4 blocks, each walking every key of 8 heads in turn).
int decode_heads_per_block(int64_t num_heads, int64_t num_kv_heads, int64_t n_items, int64_t num_sms);
int64_t decode_grid_x(int64_t num_heads, int64_t num_kv_heads, int heads_per_block);
void decode_attention(DType t, const AttentionArgs& a, const int32_t* items, int64_t n_items, int64_t num_splits, int heads_per_block, float* part_o, float* part_ml, int* counters, bool write_kv,
                      cudaStream_t stream);

// Prefill / mixed attention on tensor cores: tiles [n_tiles][2] = (sequence, first query row of
// the tile within the sequence's new tokens); kPrefillTileM query rows per tile.
constexpr int kPrefillTileM = 64;
bool prefill_supported(DType t, int64_t head_dim);
void prefill_attention(DType t, const AttentionArgs& a, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream);

// Any dtype and head size: one warp per (query token, head). items [n][2] = (token, sequence), or
// null for a decode batch (token i is sequence i's only new token).
void generic_attention(DType t, const AttentionArgs& a, const int32_t* items, int64_t n, cudaStream_t stream);

// Mixture of experts (moe.cu). The routing and the grouping by expert are computed on the device
// and every later kernel reads its share of the work from them, so nothing in a layer waits for the
// host (decode steps stay capturable as graphs). Grids are sized for the worst routing; blocks
// without work (an expert slot or a row tile past what the routing produced) exit at once, so an
// expert that no token picks is never read.
struct MoeBuffers {
  float* logits = nullptr;        // [T, E] router logits, float32
  int32_t* ids = nullptr;         // [T * top_k] picked experts, in descending probability
  float* weights = nullptr;       // [T * top_k] their weights
  int32_t* counts = nullptr;      // [E]; then the layout of moe_layout.h:
  int32_t* offsets = nullptr;     // [E + 1]
  int32_t* tile_starts = nullptr; // [E + 1], row tiles of kMoeTileRows
  int32_t* active = nullptr;      // [E] active experts ascending, then
  int32_t* num_active = nullptr;  // [1] their number
  int32_t* order = nullptr;       // [T * top_k]
  int32_t* pos = nullptr;         // [T * top_k]
};
// The row tile of the grouped tensor-core products (and of the layout's tile_starts).
constexpr int kMoeTileRows = 128;
// The largest expert count and top_k the routing kernels take.
constexpr int64_t kMoeMaxExperts = 1024;
constexpr int64_t kMoeMaxTopK = 32;

// logits[T, E] (float32) = x[T, H] · router[E, H]ᵀ for a few tokens (T <= kMoeRouterMaxTokens);
// more go through cuBLASLt with a float32 output.
constexpr int64_t kMoeRouterMaxTokens = 8;
// bias: the router's [E] bias in the compute dtype (GPT-OSS), or null.
void moe_router_logits(DType t, float* logits, const void* x, const void* router, const void* bias, int64_t T,
                       int64_t E, int64_t H, cudaStream_t stream);
// logits[T, E] += bias[E] (type t): the bias of a router whose product went through cuBLASLt.
void moe_router_bias(DType t, float* logits, const void* bias, int64_t T, int64_t E, cudaStream_t stream);
// From b.logits: each token's softmax (float32), top_k with ties to the lower expert and optional
// renormalisation into b.ids / b.weights (MoeRouting's contract), then the layout (counts,
// offsets, tile_starts, active, num_active, order, pos), equal to moe::group_by_expert's.
void moe_route_and_group(const MoeBuffers& b, int64_t T, int64_t E, int64_t top_k, bool renormalize, cudaStream_t stream);

// The products of the active experts over their sorted rows, out[r, :] for r in [0, T * top_k):
//   gated: out [rows, N] = silu(in_r · W_gateᵀ) * (in_r · W_upᵀ), W [E, 2N, Kd] (gate rows, then up)
//   plain: out [rows, N] = in_r · Wᵀ,                             W [E, N, Kd]
// in_r is in[order[r] / top_k] with `gather` (the token's row of x) and in[r] without (a row of a
// previous product). One expert slot per grid row, one output column per warp, up to 8 of an
// expert's rows at once, so an expert's weights are streamed once for up to 8 of its tokens (an
// expert has at most T rows).
// GPT-OSS's experts: bias (float32, [E, 2N] gated: gate then up, or [E, N]) is added to the
// products' float32 sums, and swiglu_limit > 0 makes the gated activation the clamped SwiGLU
// (ExpertOptions): (clamp(up, ±limit) + 1) * g * sigmoid(alpha * g), g = min(gate, limit).
struct MoeProduct {
  void* out = nullptr;
  const void* in = nullptr;
  const void* w = nullptr;
  bool gated = false;
  bool gather = false;
  int64_t N = 0, Kd = 0;
  const float* bias = nullptr;
  float swiglu_limit = 0.0f, swiglu_alpha = 1.702f;
};
void moe_expert_gemv(DType t, const MoeProduct& p, const MoeBuffers& b, int64_t T, int64_t E, int64_t top_k,
                     cudaStream_t stream);
// The same on tensor cores (float16 / bfloat16; Kd and N multiples of 8, 16-byte aligned
// operands): tiles of kMoeTileRows sorted rows of one expert by 128 output columns (gated: 64
// gate columns with their 64 up columns), a grid row per row tile of the worst routing.
bool moe_gemm_supported(DType t, const MoeProduct& p);
void moe_expert_gemm(DType t, const MoeProduct& p, const MoeBuffers& b, int64_t T, int64_t E, int64_t top_k,
                     cudaStream_t stream);
// out[t, :] = sum over token t's picks, in ascending expert order, of weight * y[pos[pick], :]
// (float32 sums, rounded once): deterministic, no atomics.
void moe_combine(DType t, void* out, const void* y, const MoeBuffers& b, int64_t T, int64_t top_k, int64_t H,
                 cudaStream_t stream);

}  // namespace vllm::cuda

namespace vllm::cuda {

// Copies a decode step's inputs (S sequences, one token each) into the static input buffers of a
// graph captured for B >= S sequences; sequences S..B-1 become padding (no K/V write, length 0).
void pack_decode_inputs(const int32_t* ids, const int32_t* pos, const int64_t* slots, const int32_t* seq_lens, int64_t S,
                        int32_t* s_ids, int32_t* s_pos, int64_t* s_slots, int32_t* s_qsl, int32_t* s_lens, int32_t* s_rows,
                        int64_t B, cudaStream_t stream);

}  // namespace vllm::cuda
