#include "vllm/chat/lexer.h"

#include <charconv>

#include "vllm/chat/errors.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Python's str.splitlines() followed by "\n".join(): every line break (\r\n, \r, \n, \v, \f,
// \x1c-\x1e, U+0085, U+2028, U+2029) becomes "\n", and unless keep_trailing_newline is set,
// one final line break is dropped. Jinja2 does this to the whole source before lexing.
std::string normalize_newlines(std::string_view src, bool keep_trailing_newline) {
  std::string out;
  out.reserve(src.size());
  bool ends_with_break = false;
  for (size_t i = 0; i < src.size();) {
    const auto byte = static_cast<unsigned char>(src[i]);
    ends_with_break = true;
    if (byte == '\r') {
      i += (i + 1 < src.size() && src[i + 1] == '\n') ? 2 : 1;
      out.push_back('\n');
      continue;
    }
    if (byte == '\n' || byte == 0x0B || byte == 0x0C || (byte >= 0x1C && byte <= 0x1E)) {
      ++i;
      out.push_back('\n');
      continue;
    }
    if (byte >= 0x80) {
      const size_t start = i;
      const char32_t c = unicode::next(src, i);
      if (c == 0x85 || c == 0x2028 || c == 0x2029) {
        out.push_back('\n');
      } else {
        out.append(src.substr(start, i - start));
        ends_with_break = false;
      }
      continue;
    }
    out.push_back(static_cast<char>(byte));
    ++i;
    ends_with_break = false;
  }
  // Python only re-adds the final newline for \r\n, \r and \n endings; for the exotic
  // separators the difference would be unobservable in practice.
  if (ends_with_break && !keep_trailing_newline) out.pop_back();
  return out;
}

// Python's str.rstrip() with no argument.
std::string_view rstrip_space(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t i = end;
    const char32_t c = unicode::prev(s, i);
    if (!unicode::is_space(c)) break;
    end = i;
  }
  return s.substr(0, end);
}

