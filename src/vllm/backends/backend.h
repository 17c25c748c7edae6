// The small set of operations that model code is written against. The CPU and CUDA backends
// implement them; a model never touches device memory directly.
//
// Activations are 2-D row-major tensors [num_tokens, features] in the backend's activation
// dtype. The fused QKV activation of a layer is [num_tokens, (num_heads + 2 * num_kv_heads) * head_dim]:
// all query heads, then key heads, then value heads.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vllm/backends/device_sampling.h"
#include "vllm/core/error.h"
#include "vllm/core/tensor.h"
#include "vllm/distributed/communicator.h"
#include "vllm/gguf/quantized_matrix.h"
#include "vllm/loader/fp8_weights.h"

namespace vllm {

// A weight matrix [out_features, in_features] (and optional bias), prepared once at load in
// whatever layout the backend's matrix product wants.
class LinearWeight {
 public:
  virtual ~LinearWeight() = default;
  virtual int64_t out_features() const = 0;
  virtual int64_t in_features() const = 0;
  virtual size_t bytes() const = 0;
};

// The experts of one mixture-of-experts layer (E SwiGLU MLPs), prepared once at load in whatever
// layout the backend's expert products want.
class ExpertWeights {
 public:
  virtual ~ExpertWeights() = default;
  virtual int64_t num_experts() const = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t intermediate_size() const = 0;
  virtual size_t bytes() const = 0;
};

// What a mixture-of-experts layer's experts carry besides their gate_up and down matrices.
struct ExpertOptions {
  Tensor gate_up_bias;  // [E, 2I] host tensor (gate then up, as gate_up's rows), or undefined
  Tensor down_bias;     // [E, H] host tensor, or undefined
  // 0: silu(gate) * up (Mixtral, Qwen3-MoE). > 0: GPT-OSS's clamped SwiGLU with this limit:
  // gate = min(gate, limit), up = clamp(up, -limit, limit), out = (up + 1) * gate * sigmoid(alpha * gate).
  float swiglu_limit = 0;
  float swiglu_alpha = 1.702f;
};

// How a mixture-of-experts layer picks and weighs its experts: softmax over the router's logits
// (in float32), the top_k largest probabilities (ties to the lower expert index), and with
// `renormalize` those k divided by their sum (Mixtral; Qwen3-MoE's norm_topk_prob).
struct MoeRouting {
  int64_t top_k = 2;
  bool renormalize = true;
};

// The heads of one attention layer and, per layer, the variations of its softmax. A backend that
// cannot run a variation refuses it in check_attention (models call it for every layer at load).
struct AttentionShape {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  // > 0: sliding-window attention; a query at position p sees the keys at positions > p - W (its
  // last W tokens, itself included), as transformers' sliding_window masks. 0: all earlier keys.
  int64_t sliding_window = 0;
  // > 0: scores are soft-capped, s -> tanh(s / cap) * cap, after the scale (Gemma 2).
  float logit_softcap = 0;
  // Defined: [num_heads] float32 learned logits, one per query head, that join the softmax's
  // denominator only (GPT-OSS's attention sinks): p_j = exp(s_j) / (exp(sink) + sum_k exp(s_k)).
  Tensor sinks = Tensor();
  int64_t qkv_width() const { return (num_heads + 2 * num_kv_heads) * head_dim; }
};

// Rotary position embedding of the first rotary_dim features of each query and key head, in the
// "rotate half" (GPT-NeoX) arrangement used by Llama, Qwen and Phi.
struct RotaryEmbedding {
  int64_t rotary_dim = 0;
  Tensor inv_freq;  // [rotary_dim / 2] float32 on the backend's device, position scaling folded in
};

// One layer's paged KV cache: [num_blocks, num_kv_heads, block_size, head_dim] each.
struct KVCacheLayer {
  Tensor k;
  Tensor v;
  // The layer's KV cache group (kv_cache/kv_cache_layout.h): which block tables and slot mapping
  // of the step it reads and writes through. Layers of different groups may share k and v.
  int group = 0;
  // An FP8 KV cache (Backend::kv_cache_dtype() U8, --kv-cache-dtype fp8) holds e4m3(k / k_scale)
  // and e4m3(v / v_scale), read back as e4m3 * scale: the layer's per-tensor scales (vLLM's
  // k_scale / v_scale, from the checkpoint or 1). Other caches ignore them.
  float k_scale = 1.0f;
  float v_scale = 1.0f;
};

// One KV cache group's view of a step: where each token's K/V goes and the sequences' blocks.
struct KVGroupInputs {
  Tensor slot_mapping;  // [T] int64
  Tensor block_tables;  // [S, max_blocks_per_seq] int32 (kNoBlock = -1 where a window has passed)
  int64_t max_blocks_per_seq = 0;
};

// The flattened batch of one engine step, on the backend's device. Token i belongs to sequence s
// where query_start_loc[s] <= i < query_start_loc[s + 1]; sequence s holds seq_lens[s] tokens
// after this step, its last (query_start_loc[s+1] - query_start_loc[s]) being the new ones.
struct ForwardInputs {
  int64_t num_tokens = 0;
  int64_t num_seqs = 0;
  int64_t max_query_len = 0;
  int64_t max_seq_len = 0;
  int64_t max_blocks_per_seq = 0;
  int64_t block_size = 0;
  Tensor token_ids;        // [T] int32
  Tensor positions;        // [T] int32
  Tensor slot_mapping;     // [T] int64: block_id * block_size + offset where token i's K/V goes
  Tensor query_start_loc;  // [S + 1] int32
  Tensor seq_lens;         // [S] int32
  Tensor block_tables;     // [S, max_blocks_per_seq] int32
  Tensor logits_indices;   // [R] int32: the token rows whose logits the step needs
  // Host copies of the same, for backends and code that schedule work on the host.
  std::vector<int32_t> host_query_start_loc;
  std::vector<int32_t> host_seq_lens;
  // Groups 1, 2, ... of a KV cache with several groups (group 0 is slot_mapping, block_tables
  // and max_blocks_per_seq above).
  std::vector<KVGroupInputs> more_kv_groups;

