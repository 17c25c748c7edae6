#include "vllm/loader/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vllm/core/error.h"

namespace vllm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void load_error(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what, ErrorKind::kModelLoad);
}

DType safetensors_dtype(const std::string& path, const std::string& name, const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "U8") return DType::U8;
  load_error(path, "tensor '" + name + "' has unsupported dtype '" + s + "' (supported: F32, F16, BF16)");
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

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) load_error(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    load_error(path, "cannot stat");
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    load_error(path, "truncated file: " + std::to_string(size) + " bytes, too short for a safetensors header");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) load_error(path, std::string("cannot map: ") + std::strerror(errno));
  mapping_ = std::make_shared<Buffer>(p, size, Device::kCPU, [size](void* q) { ::munmap(q, size); });

  const auto* bytes = static_cast<const unsigned char*>(p);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8)
    load_error(path, "bad safetensors header: header length " + std::to_string(header_len) + " exceeds the file size " +
                         std::to_string(size) + " (truncated file?)");
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const json::parse_error& e) {
    load_error(path, std::string("bad safetensors header: invalid JSON: ") + e.what());
  }
  if (!header.is_object()) load_error(path, "bad safetensors header: not a JSON object");
  size_t data_start = 8 + header_len;
  size_t data_size = size - data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const json& e = it.value();
    if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
        !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2)
      load_error(path, "bad safetensors header: tensor '" + name + "' needs dtype, shape and data_offsets [begin, end]");
    Entry entry;
    entry.dtype = safetensors_dtype(path, name, e["dtype"].get<std::string>());
    for (const json& d : e["shape"]) {
      if (!d.is_number_unsigned()) load_error(path, "bad safetensors header: tensor '" + name + "' has a bad shape");
      entry.shape.push_back(d.get<int64_t>());
    }
    const json& off = e["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      load_error(path, "bad safetensors header: tensor '" + name + "' has bad data_offsets");
    uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_size)
      load_error(path, "tensor '" + name + "' has data offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                           "] past the end of the data (" + std::to_string(data_size) + " bytes; truncated file?)");
    uint64_t expect = static_cast<uint64_t>(shape_numel(entry.shape)) * dtype_size(entry.dtype);
    if (en - b != expect)
      load_error(path, "tensor '" + name + "' has " + std::to_string(en - b) + " bytes but shape " +
                           shape_str(entry.shape) + " in " + std::string(dtype_name(entry.dtype)) + " needs " +
                           std::to_string(expect));
    entry.begin = data_start + b;
    entries_.emplace(name, std::move(entry));
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : entries_) out.push_back(name);
  return out;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) load_error(path_, "has no tensor '" + name + "'");
  return Tensor(mapping_, it->second.begin, it->second.dtype, it->second.shape);
}

WeightStore WeightStore::open_folder(const std::string& dir) {
  WeightStore store;
  store.folder_ = dir;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::parse_error& e) {
      load_error(index.string(), std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      load_error(index.string(), "key 'weight_map' is missing or not an object");
    std::map<std::string, size_t> file_index;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) load_error(index.string(), "weight_map entry '" + it.key() + "' is not a file name");
      std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "..")
        load_error(index.string(), "weight_map entry '" + it.key() + "' names a file outside the folder: " + shard);
      auto fit = file_index.find(shard);
      if (fit == file_index.end()) {
        fs::path shard_path = fs::path(dir) / shard;
        if (!fs::exists(shard_path))
          load_error(index.string(), "names shard '" + shard + "' (for tensor '" + it.key() + "'), which is missing");
        store.files_.push_back(std::make_shared<SafetensorsFile>(shard_path.string()));
        fit = file_index.emplace(shard, store.files_.size() - 1).first;
      }
      if (!store.files_[fit->second]->contains(it.key()))
        load_error(store.files_[fit->second]->path(), "has no tensor '" + it.key() + "', which " +
                                                          index.filename().string() + " places there");
      store.where_[it.key()] = fit->second;
    }
  } else if (fs::exists(single)) {
    store.files_.push_back(std::make_shared<SafetensorsFile>(single.string()));
    for (const auto& name : store.files_[0]->names()) store.where_[name] = 0;
  } else {
    throw Error("model folder " + dir + " has no model.safetensors or model.safetensors.index.json",
                ErrorKind::kModelLoad);
  }
  return store;
}

Tensor WeightStore::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("model folder " + folder_ + ": missing tensor '" + name + "'", ErrorKind::kModelLoad);
  return files_[it->second]->get(name);
}

Tensor WeightStore::get(const std::string& name, const Shape& expected) const {
  Tensor t = get(name);
  if (t.shape() != expected)
    throw Error("model folder " + folder_ + ": tensor '" + name + "' has shape " + shape_str(t.shape()) +
                    " but the config needs " + shape_str(expected),
                ErrorKind::kModelLoad);
  if (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16)
    throw Error("model folder " + folder_ + ": tensor '" + name + "' has dtype " + std::string(dtype_name(t.dtype())) +
                    " (weights must be F32, F16 or BF16)",
                ErrorKind::kModelLoad);
  return t;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
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
