// A weight matrix [rows, cols] stored as a GGUF file stores it: each row a run of blocks of one
// ggml type (or plain F32/F16/BF16 values). Backends either keep it so (the CPU's int8 dot
// products) or dequantize it.
#pragma once

#include <cstdint>
#include <vector>

#include "vllm/core/tensor.h"
#include "vllm/gguf/ggml_types.h"

namespace vllm::gguf {

struct QuantizedMatrix {
  GgmlType type = GgmlType::kF32;
  int64_t cols = 0;  // elements per row (in_features)
  Tensor data;       // U8 [rows, ggml_row_bytes(type, cols)]; may be a view into a mapped file

  int64_t rows() const { return data.defined() ? data.size(0) : 0; }
  size_t row_bytes() const { return ggml_row_bytes(type, cols); }
  const uint8_t* row(int64_t r) const { return data.data<uint8_t>() + static_cast<size_t>(r) * row_bytes(); }

  // The bytes of a float32 / float16 / bfloat16 tensor [rows, cols] as a matrix of that type.
  static QuantizedMatrix from_float(const Tensor& t);
  // The rows as float32 [rows, cols] (a supported type; see ggml_type_supported).
  Tensor dequantize() const;
  // Rows of several matrices of one type and width, one after the other (a copy).
  static QuantizedMatrix concat_rows(const std::vector<QuantizedMatrix>& parts);
};

}  // namespace vllm::gguf
