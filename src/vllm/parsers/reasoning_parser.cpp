#include "vllm/core/error.h"
#include "vllm/parsers/reasoning_parser_base.h"

namespace vllm::parsers {

namespace {

struct NamedReasoningParser {
  const char* name;
  std::unique_ptr<ReasoningParser> (*make)(std::string_view prompt_text);
};

// vLLM's --reasoning-parser names.
constexpr NamedReasoningParser kReasoningParsers[] = {
    {"deepseek_r1", make_deepseek_r1_reasoning_parser},
    {"granite", make_granite_reasoning_parser},
    {"qwen3", make_qwen3_reasoning_parser},
};

}  // namespace

std::vector<std::string> reasoning_parser_names() {
  std::vector<std::string> names;
  for (const auto& p : kReasoningParsers) names.emplace_back(p.name);
  return names;
}

std::unique_ptr<ReasoningParser> make_reasoning_parser(std::string_view name, std::string_view prompt_text) {
  for (const auto& p : kReasoningParsers)
    if (name == p.name) return p.make(prompt_text);
  std::string valid;
  for (const auto& p : kReasoningParsers) valid += std::string(valid.empty() ? "" : ", ") + p.name;
  throw Error("unknown reasoning parser '" + std::string(name) + "' (valid: " + valid + ")");
}

namespace detail {

std::pair<std::optional<std::string>, std::optional<std::string>> StreamingReasoningParser::extract(
    std::string_view text) {
  auto parser = fresh();
  DeltaMessage a = parser->feed(text);
  DeltaMessage b = parser->finish();
  std::string reasoning = a.reasoning + b.reasoning;
  std::string content = a.content + b.content;
  std::pair<std::optional<std::string>, std::optional<std::string>> result;
  if (!reasoning.empty()) result.first = std::move(reasoning);
  if (!content.empty()) result.second = std::move(content);
  return result;
}

DeltaMessage StreamingReasoningParser::feed(std::string_view delta) {
  if (finished_) return {};
  for (size_t i = 0; i < delta.size(); ++i) {
    if (in_content_) {
      out_.content(delta.substr(i));
      break;
    }
    step(delta[i]);
  }
  return out_.take();
}

DeltaMessage StreamingReasoningParser::finish() {
  if (!finished_) {
    finished_ = true;
    if (!in_content_) end();
    out_.flush();
  }
  return out_.take();
}

bool prompt_ends_with(std::string_view prompt_text, std::string_view marker) {
  while (!prompt_text.empty() && is_space(prompt_text.back())) prompt_text.remove_suffix(1);
  return prompt_text.size() >= marker.size() && prompt_text.substr(prompt_text.size() - marker.size()) == marker;
}

}  // namespace detail
}  // namespace vllm::parsers