class Lexer {
 public:
  Lexer(std::string source, const LexerOptions& options)
      : src_(std::move(source)), options_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        emit_data(std::string_view(src_).substr(pos_));
        line_ += count_newlines(pos_, src_.size());
        pos_ = src_.size();
        break;
      }
      lex_tag(tag);
    }
    Token eof;
    eof.type = TokenType::kEof;
    eof.line = line_;
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  int count_newlines(size_t from, size_t to) const {
    int n = 0;
    for (size_t i = from; i < to; ++i) n += src_[i] == '\n';
    return n;
  }

  bool starts_with(size_t p, std::string_view s) const {
    return src_.compare(p, s.size(), s) == 0;
  }

  // Skips Python whitespace (\s) from p; returns the new position and counts lines.
  size_t skip_space(size_t p) {
    while (p < src_.size()) {
      size_t q = p;
      const char32_t c = unicode::next(src_, q);
      if (!unicode::is_space(c)) break;
      if (c == '\n') ++line_;
      p = q;
    }
    return p;
  }

  void emit_data(std::string_view text) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::kData;
    t.value = std::string(text);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  void emit(TokenType type, std::string value, int line) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.line = line;
    tokens_.push_back(std::move(t));
  }

  // Applies the whitespace control of the tag that follows `text` and emits what remains.
  // sign is '-', '+' or 0; lstrip_allowed is false for {{ tags.
  void emit_leading_data(std::string_view text, char sign, bool lstrip_allowed) {
    std::string_view data = text;
    if (sign == '-') {
      data = rstrip_space(text);
    } else if (sign != '+' && options_.lstrip_blocks && lstrip_allowed) {
      // Strip the indentation before a block tag when only spaces and tabs separate it from
      // the start of its line.
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        if (text.find_first_not_of(" \t", l_pos) == std::string_view::npos)
          data = text.substr(0, l_pos);
      }
    }
    emit_data(data);
    for (char c : text) line_ += c == '\n';
  }

  // Matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at `tag`; returns the end of the match or npos.
  size_t match_raw_begin(size_t p) const {
    auto skip = [&](size_t q) {
      while (q < src_.size() && unicode::is_space(static_cast<unsigned char>(src_[q]))) ++q;
      return q;
    };
    p = skip(p);
    if (!starts_with(p, "raw")) return std::string::npos;
    p = skip(p + 3);
    if (starts_with(p, "-%}")) return p + 3;
    if (starts_with(p, "%}")) return p + 2;
    return std::string::npos;
  }

  void lex_tag(size_t tag) {
    const char kind = src_[tag + 1];
    size_t p = tag + 2;
    char sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    const std::string_view text = std::string_view(src_).substr(pos_, tag - pos_);

    if (kind == '%') {
      const size_t raw_end = match_raw_begin(p);
      if (raw_end != std::string::npos) {
        emit_leading_data(text, sign, true);
        lex_raw(raw_end);
        return;
      }
    }
    emit_leading_data(text, sign, kind != '{');
    if (kind == '#') {
      lex_comment(p);
    } else {
      lex_expression_tag(kind, p);
    }
  }

  void lex_comment(size_t p) {
    const int start_line = line_;
    const size_t close = src_.find("#}", p);
    if (close == std::string::npos) throw TemplateError("missing end of comment tag", start_line);
    size_t body_end = close;
    char sign = 0;
    if (close > p && (src_[close - 1] == '-' || src_[close - 1] == '+')) {
      sign = src_[close - 1];
      body_end = close - 1;
    }
    line_ += count_newlines(p, body_end);
    finish_block_end(close + 2, sign);
  }

  // After "%}" or "#}" (at p): applies "-" (eat all whitespace), "+" (keep) or trim_blocks
  // (eat one newline), and records whether the consumed text ended a line.
  void finish_block_end(size_t p, char sign) {
    if (sign == '-') {
      p = skip_space(p);
    } else if (sign != '+' && options_.trim_blocks && p < src_.size() && src_[p] == '\n') {
      ++p;
      ++line_;
    }
    line_starting_ = p > 0 && src_[p - 1] == '\n';
    pos_ = p;
  }

  void lex_raw(size_t p) {
    const int start_line = line_;
    // The opening tag: "-%}" strips what follows; trim_blocks does not apply to it.
    if (src_[p - 3] == '-') p = skip_space(p);
    line_starting_ = src_[p - 1] == '\n';
    // Find `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
    for (size_t q = src_.find("{%", p); q != std::string::npos; q = src_.find("{%", q + 1)) {
      size_t r = q + 2;
      char sign = 0;
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) sign = src_[r++];
      while (r < src_.size() && unicode::is_space(static_cast<unsigned char>(src_[r]))) ++r;
      if (!starts_with(r, "endraw")) continue;
      r += 6;
      while (r < src_.size() && unicode::is_space(static_cast<unsigned char>(src_[r]))) ++r;
      char end_sign = 0;
      if (starts_with(r, "+%}") || starts_with(r, "-%}")) {
        end_sign = src_[r];
        r += 3;
      } else if (starts_with(r, "%}")) {
        r += 2;
      } else {
        continue;
      }
      emit_leading_data(std::string_view(src_).substr(p, q - p), sign, true);
      line_ += count_newlines(q, r);
      finish_block_end(r, end_sign);
      return;
    }
    throw TemplateError("missing end of raw directive", start_line);
  }

  void lex_expression_tag(char kind, size_t p) {
    const int start_line = line_;
    emit(kind == '{' ? TokenType::kVariableBegin : TokenType::kBlockBegin,
         kind == '{' ? "{{" : "{%", start_line);
    std::string balance;  // the closing brackets we are waiting for
    while (true) {
      if (p >= src_.size()) {
        throw TemplateError(kind == '{' ? "unexpected end of template: missing '}}'"
                                        : "unexpected end of template: missing '%}'",
                            start_line);
      }
      if (balance.empty()) {
        if (kind == '%') {
          if (starts_with(p, "+%}") || starts_with(p, "-%}")) {
            emit(TokenType::kBlockEnd, "%}", line_);
            finish_block_end(p + 3, src_[p]);
            return;
          }
          if (starts_with(p, "%}")) {
            emit(TokenType::kBlockEnd, "%}", line_);
            finish_block_end(p + 2, 0);
            return;
          }
        } else {
          if (starts_with(p, "-}}")) {
            emit(TokenType::kVariableEnd, "}}", line_);
            p = skip_space(p + 3);
            line_starting_ = src_[p - 1] == '\n';
            pos_ = p;
            return;
          }
          if (starts_with(p, "}}")) {
            emit(TokenType::kVariableEnd, "}}", line_);
            line_starting_ = false;
            pos_ = p + 2;
            return;
          }
        }
      }
      const char c = src_[p];
      {
        const size_t q = skip_space(p);
        if (q != p) {
          p = q;
          continue;
        }
      }
      if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        size_t q = p;
        while (q < src_.size() && is_name_char(src_[q])) ++q;
        emit(TokenType::kName, src_.substr(p, q - p), line_);
        p = q;
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        p = lex_operator(p, balance);
      }
    }
  }

  // `(\d+_)*\d+` at p: the end of the digit run, or npos.
  size_t scan_digits(size_t p) const {
    if (p >= src_.size() || !is_digit(src_[p])) return std::string::npos;
    size_t q = p;
    while (true) {
      while (q < src_.size() && is_digit(src_[q])) ++q;
      if (q + 1 < src_.size() && src_[q] == '_' && is_digit(src_[q + 1])) {
        ++q;
        continue;
      }
      return q;
    }
  }

  size_t lex_number(size_t p) {
    const size_t npos = std::string::npos;
    // Floats first, as Jinja does: digits with a fraction and/or an exponent, and never right
    // after a "." (so `x.0.1` reads as attribute/index access).
    size_t float_end = npos;
    if (p == 0 || src_[p - 1] != '.') {
      const size_t int_part = scan_digits(p);
      auto exponent_at = [&](size_t q) -> size_t {
        if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
          ++q;
          if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
          return scan_digits(q);
        }
        return npos;
      };
      size_t fraction_end = npos;
      if (int_part < src_.size() && src_[int_part] == '.') fraction_end = scan_digits(int_part + 1);
      if (fraction_end != npos && exponent_at(fraction_end) != npos) {
        float_end = exponent_at(fraction_end);
      } else if (exponent_at(int_part) != npos) {
        float_end = exponent_at(int_part);
      } else if (fraction_end != npos) {
        float_end = fraction_end;
      }
    }
    if (float_end != npos) {
      std::string text;
      for (size_t i = p; i < float_end; ++i)
        if (src_[i] != '_') text.push_back(src_[i]);
      Token t;
      t.type = TokenType::kFloat;
      t.value = src_.substr(p, float_end - p);
      t.line = line_;
      std::from_chars(text.data(), text.data() + text.size(), t.float_value);
      tokens_.push_back(std::move(t));
      return float_end;
    }
    // Integers: 0b/0o/0x prefixes, or decimal without leading zeros, "_" between digits.
    int base = 10;
    size_t q = p;
    std::string digits;
    auto lower = [](char ch) { return static_cast<char>(ch | 0x20); };
    auto is_base_digit = [&](char ch) {
      if (base == 2) return ch == '0' || ch == '1';
      if (base == 8) return ch >= '0' && ch <= '7';
      if (base == 16) return is_digit(ch) || (lower(ch) >= 'a' && lower(ch) <= 'f');
      return is_digit(ch);
    };
    if (src_[p] == '0' && p + 1 < src_.size() &&
        (lower(src_[p + 1]) == 'b' || lower(src_[p + 1]) == 'o' || lower(src_[p + 1]) == 'x')) {
      base = lower(src_[p + 1]) == 'b' ? 2 : lower(src_[p + 1]) == 'o' ? 8 : 16;
      size_t r = p + 2;
      while (true) {
        size_t s = r;
        if (s < src_.size() && src_[s] == '_') ++s;
        if (s < src_.size() && is_base_digit(src_[s])) {
          digits.push_back(src_[s]);
          r = s + 1;
        } else {
          break;
        }
      }
      if (digits.empty()) {
        base = 10;  // just "0", followed by a name
      } else {
        q = r;
      }
    }
    if (base == 10) {
      digits.clear();
      q = p;
      const bool zero = src_[p] == '0';
      while (true) {
        if (q < src_.size() && (zero ? src_[q] == '0' : is_digit(src_[q]))) {
          digits.push_back(src_[q++]);
        } else if (q + 1 < src_.size() && src_[q] == '_' &&
                   (zero ? src_[q + 1] == '0' : is_digit(src_[q + 1])) && !digits.empty()) {
          ++q;
        } else {
          break;
        }
      }
    }
    Token t;
    t.type = TokenType::kInteger;
    t.value = src_.substr(p, q - p);
    t.line = line_;
    auto res = std::from_chars(digits.data(), digits.data() + digits.size(), t.int_value, base);
    if (res.ec != std::errc()) throw TemplateError("integer literal is too large", line_);
    tokens_.push_back(std::move(t));
    return q;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
  }

  // A quoted string with Python's escapes ("unicode-escape" decoding, as Jinja2 applies).
  size_t lex_string(size_t p) {
    const char quote = src_[p];
    const int start_line = line_;
    std::string out;
    size_t q = p + 1;
    while (true) {
      if (q >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      const char c = src_[q];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out.push_back(c);
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      const char e = src_[q + 1];
      q += 2;
      switch (e) {
        case '\n': ++line_; break;  // a backslash-newline continues the line
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x':
        case 'u':
        case 'U': {
          const int width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < width; ++k) {
            const int h = q < src_.size() ? hex_value(src_[q]) : -1;
            if (h < 0) {
              throw TemplateError(std::string("truncated \\") + e + " escape in string literal",
                                  line_);
            }
            cp = cp * 16 + static_cast<char32_t>(h);
            ++q;
          }
          if (cp > 0x10FFFF) throw TemplateError("illegal Unicode character in string", line_);
          unicode::append(out, cp);
          break;
        }
        case 'N':
          throw TemplateError("\\N{...} escapes are not supported in string literals", line_);
        default:
          if (e >= '0' && e <= '7') {
            // Up to three octal digits.
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k)
              cp = cp * 8 + static_cast<char32_t>(src_[q++] - '0');
            unicode::append(out, cp);
          } else {
            // Unknown escapes keep their backslash, as in Python.
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    Token t;
    t.type = TokenType::kString;
    t.value = std::move(out);
    t.line = start_line;
    tokens_.push_back(std::move(t));
    return q + 1;
  }

  size_t lex_operator(size_t p, std::string& balance) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (auto op : kTwo) {
      if (starts_with(p, op)) {
        emit(TokenType::kOperator, std::string(op), line_);
        return p + 2;
      }
    }
    const char c = src_[p];
    static constexpr std::string_view kOne = "+-/*%~[](){}=.:|,;<>";
    if (kOne.find(c) == std::string_view::npos) {
      size_t q = p;
      const char32_t cp = unicode::next(src_, q);
      std::string shown;
      unicode::append(shown, cp);
      throw TemplateError("unexpected char '" + shown + "'", line_);
    }
    if (c == '(') balance.push_back(')');
    if (c == '[') balance.push_back(']');
    if (c == '{') balance.push_back('}');
    if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) throw TemplateError(std::string("unexpected '") + c + "'", line_);
      const char expected = balance.back();
      balance.pop_back();
      if (expected != c) {
        throw TemplateError(
            std::string("unexpected '") + c + "', expected '" + expected + "'", line_);
      }
    }
    emit(TokenType::kOperator, std::string(1, c), line_);
    return p + 1;
  }

  std::string src_;
  LexerOptions options_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexerOptions& options) {
  return Lexer(normalize_newlines(source, options.keep_trailing_newline), options).run();
}

std::string describe(const Token& token) {
  switch (token.type) {
    case TokenType::kData:
      return "template data";
    case TokenType::kVariableBegin:
      return "begin of print statement";
    case TokenType::kVariableEnd:
      return "end of print statement";
    case TokenType::kBlockBegin:
      return "begin of statement block";
    case TokenType::kBlockEnd:
      return "end of statement block";
    case TokenType::kString:
      return "string";
    case TokenType::kInteger:
    case TokenType::kFloat:
      return "number";
    case TokenType::kEof:
      return "end of template";
    case TokenType::kName:
    case TokenType::kOperator:
      return "'" + token.value + "'";
  }
  return "token";
}

}  // namespace vllm::jinja
