// llama3_json (Llama 3.1/3.2 with JSON tool calling; llama4_json is the same): the output is
// calls when it starts, after optional whitespace, with <|python_tag|> or a JSON object
//
//   <|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": ...}
//
// several objects joined by ';'. "parameters" and "arguments" are both accepted; an object
// without either, or without a name, is not a call (a JSON answer is content). Output that
// starts any other way is content throughout, as vLLM streams it; text after the calls is
// content. <|python_tag|> is a special token: the server must keep special tokens.
#include "vllm/parsers/tool_parser_base.h"

namespace vllm::parsers {
namespace {

using detail::is_space;
using detail::JsonCallParser;

constexpr std::string_view kPythonTag = "<|python_tag|>";

class Llama3JsonToolParser final : public detail::JsonToolParser {
 public:
  bool wants_special_tokens() const override { return true; }

 protected:
  void step(char c) override {
    switch (state_) {
      case State::kStart:
        block_add(c);
        if (is_space(c)) return;
        if (c == '<') {
          state_ = State::kTag;
          tag_pos_ = 1;
          return;
        }
        if (c == '{') return start_call(c);
        return pass_through(block_text());  // plain text
      case State::kTag:
        block_add(c);
        if (c != kPythonTag[tag_pos_]) return pass_through(block_text());
        if (++tag_pos_ == kPythonTag.size()) state_ = State::kAfterTag;
        return;
      case State::kAfterTag:
      case State::kAfterSemicolon:
        block_add(c);
        if (is_space(c)) return;
        if (c == '{') return start_call(c);
        return fail_block();  // e.g. Llama's built-in tools: <|python_tag|>brave_search.call(...)
      case State::kJson:
        block_add(c);
        if (push_json_call(c) == JsonCallParser::Status::kDone) {
          block_clear();
          state_ = State::kAfterCall;
        }
        return;
      case State::kAfterCall:
        if (is_space(c)) return out_.content(std::string_view(&c, 1));  // dropped unless text follows
        if (c == ';') {
          block_add(c);
          state_ = State::kAfterSemicolon;
          return;
        }
        return pass_through(std::string_view(&c, 1));  // text after the calls
    }
  }

  void end() override {
    switch (state_) {
      case State::kStart:
      case State::kTag:
        out_.content(block_text());  // whitespace only, or a part of the tag
        return;
      case State::kAfterTag:
      case State::kJson:
        fail_block();
        return;
      case State::kAfterCall:
      case State::kAfterSemicolon:  // a trailing ';' is tolerated, as vLLM does
        return;
    }
  }

  std::unique_ptr<detail::StreamingToolParser> fresh() const override {
    return std::make_unique<Llama3JsonToolParser>();
  }

 private:
  void start_call(char c) {
    begin_json_call(/*require_arguments=*/true);
    state_ = State::kJson;
    if (push_json_call(c) == JsonCallParser::Status::kDone) state_ = State::kAfterCall;
  }

  enum class State { kStart, kTag, kAfterTag, kJson, kAfterCall, kAfterSemicolon };
  State state_ = State::kStart;
  size_t tag_pos_ = 0;
};

}  // namespace

std::unique_ptr<ToolParser> make_llama3_json_tool_parser() { return std::make_unique<Llama3JsonToolParser>(); }

}  // namespace vllm::parsers
