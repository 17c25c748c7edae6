#include "vllm/loader/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/loader/fp8_weights.h"

namespace vllm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void load_error(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what, ErrorKind::kModelLoad);
}

DType safetensors_dtype(const std::string& path, const std::string& name, const std::string& s, Float8Format* float8) {
  *float8 = Float8Format::kNone;
  // Float8 bytes are kept as U8; the loader dequantizes them with the checkpoint's scales.
  if (s == "F8_E4M3") return *float8 = Float8Format::kE4M3, DType::U8;
  if (s == "F8_E5M2") return *float8 = Float8Format::kE5M2, DType::U8;
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "U8") return DType::U8;
  load_error(path, "tensor '" + name + "' has unsupported dtype '" + s +
                       "' (supported: F32, F16, BF16, F8_E4M3 with a quantization_config, I32, I64, U8)");
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

}  // namespace

std::map<std::string, SafetensorsEntry> parse_safetensors(const unsigned char* bytes, size_t size,
                                                          const std::string& path) {
  if (size < 8)
    load_error(path, "truncated file: " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kSafetensorsMaxHeaderBytes)
    load_error(path, "bad safetensors header: header length " + std::to_string(header_len) + " exceeds the limit of " +
                         std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  if (header_len > size - 8)
    load_error(path, "bad safetensors header: header length " + std::to_string(header_len) + " exceeds the file size " +
                         std::to_string(size) + " (truncated file?)");
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    load_error(path, std::string("bad safetensors header: invalid JSON: ") + e.what());
  }
  if (!header.is_object()) load_error(path, "bad safetensors header: not a JSON object");
  const size_t data_start = 8 + static_cast<size_t>(header_len);
  const uint64_t data_size = size - data_start;
  std::map<std::string, SafetensorsEntry> entries;
  // (begin, end, name) of every tensor, to check that they tile the data area.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& e = it.value();
    if (name == "__metadata__") {
      // The format's readers take it as a map of strings and refuse anything else.
      bool ok = e.is_object();
      if (ok)
        for (const auto& v : e) ok = ok && v.is_string();
      if (!ok) load_error(path, "bad safetensors header: __metadata__ must map names to strings");
      continue;
    }
    if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
        !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2)
      load_error(path, "bad safetensors header: tensor '" + name + "' needs dtype, shape and data_offsets [begin, end]");
    SafetensorsEntry entry;
    entry.dtype = safetensors_dtype(path, name, e["dtype"].get<std::string>(), &entry.float8);
    // The byte count, with every product checked: a shape whose size overflows is refused, as
    // the format's readers refuse it (ValidationOverflow).
    uint64_t nbytes = dtype_size(entry.dtype);
    for (const json& d : e["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        load_error(path, "bad safetensors header: tensor '" + name + "' has a bad shape " + e["shape"].dump());
      const uint64_t dim = d.get<uint64_t>();
      if (__builtin_mul_overflow(nbytes, dim, &nbytes))
        load_error(path, "bad safetensors header: tensor '" + name + "' has shape " + e["shape"].dump() +
                             ", whose size overflows");
      entry.shape.push_back(static_cast<int64_t>(dim));
    }
    const json& off = e["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      load_error(path, "bad safetensors header: tensor '" + name + "' has bad data_offsets " + off.dump());
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    const std::string offsets = "[" + std::to_string(b) + ", " + std::to_string(en) + "]";
    if (b > en)
      load_error(path, "tensor '" + name + "' has data offsets " + offsets + " that end before they begin");
    if (en > data_size)
      load_error(path, "tensor '" + name + "' has data offsets " + offsets + " past the end of the data (" +
                           std::to_string(data_size) + " bytes; truncated file?)");
    if (en - b != nbytes)
      load_error(path, "tensor '" + name + "' has " + std::to_string(en - b) + " bytes but shape " +
                           shape_str(entry.shape) + " in " + e["dtype"].get<std::string>() + " needs " +
                           std::to_string(nbytes));
    entry.begin = data_start + static_cast<size_t>(b);
    entry.end = data_start + static_cast<size_t>(en);
    spans.emplace_back(b, en, name);
    entries.emplace(name, std::move(entry));
  }
  // As the format's reference reader requires (InvalidOffset, MetadataIncompleteBuffer): sorted
  // by offset, each tensor begins where the previous one ended, and the last ends at the end of
  // the file. Overlapping tensors would alias each other's weights; gaps or trailing bytes mean
  // the header does not describe the file that was written.
  std::sort(spans.begin(), spans.end());
  uint64_t cursor = 0;
  const std::string* prev = nullptr;
  for (const auto& [b, en, name] : spans) {
    if (b < cursor)
      load_error(path, "tensor '" + name + "' has data offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                           "] overlapping tensor '" + *prev + "' (which ends at " + std::to_string(cursor) + ")");
    if (b > cursor)
      load_error(path, "tensor '" + name + "' has data offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                           "] leaving bytes [" + std::to_string(cursor) + ", " + std::to_string(b) +
                           ") of the data unused" + (prev ? " after tensor '" + *prev + "'" : std::string()));
    cursor = en;
    prev = &name;
  }
  if (cursor != data_size)
    load_error(path, "the tensors end at data offset " + std::to_string(cursor) + " but the data is " +
                         std::to_string(data_size) + " bytes long (trailing bytes no tensor describes)");
  return entries;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  size_t size = 0;
  const int fd = open_regular_file(path, &size, ErrorKind::kModelLoad);
  if (size < 8) {
    ::close(fd);
    load_error(path, "truncated file: " + std::to_string(size) + " bytes, too short for a safetensors header");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) load_error(path, std::string("cannot map: ") + std::strerror(map_errno));
  mapping_ = std::make_shared<Buffer>(p, size, Device::kCPU, [size](void* q) { ::munmap(q, size); });
  entries_ = parse_safetensors(static_cast<const unsigned char*>(p), size, path);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : entries_) out.push_back(name);
  return out;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) load_error(path_, "has no tensor '" + name + "'");
  const SafetensorsEntry& e = it->second;
  Tensor view(mapping_, e.begin, e.dtype, e.shape);
  // The format does not align tensor data (writers pad the header to 8 bytes, but nothing
  // requires it); reading an F32 through a misaligned pointer is undefined, so such a tensor
  // is copied into an aligned buffer.
  if (e.begin % dtype_size(e.dtype) != 0) {
    Tensor copy = Tensor::empty(e.shape, e.dtype);
    std::memcpy(copy.raw(), view.raw(), view.nbytes());
    return copy;
  }
  return view;
}

