#include "vllm/parsers/python_literal.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "vllm/parsers/text_stream.h"

namespace vllm::parsers::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }
int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}
char close_of(char open) { return open == '[' ? ']' : open == '(' ? ')' : '}'; }

// Digits in `base` (no prefix, no underscores) to decimal text, of any length.
std::string to_decimal(std::string_view digits, int base) {
  constexpr uint32_t kLimb = 1000000000;  // little-endian limbs of 9 decimal digits
  std::vector<uint32_t> limbs{0};
  for (char c : digits) {
    uint64_t carry = static_cast<uint64_t>(digit_value(c));
    for (auto& limb : limbs) {
      const uint64_t v = static_cast<uint64_t>(limb) * static_cast<uint64_t>(base) + carry;
      limb = static_cast<uint32_t>(v % kLimb);
      carry = v / kLimb;
    }
    while (carry != 0) {
      limbs.push_back(static_cast<uint32_t>(carry % kLimb));
      carry /= kLimb;
    }
  }
  std::string out = std::to_string(limbs.back());
  for (size_t i = limbs.size() - 1; i-- > 0;) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%09u", static_cast<unsigned>(limbs[i]));
    out += buf;
  }
  return out;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A character inside a JSON string, escaped as json.dumps escapes it.
void append_json_char(std::string& s, uint32_t cp) {
  switch (cp) {
    case '"': s += "\\\""; return;
    case '\\': s += "\\\\"; return;
    case '\b': s += "\\b"; return;
    case '\f': s += "\\f"; return;
    case '\n': s += "\\n"; return;
    case '\r': s += "\\r"; return;
    case '\t': s += "\\t"; return;
    default: break;
  }
  if (cp < 0x20) {  // the other control characters, as json.dumps writes them
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
    s += buf;
    return;
  }
  append_utf8(s, cp);
}

}  // namespace

std::optional<std::string> python_float_repr(double v) {
  if (!std::isfinite(v)) return std::nullopt;
  // Shortest round-trip digits in scientific form, "d.ddde+XX", then laid out as repr() does.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (!sci.empty() && sci[0] == '-') {
    out = "-";
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits.push_back(c);
  int exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int point = exp + 1;  // digits before the decimal point
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += ebuf;
  } else if (point <= 0) {
    out += "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out += digits + std::string(static_cast<size_t>(point) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
  }
  return out;
}

void PythonLiteralToJson::emit(std::string_view s) {
  if (buffers_.empty()) {
    out_.append(s);
  } else {
    buffers_.back().append(s);
  }
}

std::string PythonLiteralToJson::take_output() {
  std::string s;
  s.swap(out_);
  return s;
}

void PythonLiteralToJson::value_done() {
  if (stack_.empty()) {
    complete_ = true;
    return;
  }
  Frame& f = stack_.back();
  if (f.open != '{') {
    f.expect = Expect::kCommaOrClose;
  } else {
    f.expect = f.expect == Expect::kKeyOrClose ? Expect::kColon : Expect::kCommaOrClose;
  }
}

