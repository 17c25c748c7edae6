// The seven reference tokenizers against the `tokenizers` library's own outputs (golden.json):
// encode with and without special tokens, decode with and without skipping special tokens.
#include <filesystem>

#include "tokenizer_test_util.h"

namespace vllm::test {
namespace {

class GoldenTest : public ::testing::TestWithParam<std::string> {};

std::string show(const std::string& s) { return nlohmann::json(s).dump(); }

// Every encode case of a golden.json: encode with and without special tokens, decode with and
// without skipping them.
void expect_encode_cases_match(const Tokenizer& tok, const nlohmann::json& golden, const std::string& model,
                               size_t expected_cases) {
  const auto& cases = golden.at("tokenizer").at("encode");
  ASSERT_EQ(cases.size(), expected_cases);
  int passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string text = c.at("text");
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const auto ids_no_special = c.at("ids_no_special").get<std::vector<int32_t>>();
    SCOPED_TRACE("case " + std::to_string(i) + " text=" + show(text));
    const auto got = tok.encode(text, true);
    const auto got_no_special = tok.encode(text, false);
    const std::string dec = tok.decode(ids);
    const std::string dec_skip = tok.decode(ids, true);
    EXPECT_EQ(got, ids);
    EXPECT_EQ(got_no_special, ids_no_special);
    EXPECT_EQ(dec, c.at("decode").get<std::string>()) << "got " << show(dec);
    EXPECT_EQ(dec_skip, c.at("decode_skip_special").get<std::string>()) << "got " << show(dec_skip);
    passed += got == ids && got_no_special == ids_no_special && dec == c.at("decode") &&
              dec_skip == c.at("decode_skip_special");
  }
  std::cout << "[ golden   ] " << model << ": " << passed << "/" << cases.size()
            << " cases match (encode, encode no-special, decode, decode skip-special)\n";
}

TEST_P(GoldenTest, EncodeAndDecodeMatchReference) {
  const std::string model = GetParam();
  auto tok = load_reference(model);
  ASSERT_NE(tok, nullptr);
  expect_encode_cases_match(*tok, load_golden(model), model, 37);
}

// The trained default model's own byte-level BPE (tokenizer.json in models/default).
TEST(GoldenDefaultModel, EncodeAndDecodeMatchReference) {
  const std::string dir = VLLM_DEFAULT_MODEL_DIR;
  auto tok = Tokenizer::from_folder(dir);
  std::ifstream in(dir + "/golden.json");
  ASSERT_TRUE(in.good()) << dir;
  expect_encode_cases_match(*tok, nlohmann::json::parse(in), "default", 40);
  EXPECT_EQ(tok->vocab_size(), 8192);
  EXPECT_EQ(tok->eos_token_id(), 0);
  EXPECT_EQ(tok->token_to_id("<|end|>"), 4);
  EXPECT_TRUE(tok->is_special(4));
  EXPECT_TRUE(tok->chat_template().has_value());
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenTest, ::testing::ValuesIn(reference_models()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

TEST(TokenizerAttributes, ReferenceModels) {
  auto phi = load_reference("tiny-phi");
  auto llama2 = load_reference("tiny-llama2");
  auto llama3 = load_reference("tiny-llama3");
  auto qwen3 = load_reference("tiny-qwen3");
  ASSERT_TRUE(phi && llama2 && llama3 && qwen3);

  EXPECT_EQ(phi->vocab_size(), 50257);
  EXPECT_EQ(phi->bos_token_id(), 50256);
  EXPECT_EQ(phi->eos_token_id(), 50256);
  EXPECT_EQ(phi->eos_token(), "<|endoftext|>");
  EXPECT_TRUE(phi->is_special(50256));
  EXPECT_FALSE(phi->add_bos_token());
  EXPECT_EQ(phi->model_max_length(), 2048);
  EXPECT_FALSE(phi->chat_template().has_value());
  EXPECT_EQ(phi->id_to_token(15496), "Hello");
  EXPECT_EQ(phi->token_to_id("Hello"), 15496);

  EXPECT_EQ(llama2->vocab_size(), 32000);
  EXPECT_EQ(llama2->bos_token_id(), 1);
  EXPECT_EQ(llama2->eos_token_id(), 2);
  EXPECT_FALSE(llama2->pad_token_id().has_value());
  EXPECT_TRUE(llama2->add_bos_token());
  EXPECT_FALSE(llama2->add_eos_token());
  EXPECT_EQ(llama2->bos_token(), "<s>");
  EXPECT_FALSE(llama2->model_max_length().has_value());  // the 1e30 "no limit" placeholder
  EXPECT_EQ(llama2->id_to_token(13), "<0x0A>");
  EXPECT_TRUE(llama2->decoder_uses_byte_fallback());

  EXPECT_EQ(llama3->vocab_size(), 128256);
  EXPECT_EQ(llama3->bos_token_id(), 128000);
  EXPECT_EQ(llama3->eos_token_id(), 128001);
  EXPECT_FALSE(llama3->add_bos_token());  // this tokenizer.json's post-processor adds nothing
  EXPECT_TRUE(llama3->clean_up_tokenization_spaces());
  ASSERT_TRUE(llama3->chat_template().has_value());
  EXPECT_NE(llama3->chat_template()->find("<|start_header_id|>"), std::string::npos);

  EXPECT_EQ(qwen3->vocab_size(), 151669);
  EXPECT_FALSE(qwen3->bos_token_id().has_value());
  EXPECT_EQ(qwen3->bos_token(), "");
  EXPECT_EQ(qwen3->eos_token_id(), 151645);
  EXPECT_EQ(qwen3->pad_token_id(), 151643);
  EXPECT_EQ(qwen3->model_max_length(), 131072);
  EXPECT_TRUE(qwen3->is_special(151644));
  EXPECT_FALSE(qwen3->is_special(151667));  // <think> is an added, non-special token
  EXPECT_TRUE(qwen3->is_added_token(151667));
  EXPECT_TRUE(qwen3->chat_template("default").has_value());
  EXPECT_FALSE(qwen3->chat_template("tool_use").has_value());
}

TEST(TokenizerAttributes, GemmaAndGptOss) {
  auto gemma = load_reference("tiny-gemma3");
  auto gptoss = load_reference("tiny-gptoss");
  ASSERT_TRUE(gemma && gptoss);

  EXPECT_EQ(gemma->vocab_size(), 262145);  // the model's 262,144 and the image soft token
  EXPECT_EQ(gemma->bos_token_id(), 2);
  EXPECT_EQ(gemma->eos_token(), "<end_of_turn>");
  EXPECT_EQ(gemma->eos_token_id(), 106);
  EXPECT_EQ(gemma->pad_token_id(), 0);
  EXPECT_TRUE(gemma->add_bos_token());
  EXPECT_TRUE(gemma->decoder_uses_byte_fallback());
  EXPECT_TRUE(gemma->is_special(106));
  ASSERT_TRUE(gemma->chat_template().has_value());
  EXPECT_NE(gemma->chat_template()->find("<start_of_turn>"), std::string::npos);

  EXPECT_EQ(gptoss->vocab_size(), 200019);  // the model's embedding has 201,088 rows
  EXPECT_EQ(gptoss->eos_token(), "<|return|>");
  EXPECT_EQ(gptoss->eos_token_id(), 200002);
  EXPECT_FALSE(gptoss->add_bos_token());
  EXPECT_FALSE(gptoss->chat_template().has_value());
}

// from_folder on a real model folder layout: tokenizer files and tokenizer_config.json together.
TEST(TokenizerLoad, FromFolderWithEverythingInOneFolder) {
  for (const std::string& model : {std::string("tiny-phi"), std::string("tiny-qwen3")}) {
    const std::string missing = missing_data_message(model);
    ASSERT_TRUE(missing.empty()) << missing;
    const auto dir = std::filesystem::temp_directory_path() /
                     ("vllm_tok_folder_" + model + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const auto& entry : std::filesystem::directory_iterator(tokenizer_dir(model))) {
      std::filesystem::create_symlink(std::filesystem::absolute(entry.path()), dir / entry.path().filename());
    }
    std::filesystem::create_symlink(std::filesystem::absolute(model_dir(model) + "/tokenizer_config.json"),
                                    dir / "tokenizer_config.json");
    auto tok = Tokenizer::from_folder(dir.string());
    auto ref = load_reference(model);
    ASSERT_TRUE(ref);
    EXPECT_EQ(tok->encode("Hello <|endoftext|> world"), ref->encode("Hello <|endoftext|> world"));
    EXPECT_EQ(tok->eos_token_id(), ref->eos_token_id());
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace vllm::test
