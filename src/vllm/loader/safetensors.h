// Memory-mapped safetensors files: a single file, or shards listed by model.safetensors.index.json.
// Tensors returned here point into the mapping (no copy); the mapping lives as long as any of them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vllm/core/tensor.h"

namespace vllm {

// One tensor of a safetensors file as its header describes it.
struct SafetensorsEntry {
  DType dtype;
  Shape shape;
  size_t begin;  // byte offsets into the whole file (header included): [begin, end)
  size_t end;
};

// The largest header the safetensors format accepts (its readers' MAX_HEADER_SIZE).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Validates the bytes of a whole safetensors file as the format's reference reader does and
// returns its tensors by name: an 8-byte little-endian header length, a JSON object header of at
// most kSafetensorsMaxHeaderBytes (string-to-string "__metadata__" allowed), and tensors whose
// data_offsets, sorted, tile the data area exactly: no overlap, no gap, the last ending at the
// end of the file, each as long as its shape and dtype need. Errors are vllm::Error
// (kModelLoad) starting with `path`. No I/O: the fuzz target and the tests call it on memory.
std::map<std::string, SafetensorsEntry> parse_safetensors(const unsigned char* data, size_t size,
                                                          const std::string& path);

class SafetensorsFile {
 public:
  // Maps and validates the file (parse_safetensors). Only a regular file is opened: a FIFO or a
  // device would block or never end. Errors name the file and the tensor (ErrorKind::kModelLoad).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  Tensor get(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<Buffer> mapping_;
  std::map<std::string, SafetensorsEntry> entries_;
};

// All tensors of a model folder: model.safetensors, or the shards named by
// model.safetensors.index.json (every shard it names must exist and hold what it promises).
// Or tensors made on demand instead of read (--load-format dummy): each get() calls `make`.
class WeightStore {
 public:
  static WeightStore open_folder(const std::string& dir);
  using MakeTensor = std::function<Tensor(const std::string& name, const Shape& shape)>;
  // `shapes`: every tensor's name and shape; `origin` names the weights in messages.
  static WeightStore generated(std::string origin, std::map<std::string, Shape> shapes, MakeTensor make);

  bool contains(const std::string& name) const { return where_.count(name) > 0 || generated_shapes_.count(name) > 0; }
  // The tensor `name`; a missing one is an error naming the tensor and the folder.
  Tensor get(const std::string& name) const;
  // Like get(), and checks the shape; a mismatch is an error naming the tensor and both shapes.
  Tensor get(const std::string& name, const Shape& expected) const;
  std::vector<std::string> names() const;
  const std::string& folder() const { return folder_; }

 private:
  std::string folder_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
  std::map<std::string, Shape> generated_shapes_;  // generated(): every tensor's shape
  MakeTensor make_;
};

// Writes tensors to a safetensors file (used by the weight tool and tests). Tensors must be host.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace vllm
