#include "vllm/core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"

namespace vllm {

std::shared_ptr<Buffer> Buffer::host(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes", ErrorKind::kInternal);
  return std::make_shared<Buffer>(p, bytes, Device::kCPU, [](void* q) { std::free(q); });
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor::Tensor(std::shared_ptr<Buffer> buffer, size_t offset, DType dtype, Shape shape)
    : buffer_(std::move(buffer)), offset_(offset), dtype_(dtype), shape_(std::move(shape)) {
  VLLM_CHECK(offset_ + nbytes() <= buffer_->bytes(), "tensor exceeds its buffer");
}

Tensor Tensor::empty(Shape shape, DType dtype) {
  size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Buffer::host(bytes), 0, dtype, std::move(shape));
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::from_floats(const std::vector<float>& values, Shape shape, DType dtype) {
  VLLM_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "value count does not match shape");
  Tensor t = empty(std::move(shape), dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = values[i]; break;
      case DType::F16: t.data<uint16_t>()[i] = f32_to_f16(values[i]); break;
      case DType::BF16: t.data<uint16_t>()[i] = f32_to_bf16(values[i]); break;
      case DType::I32: t.data<int32_t>()[i] = static_cast<int32_t>(values[i]); break;
      case DType::I64: t.data<int64_t>()[i] = static_cast<int64_t>(values[i]); break;
      case DType::U8: t.data<uint8_t>()[i] = static_cast<uint8_t>(values[i]); break;
    }
  }
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  VLLM_CHECK(dim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "row slice out of range");
  Shape s = shape_;
  s[0] = end - begin;
  size_t row_bytes = static_cast<size_t>(shape_numel(shape_) / std::max<int64_t>(shape_[0], 1)) * dtype_size(dtype_);
  return Tensor(buffer_, offset_ + static_cast<size_t>(begin) * row_bytes, dtype_, std::move(s));
}

Tensor Tensor::view(Shape shape) const {
  VLLM_CHECK(shape_numel(shape) == numel(), "view " + shape_str(shape) + " of " + shape_str(shape_));
  return Tensor(buffer_, offset_, dtype_, std::move(shape));
}

float Tensor::get_float(int64_t i) const {
  VLLM_CHECK(device() == Device::kCPU, "get_float on a device tensor");
  switch (dtype_) {
    case DType::F32: return data<float>()[i];
    case DType::F16: return f16_to_f32(data<uint16_t>()[i]);
    case DType::BF16: return bf16_to_f32(data<uint16_t>()[i]);
    case DType::I32: return static_cast<float>(data<int32_t>()[i]);
    case DType::I64: return static_cast<float>(data<int64_t>()[i]);
    case DType::U8: return static_cast<float>(data<uint8_t>()[i]);
  }
  return 0;
}

std::vector<float> Tensor::to_floats() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = get_float(i);
  return out;
}

namespace {
// Fast element conversion between the float formats, in parallel for large tensors.
bool convert_floats(const void* src, DType from, void* dst, DType to, int64_t n) {
  auto run = [&](auto&& convert_one) {
    ThreadPool::global().parallel_for(n, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) convert_one(i);
    }, 1 << 16);
  };
  const auto* s16 = static_cast<const uint16_t*>(src);
  const auto* s32 = static_cast<const float*>(src);
  auto* d16 = static_cast<uint16_t*>(dst);
  auto* d32 = static_cast<float*>(dst);
  if (from == DType::BF16 && to == DType::F32) run([&](int64_t i) { d32[i] = bf16_to_f32(s16[i]); });
  else if (from == DType::F16 && to == DType::F32) run([&](int64_t i) { d32[i] = f16_to_f32(s16[i]); });
  else if (from == DType::F32 && to == DType::BF16) run([&](int64_t i) { d16[i] = f32_to_bf16(s32[i]); });
  else if (from == DType::F32 && to == DType::F16) run([&](int64_t i) { d16[i] = f32_to_f16(s32[i]); });
  else if (from == DType::F16 && to == DType::BF16) run([&](int64_t i) { d16[i] = f32_to_bf16(f16_to_f32(s16[i])); });
  else if (from == DType::BF16 && to == DType::F16) run([&](int64_t i) { d16[i] = f32_to_f16(bf16_to_f32(s16[i])); });
  else return false;
  return true;
}
}  // namespace

Tensor Tensor::to_dtype(DType dtype) const {
  VLLM_CHECK(device() == Device::kCPU, "to_dtype on a device tensor");
  Tensor t = empty(shape_, dtype);
  if (dtype == dtype_) {
    std::memcpy(t.raw(), raw(), nbytes());
    return t;
  }
  if (convert_floats(raw(), dtype_, t.raw(), dtype, numel())) return t;
  return from_floats(to_floats(), shape_, dtype);
}

}  // namespace vllm
