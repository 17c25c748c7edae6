// The GGUF reader: the input is a whole file's bytes. A file it accepts must describe tensors that
// lie inside the data section without sharing bytes, and every metadata value must read back as
// its type says; tensors of supported types dequantize without reading outside the input, and
// the model metadata mapping (config.json from GGUF) refuses bad values with errors.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "vllm/core/error.h"
#include "vllm/gguf/block_formats.h"
#include "vllm/gguf/gguf_file.h"
#include "vllm/gguf/gguf_model.h"

using namespace vllm;
using namespace vllm::gguf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The mapping is read-only memory in real use; a copy keeps ASan's view of the bounds exact.
  std::vector<uint8_t> bytes(data, data + size);
  GgufFile f;
  try {
    f = GgufFile::parse(bytes.data(), bytes.size(), "fuzz.gguf");
  } catch (const Error&) {
    return 0;
  }
  FUZZ_CHECK(f.data_offset() % f.alignment() == 0);
  for (const auto& [key, value] : f.metadata()) {
    (void)value.describe();
    std::vector<uint8_t> out;
    value.serialize(out);
    try {
      if (value.is_array()) {
        if (value.elem_type() == ValueType::kString) FUZZ_CHECK(value.as_strings(key).size() == value.size());
        else (void)value.as_doubles(key);
      } else if (value.type() == ValueType::kString) {
        (void)value.as_string(key);
      } else {
        (void)value.as_double(key);
      }
    } catch (const Error&) {
    }
  }
  std::vector<std::pair<size_t, size_t>> spans;
  for (const TensorInfo& t : f.tensors()) {
    FUZZ_CHECK(t.offset % f.alignment() == 0);
    FUZZ_CHECK(f.data_offset() + t.offset + t.nbytes <= size);
    FUZZ_CHECK(t.nbytes == static_cast<size_t>(t.numel() / ggml_type_info(t.type).block_size) * ggml_type_info(t.type).block_bytes);
    if (t.nbytes > 0) spans.emplace_back(t.offset, t.offset + t.nbytes);
    // Dequantize small tensors of supported types (reads every byte of the tensor).
    if (ggml_type_supported(t.type) && t.numel() <= (1 << 16)) {
      const Tensor d = f.dequantize(t);
      FUZZ_CHECK(d.numel() == t.numel());
    }
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i].first >= spans[i - 1].second);
  try {
    (void)model_config(f);
  } catch (const Error&) {
  }
  return 0;
}
