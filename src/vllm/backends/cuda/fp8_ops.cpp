// CudaBackend's FP8 linear layers (FP8 checkpoints, --quantization fp8): the weight kept in e4m3 on
// the device with its scales (prepare_fp8_linear), and the products that read it (fp8_linear):
//   - up to kFp8GemvMaxRows rows (decode): the skinny FP8 product (gemv.cu), which streams the
//     e4m3 bytes once, half of what a 16-bit weight costs, and takes the fused decode steps'
//     epilogues (GELU, Phi's residual adds);
//   - more rows, per-row scales: the activations quantized per token to e4m3 (quantize_rows_e4m3:
//     dynamic scales amax / 448, as vLLM's per-token FP8; a checkpoint's static input_scale is
//     checked at load and not used), then cuBLASLt's FP8 product with the weight's and the
//     activations' scale vectors and the bias in its epilogue (LtGemm::run_fp8);
//   - more rows with block-scaled weights (128x128, DeepSeek / Qwen3 FP8), and shapes the FP8
//     product cannot take (K not a multiple of 16, unaligned activations, no cuBLASLt plan): the
//     weight dequantized to the compute dtype in scratch, then the 16-bit product (W8A16: correct,
//     not the fastest; cuBLASLt's 128x128 block scaling on Hopper would be the next step).
#include "vllm/backends/cuda/backend_impl.h"

