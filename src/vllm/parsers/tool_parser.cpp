#include <random>

#include "vllm/core/error.h"
#include "vllm/parsers/tool_parser_base.h"

namespace vllm::parsers {

namespace {

std::mt19937_64& id_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

struct NamedToolParser {
  const char* name;
  std::unique_ptr<ToolParser> (*make)();
};

// vLLM's --tool-call-parser names (llama4_json is vLLM's second name for the same parser).
constexpr NamedToolParser kToolParsers[] = {
    {"hermes", make_hermes_tool_parser},
    {"llama3_json", make_llama3_json_tool_parser},
    {"llama4_json", make_llama3_json_tool_parser},
    {"mistral", make_mistral_tool_parser},
    {"pythonic", make_pythonic_tool_parser},
};

}  // namespace

std::string make_tool_call_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "chatcmpl-tool-";
  auto& rng = id_rng();
  for (int i = 0; i < 2; ++i) {
    uint64_t bits = rng();
    for (int k = 0; k < 16; ++k, bits >>= 4) id.push_back(kHex[bits & 0xF]);
  }
  return id;
}

std::string make_mistral_tool_call_id() {
  static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::uniform_int_distribution<int> pick(0, 61);
  std::string id;
  for (int i = 0; i < 9; ++i) id.push_back(kAlnum[pick(id_rng())]);
  return id;
}

std::vector<std::string> tool_parser_names() {
  std::vector<std::string> names;
  for (const auto& p : kToolParsers) names.emplace_back(p.name);
  return names;
}

std::unique_ptr<ToolParser> make_tool_parser(std::string_view name) {
  for (const auto& p : kToolParsers)
    if (name == p.name) return p.make();
  std::string valid;
  for (const auto& p : kToolParsers) valid += std::string(valid.empty() ? "" : ", ") + p.name;
  throw Error("unknown tool call parser '" + std::string(name) + "' (valid: " + valid + ")");
}

namespace detail {

void ToolDeltaBuilder::content(std::string_view s) {
  if (s.empty()) return;
  if (in_gap_) {
    bool all_space = true;
    for (char c : s) all_space = all_space && is_space(c);
    if (all_space) {
      gap_.append(s);
      return;
    }
    std::string text = std::move(gap_);
    gap_.clear();
    in_gap_ = false;
    text.append(s);
    emit_content(text);
    return;
  }
  emit_content(s);
}

void ToolDeltaBuilder::emit_content(std::string_view s) { out_.content += content_hold_.push(s); }

void ToolDeltaBuilder::begin_call(std::string id, std::string name) {
  if (in_call_) end_call();
  gap_.clear();
  in_gap_ = false;
  out_.content += content_hold_.flush();  // the text before the call is complete now
  ++index_;
  in_call_ = true;
  ToolCallDelta d;
  d.index = index_;
  d.id = std::move(id);
  d.name = std::move(name);
  out_.tool_calls.push_back(std::move(d));
}

void ToolDeltaBuilder::arguments(std::string_view s) {
  if (!in_call_ || s.empty()) return;
  emit_arguments(args_hold_.push(s));
}

void ToolDeltaBuilder::emit_arguments(std::string_view s) {
  if (s.empty()) return;
  if (!out_.tool_calls.empty() && out_.tool_calls.back().index == index_) {
    out_.tool_calls.back().arguments.append(s);
    return;
  }
  ToolCallDelta d;
  d.index = index_;
  d.arguments.assign(s);
  out_.tool_calls.push_back(std::move(d));
}

void ToolDeltaBuilder::end_call() {
  if (!in_call_) return;
  emit_arguments(args_hold_.flush());
  in_call_ = false;
  in_gap_ = true;
  gap_.clear();
}

void ToolDeltaBuilder::leave_gap() {
  if (!in_gap_) return;
  in_gap_ = false;
  emit_content(gap_);
  gap_.clear();
}

void ToolDeltaBuilder::flush() {
  end_call();
  gap_.clear();
  out_.content += content_hold_.flush();
}

DeltaMessage ToolDeltaBuilder::take() {
  DeltaMessage m;
  std::swap(m, out_);
  return m;
}

DeltaMessage StreamingToolParser::feed(std::string_view delta) {
  if (finished_) return {};
  for (size_t i = 0; i < delta.size(); ++i) {
    if (passthrough_) {
      out_.content(delta.substr(i));
      break;
    }
    step(delta[i]);
  }
  return out_.take();
}

DeltaMessage StreamingToolParser::finish() {
  if (!finished_) {
    finished_ = true;
    if (!passthrough_) end();
    out_.flush();
  }
  return out_.take();
}

void StreamingToolParser::fail_block() {
  malformed_ = true;
  out_.end_call();
  out_.leave_gap();
  pass_through(std::string_view(raw_).substr(committed_));
}

void StreamingToolParser::pass_through(std::string_view held) {
  out_.content(held);
  block_clear();
  passthrough_ = true;
}

JsonCallParser::Status JsonToolParser::push_json_call(char c) {
  const JsonCallParser::Status status = call_.push(c);
  if (status == JsonCallParser::Status::kError) {
    fail_block();
    return status;
  }
  if (!announced_ && call_.ready()) {
    out_.begin_call(new_call_id(), call_.name());
    announced_ = true;
    block_commit();
  }
  if (announced_) {
    const std::string args = call_.take_arguments();
    if (!args.empty()) {
      out_.arguments(args);
      block_commit();
    }
  }
  if (status == JsonCallParser::Status::kDone) {
    out_.end_call();
    block_commit();
  }
  return status;
}

ExtractedToolCalls StreamingToolParser::extract(std::string_view text) {
  auto parser = fresh();
  DeltaMessage pieces[2] = {parser->feed(text), parser->finish()};
  ExtractedToolCalls result;
  if (parser->malformed_) {
    result.content.assign(text);
    return result;
  }
  for (auto& m : pieces) {
    result.content += m.content;
    for (auto& d : m.tool_calls) {
      if (d.index >= static_cast<int>(result.calls.size())) {
        result.calls.push_back({d.id.value_or(""), d.name.value_or(""), ""});
      }
      result.calls[static_cast<size_t>(d.index)].arguments += d.arguments;
    }
  }
  result.tools_called = !result.calls.empty();
  return result;
}

}  // namespace detail
}  // namespace vllm::parsers
