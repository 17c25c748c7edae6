#include "vllm/loader/fp8_weights.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"

namespace vllm {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The float32 value of every scale; the layout's group of element (r, c) is found by index().
struct ScaleGrid {
  std::vector<float> values;
  Fp8WeightLayout layout;
  int64_t block_cols_count = 1;
  float at(int64_t r, int64_t c) const {
    switch (layout.scales) {
      case Fp8ScaleLayout::kPerTensor: return values[0];
      case Fp8ScaleLayout::kPerChannel: return values[static_cast<size_t>(r)];
      case Fp8ScaleLayout::kBlock:
        return values[static_cast<size_t>((r / layout.block_rows) * block_cols_count + c / layout.block_cols)];
    }
    return values[0];
  }
};

bool scale_shape_ok(const Fp8WeightLayout& layout, const Shape& got, int64_t out, int64_t in) {
  switch (layout.scales) {
    case Fp8ScaleLayout::kPerTensor: return shape_numel(got) == 1 && got.size() <= 2;
    case Fp8ScaleLayout::kPerChannel: return got == Shape{out, 1} || got == Shape{out};
    case Fp8ScaleLayout::kBlock: return got == fp8_scale_shape(layout, out, in);
  }
  return false;
}

std::string expected_scale_shapes(const Fp8WeightLayout& layout, int64_t out, int64_t in) {
  switch (layout.scales) {
    case Fp8ScaleLayout::kPerTensor: return "[] or [1] (per-tensor)";
    case Fp8ScaleLayout::kPerChannel: return shape_str({out, 1}) + " or " + shape_str({out}) + " (per-channel)";
    case Fp8ScaleLayout::kBlock:
      return shape_str(fp8_scale_shape(layout, out, in)) + " (blocks of " + std::to_string(layout.block_rows) + "x" +
             std::to_string(layout.block_cols) + ")";
  }
  return "?";
}

}  // namespace

Shape fp8_scale_shape(const Fp8WeightLayout& layout, int64_t out, int64_t in) {
  switch (layout.scales) {
    case Fp8ScaleLayout::kPerTensor: return {1};
    case Fp8ScaleLayout::kPerChannel: return {out, 1};
    case Fp8ScaleLayout::kBlock: return {ceil_div(out, layout.block_rows), ceil_div(in, layout.block_cols)};
  }
  return {1};
}

Tensor checked_fp8_scales(const Tensor& weight, const Tensor& scale, const Fp8WeightLayout& layout,
                          const std::string& scale_name) {
  VLLM_CHECK(weight.dtype() == DType::U8 && weight.shape().size() == 2, "an FP8 weight is a U8 matrix");
  const int64_t out = weight.size(0), in = weight.size(1);
  if (scale.dtype() != DType::F32 && scale.dtype() != DType::BF16 && scale.dtype() != DType::F16)
    throw Error("tensor '" + scale_name + "' has dtype " + std::string(dtype_name(scale.dtype())) +
                    " (FP8 scales must be F32, BF16 or F16)",
                ErrorKind::kModelLoad);
  if (!scale_shape_ok(layout, scale.shape(), out, in))
    throw Error("tensor '" + scale_name + "' has shape " + shape_str(scale.shape()) + " but the weight " +
                    shape_str(weight.shape()) + " needs " + expected_scale_shapes(layout, out, in),
                ErrorKind::kModelLoad);
  const std::vector<float> values = scale.to_floats();
  for (float s : values)
    if (!std::isfinite(s))
      throw Error("tensor '" + scale_name + "' holds a non-finite scale (" + std::to_string(s) + ")", ErrorKind::kModelLoad);
  return Tensor::from_floats(values, fp8_scale_shape(layout, out, in));
}

Tensor dequantize_fp8(const Tensor& weight, Float8Format format, const Tensor& scale, const Fp8WeightLayout& layout,
                      const std::string& scale_name) {
  VLLM_CHECK(weight.dtype() == DType::U8 && weight.shape().size() == 2, "an FP8 weight is a U8 matrix");
  VLLM_CHECK(format == Float8Format::kE4M3 || format == Float8Format::kE5M2, "a float8 format");
  const int64_t out = weight.size(0), in = weight.size(1);
  ScaleGrid grid;
  grid.layout = layout;
  grid.values = checked_fp8_scales(weight, scale, layout, scale_name).to_floats();
  if (layout.scales == Fp8ScaleLayout::kBlock) grid.block_cols_count = ceil_div(in, layout.block_cols);
  Tensor result = Tensor::empty({out, in}, DType::F32);
  const uint8_t* src = weight.data<uint8_t>();
  float* dst = result.data<float>();
  float (*decode)(uint8_t) = format == Float8Format::kE4M3 ? e4m3_to_f32 : e5m2_to_f32;
  for (int64_t r = 0; r < out; ++r)
    for (int64_t c = 0; c < in; ++c) dst[r * in + c] = decode(src[r * in + c]) * grid.at(r, c);
  return result;
}