bool PythonLiteralToJson::finish_number() {
  std::string t;
  for (char c : token_)
    if (c != '_') t.push_back(c);
  std::string json;
  const bool prefixed = t.size() > 1 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X' || t[1] == 'o' ||
                                                      t[1] == 'O' || t[1] == 'b' || t[1] == 'B');
  if (prefixed) {
    const int base = (t[1] == 'x' || t[1] == 'X') ? 16 : (t[1] == 'o' || t[1] == 'O') ? 8 : 2;
    const std::string_view digits = std::string_view(t).substr(2);
    if (digits.empty()) return false;
    for (char c : digits)
      if (digit_value(c) >= base) return false;
    json = to_decimal(digits, base);
  } else if (t.find_first_of(".eE") != std::string::npos) {
    // A float: digits, an optional fraction, an optional exponent; a digit somewhere before it.
    size_t i = 0, mantissa_digits = 0;
    while (i < t.size() && is_digit(t[i])) ++i, ++mantissa_digits;
    if (i < t.size() && t[i] == '.') {
      ++i;
      while (i < t.size() && is_digit(t[i])) ++i, ++mantissa_digits;
    }
    if (mantissa_digits == 0) return false;
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
      ++i;
      if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
      const size_t exp_start = i;
      while (i < t.size() && is_digit(t[i])) ++i;
      if (i == exp_start) return false;
    }
    if (i != t.size()) return false;  // e.g. a 'j' suffix (complex) or "1.2.3"
    // from_chars reads a leading '.' as a float too; it reads no sign, which is kept apart.
    double v = 0;
    const auto res = std::from_chars(t.data(), t.data() + t.size(), v);
    if (res.ec != std::errc() || res.ptr != t.data() + t.size()) return false;  // out of range
    auto repr = python_float_repr(negative_ ? -v : v);
    if (!repr) return false;
    emit(*repr);
    return true;
  } else {
    for (char c : t)
      if (!is_digit(c)) return false;
    const size_t nz = t.find_first_not_of('0');
    if (nz == std::string::npos) {
      json = "0";  // "0", "000" and "-0" are all 0
    } else {
      if (nz != 0) return false;  // Python 3 has no leading zeros ("010" is a syntax error)
      json = t;
    }
  }
  if (negative_ && json != "0") emit("-");
  emit(json);
  return true;
}

bool PythonLiteralToJson::finish_ident() {
  if (token_ == "True") {
    emit("true");
  } else if (token_ == "False") {
    emit("false");
  } else if (token_ == "None") {
    emit("null");
  } else {
    return false;  // a variable, or something that is not a literal
  }
  return true;
}

bool PythonLiteralToJson::string_code_point(uint32_t cp) {
  // Surrogates (Python lets '\ud83d' write one, and does not pair them) have no UTF-8 form.
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  std::string s;
  append_json_char(s, cp);
  emit(s);
  return true;
}

// A byte of string content as written (bytes of multi-byte characters pass through as they are).
void PythonLiteralToJson::string_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) {
    emit(std::string_view(&c, 1));
    return;
  }
  std::string s;
  append_json_char(s, u);
  emit(s);
}

PythonLiteralToJson::Status PythonLiteralToJson::start_value(char c) {
  // The enclosing container learns that an item begins.
  if (!stack_.empty()) {
    Frame& f = stack_.back();
    if (f.open == '{' && f.expect == Expect::kKeyOrClose) {
      if (c == '[' || c == '(' || c == '{') return fail();  // keys are scalars here
      buffers_.emplace_back();  // the key is written once it is known to be a key (at ':')
    } else if (f.open != '{') {
      if (f.count > 0) emit(", ");
      ++f.count;
    }
  }
  switch (c) {
    case '[':
    case '(':
    case '{':
      if (stack_.size() >= kMaxDepth) return fail();
      stack_.push_back({c, c == '{' ? Expect::kKeyOrClose : Expect::kItemOrClose});
      if (c == '(') {
        buffers_.emplace_back();  // a tuple, or just parentheses: known at ',' or ')'
      } else {
        emit(std::string_view(&c, 1));
      }
      return Status::kMore;
    case '\'':
    case '"':
      quote_ = c;
      raw_ = false;
      emit("\"");
      tok_ = Tok::kStrOpen1;
      return Status::kMore;
    case '-':
    case '+':
      negative_ = c == '-';
      tok_ = Tok::kSign;
      return Status::kMore;
    default:
      break;
  }
  if (is_digit(c) || c == '.') {
    negative_ = false;
    token_.assign(1, c);
    tok_ = Tok::kNumber;
    return Status::kMore;
  }
  if (is_ident_start(c)) {
    token_.assign(1, c);
    tok_ = Tok::kIdent;
    return Status::kMore;
  }
  return fail();
}

