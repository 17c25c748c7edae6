// Python literal syntax to JSON, one byte at a time: the pythonic tool parser streams a call's
// keyword arguments as JSON while the model is still writing them as Python.
//
// Accepted: str ('...', "...", '''...''', """...""", with the r and u prefixes and Python's
// escapes), int (decimal, 0x, 0o, 0b, underscores), float, True/False/None, list, tuple (as a
// list), dict (str, number, True/False/None keys, written as JSON strings the way json.dumps
// writes them), and a sign before a number. The JSON is written the way Python's
// json.dumps(..., ensure_ascii=False) writes the same value (", " and ": " separators, floats
// as repr()), so that the arguments match vLLM's. Anything else (names, calls, operators,
// sets, bytes, f-strings, comments) is an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vllm::parsers::detail {

class PythonLiteralToJson {
 public:
  enum class Status : uint8_t {
    kMore,   // consumed; the value goes on (or has just ended with this byte)
    kDone,   // the value ended before this byte, which was NOT consumed (it is the caller's)
    kError,  // not a literal; stays failed
  };
  static constexpr size_t kMaxDepth = 512;
  // Python refuses to turn longer ints into text (sys.set_int_max_str_digits' default).
  static constexpr size_t kMaxNumberLength = 4300;

  // Feeds one byte of the value (leading whitespace is skipped). A value's end is only known
  // from the byte after it (is '' an empty string or the start of '''?), which is then
  // returned with kDone.
  Status push(char c);
  // How many of the bytes consumed so far are not wholly in the output yet: those of a token
  // being read (a string's text streams out, but the string is not done), or of a held
  // parenthesis or dict key. A caller that must hand back unconverted text uses it.
  size_t pending_bytes() const { return pending_bytes_; }
  // JSON text produced since the last call. Text inside a parenthesis is held until it is
  // known to be a tuple or just a grouped value.
  std::string take_output();

 private:
  enum class Tok : uint8_t {
    kNone,
    kSign,       // after a unary + or -
    kNumber,
    kIdent,      // True/False/None, or a string prefix
    kStrOpen1,   // after an opening quote
    kStrOpen2,   // after two quotes: an empty string, or the start of a triple-quoted one
    kString,
    kEscape,     // after a backslash
    kRawEscape,  // after a backslash in a raw string (it keeps the next byte from ending it)
    kHexEscape,  // \x, \u or \U digits
    kOctEscape,  // \ooo digits
  };
  enum class Expect : uint8_t { kItemOrClose, kCommaOrClose, kKeyOrClose, kColon, kValue };
  struct Frame {
    char open;  // '[', '(' or '{'
    Expect expect;
    int count = 0;       // items (or keys) begun
    bool tuple = false;  // '(' only: a ',' showed it is a tuple
  };

  Status fail() {
    failed_ = true;
    return Status::kError;
  }
  Status consume(char c);
  Status structural(char c);
  Status start_value(char c);
  Status close(char c);
  void value_done();
  bool finish_number();
  bool finish_ident();
  void string_byte(char c);
  bool string_code_point(uint32_t cp);
  void emit(std::string_view s);

  std::vector<Frame> stack_;
  std::vector<std::string> buffers_;  // held output: open parentheses, dict keys
  std::string out_;
  size_t pending_bytes_ = 0;
  Tok tok_ = Tok::kNone;
  bool complete_ = false;  // the top-level value has ended
  bool failed_ = false;
  std::string token_;      // a number or identifier being read
  bool negative_ = false;  // sign of the number being read
  char quote_ = 0;
  bool triple_ = false;
  bool raw_ = false;
  int quote_run_ = 0;  // closing quotes seen in a row in a triple-quoted string
  uint32_t escape_value_ = 0;
  int escape_digits_ = 0;
  int escape_need_ = 0;
};

// repr() of a Python float: the shortest text that reads back as the same double, in fixed
// notation for exponents -4..15 and scientific otherwise ("1e+16", "1.5e-07", "100.0").
// nullopt for inf and nan, which have no JSON form.
std::optional<std::string> python_float_repr(double v);

}  // namespace vllm::parsers::detail
