// Encoding and decoding arbitrary input with the tokenizers `vllm serve` ships or tests with:
// the default model's tokenizer.json, a SentencePiece-style BPE with byte fallback (tiny-llama2),
// a byte-level BPE with an NFC normalizer (tiny-qwen3) and a GPT-2 vocab.json + merges.txt pair
// (tiny-phi). The first byte picks the tokenizer and the options; the rest is text to encode,
// and, read as little-endian 16-bit values, ids to decode (some beyond the vocabulary).
// Contracts checked: decode() returns valid UTF-8, and the incremental detokenizer's deltas add
// up to decode() of the same ids.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"

using namespace vllm;

namespace {
std::vector<std::shared_ptr<const Tokenizer>>* tokenizers = nullptr;

std::string streamed(const std::shared_ptr<const Tokenizer>& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDetokenizer detok(tok, {}, skip);
  std::string out;
  for (int32_t id : ids) out += detok.add(id);
  out += detok.flush();
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizers = new std::vector<std::shared_ptr<const Tokenizer>>;
  tokenizers->push_back(Tokenizer::from_folder(VLLM_DEFAULT_MODEL_DIR));
  for (const char* name : {"tiny-llama2", "tiny-qwen3", "tiny-phi"})
    tokenizers->push_back(Tokenizer::from_folders(std::string(VLLM_TEST_DATA_DIR) + "/tokenizers/" + name,
                                                  std::string(VLLM_TEST_DATA_DIR) + "/models/" + name));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& tok = (*tokenizers)[data[0] % tokenizers->size()];
  const bool add_special = data[0] & 0x10;
  const bool skip_special = data[0] & 0x20;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::vector<int32_t> ids = tok->encode(text, add_special);
  const std::string decoded = tok->decode(ids, skip_special);
  FUZZ_CHECK(fuzz::valid_utf8(decoded));
  FUZZ_CHECK(streamed(tok, ids, skip_special) == decoded);

  std::vector<int32_t> raw;
  const int32_t n = tok->vocab_size();
  for (size_t i = 0; i + 1 < text.size(); i += 2) {
    const uint32_t v = static_cast<uint8_t>(text[i]) | (static_cast<uint32_t>(static_cast<uint8_t>(text[i + 1])) << 8);
    raw.push_back(static_cast<int32_t>(v % static_cast<uint32_t>(n + 8)));  // a few past the end
  }
  const std::string raw_decoded = tok->decode(raw, skip_special);
  FUZZ_CHECK(fuzz::valid_utf8(raw_decoded));
  FUZZ_CHECK(streamed(tok, raw, skip_special) == raw_decoded);
  return 0;
}
