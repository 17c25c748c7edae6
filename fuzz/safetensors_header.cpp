// The safetensors reader: the input is a whole file's bytes (header length, JSON header, data).
// A file it accepts must describe tensors that lie inside the file, tile the data area in
// order, and have the size their shape and dtype need.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "vllm/core/error.h"
#include "vllm/loader/safetensors.h"

using namespace vllm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, SafetensorsEntry> entries;
  try {
    entries = parse_safetensors(data, size, "fuzz.safetensors");
  } catch (const Error&) {
    return 0;
  }
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& [name, e] : entries) {
    FUZZ_CHECK(e.begin <= e.end && e.end <= size && e.begin >= 8);
    FUZZ_CHECK(static_cast<size_t>(shape_numel(e.shape)) * dtype_size(e.dtype) == e.end - e.begin);
    spans.emplace_back(e.begin, e.end);
    // Reads the tensor's bytes, so that ASan sees any span outside the input.
    std::vector<unsigned char> copy(e.end - e.begin);
    if (!copy.empty()) std::memcpy(copy.data(), data + e.begin, copy.size());
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i].first == spans[i - 1].second);
  if (!spans.empty()) FUZZ_CHECK(spans.back().second == size);
  return 0;
}
