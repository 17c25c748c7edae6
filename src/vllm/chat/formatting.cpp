#include "vllm/chat/formatting.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/operators.h"
#include "vllm/chat/unicode.h"

namespace vllm::jinja {

namespace {

struct Spec {
  char fill = ' ';
  char align = 0;  // '<', '>', '^', '=' or 0 (type default)
  char sign = '-';
  bool alternate = false;
  bool zero = false;
  int width = -1;
  char grouping = 0;
  int precision = -1;
  char type = 0;
};

std::string pad(std::string body, const Spec& spec, char default_align) {
  const int64_t len = static_cast<int64_t>(unicode::length(body));
  if (spec.width < 0 || len >= spec.width) return body;
  const size_t missing = static_cast<size_t>(spec.width - len);
  const char align = spec.align ? spec.align : default_align;
  if (align == '<') return body + std::string(missing, spec.fill);
  if (align == '^') {
    return std::string(missing / 2, spec.fill) + body + std::string(missing - missing / 2, spec.fill);
  }
  if (align == '=' && !body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) {
    return body.substr(0, 1) + std::string(missing, spec.fill) + body.substr(1);
  }
  return std::string(missing, spec.fill) + body;
}

std::string group_digits(const std::string& digits, char sep) {
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i && (n - i) % 3 == 0) out.push_back(sep);
    out.push_back(digits[i]);
  }
  return out;
}

std::string sign_prefix(bool negative, char sign) {
  if (negative) return "-";
  if (sign == '+') return "+";
  if (sign == ' ') return " ";
  return "";
}

std::string format_int(int64_t v, const Spec& spec) {
  const bool negative = v < 0;
  const uint64_t mag = negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits;
  std::string prefix;
  char buf[80];
  switch (spec.type) {
    case 'b': {
      uint64_t m = mag;
      do {
        digits.insert(digits.begin(), static_cast<char>('0' + (m & 1)));
        m >>= 1;
      } while (m);
      if (spec.alternate) prefix = "0b";
      break;
    }
    case 'o':
      std::snprintf(buf, sizeof buf, "%llo", static_cast<unsigned long long>(mag));
      digits = buf;
      if (spec.alternate) prefix = "0o";
      break;
    case 'x':
    case 'X':
      std::snprintf(buf, sizeof buf, spec.type == 'x' ? "%llx" : "%llX",
                    static_cast<unsigned long long>(mag));
      digits = buf;
      if (spec.alternate) prefix = spec.type == 'x' ? "0x" : "0X";
      break;
    case 'c': {
      std::string s;
      unicode::append(s, static_cast<char32_t>(mag));
      return pad(s, spec, '<');
    }
    default:
      digits = std::to_string(mag);
      if (spec.grouping) digits = group_digits(digits, spec.grouping);
  }
  std::string head = sign_prefix(negative, spec.sign) + prefix;
  if (spec.zero && spec.width > 0 && !spec.align) {
    const int64_t used = static_cast<int64_t>(head.size() + digits.size());
    if (used < spec.width) digits.insert(0, static_cast<size_t>(spec.width - used), '0');
  }
  return pad(head + digits, spec, '>');
}

std::string format_float(double v, const Spec& spec) {
  char type = spec.type;
  int precision = spec.precision;
  std::string body;
  const bool negative = std::signbit(v) && !std::isnan(v);
  const double mag = std::fabs(v);
  if (type == 0 && precision < 0) {
    body = float_repr(mag);
  } else {
    bool percent = false;
    if (type == '%') {
      percent = true;
      type = 'f';
    }
    if (type == 0) type = 'g';
    if (precision < 0) precision = 6;
    char fmt[16];
    std::snprintf(fmt, sizeof fmt, "%%%s.%d%c", spec.alternate ? "#" : "", precision,
                  type == 'n' ? 'g' : type);
    char buf[512];
    std::snprintf(buf, sizeof buf, fmt, percent ? mag * 100 : mag);
    body = buf;
    if (percent) body += "%";
    if (spec.type == 0 && body.find_first_of(".en") == std::string::npos) body += ".0";
  }
  if (spec.grouping) {
    const size_t end = body.find_first_not_of("0123456789");
    body = group_digits(body.substr(0, end), spec.grouping) +
           (end == std::string::npos ? "" : body.substr(end));
  }
  std::string head = sign_prefix(negative, spec.sign);
  if (spec.zero && spec.width > 0 && !spec.align) {
    const int64_t used = static_cast<int64_t>(head.size() + body.size());
    if (used < spec.width) body.insert(0, static_cast<size_t>(spec.width - used), '0');
  }
  return pad(head + body, spec, '>');
}

