#include "vllm/gguf/quantized_matrix.h"

#include <cstring>

#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"

namespace vllm::gguf {

QuantizedMatrix QuantizedMatrix::from_float(const Tensor& t) {
  VLLM_CHECK(t.dim() == 2, "a matrix is 2-D");
  QuantizedMatrix m;
  switch (t.dtype()) {
    case DType::F32: m.type = GgmlType::kF32; break;
    case DType::F16: m.type = GgmlType::kF16; break;
    case DType::BF16: m.type = GgmlType::kBF16; break;
    default: VLLM_CHECK(false, "float32, float16 or bfloat16 weights");
  }
  m.cols = t.size(1);
  m.data = Tensor(t.buffer(), static_cast<size_t>(static_cast<const char*>(t.raw()) -
                                                  static_cast<const char*>(t.buffer()->data())),
                  DType::U8, {t.size(0), static_cast<int64_t>(m.row_bytes())});
  return m;
}

Tensor QuantizedMatrix::dequantize() const {
  Tensor out = Tensor::empty({rows(), cols}, DType::F32);
  for (int64_t r = 0; r < rows(); ++r) dequantize_row(type, row(r), out.data<float>() + r * cols, cols);
  return out;
}

QuantizedMatrix QuantizedMatrix::concat_rows(const std::vector<QuantizedMatrix>& parts) {
  VLLM_CHECK(!parts.empty(), "no parts");
  if (parts.size() == 1) return parts[0];
  QuantizedMatrix m;
  m.type = parts[0].type;
  m.cols = parts[0].cols;
  int64_t rows = 0;
  for (const auto& p : parts) {
    VLLM_CHECK(p.type == m.type && p.cols == m.cols, "concatenated matrices share type and width");
    rows += p.rows();
  }
  m.data = Tensor::empty({rows, static_cast<int64_t>(m.row_bytes())}, DType::U8);
  size_t off = 0;
  for (const auto& p : parts) {
    std::memcpy(m.data.data<uint8_t>() + off, p.data.raw(), p.data.nbytes());
    off += p.data.nbytes();
  }
  return m;
}

}  // namespace vllm::gguf
