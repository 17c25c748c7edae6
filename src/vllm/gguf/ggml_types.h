// The tensor types of GGUF files (ggml's type ids) and their block geometry. A tensor's rows are
// stored as consecutive blocks: block_size elements in block_bytes bytes, so a row of n elements
// (n a multiple of block_size) takes n / block_size * block_bytes bytes. Float types are blocks
// of one element.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vllm::gguf {

// ggml's ids, as written in GGUF tensor infos (ggml.h's enum ggml_type; gaps are removed types).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

// Elements per super-block of the k-quants (QK_K).
inline constexpr int64_t kSuperBlock = 256;

struct GgmlTypeInfo {
  std::string_view name;  // "Q4_K", as ggml names it
  int64_t block_size = 0;  // elements per block
  size_t block_bytes = 0;  // bytes per block
  bool supported = false;  // this project reads (dequantizes) it
};

// The type with this id, or nullopt for an id ggml does not define.
std::optional<GgmlType> ggml_type_from_id(uint32_t id);
// Geometry and name of a type ggml defines (every enumerator above).
const GgmlTypeInfo& ggml_type_info(GgmlType type);
std::string_view ggml_type_name(GgmlType type);
// "Q4_K" -> kQ4_K (case-insensitive); nullopt for a name not above.
std::optional<GgmlType> ggml_type_from_name(std::string_view name);
// Whether this project can read tensors of the type: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool ggml_type_supported(GgmlType type);
// The supported types' names, for error messages ("F32, F16, ...").
std::string supported_type_names();

// Bytes of a row of n elements; n must be a multiple of the block size.
size_t ggml_row_bytes(GgmlType type, int64_t n);
// Whether the type is a block-quantized one (not F32/F16/BF16 or an integer type).
bool ggml_type_is_quantized(GgmlType type);

}  // namespace vllm::gguf
