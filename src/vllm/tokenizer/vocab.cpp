#include "vllm/tokenizer/vocab.h"

namespace vllm::tok {

// Ids above this are treated as a corrupt file rather than allocated for.
constexpr int64_t kMaxTokenId = 1 << 26;

void Vocab::add(std::string token, int32_t id) {
  const auto index = static_cast<size_t>(id);
  if (index >= tokens_.size()) {
    tokens_.resize(index + 1);
    present_.resize(index + 1, 0);
  }
  tokens_[index] = token;
  present_[index] = 1;
  map_[std::move(token)] = id;
}

Vocab Vocab::from_json(const Json& obj, const JsonPath& where) {
  json_object(obj, where);
  Vocab v;
  v.map_.reserve(obj.size());
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const JsonPath entry = where / it.key();
    const int64_t id = json_int(it.value(), entry);
    if (id < 0 || id > kMaxTokenId) entry.fail("has an out-of-range id " + std::to_string(id));
    v.add(it.key(), static_cast<int32_t>(id));
  }
  return v;
}

}  // namespace vllm::tok
