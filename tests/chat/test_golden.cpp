// Every chat case in the reference models' golden.json must render byte-identically to
// transformers' apply_chat_template(messages, tools=tools, tokenize=False, **kwargs).
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "vllm/chat/chat_template.h"

namespace {

using ojson = nlohmann::ordered_json;

ojson load(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return ojson::parse(in);
}

// tokenizer_config.json spells special tokens as a string or as {"content": ...}.
std::string token_text(const ojson& config, const char* key) {
  if (!config.contains(key)) return "";
  const ojson& t = config[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content")) return t["content"].get<std::string>();
  return "";
}

// golden.json from `dir`, tokenizer_config.json from `config_dir`.
void check_folder(const std::string& dir, const std::string& config_dir, const std::string& model,
                  size_t expected_cases) {
  const ojson config = load(config_dir + "/tokenizer_config.json");
  const ojson golden = load(dir + "/golden.json");
  const vllm::ChatTemplate tmpl(config["chat_template"].get<std::string>());
  const ojson& cases = golden["tokenizer"]["chat"];
  ASSERT_EQ(cases.size(), expected_cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    const ojson& c = cases[i];
    vllm::ChatTemplateInputs in;
    in.messages = c["messages"];
    if (c.contains("tools")) in.tools = c["tools"];
    in.bos_token = token_text(config, "bos_token");
    in.eos_token = token_text(config, "eos_token");
    ojson kwargs = c.value("kwargs", ojson::object());
    in.add_generation_prompt = kwargs.value("add_generation_prompt", false);
    kwargs.erase("add_generation_prompt");
    in.extra_kwargs = kwargs;
    EXPECT_EQ(vllm::apply_chat_template(tmpl, in), c["text"].get<std::string>())
        << model << " case " << i << ": " << c.dump();
  }
}

void check_model(const std::string& model, size_t expected_cases) {
  const std::string dir = std::string(VLLM_TEST_DATA_DIR) + "/models/" + model;
  check_folder(dir, dir, model, expected_cases);
}

TEST(ChatGolden, Llama3) { check_model("tiny-llama3", 7); }
TEST(ChatGolden, Qwen3) { check_model("tiny-qwen3", 10); }
// Gemma's tokenizer_config.json comes with its tokenizer (scripts/fetch_tokenizers.sh).
TEST(ChatGolden, Gemma) {
  for (const std::string model : {"tiny-gemma3", "tiny-gemma2"})
    check_folder(std::string(VLLM_TEST_DATA_DIR) + "/models/" + model,
                 std::string(VLLM_TEST_DATA_DIR) + "/tokenizers/" + model, model, 7);
}
// The trained default model's own template (<|role|>\ncontent<|end|>\n).
TEST(ChatGolden, DefaultModel) { check_folder(VLLM_DEFAULT_MODEL_DIR, VLLM_DEFAULT_MODEL_DIR, "default", 7); }

}  // namespace
