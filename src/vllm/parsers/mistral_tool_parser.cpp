// mistral: calls follow the [TOOL_CALLS] special token as a JSON list
//
//   [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": ...}]
//
// (Mistral 7B v0.3, Nemo, Small...). The newer tokenizers' form, a name and its arguments per
// [TOOL_CALLS] (`[TOOL_CALLS]get_weather{"city": "Paris"}`, or with [ARGS] between them), is
// accepted as well. Content is the text before [TOOL_CALLS], plus any text other than
// whitespace after the calls. Call ids are 9 letters and digits, as mistral_common requires.
// [TOOL_CALLS] is a special token: the server must keep special tokens.
#include "vllm/parsers/tool_parser_base.h"

namespace vllm::parsers {
namespace {

using detail::is_space;
using detail::JsonCallParser;
using detail::JsonScanner;

constexpr std::string_view kToolCalls = "[TOOL_CALLS]";
constexpr std::string_view kArgs = "[ARGS]";

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

class MistralToolParser final : public detail::JsonToolParser {
 public:
  bool wants_special_tokens() const override { return true; }

 protected:
  std::string new_call_id() const override { return make_mistral_tool_call_id(); }

  void step(char c) override {
    switch (state_) {
      case State::kText: {
        std::string released;
        const int m = bot_.push(c, released);
        out_.content(released);
        if (m >= 0) {
          block_clear();
          for (char t : kToolCalls) block_add(t);
          state_ = State::kAfterTag;
        }
        return;
      }
      case State::kAfterTag:
        block_add(c);
        if (is_space(c)) return;
        if (c == '[') {
          state_ = State::kListOpen;
          return;
        }
        if (is_name_char(c)) {
          name_.assign(1, c);
          state_ = State::kName;
          return;
        }
        return fail_block();
      // The JSON list form.
      case State::kListOpen:
      case State::kListItem:
        block_add(c);
        if (is_space(c)) return;
        if (c == '{') {
          begin_json_call();
          state_ = State::kJson;
          return push_json(c);
        }
        if (c == ']' && state_ == State::kListOpen) return end_block();  // no calls
        return fail_block();
      case State::kJson:
        block_add(c);
        return push_json(c);
      case State::kListNext:
        block_add(c);
        if (is_space(c)) return;
        if (c == ',') {
          state_ = State::kListItem;
          return;
        }
        if (c == ']') return end_block();
        return fail_block();
      // The name-then-arguments form.
      case State::kName:
        block_add(c);
        if (is_name_char(c)) {
          name_.push_back(c);
          return;
        }
        if (c == '[') {
          state_ = State::kArgsTag;
          tag_pos_ = 1;
          return;
        }
        if (c == '{') return start_args(c);
        return fail_block();
      case State::kArgsTag:
        block_add(c);
        if (tag_pos_ == kArgs.size()) {
          if (c == '{') return start_args(c);
          return fail_block();
        }
        if (c != kArgs[tag_pos_]) return fail_block();
        ++tag_pos_;
        return;
      case State::kArgs:
        block_add(c);
        return push_args(c);
    }
  }

  void end() override {
    if (state_ == State::kText) {
      out_.content(bot_.flush());
      return;
    }
    fail_block();  // the output ended inside the calls
  }

  std::unique_ptr<detail::StreamingToolParser> fresh() const override {
    return std::make_unique<MistralToolParser>();
  }

 private:
  enum class State { kText, kAfterTag, kListOpen, kListItem, kJson, kListNext, kName, kArgsTag, kArgs };

  void push_json(char c) {
    if (push_json_call(c) == JsonCallParser::Status::kDone) state_ = State::kListNext;
  }

  void start_args(char c) {
    out_.begin_call(new_call_id(), name_);
    scanner_.reset();
    state_ = State::kArgs;
    push_args(c);
  }

  // A byte of the arguments object (already block_add()ed): it is the arguments' text.
  void push_args(char c) {
    if (scanner_.push(c) == JsonScanner::Event::kError) return fail_block();
    out_.arguments(std::string_view(&c, 1));
    block_commit();
    if (scanner_.done()) {
      out_.end_call();
      end_block();
    }
  }

  // The calls after this [TOOL_CALLS] are complete: back to text (another [TOOL_CALLS] may come).
  void end_block() {
    block_clear();
    state_ = State::kText;
  }

  State state_ = State::kText;
  detail::MarkerMatcher bot_{{std::string(kToolCalls)}};
  std::string name_;
  size_t tag_pos_ = 0;
  JsonScanner scanner_;
};

}  // namespace

std::unique_ptr<ToolParser> make_mistral_tool_parser() { return std::make_unique<MistralToolParser>(); }

}  // namespace vllm::parsers