  KVGroupInputs kv_group(int group) const {
    if (group == 0) return {slot_mapping, block_tables, max_blocks_per_seq};
    return more_kv_groups.at(static_cast<size_t>(group - 1));
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  virtual DType activation_dtype() const = 0;
  virtual DType kv_cache_dtype() const = 0;
  // --kv-cache-dtype fp8 / fp8_e4m3: from now on the KV cache is e4m3 bytes (kv_cache_dtype()
  // U8, half the bytes of a 16-bit cache), scaled per layer (KVCacheLayer::k_scale / v_scale).
  // Call before the model and its KV cache are made. The default refuses (kUnsupported).
  virtual void use_fp8_kv_cache();
  bool fp8_kv_cache() const { return kv_cache_dtype() == DType::U8; }

  // Memory.
  virtual Tensor empty(const Shape& shape, DType dtype) = 0;
  // A copy of a host tensor on the device, converted to dtype.
  virtual Tensor upload(const Tensor& host, DType dtype) = 0;
  // A host copy of a device tensor, converted to float32.
  virtual Tensor download_f32(const Tensor& t) = 0;
  // A host tensor that the backend copies to its device fastest: page-locked memory on a GPU
  // (a direct DMA, no staging copy); plain memory elsewhere.
  virtual Tensor empty_host(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }
  virtual void fill_zero(Tensor& t) = 0;
  virtual void synchronize() {}
  // Device memory the KV cache may take: total memory x gpu_memory_utilization minus what is in use
  // now (weights and the profiling pass's activations). 0 where the cache is sized otherwise (CPU).
  virtual size_t available_kv_bytes(double gpu_memory_utilization) { return 0; }
  // Graphs of decode steps (CUDA): off with --enforce-eager; a static block table holds
  // max_model_len tokens; decode batches of up to max_batch sequences are captured.
  virtual void configure_graphs(bool enable, int64_t max_model_len, int64_t max_batch) {}
  // Runs one engine step whose forward pass is `run` (it returns the logits where the model left
  // them, see CausalLM::forward); a backend may replay a captured graph of the same work instead.
  // The default calls `run`.
  using StepFunction = std::function<Tensor(const ForwardInputs&)>;
  virtual Tensor forward_step(const ForwardInputs& in, const StepFunction& run) { return run(in); }

  // A sampler of the backend's own, next to the logits (the GPU's: only token ids come back).
  // sample_tokens returns one token per row (DeviceSamplingRow says the rule); masks holds the
  // rows' token bitmasks in the order mask_row counts, mask_words words each (0: ceil(vocab / 32);
  // a wider row, as a tokenizer with more tokens than the model has logits makes, has its
  // vocabulary's bits read). The default has none: the engine downloads the logits and samples
  // on the host.
  virtual bool has_sampler() const { return false; }
  virtual std::vector<int32_t> sample_tokens(const Tensor& logits, std::span<const DeviceSamplingRow> rows,
                                             std::span<const uint32_t> masks, int64_t mask_words = 0) {
    throw Error("the " + name() + " backend has no sampler of its own", ErrorKind::kInternal);
  }

  // Weights: w [out, in] host tensor in any float dtype, bias [out] or undefined.
  virtual std::shared_ptr<LinearWeight> prepare_linear(const Tensor& w, const Tensor& bias) = 0;
  // A weight given as row blocks of GGUF types (a GGUF file's q, k and v, say, concatenated along
  // rows in order; the parts may differ in type, not in width). The default dequantizes them and
  // calls prepare_linear; the CPU keeps quantized types quantized (quant_gemm.h).
  virtual std::shared_ptr<LinearWeight> prepare_quantized_linear(const std::vector<gguf::QuantizedMatrix>& parts,
                                                                 const Tensor& bias);
  // A weight given in FP8 (e4m3 bytes and float32 scales, loader/fp8_weights.h), as an FP8
  // checkpoint stores it or --quantization fp8 makes it: its parts (q, k and v; gate and up; or one)
  // stacked by rows in order, each with its own scales and layout; equal widths. bias [sum of rows]
  // or undefined. The default dequantizes each part
  // (dequantize_fp8: weight * scale in float32), stacks them and calls prepare_linear, so that the
  // product uses exactly the dequantized weights (the CPU's path); the CUDA backend keeps the bytes
  // and multiplies in FP8.
  virtual std::shared_ptr<LinearWeight> prepare_fp8_linear(const std::vector<Fp8Matrix>& parts, const Tensor& bias);
  // Whether prepare_fp8_linear keeps the e4m3 bytes and multiplies in FP8 (for messages); the
  // default dequantizes.
  virtual bool keeps_fp8_weights() const { return false; }
  // Embedding table [vocab, hidden] kept in the compute dtype (rows gathered per token).
  virtual Tensor prepare_embedding(const Tensor& table) = 0;
  // An embedding table in GGUF rows (a quantized GGUF file's token_embd). The default dequantizes
  // it and calls prepare_embedding; the CPU keeps block types in their blocks and dequantizes the
  // gathered rows, so that a tied table (also the LM head's weight) is held once, quantized.
  // Whatever it returns goes back to embedding() as `table`.
  virtual Tensor prepare_quantized_embedding(const gguf::QuantizedMatrix& table);
  // Norm scales, biases and other small vectors, kept in float32.
  virtual Tensor prepare_vector(const Tensor& v) = 0;

  // out[T, H] = table[ids[t]]
  virtual void embedding(Tensor& out, const Tensor& ids, const Tensor& table) = 0;

  // Tensor parallelism: this backend runs one rank of a model whose layers are split over
  // several (distributed/tensor_shard.h); the model's collectives go through its communicator.
  // Without one, the backend is the only rank and the collectives do nothing.
  void set_communicator(std::shared_ptr<Communicator> comm) { communicator_ = std::move(comm); }
  int tp_rank() const { return communicator_ ? communicator_->rank() : 0; }
  int tp_size() const { return communicator_ ? communicator_->world_size() : 1; }
  // In place: x becomes the sum of every rank's x (after a row-parallel product), the same bits on all.
  void all_reduce(Tensor& x) {
    if (tp_size() > 1) communicator_->all_reduce_sum(x);
  }
  // Rank 0's out [R, V] gets every rank's local [R, V_r] side by side (a vocabulary-parallel LM head).
  void gather_columns(Tensor& out, const Tensor& local) { communicator_->gather_columns(out, local); }
  // A rank failed mid-step: the other ranks' collectives throw instead of waiting for it.
  void abort_collectives() {
    if (communicator_) communicator_->abort();
  }
  // A rank's share of a vocabulary-parallel embedding: out[t] = table[ids[t] - first_id] where
  // that is a row of the table, zeros elsewhere (the all-reduce that follows adds the rank that
  // holds the row). The default refuses: tensor parallelism is the CPU backend's for now.
  virtual void vocab_parallel_embedding(Tensor& out, const Tensor& ids, const Tensor& table, int64_t first_id) {
    throw Error("--tensor-parallel-size > 1 is not implemented on the " + name() + " backend yet", ErrorKind::kUnsupported);
  }
  // out[T, N] = x[T, K] · Wᵀ + bias
  virtual void linear(Tensor& out, const Tensor& x, const LinearWeight& w) = 0;
  // out = LayerNorm(x) * weight + bias, over the last dimension
  virtual void layer_norm(Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) = 0;
  // out = x / rms(x) * weight, over groups of weight.numel() features (per head when weight is per head)
  virtual void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) = 0;
  // residual += x; out = x_normed = RMSNorm(residual) (the pre-norm transformer's fused step)
  virtual void add_rms_norm(Tensor& out, Tensor& residual, const Tensor& x, const Tensor& weight, float eps) = 0;
  // out = a + b (out may alias a)
  virtual void add(Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // In place on the first rotary_dim features of each query and key head of qkv.
  virtual void rotary(Tensor& qkv, const Tensor& positions, const RotaryEmbedding& rope, const AttentionShape& shape) = 0;
  // In place RMSNorm of each query head (q_weight) and key head (k_weight) of qkv (Qwen3).
  virtual void qk_rms_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, const AttentionShape& shape,
                           float eps) = 0;
  // out[T, I] = gelu_tanh(x)   (transformers' gelu_new)
  virtual void gelu_new(Tensor& out, const Tensor& x) = 0;
  // out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]
  virtual void silu_and_mul(Tensor& out, const Tensor& gate_up) = 0;
  // out[T, I] = gelu_tanh(gate_up[:, :I]) * gate_up[:, I:]   (Gemma's gelu_pytorch_tanh MLP)
  virtual void gelu_tanh_and_mul(Tensor& out, const Tensor& gate_up);
  // In place: x *= s (Gemma's embedding normalizer, sqrt(hidden_size)).
  virtual void scale(Tensor& x, float s);
  // In place: x = tanh(x / cap) * cap (Gemma 2's final logit soft-capping).
  virtual void softcap(Tensor& x, float cap);
  // Refuses, with a kUnsupported error naming the feature, an attention layer (window, soft-cap,
  // sinks) that attention() cannot run on this backend. The default accepts every layer.
  virtual void check_attention(const AttentionShape& shape) const {}
  // Writes each token's K and V (from qkv) into the cache at its slot, then computes causal
  // attention of each query over its sequence's cached K/V through the block table, with the
  // layer's window, soft-cap and sinks (AttentionShape). out [T, num_heads * head_dim].
  virtual void attention(Tensor& out, const Tensor& qkv, KVCacheLayer& cache, const ForwardInputs& in,
                         const AttentionShape& shape, float scale) = 0;
  // out[R, H] = x[rows[r]]
  virtual void gather_rows(Tensor& out, const Tensor& x, const Tensor& rows) = 0;

