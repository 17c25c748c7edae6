#include "vllm/gguf/gguf_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/gguf/block_formats.h"

namespace vllm::gguf {

namespace {

[[noreturn]] void load_error(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what, ErrorKind::kModelLoad);
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

// Bounds-checked little-endian reads over the file's bytes. Every read says what it reads, so that
// a truncated file's error names the part that is cut off.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      load_error(path_, "truncated GGUF file: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                            std::to_string(pos_) + ", but the file has " + std::to_string(remaining()) + " left");
  }
  const uint8_t* take(uint64_t n, const std::string& what) {
    need(n, what);
    const uint8_t* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint32_t u32(const std::string& what) {
    uint32_t v;
    std::memcpy(&v, take(4, what), 4);
    return v;
  }
  uint64_t u64(const std::string& what) {
    uint64_t v;
    std::memcpy(&v, take(8, what), 8);
    return v;
  }
  std::string str(const std::string& what) {
    const uint64_t len = u64(what + " (its length)");
    const uint8_t* p = take(len, what + " (" + std::to_string(len) + " bytes)");
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

// One metadata value of type `type` (arrays: of scalars or strings).
Value read_value(Cursor& c, ValueType type, const std::string& key, const std::string& path) {
  const std::string what = "the value of '" + key + "'";
  switch (type) {
    case ValueType::kString: return Value::string(c.str(what));
    case ValueType::kArray: {
      const uint32_t et = c.u32(what + " (array element type)");
      if (!valid_value_type(et))
        load_error(path, "metadata '" + key + "' is an array of unknown value type " + std::to_string(et));
      const auto elem = static_cast<ValueType>(et);
      if (elem == ValueType::kArray)
        load_error(path, "metadata '" + key + "' is an array of arrays, which GGUF readers do not support");
      const uint64_t count = c.u64(what + " (array length)");
      if (elem == ValueType::kString) {
        // Each string needs at least its 8-byte length: a count the file cannot hold is refused
        // before anything is allocated for it.
        if (count > c.remaining() / 8)
          load_error(path, "truncated GGUF file: metadata '" + key + "' claims " + std::to_string(count) +
                               " strings but the file has " + std::to_string(c.remaining()) + " bytes left");
        std::vector<std::string> items;
        items.reserve(static_cast<size_t>(count));
        for (uint64_t i = 0; i < count; ++i) items.push_back(c.str(what + " (element " + std::to_string(i) + ")"));
        return Value::string_array(std::move(items));
      }
      const size_t esize = value_type_size(elem);
      if (count > c.remaining() / esize)
        load_error(path, "truncated GGUF file: metadata '" + key + "' claims " + std::to_string(count) + " " +
                             std::string(value_type_name(elem)) + " elements but the file has " +
                             std::to_string(c.remaining()) + " bytes left");
      const uint8_t* p = c.take(count * esize, what);
      return Value::array(elem, std::vector<uint8_t>(p, p + count * esize), static_cast<size_t>(count));
    }
    default: {
      const uint8_t* p = c.take(value_type_size(type), what);
      return Value::scalar(type, p);
    }
  }
}

}  // namespace

// ---- values ----

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "?";
}

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64: return 8;
    case ValueType::kString:
    case ValueType::kArray: return 0;
  }
  return 0;
}

namespace {

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kBool: return true;
    default: return false;
  }
}

// An element's little-endian bytes (zero-extended to 64 bits) as int64; false for a uint64 above
// INT64_MAX.
bool element_int(ValueType t, uint64_t bits, int64_t* out) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kUint16:
    case ValueType::kUint32:
    case ValueType::kBool: *out = static_cast<int64_t>(bits); return true;
    case ValueType::kInt8: *out = static_cast<int8_t>(bits); return true;
    case ValueType::kInt16: *out = static_cast<int16_t>(bits); return true;
    case ValueType::kInt32: *out = static_cast<int32_t>(bits); return true;
    case ValueType::kInt64: *out = static_cast<int64_t>(bits); return true;
    case ValueType::kUint64:
      if (bits > static_cast<uint64_t>(INT64_MAX)) return false;
      *out = static_cast<int64_t>(bits);
      return true;
    default: return false;
  }
}

double element_double(ValueType t, uint64_t bits) {
  if (t == ValueType::kFloat32) {
    float f;
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b, 4);
    return f;
  }
  if (t == ValueType::kFloat64) {
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  if (t == ValueType::kUint64) return static_cast<double>(bits);
  int64_t i = 0;
  element_int(t, bits, &i);
  return static_cast<double>(i);
}

uint64_t element_bits(const uint8_t* p, size_t size) {
  uint64_t bits = 0;
  std::memcpy(&bits, p, size);  // little-endian host
  return bits;
}

