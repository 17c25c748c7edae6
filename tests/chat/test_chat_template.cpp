// The public API: ChatTemplate and apply_chat_template, with templates written here and the
// reference Qwen3 template over a conversation with tools, thinking and tool results.
// Expected strings were produced by jinja2 3.1 in transformers' environment.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "vllm/chat/chat_template.h"
#include "vllm/core/error.h"

namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kChatML =
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

TEST(ChatTemplate, ChatML) {
  vllm::ChatTemplate tmpl(kChatML);
  vllm::ChatTemplateInputs in;
  in.messages = ojson::array({{{"role", "system"}, {"content", "Be brief."}},
                              {{"role", "user"}, {"content", "Hi!"}}});
  in.add_generation_prompt = true;
  EXPECT_EQ(vllm::apply_chat_template(tmpl, in),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n");
  in.add_generation_prompt = false;
  EXPECT_EQ(vllm::apply_chat_template(tmpl, in),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n");
}

TEST(ChatTemplate, MacrosNamespaceAndLoopIndex) {
  const std::string source =
      "{#- Exercises macros (with defaults and keywords), namespace() and loop.index. -#}\n"
      "{%- macro render_content(content, sep=' ') -%}\n"
      "    {%- if content is string -%}\n"
      "        {{ content }}\n"
      "    {%- else -%}\n"
      "        {%- for part in content if part.type == 'text' -%}\n"
      "            {{ part.text }}{% if not loop.last %}{{ sep }}{% endif %}\n"
      "        {%- endfor -%}\n"
      "    {%- endif -%}\n"
      "{%- endmacro -%}\n"
      "{%- set ns = namespace(system='', turns=0) -%}\n"
      "{%- for message in messages -%}\n"
      "    {%- if message.role == 'system' -%}\n"
      "        {%- set ns.system = render_content(message.content) -%}\n"
      "    {%- else -%}\n"
      "        {%- set ns.turns = ns.turns + 1 -%}\n"
      "        [{{ loop.index }}/{{ loop.length }}] {{ message.role|upper }}: "
      "{{ render_content(message.content, sep=' + ') }}{{ '\\n' }}\n"
      "    {%- endif -%}\n"
      "{%- endfor -%}\n"
      "system={{ ns.system|tojson }} turns={{ ns.turns }}\n"
      "{% if add_generation_prompt %}[{{ messages|length + 1 }}] ASSISTANT:{% endif %}\n";
  vllm::ChatTemplate tmpl(source);
  vllm::ChatTemplateInputs in;
  in.messages = ojson::array(
      {{{"role", "system"}, {"content", "Be kind."}},
       {{"role", "user"},
        {"content", ojson::array({{{"type", "text"}, {"text", "Hi"}},
                                  {{"type", "image"}},
                                  {{"type", "text"}, {"text", "there"}}})}},
       {{"role", "assistant"}, {"content", "Hello!"}}});
  in.add_generation_prompt = true;
  EXPECT_EQ(vllm::apply_chat_template(tmpl, in),
            "[2/3] USER: Hi + there\n[3/3] ASSISTANT: Hello!\nsystem=\"Be kind.\" turns=2\n"
            "[4] ASSISTANT:");
}

TEST(ChatTemplate, RaiseExceptionSurfacesTheTemplatesMessage) {
  vllm::ChatTemplate tmpl(
      "{{ bos_token }}\n"
      "{%- for message in messages %}\n"
      "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
      "        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n"
      "    {%- endif %}\n"
      "    {{- '[' + message['role'] + '] ' + message['content'] }}\n"
      "{%- endfor %}");
  vllm::ChatTemplateInputs in;
  in.bos_token = "<s>";
  in.messages = ojson::array({{{"role", "user"}, {"content", "a"}},
                              {{"role", "assistant"}, {"content", "b"}}});
  EXPECT_EQ(vllm::apply_chat_template(tmpl, in), "<s>[user] a[assistant] b");
  in.messages.push_back({{"role", "assistant"}, {"content", "c"}});
  try {
    vllm::apply_chat_template(tmpl, in);
    FAIL() << "expected an error";
  } catch (const vllm::Error& e) {
    EXPECT_EQ(e.kind(), vllm::ErrorKind::kInvalidArgument);
    EXPECT_STREQ(e.what(),
                 "line 4: Conversation roles must alternate user/assistant/user/assistant/...");
  }
}

TEST(ChatTemplate, SyntaxErrorsAreReportedAtConstruction) {
  try {
    vllm::ChatTemplate tmpl("{% for m in messages %}\n{{ m.content }}\n");
    FAIL() << "expected an error";
  } catch (const vllm::Error& e) {
    EXPECT_EQ(e.kind(), vllm::ErrorKind::kInvalidArgument);
    EXPECT_STREQ(e.what(),
                 "line 2: unexpected end of template: the 'for' block opened on line 1 was never "
                 "closed (expected 'endfor' or 'else')");
  }
}

TEST(ChatTemplate, ContextBuiltAsTransformersDoes) {
  vllm::ChatTemplate tmpl(
      "{{ bos_token is defined }}|{{ eos_token }}|{{ tools is none }}|{{ documents is none }}"
      "|{{ add_generation_prompt }}|{{ enable_thinking }}|{{ messages|length }}|{{ custom.k }}");
  vllm::ChatTemplateInputs in;
  in.eos_token = "</s>";
  in.messages = ojson::array({{{"role", "user"}, {"content", "x"}}});
  in.extra_kwargs = {{"enable_thinking", false}, {"custom", {{"k", "v"}}}, {"messages", "ignored"}};
  EXPECT_EQ(vllm::apply_chat_template(tmpl, in), "False|</s>|True|True|False|False|1|v");

  in.extra_kwargs = "not an object";
  EXPECT_THROW(vllm::apply_chat_template(tmpl, in), vllm::Error);
}

TEST(ChatTemplate, KeyOrderSurvivesIntoToJson) {
  vllm::ChatTemplate tmpl("{{ tools[0]|tojson }}");
  vllm::ChatTemplateInputs in;
  in.tools = ojson::parse(R"([{"type": "function", "function": {"name": "f", "description": "d"}}])");
  EXPECT_EQ(vllm::apply_chat_template(tmpl, in),
            R"({"type": "function", "function": {"name": "f", "description": "d"}})");
  // nlohmann::json itself keeps keys sorted; that order is what reaches the template.
  const nlohmann::json sorted = {{"tools", nlohmann::json::parse(R"([{"type": 1, "function": 2}])")}};
  EXPECT_EQ(tmpl.render(sorted), R"({"function": 2, "type": 1})");
}

TEST(ChatTemplate, RenderContextMustBeAnObject) {
  vllm::ChatTemplate tmpl("{{ x }}");
  EXPECT_EQ(tmpl.render(nlohmann::json{{"x", 1}}), "1");
  EXPECT_EQ(tmpl.render(nlohmann::json()), "");
  EXPECT_THROW(tmpl.render(nlohmann::json::array()), vllm::Error);
}

TEST(ChatTemplate, Qwen3ToolConversation) {
  std::ifstream in_file(std::string(VLLM_TEST_DATA_DIR) + "/models/tiny-qwen3/tokenizer_config.json");
  const ojson config = ojson::parse(in_file);
  vllm::ChatTemplate tmpl(config["chat_template"].get<std::string>());
  vllm::ChatTemplateInputs in;
  in.messages = ojson::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris and Tokyo?"},
    {"role": "assistant", "content": "<think>\nNeed both cities.\n</think>\n\nChecking.", "tool_calls": [
      {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}},
      {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "tool", "content": "{\"temp\": 25}"},
    {"role": "assistant", "content": "Paris 21°C, Tokyo 25°C."},
    {"role": "user", "content": "<tool_response>x</tool_response>"}])");
  in.tools = ojson::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Get weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"]}}}])");
  in.eos_token = "<|im_end|>";
  in.add_generation_prompt = true;
  in.extra_kwargs = {{"enable_thinking", true}};
  EXPECT_EQ(
      vllm::apply_chat_template(tmpl, in),
      "<|im_start|>system\nYou are terse.\n\n# Tools\n\nYou may call one or more functions to "
      "assist with the user query.\n\nYou are provided with function signatures within "
      "<tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": "
      "\"get_weather\", \"description\": \"Get weather\", \"parameters\": {\"type\": \"object\", "
      "\"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"type\": \"string\", "
      "\"enum\": [\"c\", \"f\"]}}, \"required\": [\"city\"]}}}\n</tools>\n\nFor each function "
      "call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
      "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in "
      "Paris and Tokyo?<|im_end|>\n<|im_start|>assistant\n<think>\nNeed both cities.\n</think>"
      "\n\nChecking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", "
      "\"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n"
      "<tool_response>\n{\"temp\": 21}\n</tool_response>\n<tool_response>\n{\"temp\": 25}\n"
      "</tool_response><|im_end|>\n<|im_start|>assistant\nParis 21°C, Tokyo 25°C.<|im_end|>\n"
      "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ConcurrentRendersShareOneTemplate) {
  const vllm::ChatTemplate tmpl(
      "{%- set ns = namespace(n=0) -%}"
      "{%- macro item(m) -%}{{ m.role }}:{{ m.content|upper }}{%- endmacro -%}"
      "{%- for m in messages -%}{%- set ns.n = ns.n + 1 -%}{{ item(m) }};{%- endfor -%}"
      "{{ ns.n }}");
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        vllm::ChatTemplateInputs in;
        // (Built with append: GCC 12 warns falsely on `"t" + std::to_string(t)` at -O3.)
        std::string text = "t";
        text += std::to_string(t);
        text += 'i';
        text += std::to_string(i);
        in.messages = ojson::array({{{"role", "user"}, {"content", text}},
                                    {{"role", "assistant"}, {"content", "ok"}}});
        std::string want = "user:";
        for (char c : text) want += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        want += ";assistant:OK;2";
        if (vllm::apply_chat_template(tmpl, in) != want) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(ChatTemplate, CopiesShareTheParsedTemplate) {
  vllm::ChatTemplate a("{{ x }}");
  vllm::ChatTemplate b = a;
  EXPECT_EQ(b.source(), "{{ x }}");
  EXPECT_EQ(b.render(nlohmann::json{{"x", "copied"}}), "copied");
}

}  // namespace
