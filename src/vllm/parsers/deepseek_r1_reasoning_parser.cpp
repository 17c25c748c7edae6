// deepseek_r1: <think>reasoning</think>answer. DeepSeek-R1's template ends the prompt with
// "<think>\n", so the output usually has only </think>. The <think>...</think> logic is shared
// with qwen3 (ThinkReasoningParser).
#include "vllm/parsers/reasoning_parser_base.h"

namespace vllm::parsers {

namespace detail {

ThinkReasoningParser::ThinkReasoningParser(bool in_reasoning) {
  if (!in_reasoning) enter_content();
  set_markers({});
}

bool ThinkReasoningParser::starts_in_reasoning(std::string_view prompt_text) const {
  return !prompt_ends_with(prompt_text, end_marker());
}

void ThinkReasoningParser::set_markers(std::vector<std::string> extra) {
  extra_markers_ = std::move(extra);
  // Indices are stable: a dropped <think> leaves an empty marker, which never matches.
  std::vector<std::string> markers = {"</think>", think_dropped_ ? "" : "<think>"};
  markers.insert(markers.end(), extra_markers_.begin(), extra_markers_.end());
  matcher_.set_markers(std::move(markers));
}

void ThinkReasoningParser::step(char c) {
  std::string released;
  const int m = matcher_.push(c, released);
  out_.reasoning(released);
  if (m >= 0) on_marker(m);
}

void ThinkReasoningParser::on_marker(int index) {
  if (index == 0) {
    enter_content();
  } else if (index == 1) {
    // The model opened the reasoning itself: drop the tag, once (a later <think> is text).
    think_dropped_ = true;
    set_markers(extra_markers_);
  }
}

void ThinkReasoningParser::end() { out_.reasoning(matcher_.flush()); }

}  // namespace detail

namespace {

class DeepSeekR1ReasoningParser final : public detail::ThinkReasoningParser {
 public:
  explicit DeepSeekR1ReasoningParser(bool in_reasoning) : ThinkReasoningParser(in_reasoning), in_reasoning_(in_reasoning) {}

 protected:
  std::unique_ptr<StreamingReasoningParser> fresh() const override {
    return std::make_unique<DeepSeekR1ReasoningParser>(in_reasoning_);
  }

 private:
  bool in_reasoning_;
};

}  // namespace

std::unique_ptr<ReasoningParser> make_deepseek_r1_reasoning_parser(std::string_view prompt_text) {
  return std::make_unique<DeepSeekR1ReasoningParser>(!detail::prompt_ends_with(prompt_text, "</think>"));
}

}  // namespace vllm::parsers
