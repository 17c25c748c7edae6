#include "vllm/chat/chat_template.h"

#include <new>
#include <unordered_map>

#include "vllm/chat/errors.h"
#include "vllm/chat/interpreter.h"
#include "vllm/chat/parser.h"
#include "vllm/core/error.h"

namespace vllm {

namespace {

// transformers compiles templates in an ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True); keep_trailing_newline stays at jinja2's default (False).
constexpr jinja::LexerOptions kTransformersLexer{
    .trim_blocks = true, .lstrip_blocks = true, .keep_trailing_newline = false};

std::string located(const jinja::TemplateError& e) {
  if (e.line > 0) return "line " + std::to_string(e.line) + ": " + e.what();
  return e.what();
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source) : source_(std::move(source)) {
  try {
    tmpl_ = jinja::parse_template(source_, kTransformersLexer);
  } catch (const jinja::TemplateError& e) {
    throw Error(located(e), ErrorKind::kInvalidArgument);
  }
}

std::string ChatTemplate::render_value(const jinja::Value& context) const {
  jinja::Renderer renderer(*tmpl_);
  try {
    return renderer.render(context);
  } catch (const jinja::TemplateError& e) {
    throw Error(located(e), ErrorKind::kInvalidArgument);
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while rendering the chat template", ErrorKind::kInvalidArgument);
  } catch (const std::length_error& e) {
    throw Error(std::string("chat template produced a value too large: ") + e.what(),
                ErrorKind::kInvalidArgument);
  }
}

namespace {

template <class Json>
jinja::Value context_from(const Json& j) {
  try {
    if (!j.is_object() && !j.is_null()) {
      throw Error("chat template context must be a JSON object", ErrorKind::kInvalidArgument);
    }
    return jinja::from_json(j);
  } catch (const jinja::TemplateError& e) {
    throw Error(e.what(), ErrorKind::kInvalidArgument);
  }
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return render_value(context_from(context));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_value(context_from(context));
}

std::string apply_chat_template(const ChatTemplate& tmpl, const ChatTemplateInputs& inputs) {
  using jinja::Value;
  if (!inputs.extra_kwargs.is_null() && !inputs.extra_kwargs.is_object()) {
    throw Error("chat template kwargs must be a JSON object", ErrorKind::kInvalidArgument);
  }
  Value context = Value::dict();
  auto& entries = context.as_dict().entries;
  // DictData::set searches the entries linearly; a request's chat_template_kwargs may hold a
  // hundred thousand keys, so the context is assembled with its own index (a later name
  // replaces an earlier one's value in place, as in a Python dict).
  std::unordered_map<std::string, size_t> position;
  const auto set = [&](const std::string& name, Value value) {
    auto [it, fresh] = position.emplace(name, entries.size());
    if (fresh) entries.emplace_back(Value::string(name), std::move(value));
    else entries[it->second].second = std::move(value);
  };
  try {
    // transformers: {**special_tokens_map, **kwargs}, then messages/tools/documents/
    // add_generation_prompt as named arguments of render().
    if (!inputs.bos_token.empty()) set("bos_token", Value::string(inputs.bos_token));
    if (!inputs.eos_token.empty()) set("eos_token", Value::string(inputs.eos_token));
    if (inputs.extra_kwargs.is_object()) {
      entries.reserve(inputs.extra_kwargs.size() + 6);
      for (auto it = inputs.extra_kwargs.begin(); it != inputs.extra_kwargs.end(); ++it)
        set(it.key(), jinja::from_json(it.value()));
    }
    set("messages", jinja::from_json(inputs.messages));
    set("tools", jinja::from_json(inputs.tools));
    set("documents", jinja::from_json(inputs.documents));
    set("add_generation_prompt", Value::boolean(inputs.add_generation_prompt));
  } catch (const jinja::TemplateError& e) {
    throw Error(e.what(), ErrorKind::kInvalidArgument);
  }
  return tmpl.render_value(context);
}

}  // namespace vllm
