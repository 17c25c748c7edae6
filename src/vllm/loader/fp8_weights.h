// FP8 weight matrices: dequantization of a checkpoint's float8 weights with their scales, and the
// quantizers that write them (vllm-make-model --quantize fp8*) or emulate vLLM's online
// `--quantization fp8` on the CPU. Everything here is plain float32 arithmetic on host tensors.
#pragma once

#include <cstdint>

#include "vllm/core/float8.h"
#include "vllm/core/tensor.h"

namespace vllm {

// How a checkpoint scales an FP8 weight [out, in]:
//   kPerTensor  one scale (shape [] or [1]);
//   kPerChannel one scale per output row (shape [out, 1] or [out]);
//   kBlock      one scale per block of block_rows x block_cols (shape [ceil(out / block_rows),
//               ceil(in / block_cols)]; the last block row and column may be ragged).
enum class Fp8ScaleLayout { kPerTensor, kPerChannel, kBlock };

struct Fp8WeightLayout {
  Fp8ScaleLayout scales = Fp8ScaleLayout::kPerTensor;
  int64_t block_rows = 128;
  int64_t block_cols = 128;
};

// An FP8 weight matrix as a checkpoint stores it (or --quantization fp8 makes it): e4m3 bytes
// (U8 [out, in]) and float32 scales of shape fp8_scale_shape(layout, out, in).
struct Fp8Matrix {
  Tensor weight;
  Tensor scale;
  Fp8WeightLayout layout;
};

// The scale shape `layout` needs for a weight [out, in] (per-tensor: [1]).
Shape fp8_scale_shape(const Fp8WeightLayout& layout, int64_t out, int64_t in);

// The scales of FP8 weight `weight` (U8 [out, in]) checked and read: F32, BF16 or F16, of a shape
// the layout accepts ([] or [1] per tensor; [out, 1] or [out] per channel; the block grid), every
// one finite. Returns them as float32 of shape fp8_scale_shape(layout, out, in). A scale of the
// wrong shape or dtype, or not finite, is a vllm::Error (kModelLoad) naming `scale_name`.
Tensor checked_fp8_scales(const Tensor& weight, const Tensor& scale, const Fp8WeightLayout& layout,
                          const std::string& scale_name);

// weight (U8 bytes of `format`, [out, in]) times its scales (checked as checked_fp8_scales does),
// in float32: the dequantized weight as an F32 tensor [out, in].
Tensor dequantize_fp8(const Tensor& weight, Float8Format format, const Tensor& scale, const Fp8WeightLayout& layout,
                      const std::string& scale_name);

// A weight quantized to e4m3: its bytes (U8, [out, in]) and float32 scales (fp8_scale_shape()).
struct Fp8Quantized {
  Tensor weight;
  Tensor scale;
};

// Quantizes a float weight [out, in] (any float dtype) as vLLM and llm-compressor do: each group
// (the tensor, a row, or a block) gets scale = amax / 448 (1 for an all-zero group), and each
// value becomes e4m3(clamp(x * (1 / scale), -448, 448)), rounded to nearest even.
Fp8Quantized quantize_fp8(const Tensor& weight, const Fp8WeightLayout& layout);

// vLLM's online `--quantization fp8` (per-tensor, dynamic scale) undone again: quantize_fp8 per
// tensor, then dequantize, as float32 [out, in]. The CPU computes with exactly the weights the
// GPU's FP8 GEMM would read. Any leading dimensions are treated as rows.
Tensor fp8_round_trip_per_tensor(const Tensor& weight);

}  // namespace vllm
