// hermes (Hermes 2 Pro, Qwen2.5, Qwen3): calls are blocks
//
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
//
// possibly several, possibly after some text. Content is the text before the first block, as
// vLLM returns it, plus any text other than whitespace between or after blocks (vLLM drops
// that; dropping what the model said seems worse than keeping it). The last block may lack its
// </tool_call> (vLLM accepts that too). Arguments are the exact JSON text the model wrote.
#include "vllm/parsers/tool_parser_base.h"

namespace vllm::parsers {
namespace {

using detail::is_space;
using detail::JsonCallParser;

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

class HermesToolParser final : public detail::JsonToolParser {
 protected:
  void step(char c) override {
    switch (state_) {
      case State::kText: {
        std::string released;
        const int m = open_.push(c, released);
        out_.content(released);
        if (m >= 0) {
          block_clear();
          for (char t : kOpen) block_add(t);
          state_ = State::kBlockStart;
        }
        return;
      }
      case State::kBlockStart:
        block_add(c);
        if (is_space(c)) return;
        if (c != '{') return fail_block();
        begin_json_call();
        state_ = State::kJson;
        return push_json(c);
      case State::kJson:
        block_add(c);
        return push_json(c);
      case State::kAfterJson: {
        block_add(c);
        if (close_.held().empty() && is_space(c)) return;
        std::string released;
        const int m = close_.push(c, released);
        if (!released.empty()) return fail_block();  // something other than </tool_call>
        if (m >= 0) {
          block_clear();
          state_ = State::kText;
        }
        return;
      }
    }
  }

  void end() override {
    switch (state_) {
      case State::kText:
        out_.content(open_.flush());
        return;
      case State::kAfterJson:
        // A complete call whose </tool_call> never came: accepted, unless a part of the tag is
        // all there is.
        if (!close_.flush().empty()) fail_block();
        return;
      case State::kBlockStart:
      case State::kJson:
        fail_block();  // the output ended inside a call
        return;
    }
  }

  std::unique_ptr<detail::StreamingToolParser> fresh() const override {
    return std::make_unique<HermesToolParser>();
  }

 private:
  void push_json(char c) {
    if (push_json_call(c) == JsonCallParser::Status::kDone) state_ = State::kAfterJson;
  }

  enum class State { kText, kBlockStart, kJson, kAfterJson };
  State state_ = State::kText;
  detail::MarkerMatcher open_{{std::string(kOpen)}};
  detail::MarkerMatcher close_{{std::string(kClose)}};
};

}  // namespace

std::unique_ptr<ToolParser> make_hermes_tool_parser() { return std::make_unique<HermesToolParser>(); }

}  // namespace vllm::parsers
