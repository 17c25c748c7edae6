// --chat-template-content-format auto: a template gets the OpenAI list of content parts only when
// it loops over a message's content (vLLM's detection); the shipped templates print it as a string.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "vllm/chat/chat_template.h"
#include "vllm/chat/content_format.h"
#include "vllm/core/error.h"

namespace vllm {
namespace {

ChatContentFormat detect(const std::string& source) { return detect_chat_content_format(ChatTemplate(source)); }

TEST(ChatContentFormat, LoopsOverAMessagesContentAreOpenAI) {
  for (const char* t : {
           "{% for m in messages %}{% for p in m['content'] %}{{ p.text }}{% endfor %}{% endfor %}",
           "{% for m in messages %}{% for p in m.content %}{{ p.text }}{% endfor %}{% endfor %}",
           // through filters, tests and slices, on either side
           "{% for m in messages | reverse %}{% for p in m['content'] | list %}{{ p.text }}{% endfor %}{% endfor %}",
           "{% for m in messages[1:] %}{% for p in m.content[:2] %}{{ p.text }}{% endfor %}{% endfor %}",
           // `messages` through a variable (set from a slice of it, and again from that one)
           "{% set loop_messages = messages[1:] %}{% set rest = loop_messages %}"
           "{% for m in rest %}{% if m.content is not string %}{% for p in m.content %}{{ p.text }}{% endfor %}"
           "{% endif %}{% endfor %}",
           // nested in a macro and an if
           "{% macro show(ms) %}{% endmacro %}{% if true %}{% for message in messages %}"
           "{% for c in message['content'] %}{{ c['text'] }}{% endfor %}{% endfor %}{% endif %}",
       })
    EXPECT_EQ(detect(t), ChatContentFormat::kOpenAI) << t;
}

TEST(ChatContentFormat, TemplatesThatPrintTheContentAreString) {
  for (const char* t : {
           "{% for m in messages %}{{ m['content'] }}{% endfor %}",
           // a loop over something else's content, not a message's
           "{% for m in messages %}{{ m.content }}{% endfor %}{% for d in documents %}{% for p in d.content %}{{ p }}"
           "{% endfor %}{% endfor %}",
           // a loop over a message's other field
           "{% for m in messages %}{% for c in m.tool_calls %}{{ c.function.name }}{% endfor %}{% endfor %}",
           "plain text",
       })
    EXPECT_EQ(detect(t), ChatContentFormat::kString) << t;
}

TEST(ChatContentFormat, ShippedTemplatesAreString) {
  for (const char* model : {"tiny-llama3", "tiny-qwen3"}) {
    std::ifstream in(std::string(VLLM_TEST_DATA_DIR) + "/models/" + model + "/tokenizer_config.json");
    ASSERT_TRUE(in.good()) << model;
    const auto config = nlohmann::json::parse(in);
    EXPECT_EQ(detect(config["chat_template"].get<std::string>()), ChatContentFormat::kString) << model;
  }
}

TEST(ChatContentFormat, NamesAndResolution) {
  EXPECT_EQ(parse_chat_content_format("auto"), ChatContentFormat::kAuto);
  EXPECT_EQ(parse_chat_content_format("string"), ChatContentFormat::kString);
  EXPECT_EQ(parse_chat_content_format("openai"), ChatContentFormat::kOpenAI);
  EXPECT_THROW(parse_chat_content_format("xml"), Error);
  for (auto f : {ChatContentFormat::kAuto, ChatContentFormat::kString, ChatContentFormat::kOpenAI})
    EXPECT_EQ(parse_chat_content_format(chat_content_format_name(f)), f);
  const ChatTemplate loops("{% for m in messages %}{% for p in m.content %}{% endfor %}{% endfor %}");
  EXPECT_EQ(resolve_chat_content_format(ChatContentFormat::kAuto, loops), ChatContentFormat::kOpenAI);
  EXPECT_EQ(resolve_chat_content_format(ChatContentFormat::kString, loops), ChatContentFormat::kString);
}

}  // namespace
}  // namespace vllm
