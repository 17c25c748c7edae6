// Chat templates: Hugging Face's Jinja2 templates (tokenizer_config.json "chat_template"),
// rendered the way transformers' apply_chat_template(tokenize=False) renders them, by a Jinja2
// interpreter written in C++ (src/vllm/chat/*.cpp). Parse once, render from any thread.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace vllm {

namespace jinja {
struct Template;
class Value;
}  // namespace jinja

struct ChatTemplateInputs;

class ChatTemplate {
 public:
  // Parses once; throws vllm::Error (kInvalidArgument) "line L: what went wrong" on syntax
  // errors. The environment is transformers': trim_blocks and lstrip_blocks on, one trailing
  // newline of the source dropped, loop controls (break/continue) and {% generation %} enabled.
  explicit ChatTemplate(std::string source);

  // Renders with `context` as the template's variables. Errors at render time (an
  // undefined value used, a bad call, raise_exception) throw vllm::Error "line L: message";
  // raise_exception's message is passed through verbatim.
  // nlohmann::json sorts object keys; pass an ordered_json where key order must survive into
  // the output (tojson of tools and arguments).
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& source() const { return source_; }
  // The parsed template, for questions asked of its structure (content_format.h).
  const jinja::Template& syntax_tree() const { return *tmpl_; }

 private:
  friend std::string apply_chat_template(const ChatTemplate&, const ChatTemplateInputs&);
  std::string render_value(const jinja::Value& context) const;

  std::string source_;
  std::shared_ptr<const jinja::Template> tmpl_;  // immutable, shared by copies
};

// What transformers passes to the template. JSON is ordered_json so that dict key order (for
// example of a tool's JSON schema) reaches `tojson` as the caller wrote it, as Python keeps it;
// a plain nlohmann::json converts implicitly (with its keys sorted).
struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  nlohmann::ordered_json tools;      // null or array of tool schemas
  nlohmann::ordered_json documents;  // null or array
  bool add_generation_prompt = false;
  std::string bos_token;  // empty: not defined in the template (as for a tokenizer without one)
  std::string eos_token;
  nlohmann::ordered_json extra_kwargs;  // null or object, e.g. {"enable_thinking": false}
};

// transformers' apply_chat_template(messages, tools=..., documents=..., add_generation_prompt=...,
// tokenize=False, **extra_kwargs), with the tokenizer's bos_token/eos_token in the context.
std::string apply_chat_template(const ChatTemplate& tmpl, const ChatTemplateInputs& inputs);

}  // namespace vllm