PythonLiteralToJson::Status PythonLiteralToJson::close(char c) {
  Frame& f = stack_.back();
  if (c != close_of(f.open)) return fail();
  if (f.open == '(' && f.tuple) {
    emit("]");  // its buffer went at the first ','
  } else if (f.open == '(') {
    std::string held = std::move(buffers_.back());
    buffers_.pop_back();
    if (f.count == 0) {
      emit("[]");  // ()
    } else {
      emit(held);  // (value): just parentheses
    }
  } else {
    emit(std::string_view(&c, 1));
  }
  stack_.pop_back();
  value_done();
  return Status::kMore;
}

PythonLiteralToJson::Status PythonLiteralToJson::structural(char c) {
  if (complete_) return Status::kDone;
  if (is_space(c)) return Status::kMore;
  if (stack_.empty()) return start_value(c);
  Frame& f = stack_.back();
  switch (f.expect) {
    case Expect::kItemOrClose:
    case Expect::kKeyOrClose:
      if (c == ']' || c == ')' || c == '}') return close(c);
      return start_value(c);
    case Expect::kValue:
      return start_value(c);
    case Expect::kColon: {
      if (c != ':') return fail();
      // The key is complete: as json.dumps does, a non-string key is written as a string.
      std::string key = std::move(buffers_.back());
      buffers_.pop_back();
      if (key.empty() || key[0] != '"') key = "\"" + key + "\"";
      emit(std::string(f.count > 0 ? ", " : "") + key + ": ");
      ++f.count;
      f.expect = Expect::kValue;
      return Status::kMore;
    }
    case Expect::kCommaOrClose:
      if (c == ',') {
        if (f.open == '(' && !f.tuple) {
          // A comma makes it a tuple: what was held is its first item.
          f.tuple = true;
          std::string held = std::move(buffers_.back());
          buffers_.pop_back();
          emit("[" + held);
        }
        f.expect = f.open == '{' ? Expect::kKeyOrClose : Expect::kItemOrClose;
        return Status::kMore;
      }
      if (c == ']' || c == ')' || c == '}') return close(c);
      return fail();
  }
  return fail();
}

PythonLiteralToJson::Status PythonLiteralToJson::push(char c) {
  const Status status = consume(c);
  if (status == Status::kDone || (status == Status::kMore && tok_ == Tok::kNone && buffers_.empty())) {
    pending_bytes_ = 0;  // everything read so far is in the output
  } else if (status == Status::kMore) {
    ++pending_bytes_;
  }
  return status;
}

