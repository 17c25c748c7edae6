// Python's operators over template values: arithmetic, comparison, membership, and the
// attribute/subscript lookups of jinja2's sandboxed environment.
#pragma once

#include <string>

#include "vllm/chat/value.h"

namespace vllm::jinja {

enum class UnaryOp : uint8_t { kNeg, kPos, kNot };
enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

// Strings and outputs longer than this are refused rather than grown without bound.
inline constexpr size_t kMaxStringBytes = size_t{256} << 20;

Value unary_op(UnaryOp op, const Value& v);
Value binary_op(BinaryOp op, const Value& a, const Value& b);
bool compare_op(CompareOp op, const Value& a, const Value& b);
// Python's `item in container`.
bool contains(const Value& container, const Value& item);

// `obj.name`: a method of str/list/dict first, then a dict key (sandbox getattr order).
Value get_attr(const Value& obj, const std::string& name);
// `obj[key]`: the item first, then (for string keys) a method.
Value get_item(const Value& obj, const Value& key);
// `obj[start:stop:step]`; none means "omitted".
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python's int(x) for an integral value, with a TypeError naming `what` otherwise.
int64_t to_index(const Value& v, const char* what);

}  // namespace vllm::jinja