Float8Format SafetensorsFile::float8_format(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? Float8Format::kNone : it->second.float8;
}

namespace {

// A file the folder is expected to hold: missing, a regular file, or an error saying what sits there.
bool file_present(const fs::path& p) {
  std::string why;
  switch (path_type(p.string(), &why)) {
    case PathType::kMissing: return false;
    case PathType::kRegular: return true;
    case PathType::kDirectory: load_error(p.string(), "is a directory, not a regular file");
    case PathType::kOther: break;
  }
  load_error(p.string(), why);
}

}  // namespace

WeightStore WeightStore::open_folder(const std::string& dir) {
  WeightStore store;
  store.folder_ = dir;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  if (file_present(index)) {
    json j;
    try {
      j = json::parse(read_regular_file(index.string()));
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
      load_error(index.string(), std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      load_error(index.string(), "key 'weight_map' is missing or not an object");
    std::map<std::string, size_t> file_index;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) load_error(index.string(), "weight_map entry '" + it.key() + "' is not a file name");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        load_error(index.string(), "weight_map entry '" + it.key() + "' names a file outside the folder: '" + shard + "'");
      auto fit = file_index.find(shard);
      if (fit == file_index.end()) {
        fs::path shard_path = fs::path(dir) / shard;
        if (!file_present(shard_path))
          load_error(index.string(), "names shard '" + shard + "' (for tensor '" + it.key() + "'), which is missing");
        store.files_.push_back(std::make_shared<SafetensorsFile>(shard_path.string()));
        fit = file_index.emplace(shard, store.files_.size() - 1).first;
      }
      if (!store.files_[fit->second]->contains(it.key()))
        load_error(store.files_[fit->second]->path(), "has no tensor '" + it.key() + "', which " +
                                                          index.filename().string() + " places there");
      store.where_[it.key()] = fit->second;
    }
  } else if (file_present(single)) {
    store.files_.push_back(std::make_shared<SafetensorsFile>(single.string()));
    for (const auto& name : store.files_[0]->names()) store.where_[name] = 0;
  } else {
    throw Error("model folder " + dir + " has no model.safetensors or model.safetensors.index.json",
                ErrorKind::kModelLoad);
  }
  return store;
}

