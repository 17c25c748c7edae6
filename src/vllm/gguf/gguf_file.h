// Reading GGUF files (versions 2 and 3, little-endian): the header, the metadata key-value pairs,
// the tensor infos and the aligned data section. The file is memory-mapped; tensor data is never
// copied here.
//
// Layout: "GGUF", uint32 version, uint64 tensor count, uint64 KV count; each KV is a string key,
// a uint32 value type and the value (strings are a uint64 length and bytes; arrays a uint32 element
// type, a uint64 count and the elements); each tensor info is a string name, uint32 n_dims,
// n_dims uint64 dims (ggml order: dims[0] is the contiguous one), uint32 ggml type and a uint64
// offset into the data section, which starts at the next multiple of general.alignment (32 by
// default) after the infos.
//
// Every count, length and offset is checked against the bytes that exist: a truncated or hostile
// file is a vllm::Error (ErrorKind::kModelLoad) naming the file and what is wrong, never a crash
// or an allocation the file's size does not justify.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vllm/core/tensor.h"
#include "vllm/gguf/ggml_types.h"

namespace vllm::gguf {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
inline constexpr uint32_t kGgufDefaultAlignment = 32;

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view value_type_name(ValueType t);  // "uint32", "string", "array", ...
// Bytes of one element of a fixed-size type (0 for string and array).
size_t value_type_size(ValueType t);

// One metadata value: a scalar, a string, or an array of scalars or strings (GGUF allows arrays
// of arrays; this reader refuses them, as llama.cpp does).
class Value {
 public:
  Value() = default;
  static Value scalar(ValueType type, const void* le_bytes);  // from the element's bytes
  static Value string(std::string s);
  static Value array(ValueType elem_type, std::vector<uint8_t> raw, size_t count);  // fixed-size elements
  static Value string_array(std::vector<std::string> items);
  // Convenience constructors for writers.
  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value u64(uint64_t v);
  static Value f32(float v);
  static Value boolean(bool v);
  static Value int32_array(const std::vector<int32_t>& v);
  static Value float32_array(const std::vector<float>& v);

  ValueType type() const { return type_; }
  bool is_array() const { return type_ == ValueType::kArray; }
  ValueType elem_type() const { return elem_type_; }  // arrays only
  size_t size() const { return count_; }              // arrays only

  // Scalars. Integer and bool values as int64 (a uint64 above INT64_MAX is an error), numbers as
  // double; the wrong kind is a vllm::Error naming the key given.
  int64_t as_int(const std::string& key) const;
  double as_double(const std::string& key) const;
  bool as_bool(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;
  // Arrays.
  const std::vector<std::string>& as_strings(const std::string& key) const;
  std::vector<int64_t> as_ints(const std::string& key) const;
  std::vector<double> as_doubles(const std::string& key) const;

  // The value's bytes as GGUF stores them (without the leading type tag).
  void serialize(std::vector<uint8_t>& out) const;
  // Short description for messages: "uint32 7", "string 'llama'", "array of 3 int32".
  std::string describe() const;

 private:
  ValueType type_ = ValueType::kUint32;
  ValueType elem_type_ = ValueType::kUint8;
  uint64_t bits_ = 0;          // scalar: the element's little-endian bytes, zero-extended
  std::string str_;            // string scalar
  std::vector<uint8_t> raw_;   // fixed-size arrays: the elements' bytes
  std::vector<std::string> strings_;
  size_t count_ = 0;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (innermost) dimension
  uint64_t offset = 0;        // from the start of the data section
  size_t nbytes = 0;

  // Row-major shape as this project writes it: dims reversed ([out, in] for a matrix).
  Shape shape() const;
  int64_t numel() const;
};

// A parsed GGUF image (a mapped file or bytes in memory).
class GgufFile {
 public:
  // Maps and parses a regular file. Errors name the file.
  static GgufFile open(const std::string& path);
  // Parses bytes that stay valid while the GgufFile is used (the fuzz target and tests).
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // where the data section starts

  // Metadata in file order, and by key.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* find(const std::string& key) const;
  // The value of `key`; a missing key is an error naming it and the file.
  const Value& get(const std::string& key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  // The tensor's bytes (inside the mapping).
  const uint8_t* tensor_data(const TensorInfo& t) const { return base_ + data_offset_ + t.offset; }
  // The mapping (or caller's memory) the tensor data lives in, to keep alive with views into it.
  const std::shared_ptr<Buffer>& storage() const { return storage_; }

  // A float32 copy of a tensor of any supported type; an unsupported type is an error naming
  // the tensor and its type.
  Tensor dequantize(const TensorInfo& t) const;

 private:
  std::string path_;
  std::shared_ptr<Buffer> storage_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::map<std::string, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace vllm::gguf
