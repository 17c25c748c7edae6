// Malformed input: invalid UTF-8 text, broken tokenizer.json / tokenizer_config.json files,
// unsupported component types, missing folders and missing test data.
#include <filesystem>
#include <random>

#include "tokenizer_test_util.h"
#include "vllm/core/error.h"

namespace vllm::test {
namespace {

// A minimal valid tokenizer.json; tests break one field at a time.
nlohmann::json minimal_tokenizer() {
  return nlohmann::json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 3, "content": "<s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}]},
    "post_processor": null,
    "decoder": {"type": "Fuse"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3}, "merges": ["a b"]}
  })");
}

// Runs from_json and returns the error (kind must be kModelLoad); fails when nothing is thrown.
std::string load_error(const nlohmann::json& j, const std::string& config = "") {
  try {
    Tokenizer::from_json(j.dump(), config, "test/tokenizer.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kModelLoad) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a load error for " << j.dump();
  return "";
}

TEST(TokenizerErrors, MinimalTokenizerLoads) {
  auto tok = Tokenizer::from_json(minimal_tokenizer().dump());
  // The " " piece has no token and there is no unk token: it is dropped, as in `tokenizers`.
  EXPECT_EQ(tok->encode("ab a"), (std::vector<int32_t>{2, 0}));
  EXPECT_EQ(tok->encode("<s>ab"), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(tok->vocab_size(), 4);
}

TEST(TokenizerErrors, MissingOrWrongTypedFieldsAreNamed) {
  {
    auto j = minimal_tokenizer();
    j.erase("model");
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("test/tokenizer.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'model' is missing"), std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["model"]["vocab"] = nlohmann::json::array({"a", "b"});
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("'model.vocab' must be an object, got an array"), std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["model"]["vocab"]["b"] = "one";
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("'model.vocab.b' must be an integer, got a string"), std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["model"]["merges"] = nlohmann::json::array({"a b", 7});
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("'model.merges[1]'"), std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["model"]["merges"] = nlohmann::json::array({"a c"});
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("'model.merges[0]' refers to token 'c'"), std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["model"].erase("merges");
    EXPECT_NE(load_error(j).find("'model.merges' is missing"), std::string::npos);
  }
  {
    auto j = minimal_tokenizer();
    j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("'pre_tokenizer.pretokenizers[0].behavior' has unknown split behavior 'Sideways'"),
              std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}};
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("'pre_tokenizer.pretokenizers[0].pattern.Regex' is not a usable regex"),
              std::string::npos) << msg;
  }
  {
    auto j = minimal_tokenizer();
    j["pre_tokenizer"]["pretokenizers"][0]["invert"] = "no";
    EXPECT_NE(load_error(j).find("'pre_tokenizer.pretokenizers[0].invert' must be a boolean, got a string"),
              std::string::npos);
  }
  {
    auto j = minimal_tokenizer();
    j["added_tokens"][0].erase("id");
    EXPECT_NE(load_error(j).find("'added_tokens[0].id' is missing"), std::string::npos);
  }
  {
    auto j = minimal_tokenizer();
    j["normalizer"] = "NFC";
    EXPECT_NE(load_error(j).find("'normalizer' must be an object, got a string"), std::string::npos);
  }
  {
    auto j = minimal_tokenizer();
    j["decoder"] = {{"type", "Strip"}, {"content", "ab"}, {"start", 1}};
    EXPECT_NE(load_error(j).find("'decoder.content' must be exactly one character"), std::string::npos);
  }
  {
    auto j = minimal_tokenizer();
    j["post_processor"] = nlohmann::json::parse(
        R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}})");
    EXPECT_NE(load_error(j).find("'post_processor.special_tokens.<s>' is missing"), std::string::npos);
  }
}