  // Fused steps that save a decode step kernels and passes over the activations. The defaults
  // compose the ops above; a backend that fuses them must give the same result.
  // out = gelu_new(x · Wᵀ + bias)
  virtual void linear_gelu_new(Tensor& out, const Tensor& x, const LinearWeight& w) {
    linear(out, x, w);
    gelu_new(out, out);
  }
  // residual = (residual + other) + (x · Wᵀ + bias), with `scratch` [T, N] for the product where the
  // backend needs it: a parallel-attention block's output (Phi: attention and MLP summed in).
  virtual void linear_add_residual(Tensor& residual, Tensor& scratch, const Tensor& x, const LinearWeight& w,
                                   const Tensor& other) {
    linear(scratch, x, w);
    add(residual, residual, other);
    add(residual, residual, scratch);
  }
  // The input side of a parallel block (Phi): x = layer_norm(hidden), qkv = x · W_qkvᵀ + b and
  // up = gelu_new(x · W_upᵀ + b). A backend that fuses them may leave x unwritten (nothing else
  // reads it) and may sum in another order than the separate ops (equal within rounding).
  virtual void layer_norm_qkv_mlp_up(Tensor& x, Tensor& qkv, Tensor& up, const Tensor& hidden, const Tensor& norm_w,
                                     const Tensor& norm_b, float eps, const LinearWeight& w_qkv,
                                     const LinearWeight& w_up) {
    layer_norm(x, hidden, norm_w, norm_b, eps);
    linear(qkv, x, w_qkv);
    linear_gelu_new(up, x, w_up);
  }
  // Mixture of experts (Mixtral, Qwen3-MoE, GPT-OSS). gate_up: host tensor [E, 2I, H], each
  // expert's gate rows then its up rows; down: [E, H, I]; any float dtype; biases and the
  // activation in `options`. The default (a backend without an expert path) refuses with an
  // error naming the backend.
  virtual std::shared_ptr<ExpertWeights> prepare_experts(const Tensor& gate_up, const Tensor& down,
                                                         const ExpertOptions& options);
  // out[T, H] = sum over the experts e routed to (see MoeRouting) of
  //   weight_e * (down_e(act(gate_e(x) + bg_e, up_e(x) + bu_e)) + bd_e),
  // act as ExpertOptions says, with router [E, H] the gate linear (and its bias, if any). Experts
  // no token is routed to are not read.
  virtual void moe(Tensor& out, const Tensor& x, const LinearWeight& router, const ExpertWeights& experts,
                   const MoeRouting& routing);

