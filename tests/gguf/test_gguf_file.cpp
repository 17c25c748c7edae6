// GGUF files: writer -> reader round trips, and bad files (truncated anywhere, unknown tensor
// type, bad magic or version, hostile counts and offsets) refused with a clear error.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/gguf_file.h"
#include "vllm/gguf/gguf_writer.h"

using namespace vllm;
using namespace vllm::gguf;
namespace fs = std::filesystem;

namespace {

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> quantized(GgmlType type, const std::vector<float>& values) {
  std::vector<uint8_t> out(ggml_row_bytes(type, static_cast<int64_t>(values.size())));
  quantize_row(type, values.data(), out.data(), static_cast<int64_t>(values.size()));
  return out;
}

// A small file with metadata of every value type and a tensor of every supported type.
GgufWriter sample_writer() {
  GgufWriter w;
  w.set("general.architecture", Value::string("llama"));
  w.set("llama.block_count", Value::u32(2));
  w.set("llama.rope.freq_base", Value::f32(500000.0f));
  w.set("test.i32", Value::i32(-7));
  w.set("test.u64", Value::u64(1ull << 40));
  w.set("test.bool", Value::boolean(true));
  const int8_t i8 = -3;
  w.set("test.i8", Value::scalar(ValueType::kInt8, &i8));
  const double f64 = 0.125;
  w.set("test.f64", Value::scalar(ValueType::kFloat64, &f64));
  w.set("test.strings", Value::string_array({"a", "", "\xc3\xa9t\xc3\xa9", std::string("nul\0in", 6)}));
  w.set("test.ints", Value::int32_array({1, -2, 3}));
  w.set("test.floats", Value::float32_array({0.5f, -1.5f}));
  uint32_t t = 0;
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                        GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const int64_t cols = 256, rows = 3;
    const std::vector<float> v = random_values(static_cast<size_t>(cols * rows), ++t);
    w.add_tensor("t." + std::string(ggml_type_name(type)), type, {cols, rows}, quantized(type, v));
  }
  w.add_tensor("bias", GgmlType::kF32, {5}, quantized(GgmlType::kF32, {1, 2, 3, 4, 5}));
  return w;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kModelLoad) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  return error_of([&] { GgufFile::parse(bytes.data(), bytes.size(), "bad.gguf"); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Byte offset of the first occurrence of `needle` in bytes.
size_t find_bytes(const std::vector<uint8_t>& bytes, const std::string& needle) {
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << needle;
  return static_cast<size_t>(it - bytes.begin());
}

// Offsets of a tensor info's fields, found after its name (n_dims, dims, type, offset).
struct InfoFields {
  size_t n_dims, dims, type, offset;
};
InfoFields info_fields(const std::vector<uint8_t>& bytes, const std::string& name, uint32_t n_dims) {
  const size_t at = find_bytes(bytes, name) + name.size();
  return {at, at + 4, at + 4 + 8 * n_dims, at + 8 + 8 * n_dims};
}

void poke_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }
void poke_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, 8); }

}  // namespace