// format(value, spec) with Python's format-spec mini language.
std::string format_value(const Value& v, const std::string& text) {
  if (text.empty()) return to_str(v);
  Spec spec;
  size_t i = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (text.size() >= 2 && is_align(text[1])) {
    spec.fill = text[0];
    spec.align = text[1];
    i = 2;
  } else if (is_align(text[0])) {
    spec.align = text[0];
    i = 1;
  }
  if (i < text.size() && (text[i] == '+' || text[i] == '-' || text[i] == ' ')) spec.sign = text[i++];
  if (i < text.size() && text[i] == '#') {
    spec.alternate = true;
    ++i;
  }
  if (i < text.size() && text[i] == '0') {
    spec.zero = true;
    ++i;
  }
  if (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) {
    spec.width = 0;
    while (i < text.size() && isdigit(static_cast<unsigned char>(text[i])))
      spec.width = spec.width * 10 + (text[i++] - '0');
  }
  if (i < text.size() && (text[i] == ',' || text[i] == '_')) spec.grouping = text[i++];
  if (i < text.size() && text[i] == '.') {
    ++i;
    spec.precision = 0;
    while (i < text.size() && isdigit(static_cast<unsigned char>(text[i])))
      spec.precision = spec.precision * 10 + (text[i++] - '0');
  }
  if (i < text.size()) spec.type = text[i++];
  if (i != text.size()) fail("Invalid format specifier '" + text + "'");

  if (v.is_string() || (!v.is_number() && spec.type == 0)) {
    if (spec.type != 0 && spec.type != 's') {
      fail(std::string("Unknown format code '") + spec.type + "' for object of type '" +
           type_name(v) + "'");
    }
    std::string s = to_str(v);
    if (spec.precision >= 0) s = s.substr(0, unicode::byte_offset(s, static_cast<size_t>(spec.precision)));
    return pad(s, spec, '<');
  }
  if (v.is_integral() && std::string_view("bcdoxXn").find(spec.type) != std::string_view::npos &&
      spec.type != 0) {
    return format_int(v.as_int(), spec);
  }
  if (v.is_integral() && spec.type == 0) {
    if (v.is_bool() && spec.width < 0) return to_str(v);
    return format_int(v.as_int(), spec);
  }
  if (v.is_number() && std::string_view("eEfFgGn%").find(spec.type) != std::string_view::npos) {
    return format_float(v.as_double(), spec);
  }
  fail(std::string("Unknown format code '") + spec.type + "' for object of type '" +
       type_name(v) + "'");
}

}  // namespace

