// What the reasoning parsers share: the output side of streaming (reasoning and content, with
// UTF-8 holdback), and extract() defined as streaming the whole text through a fresh parser,
// so that streamed and non-streamed results agree by construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/parsers/reasoning_parser.h"
#include "vllm/parsers/text_stream.h"

namespace vllm::parsers::detail {

class ReasoningDeltaBuilder {
 public:
  void reasoning(std::string_view s) {
    if (!s.empty()) out_.reasoning += reasoning_hold_.push(s);
  }
  void content(std::string_view s) {
    if (!s.empty()) out_.content += content_hold_.push(s);
  }
  void flush() {
    out_.reasoning += reasoning_hold_.flush();
    out_.content += content_hold_.flush();
  }
  DeltaMessage take() {
    DeltaMessage m;
    std::swap(m, out_);
    return m;
  }

 private:
  DeltaMessage out_;
  Utf8Holdback reasoning_hold_;
  Utf8Holdback content_hold_;
};

// Base of the reasoning parsers: subclasses consume one byte at a time (step) until the
// answer begins (enter_content), and say when the output ends (end).
class StreamingReasoningParser : public ReasoningParser {
 public:
  std::pair<std::optional<std::string>, std::optional<std::string>> extract(std::string_view text) final;
  DeltaMessage feed(std::string_view delta) final;
  DeltaMessage finish() final;
  bool reasoning_ended() const final { return in_content_; }

 protected:
  virtual void step(char c) = 0;
  virtual void end() = 0;
  // A parser in its initial state, of the same kind (extract() runs on one).
  virtual std::unique_ptr<StreamingReasoningParser> fresh() const = 0;
  // From here on everything is content (step is no longer called).
  void enter_content() { in_content_ = true; }

  ReasoningDeltaBuilder out_;

 private:
  bool in_content_ = false;
  bool finished_ = false;
};

// <think>...</think> (deepseek_r1, qwen3). Generation starts inside the reasoning (the chat
// template opened it, or the model opens it itself: a <think> before </think> is dropped);
// </think> ends it; without </think> everything is reasoning (a cut-off thought), as vLLM
// does. Text before such a <think> stays reasoning (vLLM drops it in extract() and streams it
// as reasoning: keeping it loses nothing and keeps the two in agreement).
class ThinkReasoningParser : public StreamingReasoningParser {
 public:
  explicit ThinkReasoningParser(bool in_reasoning);
  std::string start_marker() const override { return "<think>"; }
  std::string end_marker() const override { return "</think>"; }
  // False when the prompt already closed the reasoning: it ends with </think> (and whitespace),
  // as Qwen3's template does for enable_thinking=false. Only the prompt's end is looked at: a
  // </think> in an earlier turn says nothing about this one.
  bool starts_in_reasoning(std::string_view prompt_text) const override;

 protected:
  void step(char c) override;
  void end() override;
  // A marker was found: 0 is </think>, 1 is <think>; subclasses may add more.
  virtual void on_marker(int index);
  void set_markers(std::vector<std::string> extra);

  MarkerMatcher matcher_;
  bool think_dropped_ = false;
  std::vector<std::string> extra_markers_;
};

// Whether prompt_text, trimmed of trailing whitespace, ends with marker.
bool prompt_ends_with(std::string_view prompt_text, std::string_view marker);

}  // namespace vllm::parsers::detail

namespace vllm::parsers {
std::unique_ptr<ReasoningParser> make_deepseek_r1_reasoning_parser(std::string_view prompt_text);
std::unique_ptr<ReasoningParser> make_qwen3_reasoning_parser(std::string_view prompt_text);
std::unique_ptr<ReasoningParser> make_granite_reasoning_parser(std::string_view prompt_text);
}  // namespace vllm::parsers
