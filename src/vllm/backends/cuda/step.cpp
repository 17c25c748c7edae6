// One engine step on the GPU: decode steps captured as CUDA graphs and replayed, and the device
// sampler's host side (CudaBackend::sample_tokens; the kernel is sampling.cu).
#include "vllm/backends/cuda/backend_impl.h"
#include "vllm/core/logging.h"

namespace vllm {

using namespace cuda_detail;

void CudaBackend::configure_graphs(bool enable, int64_t max_model_len, int64_t max_batch) {
  Impl& I = *impl_;
  I.graphs_enabled = enable && max_model_len > 0 && max_batch > 0;
  if (const char* e = std::getenv("VLLM_CUDA_GRAPHS"); e && std::string(e) == "0") I.graphs_enabled = false;
  I.graph_max_model_len = max_model_len;
  I.graph_max_batch = std::min<int64_t>(max_batch, 512);
  I.graphs.clear();
}

namespace {
int64_t graph_batch_for(int64_t n, int64_t max_batch) {
  int64_t b;
  if (n <= 4) b = n <= 1 ? 1 : n <= 2 ? 2 : 4;
  else if (n <= 64) b = (n + 7) / 8 * 8;
  else if (n <= 128) b = (n + 15) / 16 * 16;
  else b = (n + 31) / 32 * 32;
  return std::min(b, max_batch);
}
}  // namespace

Tensor CudaBackend::forward_step(const ForwardInputs& in, const StepFunction& run) {
  Impl& I = *impl_;
  const int64_t S = in.num_seqs;
  if (!I.graphs_enabled || S == 0 || in.max_query_len != 1 || in.num_tokens != S || in.logits_indices.numel() != S ||
      S > I.graph_max_batch || in.block_size <= 0)
    return run(in);
  // A graph's static inputs hold group 0's block tables and slot mapping only: a model with several
  // KV cache groups (sliding-window layers beside full ones) decodes eagerly.
  if (!in.more_kv_groups.empty()) return run(in);
  const int64_t width = (I.graph_max_model_len + in.block_size - 1) / in.block_size;
  if (in.max_blocks_per_seq > width) return run(in);
  const int64_t B = graph_batch_for(S, I.graph_max_batch);
  if (B < S) return run(in);

  auto it = I.graphs.find(B);
  DecodeGraph* g = it == I.graphs.end() ? nullptr : it->second.get();
  const bool fresh = g == nullptr || g->block_size != in.block_size;
  std::unique_ptr<DecodeGraph> made;
  if (fresh) {
    made = std::make_unique<DecodeGraph>();
    g = made.get();
    g->batch = B;
    g->block_size = in.block_size;
    g->width = width;
    g->ids = empty({B}, DType::I32);
    g->pos = empty({B}, DType::I32);
    g->slots = empty({B}, DType::I64);
    g->qsl = empty({B + 1}, DType::I32);
    g->lens = empty({B}, DType::I32);
    g->tables = empty({B, width}, DType::I32);
    g->rows = empty({B}, DType::I32);
    fill_zero(g->tables);
  }
  cuda::pack_decode_inputs(in.token_ids.data<int32_t>(), in.positions.data<int32_t>(), in.slot_mapping.data<int64_t>(),
                           in.seq_lens.data<int32_t>(), S, g->ids.data<int32_t>(), g->pos.data<int32_t>(),
                           g->slots.data<int64_t>(), g->qsl.data<int32_t>(), g->lens.data<int32_t>(),
                           g->rows.data<int32_t>(), B, I.stream);
  check(cudaMemcpy2DAsync(g->tables.raw(), static_cast<size_t>(width) * 4, in.block_tables.raw(),
                          static_cast<size_t>(in.max_blocks_per_seq) * 4, static_cast<size_t>(in.max_blocks_per_seq) * 4,
                          static_cast<size_t>(S), cudaMemcpyDeviceToDevice, I.stream),
        "cudaMemcpy2DAsync(block tables)");

  ForwardInputs sin;
  sin.num_tokens = B;
  sin.num_seqs = B;
  sin.max_query_len = 1;
  sin.max_seq_len = I.graph_max_model_len;
  sin.max_blocks_per_seq = width;
  sin.block_size = in.block_size;
  sin.token_ids = g->ids;
  sin.positions = g->pos;
  sin.slot_mapping = g->slots;
  sin.query_start_loc = g->qsl;
  sin.seq_lens = g->lens;
  sin.block_tables = g->tables;
  sin.logits_indices = g->rows;
  sin.host_query_start_loc.resize(static_cast<size_t>(B) + 1);
  for (int64_t i = 0; i <= B; ++i) sin.host_query_start_loc[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  sin.host_seq_lens.assign(static_cast<size_t>(B), static_cast<int32_t>(I.graph_max_model_len));

  if (fresh) {
    // This step runs eagerly on the static inputs (its results are the step's), sizing every
    // buffer; then the same work is captured.
    Tensor logits = run(sin);
    I.sync();
    I.capturing = g;
    I.ctx->capturing = true;
    cudaGraph_t graph = nullptr;
    cudaError_t err = cudaStreamBeginCapture(I.stream, cudaStreamCaptureModeThreadLocal);
    if (err == cudaSuccess) {
      try {
        g->logits = run(sin);
      } catch (...) {
        cudaStreamEndCapture(I.stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        I.capturing = nullptr;
        I.ctx->capturing = false;
        throw;
      }
      err = cudaStreamEndCapture(I.stream, &graph);
    }
    I.capturing = nullptr;
    I.ctx->capturing = false;
    for (void* p : I.ctx->deferred_frees) cudaFreeAsync(p, I.stream);
    I.ctx->deferred_frees.clear();
    if (err == cudaSuccess) err = cudaGraphInstantiate(&g->exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (err != cudaSuccess) {
      cudaGetLastError();
      VLLM_LOG_WARN("CUDA graph capture for decode batch {} failed ({}); running eagerly", B, cudaGetErrorString(err));
      I.graphs_enabled = false;
      I.graphs.clear();
      return logits.slice_rows(0, S);
    }
    I.graphs[B] = std::move(made);
    VLLM_LOG_DEBUG("captured a CUDA graph for decode batches of {}", B);
    return logits.slice_rows(0, S);
  }

  check(cudaGraphLaunch(g->exec, I.stream), "cudaGraphLaunch");
  return g->logits.slice_rows(0, S);
}

// The device sampler: the rows' parameters and bitmasks go up, token ids come back.
std::vector<int32_t> CudaBackend::sample_tokens(const Tensor& logits, std::span<const DeviceSamplingRow> rows,
                                                std::span<const uint32_t> masks, int64_t mask_words) {
  Impl& I = *impl_;
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n == 0) return {};
  VLLM_CHECK(logits.device() == Device::kCUDA && logits.dim() == 2, "sample_tokens needs a 2-D device logits tensor");
  const int64_t vocab = logits.size(1), words = mask_words > 0 ? mask_words : (vocab + 31) / 32;
  VLLM_CHECK(words >= (vocab + 31) / 32 && static_cast<int64_t>(masks.size()) % words == 0,
             "token bitmasks of the wrong width");
  for (const DeviceSamplingRow& r : rows)
    VLLM_CHECK(r.logits_row >= 0 && r.logits_row < logits.size(0) &&
                   r.mask_row < static_cast<int64_t>(masks.size()) / words,
               "a sampling row names a logits or mask row that is not there");
  Tensor dev_rows = empty({n * static_cast<int64_t>(sizeof(DeviceSamplingRow))}, DType::U8);
  I.copy_h2d(dev_rows.raw(), rows.data(), rows.size_bytes());
  Tensor dev_masks;
  const uint32_t* mask_ptr = nullptr;
  if (!masks.empty()) {
    dev_masks = empty({static_cast<int64_t>(masks.size())}, DType::I32);
    // Page-locked masks (the engine's, from empty_host) go straight to the device; others through
    // the staging ring (one more host copy). The copy back below waits for either to finish.
    cudaPointerAttributes attr{};
    const cudaError_t looked_up = cudaPointerGetAttributes(&attr, masks.data());
    if (looked_up != cudaSuccess) cudaGetLastError();  // a pointer CUDA does not know: plain memory
    if (looked_up == cudaSuccess && attr.type == cudaMemoryTypeHost)
      check(cudaMemcpyAsync(dev_masks.raw(), masks.data(), masks.size_bytes(), cudaMemcpyHostToDevice, I.stream),
            "cudaMemcpyAsync(masks)");
    else I.copy_h2d(dev_masks.raw(), masks.data(), masks.size_bytes());
    mask_ptr = static_cast<const uint32_t*>(dev_masks.raw());
  }
  Tensor tokens = empty({n}, DType::I32);
  cuda::sample_rows(logits.dtype(), logits.raw(), vocab, static_cast<const DeviceSamplingRow*>(dev_rows.raw()), n,
                    mask_ptr, words,
                    tokens.data<int32_t>(), I.stream);
  return I.copy_back<int32_t>(tokens.raw(), n);
}

Tensor CudaBackend::empty_host(const Shape& shape, DType dtype) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return Tensor(impl_->pinned->get(static_cast<size_t>(n) * dtype_size(dtype)), 0, dtype, shape);
}

}  // namespace vllm