WeightStore WeightStore::generated(std::string origin, std::map<std::string, Shape> shapes, MakeTensor make) {
  WeightStore store;
  store.folder_ = std::move(origin);
  store.generated_shapes_ = std::move(shapes);
  store.make_ = std::move(make);
  return store;
}

WeightStore WeightStore::from_memory(std::string origin, std::map<std::string, Tensor> tensors,
                                     std::map<std::string, gguf::QuantizedMatrix> quantized) {
  WeightStore store;
  store.folder_ = std::move(origin);
  store.memory_ = std::move(tensors);
  store.quantized_ = std::move(quantized);
  return store;
}

Tensor WeightStore::get(const std::string& name) const {
  return shard_ ? shard_->apply(name, get_whole(name)) : get_whole(name);
}

Tensor WeightStore::get_whole(const std::string& name) const {
  if (auto m = memory_.find(name); m != memory_.end()) return m->second;
  if (auto q = quantized_.find(name); q != quantized_.end()) return q->second.dequantize();
  if (make_) {
    auto g = generated_shapes_.find(name);
    if (g == generated_shapes_.end())
      throw Error("model " + folder_ + ": missing tensor '" + name + "'", ErrorKind::kModelLoad);
    return make_(name, g->second);
  }
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("model folder " + folder_ + ": missing tensor '" + name + "'", ErrorKind::kModelLoad);
  const SafetensorsFile& file = *files_[it->second];
  if (const Float8Format f8 = file.float8_format(name); f8 != Float8Format::kNone) return dequantized_fp8(name, file, f8);
  return file.get(name);
}

Fp8Matrix WeightStore::stored_fp8(const std::string& name, const SafetensorsFile& file, Float8Format format) const {
  auto fail = [&](const std::string& what, ErrorKind kind = ErrorKind::kModelLoad) {
    throw Error("model folder " + folder_ + ": " + what, kind);
  };
  const std::string stored = format == Float8Format::kE4M3 ? "F8_E4M3" : "F8_E5M2";
  const std::string tensor = "tensor '" + name + "' (" + stored + ")";
  if (!fp8_checkpoint_) fail(tensor + " is float8, but config.json has no quantization_config giving its scales");
  if (format != Float8Format::kE4M3)
    fail(tensor + ": FP8 checkpoints must store e4m3 weights (F8_E4M3)", ErrorKind::kUnsupported);
  const std::string suffix = ".weight";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    fail(tensor + " is float8 but is not a layer's weight (<module>.weight)");
  const std::string module = name.substr(0, name.size() - suffix.size());
  if (fp8_checkpoint_->ignored(module))
    fail(tensor + " is float8, but quantization_config's ignore list leaves module '" + module + "' unquantized");
  const Fp8Scheme* scheme = fp8_checkpoint_->scheme_for(module);
  if (!scheme) fail(tensor + " is float8, but no quantization_config group targets module '" + module + "'");
  Tensor weight = file.get(name);
  if (weight.shape().size() != 2) fail(tensor + " has shape " + shape_str(weight.shape()) + "; FP8 weights must be matrices");
  const std::string scale_name = module + "." + fp8_checkpoint_->weight_scale_suffix;
  if (!where_.count(scale_name))
    fail("missing tensor '" + scale_name + "', the scale of FP8 weight '" + name + "'");
  if (scheme->activations == Fp8ActivationScheme::kStaticPerTensor) {
    // Unused (the CPU keeps activations in the compute dtype; the GPU's FP8 products scale them
    // per token, dynamically), but part of the checkpoint.
    const std::string input_scale = module + ".input_scale";
    if (!where_.count(input_scale))
      fail("missing tensor '" + input_scale + "', the static activation scale of FP8 layer '" + module + "'");
    if (shape_numel(files_[where_.at(input_scale)]->get(input_scale).shape()) != 1)
      fail("tensor '" + input_scale + "' must hold one scale (static per-tensor activations)");
  }
  try {
    return Fp8Matrix{weight, checked_fp8_scales(weight, get(scale_name), scheme->weights, scale_name), scheme->weights};
  } catch (const Error& e) {
    fail(e.what(), e.kind());
  }
  return {};
}

