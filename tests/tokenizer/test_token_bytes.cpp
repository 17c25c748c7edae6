// Tokenizer::token_bytes: the bytes a token adds to decoded text mid-sequence (what constrained
// decoding matches). Known tokens of each decoder family, every decoder's per-token rule, and a
// property test: decoding [anchor] + ids equals decoding [anchor] followed by the ids' bytes.
#include <random>

#include "tokenizer_test_util.h"
#include "vllm/tokenizer/components.h"

namespace vllm::test {
namespace {

int32_t id_of(const Tokenizer& t, const std::string& token) {
  auto id = t.token_to_id(token);
  EXPECT_TRUE(id.has_value()) << token;
  return id.value_or(-1);
}

TEST(TokenBytes, ByteLevelBpe) {
  auto t = load_reference("tiny-llama3");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token_bytes(id_of(*t, "\xC4\xA0hello")), " hello");  // Ġhello
  EXPECT_EQ(t->token_bytes(id_of(*t, "\xC4\x8A")), "\n");          // Ċ
  EXPECT_EQ(t->token_bytes(id_of(*t, "\xC3\x83")), "\xC3");         // Ã: the lone byte 0xC3
  EXPECT_EQ(t->token_bytes(*t->eos_token_id()), "<|end_of_text|>");  // special: its content
  EXPECT_EQ(t->token_bytes(-1), "");
  EXPECT_EQ(t->token_bytes(t->vocab_size()), "");
  auto phi = load_reference("tiny-phi");  // GPT-2 vocab.json + merges.txt
  ASSERT_TRUE(phi);
  EXPECT_EQ(phi->token_bytes(id_of(*phi, "\xC4\xA0the")), " the");
}

TEST(TokenBytes, SentencePieceByteFallback) {
  auto t = load_reference("tiny-llama2");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token_bytes(id_of(*t, "\xE2\x96\x81have")), " have");  // ▁have keeps its space
  EXPECT_EQ(t->token_bytes(id_of(*t, "<0x0A>")), "\n");
  EXPECT_EQ(t->token_bytes(id_of(*t, "<0xC3>")), "\xC3");
  EXPECT_EQ(t->token_bytes(id_of(*t, "\xE2\x96\x81")), " ");
}

std::string token_bytes_of(const std::string& decoder_json, const std::string& token) {
  auto d = tok::make_decoder(nlohmann::json::parse(decoder_json), tok::JsonPath("test.json", "decoder"));
  std::string t = token;
  bool merged = false;
  d->token_bytes(t, merged);
  return t;
}

TEST(TokenBytes, EveryDecoder) {
  EXPECT_EQ(token_bytes_of(R"({"type":"WordPiece","prefix":"##","cleanup":true})", "##ing"), "ing");
  EXPECT_EQ(token_bytes_of(R"({"type":"WordPiece","prefix":"##","cleanup":true})", "hello"), " hello");
  EXPECT_EQ(token_bytes_of(R"({"type":"WordPiece","prefix":"##","cleanup":true})", "."), ".");  // " ." cleaned
  EXPECT_EQ(token_bytes_of(R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always"})", "\xE2\x96\x81" "a\xE2\x96\x81" "b"),
            " a b");
  EXPECT_EQ(token_bytes_of(R"({"type":"BPEDecoder","suffix":"</w>"})", "cat</w>"), "cat ");
  EXPECT_EQ(token_bytes_of(R"({"type":"ByteFallback"})", "<0xFF>"), "\xFF");
  EXPECT_EQ(token_bytes_of(R"({"type":"ByteFallback"})", "<0xZZ>"), "<0xZZ>");
  // Strip applies to every token before a merge, and only to the text's ends after one.
  EXPECT_EQ(token_bytes_of(R"({"type":"Sequence","decoders":[{"type":"Strip","content":" ","start":1,"stop":0}]})", " x"),
            "x");
  EXPECT_EQ(token_bytes_of(R"({"type":"Sequence","decoders":[{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})",
                           " x"),
            " x");
  // A token outside the byte-level alphabet keeps its own bytes (decode_chain does the same).
  EXPECT_EQ(token_bytes_of(R"({"type":"ByteLevel"})", "a b"), "a b");
}

// Mid-sequence bytes are exactly what decoding appends, whenever the result is valid UTF-8.
TEST(TokenBytes, ConcatenationMatchesDecode) {
  for (const std::string& model : reference_models()) {
    auto t = load_reference(model);
    ASSERT_TRUE(t) << model;
    std::vector<int32_t> plain;
    for (int32_t id = 0; id < t->vocab_size(); ++id) {
      if (!t->is_special(id) && !t->id_to_token(id).empty()) plain.push_back(id);
    }
    const std::vector<int32_t> anchor = t->encode("a", false);
    ASSERT_FALSE(anchor.empty()) << model;
    DecodeOptions o;
    o.clean_up_tokenization_spaces = false;
    const std::string anchor_text = t->decode(anchor, o);
    std::mt19937 rng(3);
    int compared = 0;
    for (int i = 0; i < 3000; ++i) {
      std::vector<int32_t> ids = anchor;
      std::string bytes;
      const int n = 1 + static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) {
        const int32_t id = plain[rng() % plain.size()];
        ids.push_back(id);
        bytes += t->token_bytes(id);
      }
      if (!valid_utf8(bytes)) continue;
      ++compared;
      EXPECT_EQ(t->decode(ids, o), anchor_text + bytes) << model;
    }
    EXPECT_GT(compared, 1000) << model;
  }
}

}  // namespace
}  // namespace vllm::test
