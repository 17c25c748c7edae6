// Memory-mapped safetensors files: a single file, or shards listed by model.safetensors.index.json.
// Tensors returned here point into the mapping (no copy); the mapping lives as long as any of them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "vllm/core/float8.h"
#include "vllm/core/tensor.h"
#include "vllm/distributed/tensor_shard.h"
#include "vllm/gguf/quantized_matrix.h"
#include "vllm/loader/quantization_config.h"

namespace vllm {

// One tensor of a safetensors file as its header describes it.
struct SafetensorsEntry {
  DType dtype;  // F8_E4M3 and F8_E5M2 tensors are U8 here, with `float8` saying which
  Float8Format float8 = Float8Format::kNone;
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
  // The tensor's bytes: an F8_E4M3 / F8_E5M2 tensor comes as U8 (float8_format() says which).
  Tensor get(const std::string& name) const;
  Float8Format float8_format(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<Buffer> mapping_;
  std::map<std::string, SafetensorsEntry> entries_;
};

// All tensors of a model folder: model.safetensors, or the shards named by
// model.safetensors.index.json (every shard it names must exist and hold what it promises).
// Or tensors made on demand instead of read (--load-format dummy): each get() calls `make`.
// Or tensors already in memory (a GGUF file's, under transformers' names: models/gguf_loader.h),
// where matrices of quantized types stay in their GGUF blocks.
class WeightStore {
 public:
  static WeightStore open_folder(const std::string& dir);
  using MakeTensor = std::function<Tensor(const std::string& name, const Shape& shape)>;
  // `shapes`: every tensor's name and shape; `origin` names the weights in messages.
  static WeightStore generated(std::string origin, std::map<std::string, Shape> shapes, MakeTensor make);
  // Float tensors and quantized matrices by name; `origin` names the source in errors (a file).
  static WeightStore from_memory(std::string origin, std::map<std::string, Tensor> tensors,
                                 std::map<std::string, gguf::QuantizedMatrix> quantized);

  bool contains(const std::string& name) const {
    return where_.count(name) > 0 || generated_shapes_.count(name) > 0 || memory_.count(name) > 0 ||
           quantized_.count(name) > 0;
  }
  // The tensor `name`; a missing one is an error naming the tensor and the folder. A quantized
  // matrix is dequantized to float32, and so is an FP8 checkpoint's float8 weight (times its
  // scales, by the fp8 checkpoint config; a missing or misshapen scale is an error naming it).
  Tensor get(const std::string& name) const;
  // Like get(), and checks the shape; a mismatch is an error naming the tensor and both shapes.
  Tensor get(const std::string& name, const Shape& expected) const;
  // Whether `name` is stored in float8 (F8_E4M3 / F8_E5M2 in a safetensors file).
  bool is_fp8(const std::string& name) const;
  // The FP8 checkpoint weight `name` as stored: its e4m3 bytes and its scales, read as float32
  // (Fp8Matrix), with every check and error of get() (the config, the scale's presence, dtype,
  // shape and values, a static activation scale) and the shape checked against `expected`. Static
  // activation scales (input_scale) are checked but not returned: FP8 products scale activations
  // per token, dynamically.
  Fp8Matrix get_fp8(const std::string& name, const Shape& expected) const;
  // Whether `name` is a matrix kept in a quantized GGUF type.
  bool is_quantized(const std::string& name) const { return quantized_.count(name) > 0; }
  // The matrix `name` as GGUF rows (a float tensor as F32 / F16 / BF16 rows), shape checked.
  gguf::QuantizedMatrix get_quantized(const std::string& name, const Shape& expected) const;
  std::vector<std::string> names() const;
  const std::string& folder() const { return folder_; }

  // An FP8 checkpoint (config.json's quantization_config): float8 weights are dequantized by it.
  void set_fp8_checkpoint(Fp8CheckpointConfig config) {
    fp8_checkpoint_ = std::make_shared<const Fp8CheckpointConfig>(std::move(config));
  }
  const Fp8CheckpointConfig* fp8_checkpoint() const { return fp8_checkpoint_.get(); }
  // Online quantization of float weights ("fp8", vLLM's --quantization fp8), done by the models'
  // WeightLoader on each linear layer's weight as the GPU would (fused q/k/v as one tensor); "" for none.
  void set_online_quantization(std::string method) { online_quantization_ = std::move(method); }
  const std::string& online_quantization() const { return online_quantization_; }
  // A tensor-parallel rank's view: get() returns each tensor as the rank holds it (its rule's
  // slice, distributed/tensor_shard.h), and get()'s shape check is against that slice. FP8 and
  // GGUF-quantized weights are not sliced: get_fp8 and get_quantized refuse a sharded tensor.
  void set_shard(std::shared_ptr<const TensorShard> shard) { shard_ = std::move(shard); }
  const TensorShard* shard() const { return shard_.get(); }

 private:
  Tensor get_whole(const std::string& name) const;  // get() before any shard is taken
  void refuse_sharded(const std::string& name, const char* what) const;
  [[noreturn]] void shape_error(const std::string& name, const Shape& got, const Shape& expected) const;
  // An FP8 checkpoint's weight with its checked scales (the checks of dequantized_fp8).
  Fp8Matrix stored_fp8(const std::string& name, const SafetensorsFile& file, Float8Format format) const;
  Tensor dequantized_fp8(const std::string& name, const SafetensorsFile& file, Float8Format format) const;

  std::string folder_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
  std::map<std::string, Shape> generated_shapes_;  // generated(): every tensor's shape
  MakeTensor make_;
  std::map<std::string, Tensor> memory_;
  std::map<std::string, gguf::QuantizedMatrix> quantized_;
  std::shared_ptr<const Fp8CheckpointConfig> fp8_checkpoint_;
  std::string online_quantization_;
  std::shared_ptr<const TensorShard> shard_;
};

// Writes tensors to a safetensors file (used by the weight tool and tests). Tensors must be host.
// U8 tensors named in `e4m3_tensors` are written as F8_E4M3 (float8 bytes).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       const std::set<std::string>& e4m3_tensors = {});

}  // namespace vllm
