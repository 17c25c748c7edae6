// CudaBackend's GGUF linear layers: a GGUF file's quantized weights kept in their blocks on the
// device (prepare_quantized_linear), and the products that read them (gguf_linear):
//   - up to kGgufGemvMaxRows rows (decode): the skinny product (gguf.cu), one launch per segment
//     (a run of parts of one type, e.g. Q4_K q and k, then Q6_K v), which streams the blocks once
//     and dequantizes them in registers, and takes the fused decode steps' epilogues;
//   - more rows: each segment dequantized to the compute dtype into one scratch [N, K], then the
//     cuBLASLt product of the whole weight (simple and exact to the dequantized weights; the
//     scratch is the largest such weight's N x K in the compute dtype, grown once).
#include "vllm/backends/cuda/backend_impl.h"
#include "vllm/gguf/ggml_types.h"

namespace vllm {

using namespace cuda_detail;

namespace {

// The kernels' kind of a quantized GGUF type, or false where gguf.cu has no decoder for it.
bool kind_of(gguf::GgmlType type, cuda::GgufKind& kind) {
  switch (type) {
    case gguf::GgmlType::kQ8_0: kind = cuda::GgufKind::kQ8_0; return true;
    case gguf::GgmlType::kQ4_0: kind = cuda::GgufKind::kQ4_0; return true;
    case gguf::GgmlType::kQ4_K: kind = cuda::GgufKind::kQ4_K; return true;
    case gguf::GgmlType::kQ5_K: kind = cuda::GgufKind::kQ5_K; return true;
    case gguf::GgmlType::kQ6_K: kind = cuda::GgufKind::kQ6_K; return true;
    default: return false;
  }
}

bool is_float_type(gguf::GgmlType type) {
  return type == gguf::GgmlType::kF32 || type == gguf::GgmlType::kF16 || type == gguf::GgmlType::kBF16;
}

}  // namespace

std::shared_ptr<LinearWeight> CudaBackend::prepare_quantized_linear(const std::vector<gguf::QuantizedMatrix>& parts,
                                                                    const Tensor& bias) {
  Impl& I = *impl_;
  VLLM_CHECK(!parts.empty(), "a linear weight has at least one part");
  const int64_t K = parts[0].cols;
  int64_t N = 0;
  bool any_quantized = false, all_known = true;
  for (const auto& p : parts) {
    VLLM_CHECK(p.cols == K, "the parts of a linear weight have one width");
    N += p.rows();
    cuda::GgufKind kind;
    if (kind_of(p.type, kind)) any_quantized = true;
    else if (!is_float_type(p.type)) all_known = false;
  }
  // Float parts only, a type without a decoder here (the default dequantizes what it can read and
  // names what it cannot), an input width the skinny product cannot take, or VLLM_CUDA_GGUF=0:
  // the weight in the compute dtype.
  if (!I.use_gguf || !any_quantized || !all_known || K % 32 != 0) return Backend::prepare_quantized_linear(parts, bias);

  // Segments: runs of consecutive parts of one quantized type (their rows as the file stores
  // them), and runs of float parts (converted to the compute dtype, as kDense rows).
  struct Run {
    size_t first, last;  // parts [first, last)
    cuda::GgufKind kind;
    int64_t rows = 0;
    size_t offset = 0, bytes = 0;
  };
  std::vector<Run> runs;
  const size_t dense_row_bytes = static_cast<size_t>(K) * dtype_size(compute_dtype_);
  size_t total = 0;
  for (size_t i = 0; i < parts.size();) {
    cuda::GgufKind kind = cuda::GgufKind::kDense;
    const bool quantized = kind_of(parts[i].type, kind);
    size_t j = i + 1;
    while (j < parts.size() && (quantized ? parts[j].type == parts[i].type : is_float_type(parts[j].type))) ++j;
    Run r{i, j, kind};
    for (size_t k = i; k < j; ++k) r.rows += parts[k].rows();
    r.bytes = static_cast<size_t>(r.rows) * (quantized ? parts[i].row_bytes() : dense_row_bytes);
    r.offset = total;
    total += (r.bytes + 255) / 256 * 256;
    runs.push_back(r);
    i = j;
  }

  Tensor bytes = empty({static_cast<int64_t>(std::max<size_t>(total, 1))}, DType::U8);
  auto* base = static_cast<uint8_t*>(bytes.raw());
  CudaLinearWeight::Gguf g;
  g.rows = N;
  g.cols = K;
  int64_t col0 = 0;
  for (const Run& r : runs) {
    size_t at = r.offset;
    for (size_t k = r.first; k < r.last; ++k) {
      const gguf::QuantizedMatrix& p = parts[k];
      if (p.rows() == 0) continue;
      if (r.kind == cuda::GgufKind::kDense) {
        const Tensor d = p.dequantize().to_dtype(compute_dtype_);
        I.copy_h2d(base + at, d.raw(), d.nbytes());
        at += d.nbytes();
      } else {
        const size_t n = static_cast<size_t>(p.rows()) * p.row_bytes();
        I.copy_h2d(base + at, p.row(0), n);
        at += n;
      }
    }
    g.segments.push_back(cuda::GgufSegment{r.kind, base + r.offset, r.rows, col0});
    col0 += r.rows;
  }
  Tensor db;
  if (bias.defined()) {
    VLLM_CHECK(bias.numel() == N, "bias size must match the weight's rows");
    db = upload(bias.view({N}), compute_dtype_);
  }
  return std::make_shared<CudaLinearWeight>(std::move(bytes), std::move(db), std::move(g));
}

CudaBackend::GgufLinearPath CudaBackend::last_gguf_linear_path() const { return impl_->gguf_last_path; }

namespace cuda_detail {

bool gguf_gemv_applies(const CudaBackend::Impl& I, DType dt, const Tensor& x, const CudaLinearWeight& w) {
  return I.use_gemv && cuda::gemv_gguf_supported(dt, x.size(0), w.out_features(), w.in_features(), x.raw());
}

void gguf_linear(CudaBackend::Impl& I, DType dt, Tensor& out, const Tensor& x, const CudaLinearWeight& w,
                 cuda::GemvEpilogue epi, const Tensor* other) {
  using Path = CudaBackend::GgufLinearPath;
  const int64_t M = x.size(0), K = x.size(1), N = w.out_features();
  if (M == 0 || N == 0) return;
  const void* bias = w.bias().defined() ? w.bias().raw() : nullptr;
  if (gguf_gemv_applies(I, dt, x, w)) {
    for (const cuda::GgufSegment& s : w.gguf().segments)
      cuda::gemv_gguf(dt, out.raw(), x.raw(), s, bias, M, N, K, I.stream, epi, other ? other->raw() : nullptr);
    I.gguf_last_path = Path::kGemv;
    return;
  }
  VLLM_CHECK(epi == cuda::GemvEpilogue::kNone, "gguf_linear: an epilogue needs the skinny product");
  char* dequantized = I.fp8_scratch_for(static_cast<size_t>(N * K) * dtype_size(dt));
  for (const cuda::GgufSegment& s : w.gguf().segments) cuda::dequantize_gguf(dt, dequantized, s, K, I.stream);
  I.gemm->run(dt, out.raw(), x.raw(), dequantized, bias, M, N, K);
  I.gguf_last_path = Path::kDequantizedGemm;
}

}  // namespace cuda_detail

}  // namespace vllm
