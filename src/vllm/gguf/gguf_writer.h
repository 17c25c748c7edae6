// Writing GGUF version 3 files: metadata in the order given, tensor infos, then each tensor's
// data at the next multiple of the alignment (32). Tensor data is produced one tensor at a time
// while the file is written, so a model never has to sit in memory whole.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vllm/gguf/gguf_file.h"

namespace vllm::gguf {

class GgufWriter {
 public:
  // Produces a tensor's bytes (exactly ggml_row_bytes(type, dims[0]) * rows of them).
  using Producer = std::function<std::vector<uint8_t>()>;

  // Adds or replaces a metadata entry (a replaced key keeps its place).
  void set(const std::string& key, Value value);
  // dims in ggml order (dims[0] contiguous); the byte count is checked against what `data` returns.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims, Producer data);
  // Same, with the bytes at hand.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims, std::vector<uint8_t> bytes);

  size_t num_tensors() const { return tensors_.size(); }

  // Writes the file (to path + ".tmp", renamed into place when complete). Errors are vllm::Error.
  void write(const std::string& path) const;
  // The whole file in memory (tests).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    size_t nbytes;
    Producer data;
  };
  // Header, metadata and tensor infos, padded to the alignment.
  std::vector<uint8_t> header() const;
  template <typename Sink>
  void emit(Sink& sink) const;

  std::vector<std::pair<std::string, Value>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace vllm::gguf
