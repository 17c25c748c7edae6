// Exact GBNF for the decimal integers in a range (JSON integers: optional '-', no leading
// zeros, no "-0"), for JSON Schema minimum/maximum on integers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vllm::structured {

// |bound| must be at most this (callers reject larger bounds with their own message).
inline constexpr int64_t kMaxIntegerRangeBound = 1000000000000000000;  // 1e18

// The integers n with lo <= n <= hi (a missing side is unbounded) as an expression, or nullopt
// when the range is empty.
std::optional<std::string> integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);

}  // namespace vllm::structured
