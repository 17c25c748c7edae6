// qwen3 (Qwen3, Qwen3.5): <think>reasoning</think>answer, as vLLM's Qwen3ReasoningParser:
//  - the model writes <think> itself (templates up to the 2507 release) or the template put it
//    in the prompt (Qwen3.5): either way the output starts in the reasoning, and a <think> in
//    it is dropped;
//  - with enable_thinking=false the template closes the reasoning in the prompt
//    ("<think>\n\n</think>\n\n"): then everything is content (starts_in_reasoning is false);
//  - without </think> everything is reasoning (a cut-off thought);
//  - Qwen3.5 may start a tool call inside its thinking without closing it: <tool_call>
//    followed (after whitespace) by "<function=" or "<function " ends the reasoning, and the
//    content starts at <tool_call>. A bare <tool_call> mentioned in the reasoning does not.
#include "vllm/parsers/reasoning_parser_base.h"

namespace vllm::parsers {
namespace {

constexpr std::string_view kToolCall = "<tool_call>";
constexpr std::string_view kFunction = "<function";

class Qwen3ReasoningParser final : public detail::ThinkReasoningParser {
 public:
  explicit Qwen3ReasoningParser(bool in_reasoning) : ThinkReasoningParser(in_reasoning), in_reasoning_(in_reasoning) {
    set_markers({std::string(kToolCall)});
  }

 protected:
  void step(char c) override {
    if (!pending_) return ThinkReasoningParser::step(c);
    // After <tool_call>: wait for whitespace and "<function" plus one byte to decide.
    held_.push_back(c);
    std::string_view after = std::string_view(held_).substr(kToolCall.size());
    while (!after.empty() && detail::is_space(after.front())) after.remove_prefix(1);
    if (after.size() <= kFunction.size() && kFunction.substr(0, after.size()) == after) return;
    if (after.size() > kFunction.size() && after.substr(0, kFunction.size()) == kFunction &&
        (detail::is_space(after[kFunction.size()]) || after[kFunction.size()] == '=')) {
      // A real tool call: the reasoning ended, the call is content (for the tool parser).
      pending_ = false;
      enter_content();
      out_.content(held_);
      held_.clear();
      return;
    }
    // Just the words <tool_call> in the reasoning: they and what followed are reasoning; the
    // bytes after the tag are looked at again (they may begin </think>).
    pending_ = false;
    out_.reasoning(kToolCall);
    const std::string rest = held_.substr(kToolCall.size());
    held_.clear();
    for (char r : rest) {
      if (reasoning_ended()) {
        out_.content(std::string_view(&r, 1));
      } else {
        step(r);
      }
    }
  }

  void on_marker(int index) override {
    if (index == 2) {
      pending_ = true;
      held_.assign(kToolCall);
      return;
    }
    ThinkReasoningParser::on_marker(index);
  }

  void end() override {
    if (pending_) out_.reasoning(held_);  // <tool_call> with no function after it
    ThinkReasoningParser::end();
  }

  std::unique_ptr<StreamingReasoningParser> fresh() const override {
    return std::make_unique<Qwen3ReasoningParser>(in_reasoning_);
  }

 private:
  bool in_reasoning_;
  bool pending_ = false;
  std::string held_;
};

}  // namespace

std::unique_ptr<ReasoningParser> make_qwen3_reasoning_parser(std::string_view prompt_text) {
  return std::make_unique<Qwen3ReasoningParser>(!detail::prompt_ends_with(prompt_text, "</think>"));
}

}  // namespace vllm::parsers