Tensor WeightStore::dequantized_fp8(const std::string& name, const SafetensorsFile& file, Float8Format format) const {
  const Fp8Matrix m = stored_fp8(name, file, format);
  return dequantize_fp8(m.weight, format, m.scale, m.layout, name);
}

bool WeightStore::is_fp8(const std::string& name) const {
  auto it = where_.find(name);
  return it != where_.end() && files_[it->second]->float8_format(name) != Float8Format::kNone;
}

Fp8Matrix WeightStore::get_fp8(const std::string& name, const Shape& expected) const {
  VLLM_CHECK(is_fp8(name), "get_fp8 of a tensor not stored in float8");
  refuse_sharded(name, "FP8 weights kept in e4m3");
  const SafetensorsFile& file = *files_[where_.at(name)];
  Fp8Matrix m = stored_fp8(name, file, file.float8_format(name));
  if (m.weight.shape() != expected) shape_error(name, m.weight.shape(), expected);
  return m;
}

void WeightStore::refuse_sharded(const std::string& name, const char* what) const {
  if (shard_ && shard_->world_size > 1 && shard_->rules.count(name))
    throw Error(std::string("--tensor-parallel-size > 1 does not split ") + what + " yet (tensor '" + name + "')",
                ErrorKind::kUnsupported);
}

void WeightStore::shape_error(const std::string& name, const Shape& got, const Shape& expected) const {
  throw Error("model folder " + folder_ + ": tensor '" + name + "' has shape " + shape_str(got) +
                  " but the config needs " + shape_str(expected),
              ErrorKind::kModelLoad);
}

gguf::QuantizedMatrix WeightStore::get_quantized(const std::string& name, const Shape& expected) const {
  if (auto q = quantized_.find(name); q != quantized_.end()) {
    refuse_sharded(name, "GGUF-quantized weights");
    const Shape got{q->second.rows(), q->second.cols};
    if (got != expected) shape_error(name, got, expected);
    return q->second;
  }
  return gguf::QuantizedMatrix::from_float(get(name, expected));
}

Tensor WeightStore::get(const std::string& name, const Shape& expected) const {
  if (auto q = quantized_.find(name); !shard_ && q != quantized_.end() && Shape{q->second.rows(), q->second.cols} != expected)
    shape_error(name, {q->second.rows(), q->second.cols}, expected);
  Tensor t = get(name);
  if (t.shape() != expected) shape_error(name, t.shape(), expected);
  if (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16)
    throw Error("model folder " + folder_ + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype())) +
                    " (weights must be F32, F16 or BF16)",
                ErrorKind::kModelLoad);
  return t;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : where_) out.push_back(name);
  for (const auto& [name, _] : generated_shapes_) out.push_back(name);
  for (const auto& [name, _] : memory_) out.push_back(name);
  for (const auto& [name, _] : quantized_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata, const std::set<std::string>& e4m3_tensors) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const bool e4m3 = t.dtype() == DType::U8 && e4m3_tensors.count(name) > 0;
    header[name] = {{"dtype", e4m3 ? "F8_E4M3" : safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write " + path);
  uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& [name, t] : tensors) out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) throw Error("failed writing " + path);
}

}  // namespace vllm
