#include "vllm/chat/operators.h"

#include <cmath>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/formatting.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

namespace {

const char* op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kFloorDiv: return "//";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "** or pow()";
  }
  return "?";
}

[[noreturn]] void unsupported(BinaryOp op, const Value& a, const Value& b) {
  fail(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + type_name(a) +
       "' and '" + type_name(b) + "'");
}

int64_t checked(bool overflow, int64_t v) {
  if (overflow) fail("integer overflow (Python integers are unbounded; these are 64-bit)");
  return v;
}

// Python's floor division and modulo for ints (results take the divisor's sign).
int64_t floor_div(int64_t a, int64_t b) {
  if (b == -1) return checked(a == INT64_MIN, -a);
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t floor_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

// Python's float divmod, which float // and % follow.
std::pair<double, double> float_divmod(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return {floordiv, mod};
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) checked(__builtin_mul_overflow(result, base, &result), 0);
    exp >>= 1;
    if (exp > 0) checked(__builtin_mul_overflow(base, base, &base), 0);
  }
  return result;
}

Value numeric(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_float() || b.is_float()) {
    const double x = a.as_double();
    const double y = b.as_double();
    switch (op) {
      case BinaryOp::kAdd: return Value::floating(x + y);
      case BinaryOp::kSub: return Value::floating(x - y);
      case BinaryOp::kMul: return Value::floating(x * y);
      case BinaryOp::kDiv:
        if (y == 0.0) fail("float division by zero");
        return Value::floating(x / y);
      case BinaryOp::kFloorDiv:
        if (y == 0.0) fail("float floor division by zero");
        return Value::floating(float_divmod(x, y).first);
      case BinaryOp::kMod:
        if (y == 0.0) fail("float modulo");
        return Value::floating(float_divmod(x, y).second);
      case BinaryOp::kPow:
        if (x == 0.0 && y < 0.0) fail("0.0 cannot be raised to a negative power");
        if (x < 0.0 && y != std::floor(y)) fail("complex results are not supported");
        return Value::floating(std::pow(x, y));
    }
  }
  const int64_t x = a.as_int();
  const int64_t y = b.as_int();
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) checked(true, 0);
      return Value::integer(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) checked(true, 0);
      return Value::integer(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) checked(true, 0);
      return Value::integer(r);
    case BinaryOp::kDiv:
      if (y == 0) fail("division by zero");
      return Value::floating(static_cast<double>(x) / static_cast<double>(y));
    case BinaryOp::kFloorDiv:
      if (y == 0) fail("integer division or modulo by zero");
      return Value::integer(floor_div(x, y));
    case BinaryOp::kMod:
      if (y == 0) fail("integer modulo by zero");
      return Value::integer(floor_mod(x, y));
    case BinaryOp::kPow:
      if (y < 0) {
        if (x == 0) fail("0.0 cannot be raised to a negative power");
        return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
      }
      return Value::integer(int_pow(x, y));
  }
  return Value::none();
}

Value repeat(const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(times) > kMaxStringBytes / s.size())
      fail("string is too large");
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return Value::string(std::move(out));
  }
  const auto& items = seq.as_list().items;
  if (!items.empty() && static_cast<uint64_t>(times) > (size_t{1} << 24) / items.size())
    fail("list is too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value undefined_member(const Value& obj, const Value& key) {
  if (key.is_string()) {
    return Value::undefined(in_quotes(object_type_repr(obj)) + " has no attribute " +
                            in_quotes(key.as_string()));
  }
  return Value::undefined(object_type_repr(obj) + " has no element " + repr(key));
}