  // For each (src, dst) pair, in order: block dst of the layer's K and V caches becomes a copy of
  // block src (copy-on-write of a KV block that forked sequences shared).
  virtual void copy_blocks(KVCacheLayer& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) = 0;

 private:
  std::shared_ptr<Communicator> communicator_;
};

inline void Backend::gelu_tanh_and_mul(Tensor&, const Tensor&) {
  throw Error("the gelu_tanh-and-multiply MLP (Gemma) is not implemented on the " + name() +
                  " backend yet (run this model with --device cpu)",
              ErrorKind::kUnsupported);
}

inline void Backend::use_fp8_kv_cache() {
  throw Error("--kv-cache-dtype fp8: the " + name() + " backend supports --kv-cache-dtype auto only",
              ErrorKind::kUnsupported);
}

inline void Backend::scale(Tensor&, float) {
  throw Error("scaled embeddings (Gemma) are not implemented on the " + name() +
                  " backend yet (run this model with --device cpu)",
              ErrorKind::kUnsupported);
}

inline void Backend::softcap(Tensor&, float) {
  throw Error("final logit soft-capping (Gemma 2) is not implemented on the " + name() +
                  " backend yet (run this model with --device cpu)",
              ErrorKind::kUnsupported);
}

inline Tensor Backend::prepare_quantized_embedding(const gguf::QuantizedMatrix& table) {
  return prepare_embedding(table.dequantize());
}

inline std::shared_ptr<LinearWeight> Backend::prepare_quantized_linear(const std::vector<gguf::QuantizedMatrix>& parts,
                                                                      const Tensor& bias) {
  VLLM_CHECK(!parts.empty(), "a linear weight has at least one part");
  int64_t rows = 0;
  for (const auto& p : parts) rows += p.rows();
  Tensor w = Tensor::empty({rows, parts[0].cols}, DType::F32);
  int64_t at = 0;
  for (const auto& p : parts) {
    Tensor d = p.dequantize();
    std::copy(d.data<float>(), d.data<float>() + d.numel(), w.data<float>() + at * p.cols);
    at += p.rows();
  }
  return prepare_linear(w, bias);
}

inline std::shared_ptr<LinearWeight> Backend::prepare_fp8_linear(const std::vector<Fp8Matrix>& parts,
                                                                const Tensor& bias) {
  VLLM_CHECK(!parts.empty(), "a linear weight has at least one part");
  const int64_t cols = parts[0].weight.size(1);
  int64_t rows = 0;
  for (const auto& p : parts) {
    VLLM_CHECK(p.weight.dtype() == DType::U8 && p.weight.dim() == 2 && p.weight.size(1) == cols,
               "FP8 parts are U8 matrices of one width");
    rows += p.weight.size(0);
  }
  Tensor w = Tensor::empty({rows, cols}, DType::F32);
  int64_t at = 0;
  for (const auto& p : parts) {
    const Tensor d = dequantize_fp8(p.weight, Float8Format::kE4M3, p.scale, p.layout, "FP8 weight scale");
    std::copy(d.data<float>(), d.data<float>() + d.numel(), w.data<float>() + at * cols);
    at += p.weight.size(0);
  }
  return prepare_linear(w, bias);
}

inline std::shared_ptr<ExpertWeights> Backend::prepare_experts(const Tensor&, const Tensor&, const ExpertOptions&) {
  throw Error("mixture-of-experts layers are not implemented on the " + name() +
                  " backend yet (run this model with --device cpu)",
              ErrorKind::kUnsupported);
}

inline void Backend::moe(Tensor&, const Tensor&, const LinearWeight&, const ExpertWeights&, const MoeRouting&) {
  throw Error("mixture-of-experts layers are not implemented on the " + name() + " backend yet",
              ErrorKind::kUnsupported);
}

// The backend for --device: "cpu", "cuda" or "auto". compute_dtype is the model's compute dtype.
// cpu_threads > 0 gives a CPU backend a thread pool of its own of that many threads (a share of
// the cores); 0 uses the process-wide pool (VLLM_NUM_THREADS, or every usable core).
std::unique_ptr<Backend> make_backend(const std::string& device, DType compute_dtype, int cpu_threads = 0);
// Whether make_backend("auto", ...) picks the GPU (a CUDA build with a visible device).
bool auto_device_is_cuda();

}  // namespace vllm
