// What the tool parsers share: the output side of streaming (content and call pieces, with
// UTF-8 holdback), and extract() defined as streaming the whole text through a fresh parser, so
// that streamed and non-streamed results agree by construction.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "vllm/parsers/json_scanner.h"
#include "vllm/parsers/text_stream.h"
#include "vllm/parsers/tool_parser.h"

namespace vllm::parsers::detail {

// Collects what one feed() produces. Content and each call's arguments are cut before an
// incomplete UTF-8 sequence; whitespace-only text between or after calls is dropped (it is the
// model's line breaks around its tool-call blocks, not something it said), while other text
// there is kept with its whitespace.
class ToolDeltaBuilder {
 public:
  void content(std::string_view s);
  // Starts call number calls_begun(): its first delta carries the id and the whole name.
  void begin_call(std::string id, std::string name);
  void arguments(std::string_view s);
  void end_call();
  // Stops dropping whitespace after a call: what it held becomes content (a malformed block
  // after it passes on all its text).
  void leave_gap();
  // End of output: everything held back, except whitespace after the last call.
  void flush();
  DeltaMessage take();
  int calls_begun() const { return index_ + 1; }

 private:
  void emit_content(std::string_view s);
  void emit_arguments(std::string_view s);

  DeltaMessage out_;
  Utf8Holdback content_hold_;
  Utf8Holdback args_hold_;
  int index_ = -1;
  bool in_call_ = false;
  bool in_gap_ = false;  // after a call, until text other than whitespace comes
  std::string gap_;
};

// Base of the tool parsers: subclasses consume one byte at a time (step) and say when the
// output ends (end); feed/finish/extract are defined here.
//
// A subclass keeps the raw text of the tool-call block it is reading (block_add), and marks
// how much of it has been passed on in some form, as call name or arguments (block_commit). A
// block that turns out malformed (fail_block) passes the rest on as content, and so does
// everything after it: text is never lost.
class StreamingToolParser : public ToolParser {
 public:
  ExtractedToolCalls extract(std::string_view text) final;
  DeltaMessage feed(std::string_view delta) final;
  DeltaMessage finish() final;
  bool tools_called() const final { return out_.calls_begun() > 0; }

 protected:
  virtual void step(char c) = 0;
  virtual void end() = 0;
  // A parser in its initial state, of the same kind (extract() runs on one).
  virtual std::unique_ptr<StreamingToolParser> fresh() const = 0;

  void block_add(char c) { raw_.push_back(c); }
  // All of the block so far has been passed on; `except_last` bytes at its end have not.
  void block_commit(size_t except_last = 0) { committed_ = raw_.size() - except_last; }
  void block_clear() {
    raw_.clear();
    committed_ = 0;
  }
  const std::string& block_text() const { return raw_; }
  // The text is not a well-formed tool-call output: extract() returns it whole as content;
  // streaming passes on the block's uncommitted text, and all that follows, as content.
  void fail_block();
  // Everything from here on is content (plain text, no calls in it).
  void pass_through(std::string_view held);

  ToolDeltaBuilder out_;

 private:
  bool malformed_ = false;
  bool passthrough_ = false;
  bool finished_ = false;
  std::string raw_;
  size_t committed_ = 0;
};

// Base of the parsers whose calls are JSON objects {"name": ..., "arguments": {...}}.
class JsonToolParser : public StreamingToolParser {
 protected:
  void begin_json_call(bool require_arguments = false) {
    call_ = JsonCallParser(require_arguments);
    announced_ = false;
  }
  // Feeds c (already block_add()ed) to the current call: announces it once its name is known,
  // streams its arguments, ends it with the object. On kError the block has been failed.
  JsonCallParser::Status push_json_call(char c);
  virtual std::string new_call_id() const { return make_tool_call_id(); }

 private:
  JsonCallParser call_;
  bool announced_ = false;
};

}  // namespace vllm::parsers::detail

namespace vllm::parsers {
// The parsers, one file each.
std::unique_ptr<ToolParser> make_hermes_tool_parser();
std::unique_ptr<ToolParser> make_llama3_json_tool_parser();
std::unique_ptr<ToolParser> make_mistral_tool_parser();
std::unique_ptr<ToolParser> make_pythonic_tool_parser();
// Mistral's call ids: 9 letters and digits (mistral_common rejects anything else).
std::string make_mistral_tool_call_id();
}  // namespace vllm::parsers
