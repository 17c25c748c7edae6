// A MessagePack encoder for the few types KV cache events use: nil, booleans, integers, float64,
// strings, arrays and maps. Each value takes its shortest form, as msgspec (vLLM's encoder)
// writes it, so our bytes equal vLLM's for the same message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vllm::kv_events {

class MsgpackWriter {
 public:
  void nil() { out_.push_back(static_cast<char>(0xc0)); }
  void boolean(bool v) { out_.push_back(static_cast<char>(v ? 0xc3 : 0xc2)); }
  void uint(uint64_t v);
  void integer(int64_t v);  // non-negative values take the unsigned forms, as msgspec does
  void float64(double v);   // Python floats are doubles: always 0xcb
  void str(std::string_view s);
  void array(uint32_t n);  // header; the n values follow
  void map(uint32_t n);    // header; n key, value pairs follow

  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void be(uint64_t v, int bytes);  // big-endian
  std::string out_;
};

}  // namespace vllm::kv_events
