#include "vllm/models/gguf_loader.h"

#include <unistd.h>

#include <cstring>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/gguf/gguf_model.h"

namespace vllm {

namespace {

[[noreturn]] void load_error(const gguf::GgufFile& f, const std::string& what) {
  throw Error(f.path() + ": " + what, ErrorKind::kModelLoad);
}

// Puts the rows of a llama q/k tensor back in transformers' order: GGUF row r holds transformers
// row permuted_source_row(r).
void unpermute_rows(const uint8_t* src, uint8_t* dst, int64_t rows, size_t row_bytes, int64_t heads) {
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + static_cast<size_t>(gguf::permuted_source_row(r, rows, heads)) * row_bytes,
                src + static_cast<size_t>(r) * row_bytes, row_bytes);
}

std::optional<DType> float_dtype(gguf::GgmlType t) {
  switch (t) {
    case gguf::GgmlType::kF32: return DType::F32;
    case gguf::GgmlType::kF16: return DType::F16;
    case gguf::GgmlType::kBF16: return DType::BF16;
    default: return std::nullopt;
  }
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  if (path_type(path) != PathType::kRegular) return false;
  try {
    size_t size = 0;
    const int fd = open_regular_file(path, &size);
    char magic[4] = {};
    const bool ok = size >= 4 && ::read(fd, magic, 4) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
    ::close(fd);
    return ok;
  } catch (const Error&) {
    return false;
  }
}

WeightStore gguf_weight_store(const gguf::GgufFile& f, const ModelConfig& c) {
  const std::string arch = gguf::gguf_architecture(c.architecture);
  std::map<std::string, Tensor> tensors;
  std::map<std::string, gguf::QuantizedMatrix> quantized;
  for (const ParamSpec& p : find_architecture(c.architecture).parameters(c)) {
    const std::string name = gguf::gguf_tensor_name(p.name);
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) load_error(f, "GGUF file has no tensor '" + name + "' (" + p.name + "), which " + c.architecture + " needs");
    if (t->shape() != p.shape)
      load_error(f, "tensor '" + name + "' has shape " + shape_str(t->shape()) + " but the model's metadata needs " +
                        shape_str(p.shape));
    if (!gguf::ggml_type_supported(t->type))
      load_error(f, "tensor '" + name + "' has type " + std::string(gguf::ggml_type_name(t->type)) +
                        ", which this build cannot read (supported: " + gguf::supported_type_names() + ")");
    const size_t offset = f.data_offset() + t->offset;
    const int64_t heads = gguf::permutation_heads(arch, p.name, c);
    if (const auto dtype = float_dtype(t->type)) {
      Tensor view(f.storage(), offset, *dtype, p.shape);
      if (heads > 0) {
        Tensor copy = Tensor::empty(p.shape, *dtype);
        const int64_t rows = p.shape[0];
        unpermute_rows(static_cast<const uint8_t*>(view.raw()), static_cast<uint8_t*>(copy.raw()), rows,
                       view.nbytes() / static_cast<size_t>(rows), heads);
        view = copy;
      }
      tensors.emplace(p.name, view);
    } else if (p.shape.size() == 1) {
      tensors.emplace(p.name, f.dequantize(*t));
    } else {
      gguf::QuantizedMatrix q;
      q.type = t->type;
      q.cols = p.shape[1];
      const int64_t rows = p.shape[0];
      q.data = Tensor(f.storage(), offset, DType::U8, {rows, static_cast<int64_t>(q.row_bytes())});
      if (heads > 0) {
        Tensor copy = Tensor::empty(q.data.shape(), DType::U8);
        unpermute_rows(q.data.data<uint8_t>(), copy.data<uint8_t>(), rows, q.row_bytes(), heads);
        q.data = copy;
      }
      quantized.emplace(p.name, std::move(q));
    }
  }
  return WeightStore::from_memory(f.path(), std::move(tensors), std::move(quantized));
}

std::unique_ptr<CausalLM> load_gguf_model(const gguf::GgufFile& f, const ModelConfig& c, Backend& backend) {
  const WeightStore store = gguf_weight_store(f, c);
  return find_architecture(c.architecture).create(c, store, backend);
}

}  // namespace vllm