namespace vllm {

using namespace cuda_detail;

std::shared_ptr<LinearWeight> CudaBackend::prepare_fp8_linear(const std::vector<Fp8Matrix>& parts, const Tensor& bias) {
  Impl& I = *impl_;
  VLLM_CHECK(!parts.empty(), "a linear weight has at least one part");
  const int64_t K = parts[0].weight.dim() == 2 ? parts[0].weight.size(1) : -1;
  int64_t N = 0, block_cols = 0;
  bool blocks = false, one_block_width = true;
  for (const Fp8Matrix& p : parts) {
    VLLM_CHECK(p.weight.dtype() == DType::U8 && p.weight.dim() == 2 && p.weight.size(1) == K &&
                   p.weight.device() == Device::kCPU,
               "FP8 weight parts are host U8 matrices of one width");
    VLLM_CHECK(p.scale.dtype() == DType::F32 && p.scale.device() == Device::kCPU &&
                   p.scale.shape() == fp8_scale_shape(p.layout, p.weight.size(0), K),
               "FP8 scales are float32 host tensors of their layout's shape");
    N += p.weight.size(0);
    if (p.layout.scales == Fp8ScaleLayout::kBlock) {
      if (blocks && p.layout.block_cols != block_cols) one_block_width = false;
      blocks = true;
      block_cols = p.layout.block_cols;
    }
  }
  // float32 compute keeps float32 products (FP8 ones serve 16-bit compute, as in vLLM); a layer
  // whose parts have blocks of different widths (no checkpoint writes one) has no single grid.
  if (!keeps_fp8_weights() || !one_block_width) return Backend::prepare_fp8_linear(parts, bias);

  // The parts' bytes, stacked by rows as they are: no host copy of the (memory-mapped) weights.
  Tensor w = empty({N, K}, DType::U8);
  int64_t at = 0;
  for (const Fp8Matrix& p : parts) {
    if (p.weight.nbytes() > 0) I.copy_h2d(static_cast<uint8_t*>(w.raw()) + at * K, p.weight.raw(), p.weight.nbytes());
    at += p.weight.size(0);
  }

  CudaLinearWeight::Fp8Scales sc;
  if (!blocks) {
    // One scale per output row: a per-tensor part's scale on each of its rows.
    std::vector<float> rows(static_cast<size_t>(N));
    at = 0;
    for (const Fp8Matrix& p : parts) {
      const float* s = p.scale.data<float>();
      for (int64_t r = 0; r < p.weight.size(0); ++r)
        rows[static_cast<size_t>(at + r)] = p.layout.scales == Fp8ScaleLayout::kPerTensor ? s[0] : s[r];
      at += p.weight.size(0);
    }
    sc.scales = upload(Tensor::from_floats(rows, {N}), DType::F32);
  } else {
    // One grid for the layer: each block part brings its grid rows, a per-tensor part one row of
    // its scale, a per-channel part a row per weight row; row_map gives each output row its grid row.
    const int64_t grid_cols = (K + block_cols - 1) / block_cols;
    std::vector<float> grid;
    Tensor map = Tensor::empty({N}, DType::I32);
    int32_t* row_map = map.data<int32_t>();
    at = 0;
    for (const Fp8Matrix& p : parts) {
      const int64_t rows = p.weight.size(0), first = static_cast<int64_t>(grid.size()) / grid_cols;
      const float* s = p.scale.data<float>();
      switch (p.layout.scales) {
        case Fp8ScaleLayout::kBlock:
          grid.insert(grid.end(), s, s + p.scale.numel());
          for (int64_t r = 0; r < rows; ++r) row_map[at + r] = static_cast<int32_t>(first + r / p.layout.block_rows);
          break;
        case Fp8ScaleLayout::kPerTensor:
          grid.insert(grid.end(), static_cast<size_t>(grid_cols), s[0]);
          for (int64_t r = 0; r < rows; ++r) row_map[at + r] = static_cast<int32_t>(first);
          break;
        case Fp8ScaleLayout::kPerChannel:
          for (int64_t r = 0; r < rows; ++r) {
            grid.insert(grid.end(), static_cast<size_t>(grid_cols), s[r]);
            row_map[at + r] = static_cast<int32_t>(first + r);
          }
          break;
      }
      at += rows;
    }
    sc.scales = upload(Tensor::from_floats(grid, {static_cast<int64_t>(grid.size()) / grid_cols, grid_cols}), DType::F32);
    sc.row_map = upload(map, DType::I32);
    sc.block_cols = block_cols;
    sc.grid_cols = grid_cols;
  }
  Tensor db;
  if (bias.defined()) {
    VLLM_CHECK(bias.numel() == N, "bias size must match the weight's rows");
    db = upload(bias.view({N}), compute_dtype_);
  }
  return std::make_shared<CudaLinearWeight>(std::move(w), std::move(db), std::move(sc));
}

bool CudaBackend::keeps_fp8_weights() const { return compute_dtype_ != DType::F32 && impl_->use_fp8; }

CudaBackend::Fp8LinearPath CudaBackend::last_fp8_linear_path() const { return impl_->fp8_last_path; }

namespace cuda_detail {

bool fp8_gemv_applies(const CudaBackend::Impl& I, DType dt, const Tensor& x, const CudaLinearWeight& w) {
  return I.use_gemv && cuda::gemv_fp8_supported(dt, x.size(0), w.out_features(), w.in_features(), x.raw(), w.fp8());
}

void fp8_linear(CudaBackend::Impl& I, DType dt, Tensor& out, const Tensor& x, const CudaLinearWeight& w) {
  using Path = CudaBackend::Fp8LinearPath;
  const int64_t M = x.size(0), K = x.size(1), N = w.out_features();
  if (M == 0 || N == 0) return;
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
  const cuda::Fp8Weight fw = w.fp8();
  if (fp8_gemv_applies(I, dt, x, w)) {
    cuda::gemv_fp8(dt, out.raw(), x.raw(), fw, bias, M, N, K, I.stream);
    I.fp8_last_path = Path::kGemv;
    return;
  }
  if (fw.block_cols == 0 && aligned16(x.raw())) {
    // Scratch: the quantized activations [M, K], then their scales [M] (256-byte aligned).
    const size_t xq_bytes = (static_cast<size_t>(M * K) + 255) / 256 * 256;
    char* base = I.fp8_scratch_for(xq_bytes + static_cast<size_t>(M) * sizeof(float));
    auto* xq = reinterpret_cast<uint8_t*>(base);
    auto* x_scales = reinterpret_cast<float*>(base + xq_bytes);
    if (I.gemm->fp8_supported(dt, out.raw(), xq, x_scales, fw.w, fw.scales, bias, M, N, K)) {
      cuda::quantize_rows_e4m3(dt, xq, x_scales, x.raw(), M, K, I.stream);
      if (I.gemm->run_fp8(dt, out.raw(), xq, x_scales, fw.w, fw.scales, bias, M, N, K)) {
        I.fp8_last_path = Path::kFp8Gemm;
        return;
      }
    }
  }
  // W8A16: the weight dequantized in scratch, then the 16-bit product.
  char* dequantized = I.fp8_scratch_for(static_cast<size_t>(N * K) * dtype_size(dt));
  cuda::dequantize_fp8(dt, dequantized, fw, N, K, I.stream);
  I.gemm->run(dt, out.raw(), x.raw(), dequantized, bias, M, N, K);
  I.fp8_last_path = Path::kDequantizedGemm;
}

}  // namespace cuda_detail

}  // namespace vllm