std::string substring(const std::string& s, int64_t start, int64_t stop, int64_t step) {
  std::string out;
  if (unicode::is_ascii(s)) {
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
      out.push_back(s[static_cast<size_t>(i)]);
    return out;
  }
  const std::u32string u = unicode::decode(s);
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
    unicode::append(out, u[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

int64_t to_index(const Value& v, const char* what) {
  require_defined(v);
  if (!v.is_integral()) {
    fail(std::string(what) + " must be integers or None or have an __index__ method");
  }
  return v.as_int();
}

Value unary_op(UnaryOp op, const Value& v) {
  require_defined(v);
  switch (op) {
    case UnaryOp::kNot:
      return Value::boolean(!v.truthy());
    case UnaryOp::kNeg:
      if (v.is_float()) return Value::floating(-v.as_double());
      if (v.is_integral()) return Value::integer(checked(v.as_int() == INT64_MIN, -v.as_int()));
      fail("bad operand type for unary -: '" + type_name(v) + "'");
    case UnaryOp::kPos:
      if (v.is_float()) return v;
      if (v.is_integral()) return Value::integer(v.as_int());
      fail("bad operand type for unary +: '" + type_name(v) + "'");
  }
  return v;
}

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) return numeric(op, a, b);
  switch (op) {
    case BinaryOp::kAdd:
      if (a.is_string()) {
        if (!b.is_string()) {
          fail("can only concatenate str (not \"" + type_name(b) + "\") to str");
        }
        if (a.as_string().size() + b.as_string().size() > kMaxStringBytes)
          fail("string is too large");
        return Value::string(a.as_string() + b.as_string());
      }
      if (a.is_list()) {
        if (!b.is_list() || a.is_tuple() != b.is_tuple()) {
          fail("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " +
               type_name(a));
        }
        std::vector<Value> items = a.as_list().items;
        items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
        return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      break;
    case BinaryOp::kMul:
      if ((a.is_string() || a.is_list()) && b.is_integral()) return repeat(a, b.as_int());
      if ((b.is_string() || b.is_list()) && a.is_integral()) return repeat(b, a.as_int());
      break;
    case BinaryOp::kMod:
      if (a.is_string()) return Value::string(percent_format(a.as_string(), b));
      break;
    default:
      break;
  }
  unsupported(op, a, b);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;  // Undefined iterates as empty
    case Value::Kind::kString:
      if (!item.is_string()) {
        fail("'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& x : container.as_list().items)
        if (equals(x, item)) return true;
      return false;
    case Value::Kind::kDict:
      if (container.is_namespace()) break;
      if ((item.is_list() && !item.is_tuple()) || item.is_dict())
        fail("unhashable type: " + in_quotes(type_name(item)));
      return container.as_dict().find(item) != nullptr;
    default:
      break;
  }
  fail("argument of type '" + type_name(container) + "' is not iterable");
}

bool compare_op(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq: return equals(a, b);
    case CompareOp::kNe: return !equals(a, b);
    case CompareOp::kLt: return less(a, b);
    case CompareOp::kGt: return less(b, a);
    case CompareOp::kLe: return less(a, b) || equals(a, b);
    case CompareOp::kGe: return less(b, a) || equals(a, b);
    case CompareOp::kIn: return contains(b, a);
    case CompareOp::kNotIn: return !contains(b, a);
  }
  return false;
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      throw_undefined(obj);
    case Value::Kind::kString:
      if (has_method(obj, name)) return bound_method(obj, name);
      break;
    case Value::Kind::kList: {
      const auto& fields = obj.as_list().field_names;
      for (size_t i = 0; i < fields.size(); ++i)
        if (fields[i] == name) return obj.as_list().items[i];
      if (has_method(obj, name)) return bound_method(obj, name);
      break;
    }
    case Value::Kind::kDict:
      if (obj.is_mapping() && has_method(obj, name)) return bound_method(obj, name);
      if (const Value* v = obj.as_dict().find(std::string_view(name))) return *v;
      break;
    case Value::Kind::kObject:
      return obj.as_object().get_attr(name);
    default:
      break;
  }
  return undefined_member(obj, Value::string(name));
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      throw_undefined(obj);
    case Value::Kind::kDict:
      if (const Value* v = obj.as_dict().find(key)) return *v;
      break;
    case Value::Kind::kList:
      if (key.is_integral()) {
        const auto& items = obj.as_list().items;
        int64_t i = key.as_int();
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
        return undefined_member(obj, key);
      }
      break;
    case Value::Kind::kString:
      if (key.is_integral()) {
        const std::string& s = obj.as_string();
        const int64_t n = static_cast<int64_t>(unicode::length(s));
        int64_t i = key.as_int();
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value::string(substring(s, i, i + 1, 1));
        return undefined_member(obj, key);
      }
      break;
    default:
      break;
  }
  // jinja2's sandbox falls back to attribute lookup for string subscripts.
  if (key.is_string() && !obj.is_dict()) return get_attr(obj, key.as_string());
  if (key.is_string() && obj.is_mapping() && has_method(obj, key.as_string()))
    return bound_method(obj, key.as_string());
  return undefined_member(obj, key);
}

Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  // jinja2 compiles slices to plain Python subscripts (no sandbox fallback to undefined).
  require_defined(obj);
  if (obj.is_mapping()) fail("unhashable type: 'slice'");
  if (!obj.is_string() && !obj.is_list()) fail(in_quotes(type_name(obj)) + " object is not subscriptable");
  const int64_t len = obj.is_string() ? static_cast<int64_t>(unicode::length(obj.as_string()))
                                      : static_cast<int64_t>(obj.as_list().items.size());
  const int64_t step = step_v.is_none() ? 1 : to_index(step_v, "slice indices");
  if (step == 0) fail("slice step cannot be zero");
  // Python's slice.indices(len).
  const int64_t lower = step < 0 ? -1 : 0;
  const int64_t upper = step < 0 ? len - 1 : len;
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t i = to_index(v, "slice indices");
    if (i < 0) {
      i += len;
      if (i < lower) i = lower;
    } else if (i > upper) {
      i = upper;
    }
    return i;
  };
  const int64_t start = clamp(start_v, step < 0 ? upper : lower);
  const int64_t stop = clamp(stop_v, step < 0 ? lower : upper);
  if (obj.is_string()) return Value::string(substring(obj.as_string(), start, stop, step));
  std::vector<Value> out;
  const auto& items = obj.as_list().items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
    out.push_back(items[static_cast<size_t>(i)]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace vllm::jinja
