#include "vllm/gguf/ggml_types.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "vllm/core/error.h"

namespace vllm::gguf {

namespace {

struct Entry {
  GgmlType type;
  GgmlTypeInfo info;
};

// Block geometry of every type ggml defines (gguf-py's GGML_QUANT_SIZES), so that a file holding
// a type this project cannot compute with still parses, and the error names the tensor and type.
constexpr std::array<Entry, 32> kTypes{{
    {GgmlType::kF32, {"F32", 1, 4, true}},
    {GgmlType::kF16, {"F16", 1, 2, true}},
    {GgmlType::kQ4_0, {"Q4_0", 32, 18, true}},
    {GgmlType::kQ4_1, {"Q4_1", 32, 20, false}},
    {GgmlType::kQ5_0, {"Q5_0", 32, 22, false}},
    {GgmlType::kQ5_1, {"Q5_1", 32, 24, false}},
    {GgmlType::kQ8_0, {"Q8_0", 32, 34, true}},
    {GgmlType::kQ8_1, {"Q8_1", 32, 36, false}},
    {GgmlType::kQ2_K, {"Q2_K", 256, 84, false}},
    {GgmlType::kQ3_K, {"Q3_K", 256, 110, false}},
    {GgmlType::kQ4_K, {"Q4_K", 256, 144, true}},
    {GgmlType::kQ5_K, {"Q5_K", 256, 176, true}},
    {GgmlType::kQ6_K, {"Q6_K", 256, 210, true}},
    {GgmlType::kQ8_K, {"Q8_K", 256, 292, false}},
    {GgmlType::kIQ2_XXS, {"IQ2_XXS", 256, 66, false}},
    {GgmlType::kIQ2_XS, {"IQ2_XS", 256, 74, false}},
    {GgmlType::kIQ3_XXS, {"IQ3_XXS", 256, 98, false}},
    {GgmlType::kIQ1_S, {"IQ1_S", 256, 50, false}},
    {GgmlType::kIQ4_NL, {"IQ4_NL", 32, 18, false}},
    {GgmlType::kIQ3_S, {"IQ3_S", 256, 110, false}},
    {GgmlType::kIQ2_S, {"IQ2_S", 256, 82, false}},
    {GgmlType::kIQ4_XS, {"IQ4_XS", 256, 136, false}},
    {GgmlType::kI8, {"I8", 1, 1, false}},
    {GgmlType::kI16, {"I16", 1, 2, false}},
    {GgmlType::kI32, {"I32", 1, 4, false}},
    {GgmlType::kI64, {"I64", 1, 8, false}},
    {GgmlType::kF64, {"F64", 1, 8, false}},
    {GgmlType::kIQ1_M, {"IQ1_M", 256, 56, false}},
    {GgmlType::kBF16, {"BF16", 1, 2, true}},
    {GgmlType::kTQ1_0, {"TQ1_0", 256, 54, false}},
    {GgmlType::kTQ2_0, {"TQ2_0", 256, 66, false}},
    {GgmlType::kMXFP4, {"MXFP4", 32, 17, false}},
}};

const Entry* find(GgmlType type) {
  for (const Entry& e : kTypes)
    if (e.type == type) return &e;
  return nullptr;
}

}  // namespace

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  const Entry* e = find(static_cast<GgmlType>(id));
  if (!e) return std::nullopt;
  return e->type;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  const Entry* e = find(type);
  VLLM_CHECK(e != nullptr, "ggml type id " + std::to_string(static_cast<uint32_t>(type)) + " is not defined");
  return e->info;
}

std::string_view ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const Entry& e : kTypes)
    if (e.info.name == upper) return e.type;
  return std::nullopt;
}

bool ggml_type_supported(GgmlType type) {
  const Entry* e = find(type);
  return e && e->info.supported;
}

std::string supported_type_names() {
  std::string out;
  for (const Entry& e : kTypes)
    if (e.info.supported) out += (out.empty() ? "" : ", ") + std::string(e.info.name);
  return out;
}

size_t ggml_row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = ggml_type_info(type);
  VLLM_CHECK(n >= 0 && n % info.block_size == 0,
             "a row of " + std::to_string(n) + " elements is not whole " + std::string(info.name) + " blocks");
  return static_cast<size_t>(n / info.block_size) * info.block_bytes;
}

bool ggml_type_is_quantized(GgmlType type) {
  return ggml_type_info(type).block_size > 1;
}

}  // namespace vllm::gguf