TEST(GgufFile, WriterReaderRoundTrip) {
  const GgufWriter w = sample_writer();
  const std::vector<uint8_t> bytes = w.to_bytes();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.get("general.architecture").as_string("k"), "llama");
  EXPECT_EQ(f.get("llama.block_count").as_int("k"), 2);
  EXPECT_EQ(f.get("llama.block_count").type(), ValueType::kUint32);
  EXPECT_EQ(f.get("llama.rope.freq_base").as_double("k"), 500000.0);
  EXPECT_EQ(f.get("test.i32").as_int("k"), -7);
  EXPECT_EQ(f.get("test.u64").as_int("k"), int64_t{1} << 40);
  EXPECT_TRUE(f.get("test.bool").as_bool("k"));
  EXPECT_EQ(f.get("test.i8").as_int("k"), -3);
  EXPECT_EQ(f.get("test.f64").as_double("k"), 0.125);
  const std::vector<std::string> want_strings{"a", "", "\xc3\xa9t\xc3\xa9", std::string("nul\0in", 6)};
  EXPECT_EQ(f.get("test.strings").as_strings("k"), want_strings);
  EXPECT_EQ(f.get("test.ints").as_ints("k"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.get("test.floats").as_doubles("k"), (std::vector<double>{0.5, -1.5}));
  // Metadata keeps the writer's order.
  EXPECT_EQ(f.metadata().front().first, "general.architecture");
  EXPECT_EQ(f.metadata().back().first, "test.floats");

  ASSERT_EQ(f.tensors().size(), 9u);
  uint32_t t = 0;
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                        GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const TensorInfo* info = f.find_tensor("t." + std::string(ggml_type_name(type)));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->type, type);
    EXPECT_EQ(info->shape(), (Shape{3, 256}));
    EXPECT_EQ(info->offset % 32, 0u);
    const std::vector<uint8_t> want = quantized(type, random_values(3 * 256, ++t));
    ASSERT_EQ(info->nbytes, want.size());
    EXPECT_EQ(std::memcmp(f.tensor_data(*info), want.data(), want.size()), 0) << ggml_type_name(type);
    // dequantize() gives row by row what dequantize_row gives.
    const Tensor d = f.dequantize(*info);
    std::vector<float> row(256);
    dequantize_row(type, want.data() + 2 * want.size() / 3, row.data(), 256);
    EXPECT_EQ(std::memcmp(d.data<float>() + 512, row.data(), 256 * 4), 0);
  }
  EXPECT_EQ(f.find_tensor("bias")->shape(), (Shape{5}));
  EXPECT_EQ(f.dequantize(*f.find_tensor("bias")).to_floats(), (std::vector<float>{1, 2, 3, 4, 5}));
}

TEST(GgufFile, FileOnDisk) {
  const fs::path path = fs::temp_directory_path() / ("vllm-gguf-" + std::to_string(getpid()) + ".gguf");
  sample_writer().write(path.string());
  const GgufFile f = GgufFile::open(path.string());
  EXPECT_EQ(f.path(), path.string());
  EXPECT_EQ(f.tensors().size(), 9u);
  const std::vector<uint8_t> mem = sample_writer().to_bytes();
  EXPECT_EQ(fs::file_size(path), mem.size());
  fs::remove(path);
  // Missing files and folders are errors naming the path.
  EXPECT_TRUE(contains(error_of([&] { GgufFile::open(path.string()); }), path.string()));
  EXPECT_TRUE(contains(error_of([&] { GgufFile::open(fs::temp_directory_path().string()); }), "directory"));
}

// Every prefix of a valid file that cuts off any of its content is refused with an error (never a
// crash or a huge allocation); the sanitizer build checks that nothing reads past the bytes given.
// (Only the zero padding after the last tensor may be missing.)
TEST(GgufFile, TruncatedAtEveryOffset) {
  const std::vector<uint8_t> bytes = sample_writer().to_bytes();
  const GgufFile whole = GgufFile::parse(bytes.data(), bytes.size(), "whole.gguf");
  size_t content_end = whole.data_offset();
  for (const TensorInfo& t : whole.tensors()) content_end = std::max<size_t>(content_end, whole.data_offset() + t.offset + t.nbytes);
  ASSERT_LT(content_end, bytes.size());
  EXPECT_NO_THROW(GgufFile::parse(bytes.data(), content_end, "unpadded.gguf"));
  for (size_t n = 0; n < content_end; ++n) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string e = parse_error(prefix);
    ASSERT_TRUE(contains(e, "bad.gguf")) << e;
    ASSERT_TRUE(contains(e, "truncated")) << "at " << n << ": " << e;
  }
}

TEST(GgufFile, UnknownTensorTypeIsNamed) {
  std::vector<uint8_t> bytes = sample_writer().to_bytes();
  poke_u32(bytes, info_fields(bytes, "t.Q4_K", 2).type, 99);
  const std::string e = parse_error(bytes);
  EXPECT_TRUE(contains(e, "tensor 't.Q4_K'")) << e;
  EXPECT_TRUE(contains(e, "unknown tensor type 99")) << e;
}

