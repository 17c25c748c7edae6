// A contiguous, row-major n-dimensional array on one device. Tensors share their storage
// (a Buffer) by reference count; views (row ranges, reshapes) never copy.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "vllm/core/dtype.h"

namespace vllm {

enum class Device : uint8_t { kCPU, kCUDA };

// Raw memory with a deleter: heap memory, a memory-mapped file, or device memory.
class Buffer {
 public:
  Buffer(void* data, size_t bytes, Device device, std::function<void(void*)> deleter)
      : data_(data), bytes_(bytes), device_(device), deleter_(std::move(deleter)) {}
  ~Buffer() {
    if (deleter_) deleter_(data_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // 64-byte aligned host memory (cache lines, AVX-512 loads).
  static std::shared_ptr<Buffer> host(size_t bytes);

 private:
  void* data_;
  size_t bytes_;
  Device device_;
  std::function<void(void*)> deleter_;
};

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Buffer> buffer, size_t offset, DType dtype, Shape shape);

  // New uninitialised host tensor.
  static Tensor empty(Shape shape, DType dtype);
  static Tensor zeros(Shape shape, DType dtype);
  // Host tensor copied from values (converted to dtype).
  static Tensor from_floats(const std::vector<float>& values, Shape shape, DType dtype = DType::F32);

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return buffer_ ? buffer_->device() : Device::kCPU; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const { return shape_.at(d < 0 ? d + dim() : d); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const { return static_cast<char*>(buffer_->data()) + offset_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Rows [begin, end) of the first dimension, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Same storage, another shape of the same element count.
  Tensor view(Shape shape) const;

  // Element i (row-major) as float, whatever the dtype; slow, for tests and tools.
  float get_float(int64_t i) const;
  std::vector<float> to_floats() const;
  // Host copy converted to another dtype.
  Tensor to_dtype(DType dtype) const;

  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }

 private:
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_;
};

}  // namespace vllm