TEST(TokenizerErrors, UnsupportedComponentTypesAreNamed) {
  struct Case {
    std::string field;
    nlohmann::json value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "Precompiled"}, {"precompiled_charsmap", ""}},
       "unsupported normalizer type 'Precompiled' at 'normalizer.type'"},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}}, {{"type", "Frobnicate"}}}}},
       "unsupported pre_tokenizer type 'Frobnicate' at 'pre_tokenizer.pretokenizers[1].type'"},
      {"decoder", {{"type", "CTC"}}, "unsupported decoder type 'CTC' at 'decoder.type'"},
      {"post_processor", {{"type", "Mystery"}}, "unsupported post_processor type 'Mystery' at 'post_processor.type'"},
      {"model", {{"type", "Unigram"}, {"vocab", nlohmann::json::array()}},
       "unsupported model type 'Unigram' at 'model.type'"},
  };
  for (const auto& c : cases) {
    auto j = minimal_tokenizer();
    j[c.field] = c.value;
    const std::string msg = load_error(j);
    EXPECT_NE(msg.find("test/tokenizer.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << msg;
  }
}

TEST(TokenizerErrors, InvalidJsonAndConfigFields) {
  try {
    Tokenizer::from_json("{\"model\": ", "", "broken/tokenizer.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kModelLoad);
    EXPECT_NE(std::string(e.what()).find("broken/tokenizer.json: invalid JSON"), std::string::npos) << e.what();
  }
  const std::string msg = load_error(minimal_tokenizer(), R"({"add_bos_token": "yes"})");
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'add_bos_token' must be a boolean, got a string"), std::string::npos) << msg;
  EXPECT_NE(load_error(minimal_tokenizer(), R"({"chat_template": 5})").find("'chat_template' must be a string"),
            std::string::npos);
  EXPECT_NE(load_error(minimal_tokenizer(), R"({"eos_token": 5})").find("'eos_token' must be a string or an object"),
            std::string::npos);
}

// A number JSON cannot hold (nlohmann throws out_of_range, not parse_error): found by
// fuzz_tokenizer_json, where it escaped as an uncaught exception ("internal error" in the CLI).
TEST(TokenizerErrors, NumberOutOfRangeIsInvalidJson) {
  for (const char* text : {R"({"model": {"type": "BPE", "vocab": {"a": 1e999}}})", "[1e400]"}) {
    try {
      Tokenizer::from_json(text, "", "big/tokenizer.json");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kModelLoad);
      EXPECT_NE(std::string(e.what()).find("big/tokenizer.json: invalid JSON"), std::string::npos) << e.what();
    }
  }
  const std::string msg = load_error(minimal_tokenizer(), R"({"model_max_length": 1e999})");
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
}

TEST(TokenizerErrors, FolderErrorsNameTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("vllm_tok_errors_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  try {
    Tokenizer::from_folder(dir.string());
    ADD_FAILURE() << "no error for a missing folder";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kModelLoad);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  std::filesystem::create_directories(dir);
  try {
    Tokenizer::from_folder(dir.string());
    ADD_FAILURE() << "no error for an empty folder";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kModelLoad);
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos) << e.what();
  }
  auto j = minimal_tokenizer();
  j["decoder"] = {{"type", "Nope"}};
  { std::ofstream(dir / "tokenizer.json") << j.dump(); }
  try {
    Tokenizer::from_folder(dir.string());
    ADD_FAILURE() << "no error for a broken tokenizer.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "tokenizer.json").string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'Nope'"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(TokenizerErrors, MissingTestDataMessage) {
  const std::string msg = missing_data_message("no-such-model");
  EXPECT_NE(msg.find("scripts/fetch_tokenizers.sh"), std::string::npos) << msg;
}

// Invalid UTF-8 is replaced by U+FFFD, one per maximal invalid subsequence, before tokenization.
TEST(TokenizerErrors, InvalidUtf8IsReplaced) {
  const std::string R = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc\xFF" "def", "abc" + R + "def"},
      {"\x80\x80", R + R},                             // lone continuation bytes
      {"\xC0\x80", R + R},                             // overlong NUL
      {"\xED\xA0\x80x", R + R + R + "x"},              // UTF-16 surrogate
      {"\xF0\x9F\x98", R},                             // truncated 4-byte sequence at the end
      {"\xF0\x9F\x98 ok", R + " ok"},                  // truncated, then more text
      {"\xE4\xB8\xADok\xE4", "\xE4\xB8\xADok" + R},  // valid CJK, truncated tail
      {"\xF4\x90\x80\x80", R + R + R + R},             // above U+10FFFF
      {"\xF8\x88\x80\x80\x80", R + R + R + R + R},     // 5-byte form
  };
  for (const auto& model : reference_models()) {
    auto tok = load_reference(model);
    ASSERT_NE(tok, nullptr);
    for (const auto& [input, expected] : cases) {
      std::vector<int32_t> ids;
      ASSERT_NO_THROW(ids = tok->encode(input, false)) << model;
      EXPECT_EQ(ids, tok->encode(expected, false)) << model << " " << nlohmann::json(expected).dump();
      EXPECT_EQ(tok->decode(ids), expected) << model;
    }
  }
}

TEST(TokenizerErrors, RandomBytesNeverCrash) {
  std::mt19937_64 rng(99);
  for (const auto& model : reference_models()) {
    auto tok = load_reference(model);
    ASSERT_NE(tok, nullptr);
    for (int n = 0; n < 500; ++n) {
      std::string s(rng() % 64, '\0');
      for (char& ch : s) ch = static_cast<char>(rng() % 256);
      const auto ids = tok->encode(s, n % 2 == 0);
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok->vocab_size()) << model;
      EXPECT_TRUE(valid_utf8(tok->decode(ids))) << model;  // decode() always returns valid UTF-8
    }
  }
}

}  // namespace
}  // namespace vllm::test
