// The independent oracle for next-token masks, shared by the structured-output tests and
// structured_bench --check (so it has no gtest in it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/structured/matcher.h"
#include "vllm/structured/token_vocabulary.h"

namespace vllm::structured::test {

// The mask by trying every token: a stop id iff can_terminate(), any other id iff accept_token
// takes it (undone right away). Tokens whose first byte the state refuses are skipped.
inline std::vector<uint32_t> brute_mask(GrammarMatcher& m, const TokenVocabulary& v, const std::vector<int32_t>& stops) {
  std::vector<uint32_t> mask(v.mask_words(), 0);
  bool first[256];
  for (int b = 0; b < 256; ++b) {
    first[b] = m.accept_bytes(std::string(1, static_cast<char>(b)));
    if (first[b]) m.rollback(1);
  }
  for (int32_t id = 0; id < v.size(); ++id) {
    const bool stop = std::find(stops.begin(), stops.end(), id) != stops.end();
    if (!stop) {
      const std::string_view bytes = v.token_bytes(id);
      if (bytes.empty() || !first[static_cast<uint8_t>(bytes[0])]) continue;
    }
    if (m.accept_token(id)) {
      mask[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
      m.rollback(1);
    }
  }
  return mask;
}

}  // namespace vllm::structured::test
