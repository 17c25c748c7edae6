#include "vllm/gguf/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vllm/core/error.h"

namespace vllm::gguf {

namespace {

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) { put(out, &v, 4); }
void put_u64(std::vector<uint8_t>& out, uint64_t v) { put(out, &v, 8); }
void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put_u64(out, s.size());
  put(out, s.data(), s.size());
}

size_t padding(size_t pos) { return (kGgufDefaultAlignment - pos % kGgufDefaultAlignment) % kGgufDefaultAlignment; }

}  // namespace

void GgufWriter::set(const std::string& key, Value value) {
  for (auto& [k, v] : metadata_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims, Producer data) {
  VLLM_CHECK(!dims.empty() && dims.size() <= 4, "a GGUF tensor has 1 to 4 dimensions");
  for (const auto& t : tensors_) VLLM_CHECK(t.name != name, "tensor '" + name + "' added twice");
  int64_t rows = 1;
  for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
  const size_t nbytes = ggml_row_bytes(type, dims[0]) * static_cast<size_t>(rows);
  tensors_.push_back({name, type, std::move(dims), nbytes, std::move(data)});
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> dims,
                            std::vector<uint8_t> bytes) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  add_tensor(name, type, std::move(dims), [shared] { return *shared; });
}

std::vector<uint8_t> GgufWriter::header() const {
  std::vector<uint8_t> out;
  put(out, "GGUF", 4);
  put_u32(out, 3);
  put_u64(out, tensors_.size());
  put_u64(out, metadata_.size());
  for (const auto& [key, value] : metadata_) {
    put_string(out, key);
    put_u32(out, static_cast<uint32_t>(value.type()));
    value.serialize(out);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(out, t.name);
    put_u32(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put_u64(out, static_cast<uint64_t>(d));
    put_u32(out, static_cast<uint32_t>(t.type));
    put_u64(out, offset);
    offset += t.nbytes + padding(t.nbytes);
  }
  out.resize(out.size() + padding(out.size()), 0);
  return out;
}

template <typename Sink>
void GgufWriter::emit(Sink& sink) const {
  const std::vector<uint8_t> head = header();
  sink(head.data(), head.size());
  static const uint8_t kZeros[kGgufDefaultAlignment] = {};
  for (const auto& t : tensors_) {
    const std::vector<uint8_t> bytes = t.data();
    if (bytes.size() != t.nbytes)
      throw Error("GGUF writer: tensor '" + t.name + "' produced " + std::to_string(bytes.size()) +
                      " bytes, its type and shape need " + std::to_string(t.nbytes),
                  ErrorKind::kInternal);
    sink(bytes.data(), bytes.size());
    sink(kZeros, padding(t.nbytes));
  }
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
    auto sink = [&](const uint8_t* p, size_t n) { out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n)); };
    emit(sink);
    out.flush();
    if (!out) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  auto sink = [&](const uint8_t* p, size_t n) { put(out, p, n); };
  emit(sink);
  return out;
}

}  // namespace vllm::gguf
