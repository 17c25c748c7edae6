// pythonic (Llama 3.2/4, ToolACE...): the whole output, stripped, is a Python list of calls
//
//   [get_weather(city="Paris", days=3), search(terms=['a', 'b'], filters={"k": None})]
//
// with keyword arguments only, whose values are Python literals; they become JSON arguments
// as json.dumps writes them (what vLLM returns). Any other output is content. A call is
// announced once its name and '(' are seen, and its arguments stream as they are converted.
// Positional arguments are refused (vLLM silently drops them), and so are repeated keywords
// (a syntax error in Python).
#include <set>

#include "vllm/parsers/python_literal.h"
#include "vllm/parsers/tool_parser_base.h"

namespace vllm::parsers {
namespace {

using detail::is_space;
using detail::PythonLiteralToJson;

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

class PythonicToolParser final : public detail::StreamingToolParser {
 protected:
  void step(char c) override {
    block_add(c);
    switch (state_) {
      case State::kStart:
        if (is_space(c)) return;
        if (c == '[') {
          state_ = State::kListOpen;
          return;
        }
        return pass_through(block_text());  // not a list: plain text
      case State::kListOpen:
      case State::kListItem:
        if (is_space(c)) return;
        if (is_ident_start(c)) {
          name_.assign(1, c);
          state_ = State::kName;
          return;
        }
        if (c == ']' && state_ == State::kListItem) return end_list();  // [f(), ]
        return fail_block();  // [] or a list of something else
      case State::kName:
        if (is_ident_char(c)) {
          name_.push_back(c);
          return;
        }
        if (is_space(c)) {
          state_ = State::kAfterName;
          return;
        }
        [[fallthrough]];
      case State::kAfterName:
        if (is_space(c)) return;
        if (c != '(') return fail_block();  // e.g. [Note], or a dotted name
        out_.begin_call(make_tool_call_id(), name_);
        out_.arguments("{");
        keywords_.clear();
        block_commit();
        state_ = State::kKeyOrClose;
        return;
      case State::kKeyOrClose:
        if (is_space(c)) return;
        if (c == ')') return end_call();
        if (!is_ident_start(c)) return fail_block();  // positional arguments, *args, **kwargs
        key_.assign(1, c);
        state_ = State::kKey;
        return;
      case State::kKey:
        if (is_ident_char(c)) {
          key_.push_back(c);
          return;
        }
        if (is_space(c)) {
          state_ = State::kEquals;
          return;
        }
        [[fallthrough]];
      case State::kEquals:
        if (is_space(c)) return;
        if (c != '=' || !keywords_.insert(key_).second) return fail_block();
        // A keyword is a Python identifier: nothing in it needs escaping in JSON.
        out_.arguments(std::string(keywords_.size() > 1 ? ", " : "") + "\"" + key_ + "\": ");
        block_commit();
        value_ = PythonLiteralToJson();
        state_ = State::kValue;
        return;
      case State::kValue: {
        const auto status = value_.push(c);
        if (status == PythonLiteralToJson::Status::kError) return fail_block();
        // What is passed on: the block up to the value's bytes not yet wholly converted, and
        // (kDone: the value ended before c) c.
        emit_value(value_.pending_bytes() + (status == PythonLiteralToJson::Status::kDone ? 1 : 0));
        if (status == PythonLiteralToJson::Status::kMore) return;
        // The value ended before c: c is a ',' or ')' of the call, or whitespace.
        state_ = State::kAfterValue;
        [[fallthrough]];
      }
      case State::kAfterValue:
        if (is_space(c)) return;
        if (c == ',') {
          state_ = State::kKeyOrClose;
          return;
        }
        if (c == ')') return end_call();
        return fail_block();
      case State::kAfterCall:
        if (is_space(c)) return;
        if (c == ',') {
          state_ = State::kListItem;
          return;
        }
        if (c == ']') return end_list();
        return fail_block();
      case State::kAfterList:
        if (is_space(c)) return;
        return fail_block();  // text after the list: the output is not just calls
    }
  }

  void end() override {
    if (state_ == State::kStart) {
      out_.content(block_text());  // whitespace only
    } else if (state_ != State::kAfterList) {
      fail_block();  // the output ended inside the list
    }
  }

  std::unique_ptr<detail::StreamingToolParser> fresh() const override {
    return std::make_unique<PythonicToolParser>();
  }

 private:
  enum class State {
    kStart,
    kListOpen,
    kListItem,
    kName,
    kAfterName,
    kKeyOrClose,
    kKey,
    kEquals,
    kValue,
    kAfterValue,
    kAfterCall,
    kAfterList,
  };

  void emit_value(size_t uncommitted_tail) {
    out_.arguments(value_.take_output());
    block_commit(uncommitted_tail);
  }

  void end_call() {
    out_.arguments("}");
    out_.end_call();
    block_commit();
    state_ = State::kAfterCall;
  }

  void end_list() {
    block_commit();
    state_ = State::kAfterList;
  }

  State state_ = State::kStart;
  std::string name_;
  std::string key_;
  std::set<std::string> keywords_;
  PythonLiteralToJson value_;
};

}  // namespace

std::unique_ptr<ToolParser> make_pythonic_tool_parser() { return std::make_unique<PythonicToolParser>(); }

}  // namespace vllm::parsers