Fp8Quantized quantize_fp8(const Tensor& weight, const Fp8WeightLayout& layout) {
  VLLM_CHECK(weight.shape().size() == 2, "an FP8 weight is a matrix");
  const int64_t out = weight.size(0), in = weight.size(1);
  const DType dt = weight.dtype();
  const Tensor w = dt == DType::F32 || dt == DType::F16 || dt == DType::BF16 ? weight : weight.to_dtype(DType::F32);
  const Shape scale_shape = fp8_scale_shape(layout, out, in);
  Fp8Quantized q{Tensor::empty({out, in}, DType::U8), Tensor::empty(scale_shape, DType::F32)};
  // A model's weights are gigabytes (--quantization fp8 at load): rows are read in parallel, each
  // converted to float32 on its own, never the whole matrix at once.
  ThreadPool& pool = ThreadPool::global();
  auto row_f32 = [&](int64_t r, std::vector<float>& buf) -> const float* {
    if (w.dtype() == DType::F32) return w.data<float>() + r * in;
    buf.resize(static_cast<size_t>(in));
    const uint16_t* h = static_cast<const uint16_t*>(w.raw()) + r * in;
    if (w.dtype() == DType::F16) {
      for (int64_t c = 0; c < in; ++c) buf[static_cast<size_t>(c)] = f16_to_f32(h[c]);
    } else {
      for (int64_t c = 0; c < in; ++c) buf[static_cast<size_t>(c)] = bf16_to_f32(h[c]);
    }
    return buf.data();
  };
  // The absolute maximum of each scale group, then its scale (amax / 448, 1 for an all-zero group).
  const int64_t group_cols = layout.scales == Fp8ScaleLayout::kBlock ? layout.block_cols : in;
  const int64_t grid_cols = layout.scales == Fp8ScaleLayout::kBlock ? scale_shape[1] : 1;
  const int64_t group_rows = layout.scales == Fp8ScaleLayout::kPerTensor ? out
                             : layout.scales == Fp8ScaleLayout::kPerChannel ? 1
                                                                          : layout.block_rows;
  float* scale = q.scale.data<float>();
  auto amax_rows = [&](int64_t r0, int64_t r1, float* amax /* grid_cols */) {
    std::vector<float> buf;
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = row_f32(r, buf);
      for (int64_t c = 0; c < in; ++c) {
        float& m = amax[c / group_cols];
        m = std::max(m, std::fabs(x[c]));
      }
    }
  };
  if (layout.scales == Fp8ScaleLayout::kPerTensor) {
    std::vector<float> partial(static_cast<size_t>(pool.num_threads()), 0.0f);
    pool.parallel_for(out, [&](int t, int64_t r0, int64_t r1) { amax_rows(r0, r1, &partial[static_cast<size_t>(t)]); });
    scale[0] = *std::max_element(partial.begin(), partial.end());
  } else {
    // Each row group owns its row of the grid.
    const int64_t groups = scale_shape[0];
    std::fill(scale, scale + groups * grid_cols, 0.0f);
    pool.parallel_for(groups, [&](int, int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g)
        amax_rows(g * group_rows, std::min(out, (g + 1) * group_rows), scale + g * grid_cols);
    });
  }
  for (int64_t i = 0; i < q.scale.numel(); ++i) scale[i] = scale[i] > 0.0f ? scale[i] / kFloat8E4M3Max : 1.0f;
  // The bytes: x / scale, saturated to e4m3's largest finite value.
  uint8_t* bytes = q.weight.data<uint8_t>();
  pool.parallel_for(out, [&](int, int64_t r0, int64_t r1) {
    std::vector<float> buf, inverse(static_cast<size_t>(grid_cols));
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = row_f32(r, buf);
      const float* row_scales = layout.scales == Fp8ScaleLayout::kPerTensor ? scale : scale + (r / group_rows) * grid_cols;
      for (int64_t g = 0; g < grid_cols; ++g) inverse[static_cast<size_t>(g)] = 1.0f / row_scales[g];
      for (int64_t c = 0; c < in; ++c)
        bytes[r * in + c] =
            f32_to_e4m3(std::clamp(x[c] * inverse[static_cast<size_t>(c / group_cols)], -kFloat8E4M3Max, kFloat8E4M3Max));
    }
  });
  return q;
}

Tensor fp8_round_trip_per_tensor(const Tensor& weight) {
  VLLM_CHECK(!weight.shape().empty(), "a weight with at least one dimension");
  const int64_t cols = weight.shape().back();
  const int64_t rows = cols == 0 ? 0 : weight.numel() / cols;
  const Tensor matrix = weight.view({rows, cols});
  const Fp8Quantized q = quantize_fp8(matrix, Fp8WeightLayout{});
  return dequantize_fp8(q.weight, Float8Format::kE4M3, q.scale, Fp8WeightLayout{}, "online fp8 scale").view(weight.shape());
}

}  // namespace vllm