std::string percent_format(const std::string& fmt, const Value& args) {
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.as_list().items;
  } else if (args.is_mapping()) {
    mapping = &args;
    positional.push_back(args);
  } else {
    positional.push_back(args);
  }
  size_t next_arg = 0;
  bool used_mapping = false;
  auto take = [&]() -> const Value& {
    if (next_arg >= positional.size()) fail("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) fail("incomplete format");
    const Value* key_value = nullptr;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos) fail("incomplete format key");
      if (!mapping) fail("format requires a mapping");
      const std::string key = fmt.substr(i + 1, close - i - 1);
      key_value = mapping->as_dict().find(std::string_view(key));
      if (!key_value) fail("KeyError: '" + key + "'");
      used_mapping = true;
      i = close + 1;
    }
    Spec spec;
    spec.align = '>';
    for (; i < fmt.size(); ++i) {
      const char c = fmt[i];
      if (c == '-') spec.align = '<';
      else if (c == '+') spec.sign = '+';
      else if (c == ' ') { if (spec.sign != '+') spec.sign = ' '; }
      else if (c == '#') spec.alternate = true;
      else if (c == '0') spec.zero = true;
      else break;
    }
    if (i < fmt.size() && fmt[i] == '*') {
      spec.width = static_cast<int>(arg_int(take(), "format", "*"));
      ++i;
    } else {
      while (i < fmt.size() && isdigit(static_cast<unsigned char>(fmt[i]))) {
        spec.width = std::max(spec.width, 0) * 10 + (fmt[i++] - '0');
      }
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      spec.precision = 0;
      if (i < fmt.size() && fmt[i] == '*') {
        spec.precision = static_cast<int>(arg_int(take(), "format", "*"));
        ++i;
      } else {
        while (i < fmt.size() && isdigit(static_cast<unsigned char>(fmt[i])))
          spec.precision = spec.precision * 10 + (fmt[i++] - '0');
      }
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) fail("incomplete format");
    const char type = fmt[i];
    if (type == '%') {
      out.push_back('%');
      continue;
    }
    const Value& v = key_value ? *key_value : take();
    if (spec.zero && spec.align == '<') spec.zero = false;
    if (spec.zero) spec.align = 0;
    switch (type) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = type == 's' ? to_str(v) : repr(v);
        if (spec.precision >= 0)
          s = s.substr(0, unicode::byte_offset(s, static_cast<size_t>(spec.precision)));
        spec.zero = false;
        if (!spec.align) spec.align = '>';
        out += pad(s, spec, '>');
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'o':
      case 'x':
      case 'X': {
        if (!v.is_number()) {
          fail(std::string("%") + type + " format: a real number is required, not " +
               type_name(v));
        }
        const int64_t n = v.is_float() ? static_cast<int64_t>(v.as_double()) : v.as_int();
        spec.type = (type == 'o' || type == 'x' || type == 'X') ? type : 'd';
        out += format_int(n, spec);
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (!v.is_number()) {
          fail(std::string("must be real number, not ") + type_name(v));
        }
        spec.type = type;
        if (spec.precision < 0) spec.precision = 6;
        out += format_float(v.as_double(), spec);
        break;
      }
      case 'c': {
        std::string s;
        if (v.is_string() && unicode::length(v.as_string()) == 1) {
          s = v.as_string();
        } else if (v.is_integral()) {
          unicode::append(s, static_cast<char32_t>(v.as_int()));
        } else {
          fail("%c requires int or char");
        }
        out += pad(s, spec, '>');
        break;
      }
      default:
        fail(std::string("unsupported format character '") + type + "'");
    }
  }
  // Python only complains about leftovers when the argument could not be a mapping: lists and
  // dicts (anything with __getitem__ except str and tuple) are let through.
  const bool mapping_like = (args.is_list() && !args.is_tuple()) || args.is_dict();
  if (!used_mapping && !mapping_like && next_arg < positional.size()) {
    fail("not all arguments converted during string formatting");
  }
  return out;
}

std::string str_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    // {field[.attr|[key]]...[!conv][:spec]}; nested {} inside the spec are not supported.
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) fail("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string spec;
    char conversion = 0;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) fail("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    size_t name_end = field.find_first_of(".[");
    const std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty()) {
      if (auto_index >= args.positional.size()) {
        fail("Replacement index " + std::to_string(auto_index) + " out of range for positional "
             "args tuple");
      }
      v = args.positional[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char ch) { return isdigit(static_cast<unsigned char>(ch)); })) {
      const size_t index = std::stoul(head);
      if (index >= args.positional.size()) {
        fail("Replacement index " + head + " out of range for positional args tuple");
      }
      v = args.positional[index];
    } else {
      bool found = false;
      for (const auto& [key, value] : args.keyword) {
        if (key == head) {
          v = value;
          found = true;
        }
      }
      if (!found) fail("KeyError: '" + head + "'");
    }
    while (name_end != std::string::npos && name_end < field.size()) {
      if (field[name_end] == '.') {
        const size_t next = field.find_first_of(".[", name_end + 1);
        v = get_attr(v, field.substr(name_end + 1, next == std::string::npos ? std::string::npos
                                                                              : next - name_end - 1));
        name_end = next;
      } else {
        const size_t rb = field.find(']', name_end);
        if (rb == std::string::npos) fail("Missing ']' in format string");
        const std::string key = field.substr(name_end + 1, rb - name_end - 1);
        const bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) {
          return isdigit(static_cast<unsigned char>(ch));
        });
        v = get_item(v, numeric ? Value::integer(std::stoll(key)) : Value::string(key));
        name_end = rb + 1;
      }
    }
    if (conversion == 'r' || conversion == 'a') {
      v = Value::string(repr(v));
    } else if (conversion == 's') {
      v = Value::string(to_str(v));
    } else if (conversion != 0) {
      fail(std::string("Unknown conversion specifier ") + conversion);
    }
    out += format_value(v, spec);
  }
  return out;
}

}  // namespace vllm::jinja