[[noreturn]] void wrong_type(const std::string& key, const std::string& wanted, const Value& v) {
  throw Error("GGUF metadata '" + key + "' should be " + wanted + " but is " + v.describe(), ErrorKind::kModelLoad);
}

}  // namespace

Value Value::scalar(ValueType type, const void* le_bytes) {
  Value v;
  v.type_ = type;
  v.bits_ = element_bits(static_cast<const uint8_t*>(le_bytes), value_type_size(type));
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = ValueType::kString;
  v.str_ = std::move(s);
  return v;
}

Value Value::array(ValueType elem_type, std::vector<uint8_t> raw, size_t count) {
  VLLM_CHECK(value_type_size(elem_type) > 0 && raw.size() == count * value_type_size(elem_type), "array bytes");
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_type_ = elem_type;
  v.raw_ = std::move(raw);
  v.count_ = count;
  return v;
}

Value Value::string_array(std::vector<std::string> items) {
  Value v;
  v.type_ = ValueType::kArray;
  v.elem_type_ = ValueType::kString;
  v.count_ = items.size();
  v.strings_ = std::move(items);
  return v;
}

Value Value::u32(uint32_t x) { return scalar(ValueType::kUint32, &x); }
Value Value::i32(int32_t x) { return scalar(ValueType::kInt32, &x); }
Value Value::u64(uint64_t x) { return scalar(ValueType::kUint64, &x); }
Value Value::f32(float x) { return scalar(ValueType::kFloat32, &x); }
Value Value::boolean(bool x) {
  const uint8_t b = x ? 1 : 0;
  return scalar(ValueType::kBool, &b);
}
Value Value::int32_array(const std::vector<int32_t>& xs) {
  std::vector<uint8_t> raw(xs.size() * 4);
  if (!xs.empty()) std::memcpy(raw.data(), xs.data(), raw.size());
  return array(ValueType::kInt32, std::move(raw), xs.size());
}
Value Value::float32_array(const std::vector<float>& xs) {
  std::vector<uint8_t> raw(xs.size() * 4);
  if (!xs.empty()) std::memcpy(raw.data(), xs.data(), raw.size());
  return array(ValueType::kFloat32, std::move(raw), xs.size());
}

int64_t Value::as_int(const std::string& key) const {
  int64_t out = 0;
  if (!is_integer(type_)) wrong_type(key, "an integer", *this);
  if (!element_int(type_, bits_, &out)) wrong_type(key, "an integer up to 2^63 - 1", *this);
  return out;
}

double Value::as_double(const std::string& key) const {
  if (!is_integer(type_) && type_ != ValueType::kFloat32 && type_ != ValueType::kFloat64)
    wrong_type(key, "a number", *this);
  return element_double(type_, bits_);
}

bool Value::as_bool(const std::string& key) const {
  if (type_ != ValueType::kBool) wrong_type(key, "a bool", *this);
  return bits_ != 0;
}

const std::string& Value::as_string(const std::string& key) const {
  if (type_ != ValueType::kString) wrong_type(key, "a string", *this);
  return str_;
}

const std::vector<std::string>& Value::as_strings(const std::string& key) const {
  if (type_ != ValueType::kArray || elem_type_ != ValueType::kString) wrong_type(key, "an array of strings", *this);
  return strings_;
}

std::vector<int64_t> Value::as_ints(const std::string& key) const {
  if (type_ != ValueType::kArray || !is_integer(elem_type_)) wrong_type(key, "an array of integers", *this);
  const size_t es = value_type_size(elem_type_);
  std::vector<int64_t> out(count_);
  for (size_t i = 0; i < count_; ++i)
    if (!element_int(elem_type_, element_bits(raw_.data() + i * es, es), &out[i]))
      wrong_type(key, "an array of integers up to 2^63 - 1", *this);
  return out;
}

std::vector<double> Value::as_doubles(const std::string& key) const {
  if (type_ != ValueType::kArray || elem_type_ == ValueType::kString) wrong_type(key, "an array of numbers", *this);
  const size_t es = value_type_size(elem_type_);
  std::vector<double> out(count_);
  for (size_t i = 0; i < count_; ++i) out[i] = element_double(elem_type_, element_bits(raw_.data() + i * es, es));
  return out;
}

void Value::serialize(std::vector<uint8_t>& out) const {
  auto put = [&](const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, p, n);
  };
  auto put_string = [&](const std::string& s) {
    const uint64_t n = s.size();
    put(&n, 8);
    put(s.data(), s.size());
  };
  switch (type_) {
    case ValueType::kString: put_string(str_); return;
    case ValueType::kArray: {
      const uint32_t et = static_cast<uint32_t>(elem_type_);
      const uint64_t n = count_;
      put(&et, 4);
      put(&n, 8);
      if (elem_type_ == ValueType::kString)
        for (const auto& s : strings_) put_string(s);
      else
        put(raw_.data(), raw_.size());
      return;
    }
    default: put(&bits_, value_type_size(type_));
  }
}