TEST(GgufFile, KnownButUnsupportedTypeParsesAndRefusesOnRead) {
  GgufWriter w;
  std::vector<uint8_t> q2k(84, 0);
  w.add_tensor("blk.0.ffn_down.weight", GgmlType::kQ2_K, {256, 1}, q2k);
  const std::vector<uint8_t> bytes = w.to_bytes();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "q2.gguf");
  const std::string e = error_of([&] { f.dequantize(f.tensors()[0]); });
  EXPECT_TRUE(contains(e, "'blk.0.ffn_down.weight'")) << e;
  EXPECT_TRUE(contains(e, "Q2_K")) << e;
  EXPECT_TRUE(contains(e, "Q4_K")) << e;  // the supported list
}

TEST(GgufFile, BadMagicAndVersion) {
  std::vector<uint8_t> bytes = sample_writer().to_bytes();
  std::vector<uint8_t> b = bytes;
  b[0] = 'X';
  EXPECT_TRUE(contains(parse_error(b), "not a GGUF file")) << parse_error(b);
  for (uint32_t v : {0u, 1u, 4u}) {
    b = bytes;
    poke_u32(b, 4, v);
    EXPECT_TRUE(contains(parse_error(b), "unsupported GGUF version " + std::to_string(v))) << parse_error(b);
  }
  b = bytes;
  poke_u32(b, 4, 0x03000000u);  // version 3 written big-endian
  EXPECT_TRUE(contains(parse_error(b), "big-endian")) << parse_error(b);
  // Version 2 has the same layout.
  b = bytes;
  poke_u32(b, 4, 2);
  EXPECT_EQ(GgufFile::parse(b.data(), b.size(), "v2.gguf").version(), 2u);
}

TEST(GgufFile, HostileCountsAndOffsets) {
  const std::vector<uint8_t> bytes = sample_writer().to_bytes();
  std::vector<uint8_t> b;

  // A huge tensor or metadata count: refused as truncation, nothing allocated for it.
  b = bytes;
  poke_u64(b, 8, ~0ull);
  EXPECT_TRUE(contains(parse_error(b), "truncated")) << parse_error(b);
  b = bytes;
  poke_u64(b, 16, ~0ull);
  EXPECT_TRUE(contains(parse_error(b), "truncated")) << parse_error(b);

  // An array claiming more elements than the file holds.
  b = bytes;
  const size_t arr = find_bytes(b, "test.ints") + 9 + 4 + 4;  // key, value type, element type
  poke_u64(b, arr, 1ull << 60);
  EXPECT_TRUE(contains(parse_error(b), "claims")) << parse_error(b);
  b = bytes;
  const size_t sarr = find_bytes(b, "test.strings") + 12 + 4 + 4;
  poke_u64(b, sarr, 1ull << 61);
  EXPECT_TRUE(contains(parse_error(b), "claims")) << parse_error(b);

  // A string length past the end.
  b = bytes;
  poke_u64(b, find_bytes(b, "general.architecture") - 8, 1ull << 62);
  EXPECT_TRUE(contains(parse_error(b), "truncated")) << parse_error(b);

  // An unknown value type and an array of arrays.
  b = bytes;
  poke_u32(b, find_bytes(b, "test.i32") + 8, 13);
  EXPECT_TRUE(contains(parse_error(b), "unknown value type 13")) << parse_error(b);
  b = bytes;
  poke_u32(b, find_bytes(b, "test.ints") + 9 + 4, 9);
  EXPECT_TRUE(contains(parse_error(b), "array of arrays")) << parse_error(b);

  // Tensor infos: too many dimensions, dimensions that overflow, rows not whole blocks.
  b = bytes;
  InfoFields q8 = info_fields(b, "t.Q8_0", 2);
  poke_u32(b, q8.n_dims, 5);
  EXPECT_TRUE(contains(parse_error(b), "5 dimensions")) << parse_error(b);
  b = bytes;
  poke_u64(b, q8.dims + 8, 1ull << 62);
  EXPECT_TRUE(contains(parse_error(b), "overflow")) << parse_error(b);
  // A zero dimension does not hide two whose product overflows (an empty tensor of 0 x 2^40 x
  // 2^40 elements: any product but the one starting with the zero overflows).
  {
    GgufWriter z;
    z.add_tensor("z", GgmlType::kF32, {1, 0, 1, 1}, std::vector<uint8_t>());
    b = z.to_bytes();
    const InfoFields zf = info_fields(b, "z", 4);
    poke_u64(b, zf.dims + 16, 1ull << 40);
    poke_u64(b, zf.dims + 24, 1ull << 40);
    EXPECT_TRUE(contains(parse_error(b), "overflow")) << parse_error(b);
  }
  b = bytes;
  poke_u64(b, q8.dims, 100);
  EXPECT_TRUE(contains(parse_error(b), "not a multiple of its block size 32")) << parse_error(b);

  // Offsets: misaligned, past the end, overlapping another tensor.
  b = bytes;
  InfoFields f16 = info_fields(b, "t.F16", 2);
  poke_u64(b, f16.offset, 33);
  EXPECT_TRUE(contains(parse_error(b), "alignment")) << parse_error(b);
  b = bytes;
  poke_u64(b, f16.offset, 1ull << 40);
  EXPECT_TRUE(contains(parse_error(b), "past the end")) << parse_error(b);
  b = bytes;
  poke_u64(b, f16.offset, 0);  // on top of t.F32
  EXPECT_TRUE(contains(parse_error(b), "overlaps")) << parse_error(b);
  b = bytes;
  poke_u64(b, f16.offset, ~0ull - 31);  // offset + size wraps around
  EXPECT_TRUE(contains(parse_error(b), "past the end")) << parse_error(b);
}

