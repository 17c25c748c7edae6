#include "vllm/server/tool_calls.h"

#include <tuple>

#include "vllm/server/json_body.h"

namespace vllm::server {

namespace {

const ojson* function_of(const ojson& tool) {
  if (!tool.is_object()) return nullptr;
  auto fn = tool.find("function");
  return fn == tool.end() || !fn->is_object() ? nullptr : &*fn;
}

std::string parameters_text(const ojson& tool) {
  const ojson* fn = function_of(tool);
  if (fn && fn->contains("parameters") && (*fn)["parameters"].is_object()) return (*fn)["parameters"].dump();
  return R"({"type": "object"})";
}

}  // namespace

ojson parse_tools_list(const ojson& body) {
  auto tools_it = body.find("tools");
  if (tools_it == body.end() || tools_it->is_null()) return nullptr;
  if (!tools_it->is_array()) throw ApiError("tools must be a list of tools", "tools");
  if (tools_it->empty())
    throw ApiError("`tools` must not be an empty array. Either provide at least one tool or omit the field entirely.",
                   "tools");
  ojson tools = ojson::array();
  for (const auto& tool : *tools_it) {
    const ojson* f = function_of(tool);
    if (!f || !f->contains("name") || !(*f)["name"].is_string())
      throw ApiError("each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tools");
    // ChatCompletionToolsParam.model_dump(): type, then the function with its optional fields.
    ojson fn;
    fn["name"] = (*f)["name"];
    fn["description"] = f->contains("description") ? (*f)["description"] : ojson(nullptr);
    fn["parameters"] = f->contains("parameters") ? (*f)["parameters"] : ojson(nullptr);
    if (!fn["parameters"].is_null() && !fn["parameters"].is_object())
      throw ApiError("tools: function.parameters must be a JSON schema (an object)", "tools");
    // The function's other fields after those (its keys are unique: one pass, no lookups).
    for (auto it = f->begin(); it != f->end(); ++it)
      if (it.key() != "name" && it.key() != "description" && it.key() != "parameters")
        append_new_key(fn, it.key(), it.value());
    ojson t;
    t["type"] = "function";
    t["function"] = std::move(fn);
    tools.push_back(std::move(t));
  }
  return tools;
}

ToolRequest parse_tool_request(const ServingContext& ctx, const ojson& body) {
  ToolRequest r;
  r.tools = parse_tools_list(body);
  const bool has_tools = !r.tools.is_null();
  if (auto p = body.find("parallel_tool_calls"); p != body.end() && !p->is_null()) {
    if (!p->is_boolean()) throw ApiError("parallel_tool_calls must be a boolean", "parallel_tool_calls");
    r.parallel = p->get<bool>();
  }
  auto choice_it = body.find("tool_choice");
  const ojson choice = choice_it == body.end() || choice_it->is_null() ? ojson(has_tools ? "auto" : "none") : *choice_it;
  if (choice.is_string() && choice.get<std::string>() == "none") return r;
  if (!has_tools) throw ApiError("When using `tool_choice`, `tools` must be set.", "tool_choice");
  if (choice.is_string()) {
    const std::string c = choice.get<std::string>();
    if (c == "auto") {
      // vLLM: "auto" needs the server to know how to read tool calls out of the text.
      if (!ctx.config.enable_auto_tool_choice || ctx.config.tool_call_parser.empty())
        throw ApiError("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
                       "tool_choice");
      r.choice = ToolRequest::Choice::kAuto;
    } else if (c == "required") {
      r.choice = ToolRequest::Choice::kRequired;
    } else {
      throw ApiError("Invalid value for `tool_choice`: " + c +
                         "! Only named tools, \"none\", \"auto\" or \"required\" are supported.",
                     "tool_choice");
    }
    return r;
  }
  if (!choice.is_object())
    throw ApiError("Invalid value for `tool_choice`: " + json_excerpt(choice) +
                       "! Only named tools, \"none\", \"auto\" or \"required\" are supported.",
                   "tool_choice");
  const std::string usage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`";
  auto fn = choice.find("function");
  if (fn == choice.end() || !fn->is_object())
    throw ApiError("Invalid value for `function`: `" + (fn == choice.end() ? std::string("None") : json_excerpt(*fn)) +
                       "` in `tool_choice`! " + usage,
                   "tool_choice.function");
  if (!fn->contains("name")) throw ApiError("Expected field `name` in `function` in `tool_choice`! " + usage, "tool_choice.function.name");
  const ojson& name = (*fn)["name"];
  if (!name.is_string() || name.get<std::string>().empty())
    throw ApiError("Invalid `name` in `function`: `" + json_excerpt(name) + "` in `tool_choice`! " + usage,
                   "tool_choice.function.name");
  bool found = false;
  for (const auto& tool : r.tools) found |= tool["function"]["name"] == name;
  if (!found) throw ApiError("The tool specified in `tool_choice` does not match any of the specified `tools`", "tool_choice");
  r.choice = ToolRequest::Choice::kNamed;
  r.named = name.get<std::string>();
  return r;
}

