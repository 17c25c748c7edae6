// granite (IBM Granite 3.2 with thinking=True): no special tokens, but phrases:
//
//   Here is my thought process: ... Here is my response: ...
//
// "Here's" is accepted for "Here is" in both (vLLM saw quantized models write it). As vLLM
// streams it, the reasoning must start the output; an output that starts otherwise is all
// content. Without the response phrase everything after the thought-process phrase is
// reasoning (vLLM's streaming does this; its extract() instead returns the whole text as
// content, which would make streamed and complete results disagree).
#include "vllm/parsers/reasoning_parser_base.h"

namespace vllm::parsers {
namespace {

const std::vector<std::string> kThinkStarts = {"Here is my thought process:", "Here's my thought process:"};
const std::vector<std::string> kResponseStarts = {"Here is my response:", "Here's my response:"};

class GraniteReasoningParser final : public detail::StreamingReasoningParser {
 public:
  std::string start_marker() const override { return kThinkStarts[0]; }
  std::string end_marker() const override { return kResponseStarts[0]; }
  // Granite reasons only when asked to (the template's thinking=True adds a system prompt that
  // names the phrases); the parser itself does not depend on the prompt.
  bool starts_in_reasoning(std::string_view prompt_text) const override {
    if (prompt_text.find("my thought process") == std::string_view::npos) return false;
    for (const auto& r : kResponseStarts)
      if (detail::prompt_ends_with(prompt_text, r)) return false;
    return true;
  }

 protected:
  void step(char c) override {
    if (!thinking_) {
      // Still reading the start of the output: is it the thought-process phrase?
      start_.push_back(c);
      for (const auto& s : kThinkStarts) {
        if (start_ == s) {
          thinking_ = true;
          start_.clear();
          return;
        }
      }
      for (const auto& s : kThinkStarts)
        if (s.compare(0, start_.size(), start_) == 0) return;
      out_.content(start_);
      start_.clear();
      enter_content();
      return;
    }
    std::string released;
    const int m = response_.push(c, released);
    out_.reasoning(released);
    if (m >= 0) enter_content();
  }

  void end() override {
    out_.content(start_);
    out_.reasoning(response_.flush());
  }

  std::unique_ptr<StreamingReasoningParser> fresh() const override {
    return std::make_unique<GraniteReasoningParser>();
  }

 private:
  bool thinking_ = false;
  std::string start_;
  detail::MarkerMatcher response_{kResponseStarts};
};

}  // namespace

std::unique_ptr<ReasoningParser> make_granite_reasoning_parser(std::string_view) {
  return std::make_unique<GraniteReasoningParser>();
}

}  // namespace vllm::parsers