std::string Value::describe() const {
  switch (type_) {
    case ValueType::kString: {
      std::string s = str_.size() > 40 ? str_.substr(0, 40) + "..." : str_;
      return "string '" + s + "'";
    }
    case ValueType::kArray:
      return "array of " + std::to_string(count_) + " " + std::string(value_type_name(elem_type_));
    case ValueType::kFloat32:
    case ValueType::kFloat64: return std::string(value_type_name(type_)) + " " + std::to_string(element_double(type_, bits_));
    case ValueType::kUint64: return "uint64 " + std::to_string(bits_);
    default: {
      int64_t i = 0;
      element_int(type_, bits_, &i);
      return std::string(value_type_name(type_)) + " " + std::to_string(i);
    }
  }
}

// ---- tensors ----

Shape TensorInfo::shape() const { return Shape(dims.rbegin(), dims.rend()); }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// ---- the file ----

GgufFile GgufFile::open(const std::string& path) {
  size_t size = 0;
  const int fd = open_regular_file(path, &size, ErrorKind::kModelLoad);
  if (size < 8) {
    ::close(fd);
    load_error(path, "truncated GGUF file: " + std::to_string(size) + " bytes, too short for a GGUF header");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) load_error(path, std::string("cannot map: ") + std::strerror(map_errno));
  auto mapping = std::make_shared<Buffer>(p, size, Device::kCPU, [size](void* q) { ::munmap(q, size); });
  GgufFile f = parse(static_cast<const uint8_t*>(p), size, path);
  f.storage_ = std::move(mapping);
  return f;
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& path) {
  GgufFile f;
  f.path_ = path;
  f.base_ = data;
  f.size_ = size;
  // A non-owning buffer over the caller's bytes, so that tensor views can share one type.
  f.storage_ = std::make_shared<Buffer>(const_cast<uint8_t*>(data), size, Device::kCPU, nullptr);
  Cursor c(data, size, path);

  if (size < 4) load_error(path, "truncated GGUF file: " + std::to_string(size) + " bytes, too short for a GGUF header");
  if (std::memcmp(data, "GGUF", 4) != 0) {
    char hex[32];
    std::snprintf(hex, sizeof(hex), "%02x %02x %02x %02x", data[0], data[1], data[2], data[3]);
    load_error(path, std::string("not a GGUF file: it starts with bytes ") + hex + ", not 'GGUF'");
  }
  c.take(4, "the magic");
  f.version_ = c.u32("the version");
  if (f.version_ != 2 && f.version_ != 3) {
    if ((f.version_ & 0xFFFFu) == 0 && f.version_ != 0)
      load_error(path, "big-endian GGUF files are not supported (version field " + std::to_string(f.version_) + ")");
    load_error(path, "unsupported GGUF version " + std::to_string(f.version_) + " (supported: 2 and 3)");
  }
  const uint64_t n_tensors = c.u64("the tensor count");
  const uint64_t n_kv = c.u64("the metadata count");

  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where = "metadata entry " + std::to_string(i) + " of " + std::to_string(n_kv);
    std::string key = c.str("the key of " + where);
    const uint32_t t = c.u32("the value type of '" + key + "'");
    if (!valid_value_type(t))
      load_error(path, "metadata '" + key + "' has unknown value type " + std::to_string(t));
    Value v = read_value(c, static_cast<ValueType>(t), key, path);
    if (f.metadata_index_.count(key)) load_error(path, "metadata key '" + key + "' appears twice");
    f.metadata_index_.emplace(key, f.metadata_.size());
    f.metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = f.find("general.alignment")) {
    if (a->type() != ValueType::kUint32)
      load_error(path, "general.alignment should be a uint32 but is " + a->describe());
    const int64_t al = a->as_int("general.alignment");
    // The format requires a multiple of 8; a power of two keeps the padding arithmetic simple, and
    // 8 keeps every float tensor and every (even-sized) block's float16 fields aligned.
    if (al < 8 || (al & (al - 1)) != 0)
      load_error(path, "general.alignment " + std::to_string(al) + " is not a power of two of at least 8");
    f.alignment_ = static_cast<uint32_t>(al);
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string where = "tensor info " + std::to_string(i) + " of " + std::to_string(n_tensors);
    TensorInfo t;
    t.name = c.str("the name of " + where);
    const std::string tname = "tensor '" + t.name + "'";
    const uint32_t n_dims = c.u32("the dimension count of " + tname);
    if (n_dims < 1 || n_dims > 4)
      load_error(path, tname + " has " + std::to_string(n_dims) + " dimensions (GGUF tensors have 1 to 4)");
    // The product of the non-zero dimensions must fit: then so does every partial product, in
    // any order (a zero dimension must not hide two that overflow when multiplied elsewhere).
    uint64_t numel = 1, nonzero = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.u64("dimension " + std::to_string(d) + " of " + tname);
      if (dim > static_cast<uint64_t>(INT64_MAX) || (dim > 0 && __builtin_mul_overflow(nonzero, dim, &nonzero)) ||
          nonzero > static_cast<uint64_t>(INT64_MAX))
        load_error(path, tname + " has dimensions whose element count overflows");
      numel *= dim;
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    const uint32_t type_id = c.u32("the type of " + tname);
    const std::optional<GgmlType> type = ggml_type_from_id(type_id);
    if (!type)
      load_error(path, tname + " has unknown tensor type " + std::to_string(type_id) + " (supported: " +
                           supported_type_names() + ")");
    t.type = *type;
    const GgmlTypeInfo& info = ggml_type_info(t.type);
    if (t.dims[0] % info.block_size != 0)
      load_error(path, tname + " of type " + std::string(info.name) + " has rows of " + std::to_string(t.dims[0]) +
                           " elements, not a multiple of its block size " + std::to_string(info.block_size));
    // Whole blocks: numel / block_size blocks of block_bytes (cannot overflow past the check below
    // for any file that exists, but a hostile header can claim anything).
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel / static_cast<uint64_t>(info.block_size), info.block_bytes, &nbytes))
      load_error(path, tname + " has a byte size that overflows");
    t.nbytes = static_cast<size_t>(nbytes);
    t.offset = c.u64("the data offset of " + tname);
    if (t.offset % f.alignment_ != 0)
      load_error(path, tname + " has data offset " + std::to_string(t.offset) + ", not a multiple of the alignment " +
                           std::to_string(f.alignment_));
    if (f.tensor_index_.count(t.name)) load_error(path, "tensor '" + t.name + "' appears twice");
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const size_t pad = (f.alignment_ - c.pos() % f.alignment_) % f.alignment_;
  f.data_offset_ = c.pos() + pad;
  // (A file without tensors may end before the padding; one with tensors, even empty ones, must
  // reach its data section.)
  if (!f.tensors_.empty() && f.data_offset_ > size)
    load_error(path, "truncated GGUF file: the data section starts at offset " + std::to_string(f.data_offset_) +
                         ", past the end of the file (" + std::to_string(size) + " bytes)");
  const uint64_t data_size = f.data_offset_ <= size ? size - f.data_offset_ : 0;
  std::vector<std::pair<uint64_t, const TensorInfo*>> spans;
  for (const TensorInfo& t : f.tensors_) {
    uint64_t end = 0;
    if (__builtin_add_overflow(t.offset, static_cast<uint64_t>(t.nbytes), &end) || end > data_size)
      load_error(path, "truncated GGUF file: tensor '" + t.name + "' (" + std::to_string(t.nbytes) +
                           " bytes at data offset " + std::to_string(t.offset) + ") ends past the end of the data (" +
                           std::to_string(data_size) + " bytes)");
    if (t.nbytes > 0) spans.emplace_back(t.offset, &t);
  }
  // Tensors may come in any order but must not share bytes: overlapping tensors would alias each
  // other's weights.
  std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < spans.size(); ++i) {
    const TensorInfo& prev = *spans[i - 1].second;
    if (spans[i].first < prev.offset + prev.nbytes)
      load_error(path, "tensor '" + spans[i].second->name + "' overlaps tensor '" + prev.name + "' in the data section");
  }
  return f;
}

const Value* GgufFile::find(const std::string& key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const Value& GgufFile::get(const std::string& key) const {
  const Value* v = find(key);
  if (!v) load_error(path_, "GGUF metadata has no '" + key + "'");
  return *v;
}

const TensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Tensor GgufFile::dequantize(const TensorInfo& t) const {
  if (!ggml_type_supported(t.type))
    load_error(path_, "tensor '" + t.name + "' has type " + std::string(ggml_type_name(t.type)) +
                          ", which this build cannot read (supported: " + supported_type_names() + ")");
  Tensor out = Tensor::empty(t.shape(), DType::F32);
  const int64_t row = t.dims[0], rows = row > 0 ? t.numel() / row : 0;
  const size_t row_bytes = ggml_row_bytes(t.type, row);
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t.type, tensor_data(t) + static_cast<size_t>(r) * row_bytes, out.data<float>() + r * row, row);
  return out;
}

}  // namespace vllm::gguf