std::optional<nlohmann::json> tool_choice_constraint(const ToolRequest& tools) {
  if (tools.choice == ToolRequest::Choice::kNamed) {
    for (const auto& tool : tools.tools)
      if (tool["function"]["name"] == tools.named) return nlohmann::json{{"json", parameters_text(tool)}};
    return std::nullopt;
  }
  if (tools.choice != ToolRequest::Choice::kRequired) return std::nullopt;
  // vLLM's _get_json_schema_from_tool: a list of calls, each one of the tools by name with its
  // parameters. Written as text so each schema keeps its property order (it orders the output).
  std::string any_of;
  for (const auto& tool : tools.tools) {
    const std::string name = nlohmann::json(tool["function"]["name"].get<std::string>()).dump();
    if (!any_of.empty()) any_of += ", ";
    any_of += R"({"type": "object", "properties": {"name": {"type": "string", "enum": [)" + name +
              R"(]}, "parameters": )" + parameters_text(tool) +
              R"(}, "required": ["name", "parameters"], "additionalProperties": false})";
  }
  std::string schema = R"({"type": "array", "minItems": 1, )";
  if (!tools.parallel) schema += R"("maxItems": 1, )";
  schema += R"("items": {"type": "object", "anyOf": [)" + any_of + "]}}";
  return nlohmann::json{{"json", schema}};
}

ReasoningStart reasoning_start(const parsers::ReasoningParser& parser, std::string_view prompt) {
  const std::string start = parser.start_marker(), end = parser.end_marker();
  if (parser.starts_in_reasoning(prompt)) return ReasoningStart::kInside;
  // The template closed an (empty) reasoning block at the end of the prompt: the answer follows
  // (Qwen3 with enable_thinking false renders "<think>\n\n</think>\n\n").
  const size_t last_end = prompt.rfind(end);
  if (last_end != std::string_view::npos) {
    const std::string_view tail = prompt.substr(last_end + end.size());
    if (tail.find_first_not_of(" \t\r\n") == std::string_view::npos) return ReasoningStart::kAfter;
  }
  return ReasoningStart::kMaybe;
}

void constrain_after_reasoning(const ServingContext& ctx, std::string_view prompt_text, nlohmann::json& so) {
  if (ctx.config.reasoning_parser.empty()) return;
  auto parser = parsers::make_reasoning_parser(ctx.config.reasoning_parser, prompt_text);
  const ReasoningStart where = reasoning_start(*parser, prompt_text);
  if (where == ReasoningStart::kAfter) return;
  so["reasoning"] = {{"start", parser->start_marker()}, {"end", parser->end_marker()},
                     {"open", where == ReasoningStart::kInside}};
}

ChatOutputParser::ChatOutputParser(const ServingContext& ctx, const ToolRequest& tools, std::string_view prompt_text,
                                   bool include_reasoning)
    : mode_(tools.choice), include_reasoning_(include_reasoning), named_(tools.named) {
  if (!ctx.config.reasoning_parser.empty()) {
    reasoning_ = parsers::make_reasoning_parser(ctx.config.reasoning_parser, prompt_text);
    if (reasoning_start(*reasoning_, prompt_text) == ReasoningStart::kAfter) reasoning_.reset();
  }
  if (mode_ == ToolRequest::Choice::kAuto) tool_parser_ = parsers::make_tool_parser(ctx.config.tool_call_parser);
}

bool ChatOutputParser::wants_special_tokens() const { return tool_parser_ && tool_parser_->wants_special_tokens(); }