TEST(GgufFile, DuplicatesAndAlignment) {
  GgufWriter w;
  w.set("general.alignment", Value::u32(64));
  w.add_tensor("a", GgmlType::kF32, {3}, std::vector<uint8_t>(12, 0));
  w.add_tensor("b", GgmlType::kF32, {3}, std::vector<uint8_t>(12, 0));
  std::vector<uint8_t> bytes = w.to_bytes();
  // The writer aligns to 32: with general.alignment 64 the second tensor's offset (32) is refused.
  EXPECT_TRUE(contains(parse_error(bytes), "alignment 64")) << parse_error(bytes);
  std::vector<uint8_t> b = bytes;
  poke_u32(b, find_bytes(b, "general.alignment") + 17 + 4, 48);
  EXPECT_TRUE(contains(parse_error(b), "not a power of two of at least 8")) << parse_error(b);
  b = bytes;
  poke_u32(b, find_bytes(b, "general.alignment") + 17 + 4, 1);  // would leave block fields misaligned
  EXPECT_TRUE(contains(parse_error(b), "not a power of two of at least 8")) << parse_error(b);
  b = bytes;
  poke_u32(b, find_bytes(b, "general.alignment") + 17, static_cast<uint32_t>(ValueType::kInt32));
  EXPECT_TRUE(contains(parse_error(b), "should be a uint32")) << parse_error(b);

  GgufWriter d;
  d.set("k1", Value::u32(1));
  d.set("k2", Value::u32(2));
  d.add_tensor("x", GgmlType::kF32, {1}, std::vector<uint8_t>(4, 0));
  d.add_tensor("y", GgmlType::kF32, {1}, std::vector<uint8_t>(4, 0));
  b = d.to_bytes();
  b[find_bytes(b, "k2") + 1] = '1';
  EXPECT_TRUE(contains(parse_error(b), "'k1' appears twice")) << parse_error(b);
  b = d.to_bytes();
  b[find_bytes(b, std::string("\x01\0\0\0\0\0\0\0y", 9)) + 8] = 'x';
  EXPECT_TRUE(contains(parse_error(b), "tensor 'x' appears twice")) << parse_error(b);
}

TEST(GgufFile, MetadataAccessorsNameTheKey) {
  const std::vector<uint8_t> bytes = sample_writer().to_bytes();
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "m.gguf");
  EXPECT_TRUE(contains(error_of([&] { f.get("general.architecture").as_int("general.architecture"); }),
                       "'general.architecture' should be an integer but is string 'llama'"));
  EXPECT_TRUE(contains(error_of([&] { f.get("missing.key"); }), "no 'missing.key'"));
  EXPECT_TRUE(contains(error_of([&] { f.get("test.ints").as_strings("test.ints"); }), "array of 3 int32"));
}
