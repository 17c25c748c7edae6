// An incremental, validating JSON scanner: text goes in one byte at a time, and each byte says
// where it stands in the document's structure. The tool parsers use it to find a call's name
// and the exact bytes of its arguments while the model is still writing them, without
// re-parsing a growing prefix on every token (vLLM completes partial JSON and re-parses).
//
// Strict RFC 8259 JSON: no NaN/Infinity, no comments, no trailing commas, no raw control
// characters inside strings, and \u escapes of surrogates only in pairs (a lone one has no
// UTF-8 form, and nlohmann::json, which the server reads arguments with, refuses it). Bytes
// >= 0x80 are accepted inside strings as they are (the text comes from a detokenizer; UTF-8
// validity is not this scanner's business).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vllm::parsers::detail {

class JsonScanner {
 public:
  // What a byte did. Levels: the top-level value is at level 0; the keys and values directly
  // inside a container at level L are at level L + 1.
  enum class Event : uint8_t {
    kNone,        // nothing of note: whitespace, string content, digits, ',' or ':'
    kValueStart,  // this byte begins a value (object, array, string, number, literal)
    kValueEnd,    // this byte ends a string, object or array value (numbers and literals end
                  // silently: their end is only known from the byte after them)
    kKeyEnd,      // this byte closes an object key; string() holds it, decoded
    kError,       // not JSON; the scanner stays failed
  };

  // The nesting this scanner accepts; deeper input is an error (the stack is explicit, this
  // only bounds memory).
  static constexpr size_t kMaxDepth = 512;

  // Feeds one byte. The top-level value must be an object or an array (a bare number at the
  // top could only end at end of input); whitespace before it is skipped. Once the top-level
  // value is complete (done()), any further byte is an error: the caller decides what may
  // follow it.
  Event push(char c);
  // The level of the value or key the last event was about.
  int level() const { return level_; }
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  // The last string completed (a key at kKeyEnd, a value at its kValueEnd), decoded to UTF-8.
  const std::string& string() const { return str_; }
  void reset() { *this = JsonScanner(); }

 private:
  enum class State : uint8_t {
    kValue,          // expecting a value
    kValueOrClose,   // just after '[': a value or ']'
    kKey,            // expecting a key string (after ',' in an object)
    kKeyOrClose,     // just after '{': a key or '}'
    kColon,          // after a key
    kCommaOrClose,   // after a value inside a container
    kString,         // inside a string
    kEscape,         // after a backslash in a string
    kUnicode,        // inside \uXXXX
    kNumber,         // inside a number (number_ holds the sub-state)
    kLiteral,        // inside true/false/null
    kDone,
    kError,
  };
  enum class Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kExp, kExpSign, kExpDigits };

  Event fail() {
    state_ = State::kError;
    return Event::kError;
  }
  Event start_value(char c);
  Event after_value();  // a value just ended: back to the enclosing container
  Event close_container(char c);
  void end_number_or_literal();
  void append_code_point(uint32_t cp);

  State state_ = State::kValue;
  Num number_ = Num::kInt;
  std::vector<char> stack_;  // open containers: '{' or '['
  int level_ = 0;
  bool string_is_key_ = false;
  std::string str_;
  const char* literal_rest_ = nullptr;  // the rest of "true"/"false"/"null" still expected
  uint32_t unicode_ = 0;
  int unicode_digits_ = 0;
  uint32_t pending_high_ = 0;  // a high surrogate waiting for its low half
};

// One tool-call object, {"name": "...", "arguments": {...}}, fed byte by byte from its '{'.
// "parameters" is accepted for "arguments" (Llama writes either); other keys are skipped. The
// arguments must be an object and are kept as the exact bytes the model wrote.
class JsonCallParser {
 public:
  enum class Status : uint8_t { kMore, kDone, kError };

  // require_arguments: a call without arguments is an error (else its arguments are "{}").
  explicit JsonCallParser(bool require_arguments = false) : require_arguments_(require_arguments) {}

  Status push(char c);
  // Time to announce the call: its name is known and its arguments have begun (or the object
  // ended). Waiting for the arguments keeps a plain JSON answer that happens to have a "name"
  // key from being announced as a call before it is one.
  bool ready() const { return !name_.empty() && (args_started_ || done_); }
  const std::string& name() const { return name_; }
  // The arguments' bytes scanned since the last call (all of them, in order, across calls).
  std::string take_arguments();

 private:
  enum class Field : uint8_t { kNone, kName, kArguments, kOther };
  Status fail() {
    failed_ = true;
    return Status::kError;
  }

  JsonScanner scanner_;
  bool require_arguments_;
  bool started_ = false;
  bool failed_ = false;
  bool done_ = false;
  Field field_ = Field::kNone;
  bool name_seen_ = false;
  bool args_started_ = false;
  bool args_active_ = false;
  std::string name_;
  std::string args_;
};

}  // namespace vllm::parsers::detail