ChatMessageParts ChatOutputParser::parse(std::string_view text) {
  ChatMessageParts m;
  std::optional<std::string> answer = std::string(text);
  if (reasoning_) std::tie(m.reasoning, answer) = reasoning_->extract(text);
  if (!include_reasoning_) m.reasoning.reset();
  const std::string a = answer.value_or("");
  switch (mode_) {
    case ToolRequest::Choice::kNone: m.content = answer; break;
    case ToolRequest::Choice::kAuto: {
      parsers::ExtractedToolCalls x = tool_parser_->extract(a);
      m.tool_calls = std::move(x.calls);
      if (!x.tools_called) m.content = answer;
      else if (!x.content.empty()) m.content = std::move(x.content);
      break;
    }
    case ToolRequest::Choice::kNamed:
      // The output is the arguments, constrained to the tool's schema.
      m.content = "";
      m.tool_calls.push_back({parsers::make_tool_call_id(), named_, a});
      break;
    case ToolRequest::Choice::kRequired: {
      // A JSON list of {"name", "parameters"}; cut short (max_tokens) it does not parse, and the
      // text is returned as content, as a parser returns what it can't read.
      const ojson calls = ojson::parse(a, nullptr, false);
      if (calls.is_discarded() || !calls.is_array()) {
        m.content = answer;
        break;
      }
      m.content = "";
      for (const auto& c : calls)
        if (c.is_object() && c.contains("name") && c["name"].is_string())
          m.tool_calls.push_back({parsers::make_tool_call_id(), c["name"].get<std::string>(),
                                  c.contains("parameters") ? c["parameters"].dump() : "{}"});
      break;
    }
  }
  return m;
}

parsers::DeltaMessage ChatOutputParser::feed(std::string_view delta) {
  if (!reasoning_) return answer_delta(delta, false);
  parsers::DeltaMessage d = reasoning_->feed(delta);
  if (!include_reasoning_) d.reasoning.clear();
  if (d.content.empty()) return d;
  parsers::DeltaMessage a = answer_delta(d.content, false);
  if (include_reasoning_) a.reasoning = std::move(d.reasoning);
  return a;
}

parsers::DeltaMessage ChatOutputParser::finish() {
  if (!reasoning_) return answer_delta({}, true);
  parsers::DeltaMessage d = reasoning_->finish();
  parsers::DeltaMessage a = answer_delta(d.content, true);
  if (include_reasoning_) a.reasoning = std::move(d.reasoning);
  return a;
}

parsers::DeltaMessage ChatOutputParser::answer_delta(std::string_view text, bool end) {
  parsers::DeltaMessage d;
  switch (mode_) {
    case ToolRequest::Choice::kNone: d.content = std::string(text); break;
    case ToolRequest::Choice::kAuto: {
      d = tool_parser_->feed(text);
      if (end) {
        parsers::DeltaMessage rest = tool_parser_->finish();
        d.content += rest.content;
        for (auto& c : rest.tool_calls) d.tool_calls.push_back(std::move(c));
      }
      for (const auto& c : d.tool_calls)
        if (c.name) ++calls_emitted_;
      break;
    }
    case ToolRequest::Choice::kNamed: {
      // One call: announced with its name first, then the constrained arguments as they come.
      parsers::ToolCallDelta c;
      if (named_id_.empty()) {
        named_id_ = parsers::make_tool_call_id();
        c.id = named_id_;
        c.name = named_;
        ++calls_emitted_;
      }
      c.arguments = std::string(text);
      if (c.id || !c.arguments.empty()) d.tool_calls.push_back(std::move(c));
      break;
    }
    case ToolRequest::Choice::kRequired: {
      // Each call of the list goes out whole once its element of the JSON list is complete: a
      // scan of the new text, carrying its state (depth, strings) from one delta to the next.
      const size_t from = answer_.size();
      answer_ += text;
      for (size_t i = from; i < answer_.size(); ++i) {
        const char ch = answer_[i];
        if (in_string_) {
          if (escaped_) escaped_ = false;
          else if (ch == '\\') escaped_ = true;
          else if (ch == '"') in_string_ = false;
          continue;
        }
        if (ch == '"') {
          in_string_ = true;
        } else if (ch == '[' || ch == '{') {
          if (++depth_ == 2) element_start_ = i;
        } else if ((ch == ']' || ch == '}') && depth_-- == 2) {
          const auto call = ojson::parse(answer_.substr(element_start_, i + 1 - element_start_), nullptr, false);
          if (call.is_object() && call.contains("name") && call["name"].is_string()) {
            parsers::ToolCallDelta c;
            c.index = calls_emitted_++;
            c.id = parsers::make_tool_call_id();
            c.name = call["name"].get<std::string>();
            c.arguments = call.contains("parameters") ? call["parameters"].dump() : "{}";
            d.tool_calls.push_back(std::move(c));
          }
        }
      }
      // A list cut short or unreadable: what was never a call goes out as content at the end.
      if (end && calls_emitted_ == 0) d.content = answer_;
      break;
    }
  }
  return d;
}

}  // namespace vllm::server
