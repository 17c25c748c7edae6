// A MessagePack decoder for the tests: enough of the format to read back what a subscriber gets
// (nil, booleans, integers, floats, strings, arrays, maps), into a small tree. Throws
// std::runtime_error on anything else or on truncated input.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace vllm::kv_events::test {

struct Value {
  enum class Type { kNil, kBool, kUint, kInt, kFloat, kStr, kArray, kMap } type = Type::kNil;
  bool b = false;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<Value> items;                          // array elements
  std::vector<std::pair<std::string, Value>> pairs;  // map entries (string keys), in wire order

  bool is_nil() const { return type == Type::kNil; }
  // An integer of either sign as int64 (test values fit).
  int64_t as_int() const {
    if (type == Type::kUint) return static_cast<int64_t>(u);
    if (type == Type::kInt) return i;
    throw std::runtime_error("not an integer");
  }
  const Value& operator[](size_t k) const { return items.at(k); }
  const Value& at(const std::string& key) const {
    for (const auto& [k, v] : pairs)
      if (k == key) return v;
    throw std::runtime_error("no key " + key);
  }
};

class Reader {
 public:
  explicit Reader(const std::string& bytes) : p_(bytes) {}
  Value read() {
    const uint8_t c = byte();
    Value v;
    if (c <= 0x7f) return uint_value(c);
    if (c >= 0xe0) {
      v.type = Value::Type::kInt;
      v.i = static_cast<int8_t>(c);
      return v;
    }
    if ((c & 0xf0) == 0x90) return array(c & 0x0f);
    if ((c & 0xf0) == 0x80) return map(c & 0x0f);
    if ((c & 0xe0) == 0xa0) return str(c & 0x1f);
    switch (c) {
      case 0xc0: return v;
      case 0xc2: case 0xc3: v.type = Value::Type::kBool; v.b = c == 0xc3; return v;
      case 0xcc: return uint_value(be(1));
      case 0xcd: return uint_value(be(2));
      case 0xce: return uint_value(be(4));
      case 0xcf: return uint_value(be(8));
      case 0xd0: v.type = Value::Type::kInt; v.i = static_cast<int8_t>(be(1)); return v;
      case 0xd1: v.type = Value::Type::kInt; v.i = static_cast<int16_t>(be(2)); return v;
      case 0xd2: v.type = Value::Type::kInt; v.i = static_cast<int32_t>(be(4)); return v;
      case 0xd3: v.type = Value::Type::kInt; v.i = static_cast<int64_t>(be(8)); return v;
      case 0xcb: {
        const uint64_t bits = be(8);
        v.type = Value::Type::kFloat;
        std::memcpy(&v.f, &bits, 8);
        return v;
      }
      case 0xd9: return str(be(1));
      case 0xda: return str(be(2));
      case 0xdb: return str(be(4));
      case 0xdc: return array(be(2));
      case 0xdd: return array(be(4));
      case 0xde: return map(be(2));
      case 0xdf: return map(be(4));
      default: throw std::runtime_error("unexpected msgpack byte " + std::to_string(c));
    }
  }
  bool done() const { return pos_ == p_.size(); }

 private:
  uint8_t byte() {
    if (pos_ >= p_.size()) throw std::runtime_error("truncated msgpack");
    return static_cast<uint8_t>(p_[pos_++]);
  }
  uint64_t be(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v = (v << 8) | byte();
    return v;
  }
  static Value uint_value(uint64_t u) {
    Value v;
    v.type = Value::Type::kUint;
    v.u = u;
    return v;
  }
  Value str(uint64_t n) {
    if (pos_ + n > p_.size()) throw std::runtime_error("truncated msgpack string");
    Value v;
    v.type = Value::Type::kStr;
    v.s = p_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  Value array(uint64_t n) {
    Value v;
    v.type = Value::Type::kArray;
    for (uint64_t k = 0; k < n; ++k) v.items.push_back(read());
    return v;
  }
  Value map(uint64_t n) {
    Value v;
    v.type = Value::Type::kMap;
    for (uint64_t k = 0; k < n; ++k) {
      Value key = read();
      if (key.type != Value::Type::kStr) throw std::runtime_error("non-string map key");
      v.pairs.emplace_back(key.s, read());
    }
    return v;
  }
  const std::string& p_;
  size_t pos_ = 0;
};

inline Value decode(const std::string& bytes) {
  Reader r(bytes);
  Value v = r.read();
  if (!r.done()) throw std::runtime_error("bytes after the msgpack value");
  return v;
}

}  // namespace vllm::kv_events::test
