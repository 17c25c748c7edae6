#include "vllm/kv_events/msgpack.h"

#include <cstring>

namespace vllm::kv_events {

void MsgpackWriter::be(uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void MsgpackWriter::uint(uint64_t v) {
  if (v < 0x80) {
    out_.push_back(static_cast<char>(v));  // positive fixint
  } else if (v <= 0xff) {
    out_.push_back(static_cast<char>(0xcc));
    be(v, 1);
  } else if (v <= 0xffff) {
    out_.push_back(static_cast<char>(0xcd));
    be(v, 2);
  } else if (v <= 0xffffffffull) {
    out_.push_back(static_cast<char>(0xce));
    be(v, 4);
  } else {
    out_.push_back(static_cast<char>(0xcf));
    be(v, 8);
  }
}

void MsgpackWriter::integer(int64_t v) {
  if (v >= 0) return uint(static_cast<uint64_t>(v));
  const uint64_t bits = static_cast<uint64_t>(v);
  if (v >= -32) {
    out_.push_back(static_cast<char>(bits & 0xff));  // negative fixint
  } else if (v >= INT8_MIN) {
    out_.push_back(static_cast<char>(0xd0));
    be(bits, 1);
  } else if (v >= INT16_MIN) {
    out_.push_back(static_cast<char>(0xd1));
    be(bits, 2);
  } else if (v >= INT32_MIN) {
    out_.push_back(static_cast<char>(0xd2));
    be(bits, 4);
  } else {
    out_.push_back(static_cast<char>(0xd3));
    be(bits, 8);
  }
}

void MsgpackWriter::float64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  out_.push_back(static_cast<char>(0xcb));
  be(bits, 8);
}

void MsgpackWriter::str(std::string_view s) {
  const uint64_t n = s.size();
  if (n < 32) {
    out_.push_back(static_cast<char>(0xa0 | n));
  } else if (n <= 0xff) {
    out_.push_back(static_cast<char>(0xd9));
    be(n, 1);
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xda));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xdb));
    be(n, 4);
  }
  out_.append(s);
}

void MsgpackWriter::array(uint32_t n) {
  if (n < 16) {
    out_.push_back(static_cast<char>(0x90 | n));
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xdc));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xdd));
    be(n, 4);
  }
}

void MsgpackWriter::map(uint32_t n) {
  if (n < 16) {
    out_.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out_.push_back(static_cast<char>(0xde));
    be(n, 2);
  } else {
    out_.push_back(static_cast<char>(0xdf));
    be(n, 4);
  }
}

}  // namespace vllm::kv_events
