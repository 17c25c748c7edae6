#include "vllm/parsers/json_scanner.h"

#include "vllm/parsers/text_stream.h"

namespace vllm::parsers::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void JsonScanner::append_code_point(uint32_t cp) {
  if (cp < 0x80) {
    str_.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    str_.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    str_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    str_.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    str_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    str_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    str_.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    str_.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    str_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    str_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

JsonScanner::Event JsonScanner::after_value() {
  state_ = stack_.empty() ? State::kDone : State::kCommaOrClose;
  return Event::kValueEnd;
}

void JsonScanner::end_number_or_literal() { state_ = stack_.empty() ? State::kDone : State::kCommaOrClose; }

JsonScanner::Event JsonScanner::close_container(char c) {
  const char open = c == '}' ? '{' : '[';
  if (stack_.empty() || stack_.back() != open) return fail();
  stack_.pop_back();
  level_ = static_cast<int>(stack_.size());
  return after_value();
}

JsonScanner::Event JsonScanner::start_value(char c) {
  level_ = static_cast<int>(stack_.size());
  if (c == '{' || c == '[') {
    if (stack_.size() >= kMaxDepth) return fail();
    stack_.push_back(c);
    state_ = c == '{' ? State::kKeyOrClose : State::kValueOrClose;
    return Event::kValueStart;
  }
  if (stack_.empty()) return fail();  // the top-level value must be a container
  switch (c) {
    case '"':
      string_is_key_ = false;
      str_.clear();
      state_ = State::kString;
      return Event::kValueStart;
    case '-':
      number_ = Num::kMinus;
      state_ = State::kNumber;
      return Event::kValueStart;
    case 't':
      literal_rest_ = "rue";
      state_ = State::kLiteral;
      return Event::kValueStart;
    case 'f':
      literal_rest_ = "alse";
      state_ = State::kLiteral;
      return Event::kValueStart;
    case 'n':
      literal_rest_ = "ull";
      state_ = State::kLiteral;
      return Event::kValueStart;
    default:
      if (!is_digit(c)) return fail();
      number_ = c == '0' ? Num::kZero : Num::kInt;
      state_ = State::kNumber;
      return Event::kValueStart;
  }
}

JsonScanner::Event JsonScanner::push(char c) {
  switch (state_) {
    case State::kDone:
    case State::kError:
      return fail();

    case State::kValue:
      if (is_space(c)) return Event::kNone;
      return start_value(c);

    case State::kValueOrClose:
      if (is_space(c)) return Event::kNone;
      if (c == ']') return close_container(c);
      return start_value(c);

    case State::kKey:
    case State::kKeyOrClose:
      if (is_space(c)) return Event::kNone;
      if (c == '"') {
        string_is_key_ = true;
        str_.clear();
        level_ = static_cast<int>(stack_.size());
        state_ = State::kString;
        return Event::kNone;
      }
      if (c == '}' && state_ == State::kKeyOrClose) return close_container(c);
      return fail();

    case State::kColon:
      if (is_space(c)) return Event::kNone;
      if (c != ':') return fail();
      state_ = State::kValue;
      return Event::kNone;

    case State::kCommaOrClose:
      if (is_space(c)) return Event::kNone;
      if (c == ',') {
        state_ = stack_.back() == '{' ? State::kKey : State::kValue;
        return Event::kNone;
      }
      if (c == '}' || c == ']') return close_container(c);
      return fail();

    case State::kString:
      // A high surrogate escape must be followed at once by a low one.
      if (pending_high_ != 0 && c != '\\') return fail();
      if (c == '"') {
        level_ = static_cast<int>(stack_.size());
        if (string_is_key_) {
          state_ = State::kColon;
          return Event::kKeyEnd;
        }
        return after_value();
      }
      if (c == '\\') {
        state_ = State::kEscape;
        return Event::kNone;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail();
      str_.push_back(c);
      return Event::kNone;

    case State::kEscape: {
      if (pending_high_ != 0 && c != 'u') return fail();
      char decoded;
      switch (c) {
        case '"': decoded = '"'; break;
        case '\\': decoded = '\\'; break;
        case '/': decoded = '/'; break;
        case 'b': decoded = '\b'; break;
        case 'f': decoded = '\f'; break;
        case 'n': decoded = '\n'; break;
        case 'r': decoded = '\r'; break;
        case 't': decoded = '\t'; break;
        case 'u':
          unicode_ = 0;
          unicode_digits_ = 0;
          state_ = State::kUnicode;
          return Event::kNone;
        default:
          return fail();
      }
      str_.push_back(decoded);
      state_ = State::kString;
      return Event::kNone;
    }

    case State::kUnicode: {
      const int v = hex_value(c);
      if (v < 0) return fail();
      unicode_ = unicode_ * 16 + static_cast<uint32_t>(v);
      if (++unicode_digits_ < 4) return Event::kNone;
      state_ = State::kString;
      const bool high = unicode_ >= 0xD800 && unicode_ <= 0xDBFF;
      const bool low = unicode_ >= 0xDC00 && unicode_ <= 0xDFFF;
      if (pending_high_ != 0) {
        if (!low) return fail();
        append_code_point(0x10000 + ((pending_high_ - 0xD800) << 10) + (unicode_ - 0xDC00));
        pending_high_ = 0;
      } else if (high) {
        pending_high_ = unicode_;
      } else if (low) {
        return fail();
      } else {
        append_code_point(unicode_);
      }
      return Event::kNone;
    }

    case State::kNumber: {
      const bool digit = is_digit(c);
      switch (number_) {
        case Num::kMinus:
          if (!digit) return fail();
          number_ = c == '0' ? Num::kZero : Num::kInt;
          return Event::kNone;
        case Num::kZero:
        case Num::kInt:
          if (digit && number_ == Num::kInt) return Event::kNone;
          if (digit) return fail();  // a leading zero followed by digits
          if (c == '.') {
            number_ = Num::kDot;
            return Event::kNone;
          }
          if (c == 'e' || c == 'E') {
            number_ = Num::kExp;
            return Event::kNone;
          }
          break;  // the number ended before c
        case Num::kDot:
          if (!digit) return fail();
          number_ = Num::kFrac;
          return Event::kNone;
        case Num::kFrac:
          if (digit) return Event::kNone;
          if (c == 'e' || c == 'E') {
            number_ = Num::kExp;
            return Event::kNone;
          }
          break;
        case Num::kExp:
          if (c == '+' || c == '-') {
            number_ = Num::kExpSign;
            return Event::kNone;
          }
          if (!digit) return fail();
          number_ = Num::kExpDigits;
          return Event::kNone;
        case Num::kExpSign:
          if (!digit) return fail();
          number_ = Num::kExpDigits;
          return Event::kNone;
        case Num::kExpDigits:
          if (digit) return Event::kNone;
          break;
      }
      // c is the first byte after the number: it belongs to the enclosing container.
      end_number_or_literal();
      return push(c);
    }

    case State::kLiteral:
      if (c != *literal_rest_) return fail();
      if (*++literal_rest_ == '\0') end_number_or_literal();
      return Event::kNone;
  }
  return fail();
}

JsonCallParser::Status JsonCallParser::push(char c) {
  if (failed_ || done_) return fail();
  if (!started_) {
    if (c != '{') return fail();
    started_ = true;
  }
  const JsonScanner::Event ev = scanner_.push(c);
  if (ev == JsonScanner::Event::kError) return fail();
  const int level = scanner_.level();

  if (args_active_) {
    // Every byte from the arguments' '{' to its matching '}' is the arguments' text.
    args_.push_back(c);
    if (ev == JsonScanner::Event::kValueEnd && level == 1) args_active_ = false;
    return Status::kMore;
  }

  switch (ev) {
    case JsonScanner::Event::kKeyEnd:
      if (level != 1) break;
      if (scanner_.string() == "name") {
        if (name_seen_) return fail();  // two names: which one was meant?
        name_seen_ = true;
        field_ = Field::kName;
      } else if (scanner_.string() == "arguments" || scanner_.string() == "parameters") {
        if (args_started_) return fail();  // both spellings, or a repeat
        field_ = Field::kArguments;
      } else {
        field_ = Field::kOther;
      }
      break;
    case JsonScanner::Event::kValueStart:
      if (level != 1) break;
      if (field_ == Field::kName && c != '"') return fail();
      if (field_ == Field::kArguments) {
        if (c != '{') return fail();  // arguments are an object (OpenAI sends its JSON text)
        args_started_ = true;
        args_active_ = true;
        args_.push_back(c);
      }
      break;
    case JsonScanner::Event::kValueEnd:
      if (level == 1 && field_ == Field::kName) {
        name_ = scanner_.string();
        if (name_.empty()) return fail();
      } else if (level == 0) {
        done_ = true;
        if (name_.empty()) return fail();
        if (!args_started_) {
          if (require_arguments_) return fail();
          args_ = "{}";
        }
        return Status::kDone;
      }
      break;
    default:
      break;
  }
  return Status::kMore;
}

std::string JsonCallParser::take_arguments() {
  std::string out;
  out.swap(args_);
  return out;
}

}  // namespace vllm::parsers::detail