PythonLiteralToJson::Status PythonLiteralToJson::consume(char c) {
  if (failed_) return Status::kError;
  switch (tok_) {
    case Tok::kNone:
      return structural(c);

    case Tok::kSign:
      if (is_space(c)) return Status::kMore;
      if (!is_digit(c) && c != '.') return fail();
      token_.assign(1, c);
      tok_ = Tok::kNumber;
      return Status::kMore;

    case Tok::kNumber: {
      const char last = token_.back();
      const bool exp_sign = (c == '+' || c == '-') && (last == 'e' || last == 'E') &&
                            !(token_.size() > 1 && (token_[1] == 'x' || token_[1] == 'X'));
      if (is_ident_char(c) || c == '.' || exp_sign) {
        if (token_.size() >= kMaxNumberLength) return fail();
        token_.push_back(c);
        return Status::kMore;
      }
      tok_ = Tok::kNone;
      if (!finish_number()) return fail();
      value_done();
      return structural(c);
    }

    case Tok::kIdent:
      if (is_ident_char(c)) {
        if (token_.size() >= 64) return fail();  // no literal name is this long
        token_.push_back(c);
        return Status::kMore;
      }
      if ((c == '\'' || c == '"') && token_.size() == 1 && std::string_view("rRuU").find(token_[0]) != std::string_view::npos) {
        quote_ = c;
        raw_ = token_[0] == 'r' || token_[0] == 'R';
        emit("\"");
        tok_ = Tok::kStrOpen1;
        return Status::kMore;
      }
      tok_ = Tok::kNone;
      if (!finish_ident()) return fail();
      value_done();
      return structural(c);

    case Tok::kStrOpen1:
      if (c == quote_) {
        tok_ = Tok::kStrOpen2;
        return Status::kMore;
      }
      triple_ = false;
      tok_ = Tok::kString;
      return consume(c);

    case Tok::kStrOpen2:
      if (c == quote_) {
        triple_ = true;
        quote_run_ = 0;
        tok_ = Tok::kString;
        return Status::kMore;
      }
      emit("\"");  // '' : the empty string
      tok_ = Tok::kNone;
      value_done();
      return structural(c);

    case Tok::kString:
      if (triple_) {
        if (c == quote_) {
          if (++quote_run_ == 3) {
            emit("\"");
            tok_ = Tok::kNone;
            value_done();
          }
          return Status::kMore;
        }
        for (; quote_run_ > 0; --quote_run_) string_byte(quote_);  // quotes inside the text
      } else if (c == quote_) {
        emit("\"");
        tok_ = Tok::kNone;
        value_done();
        return Status::kMore;
      }
      if (c == '\\') {
        if (raw_) {
          string_byte(c);
          tok_ = Tok::kRawEscape;
        } else {
          tok_ = Tok::kEscape;
        }
        return Status::kMore;
      }
      if (!triple_ && (c == '\n' || c == '\r')) return fail();  // unterminated string
      string_byte(c);
      return Status::kMore;

    case Tok::kRawEscape:
      if (!triple_ && (c == '\n' || c == '\r')) return fail();
      string_byte(c);
      tok_ = Tok::kString;
      return Status::kMore;

    case Tok::kEscape: {
      tok_ = Tok::kString;
      uint32_t cp;
      switch (c) {
        case '\n': return Status::kMore;  // a backslash-newline continues the line
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case 'a': cp = 0x07; break;
        case 'b': cp = 0x08; break;
        case 'f': cp = 0x0C; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'v': cp = 0x0B; break;
        case 'x':
        case 'u':
        case 'U':
          escape_need_ = c == 'x' ? 2 : c == 'u' ? 4 : 8;
          escape_value_ = 0;
          escape_digits_ = 0;
          tok_ = Tok::kHexEscape;
          return Status::kMore;
        case 'N':
          return fail();  // \N{NAME}: no Unicode name table here
        default:
          if (c >= '0' && c <= '7') {
            escape_value_ = static_cast<uint32_t>(c - '0');
            escape_digits_ = 1;
            tok_ = Tok::kOctEscape;
            return Status::kMore;
          }
          // An unknown escape keeps its backslash (Python warns, and keeps it).
          if (!triple_ && (c == '\n' || c == '\r')) return fail();
          string_byte('\\');
          string_byte(c);
          return Status::kMore;
      }
      return string_code_point(cp) ? Status::kMore : fail();
    }

    case Tok::kHexEscape: {
      const int v = digit_value(c);
      if (v >= 16) return fail();
      escape_value_ = escape_value_ * 16 + static_cast<uint32_t>(v);
      if (++escape_digits_ < escape_need_) return Status::kMore;
      tok_ = Tok::kString;
      return string_code_point(escape_value_) ? Status::kMore : fail();
    }

    case Tok::kOctEscape:
      if (c >= '0' && c <= '7' && escape_digits_ < 3) {
        escape_value_ = escape_value_ * 8 + static_cast<uint32_t>(c - '0');
        if (++escape_digits_ < 3) return Status::kMore;
        tok_ = Tok::kString;
        string_code_point(escape_value_);
        return Status::kMore;
      }
      tok_ = Tok::kString;
      string_code_point(escape_value_);
      return consume(c);  // the byte after a short octal escape is ordinary string content
  }
  return fail();
}

}  // namespace vllm::parsers::detail
