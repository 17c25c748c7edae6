#include "vllm/structured/builtin_grammars.h"

#include <cstdint>
#include <cstdio>

#include "vllm/core/error.h"

namespace vllm::structured {

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 2;
      cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 3;
      cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 4;
      cp = b & 0x07u;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

std::string gbnf_literal(std::string_view text) {
  if (!valid_utf8(text)) throw Error("grammar literal is not valid UTF-8", ErrorKind::kInvalidArgument);
  std::string out = "\"";
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (b < 0x20 || b == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02X", b);
          out += buf;
        } else {
          out.push_back(c);  // printable ASCII, or a byte of a UTF-8 character
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string choice_to_gbnf(const std::vector<std::string>& choices) {
  if (choices.empty()) throw Error("choice needs at least one string", ErrorKind::kInvalidArgument);
  std::string out = "root ::= ";
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += " | ";
    if (!valid_utf8(choices[i])) {
      throw Error("choice " + std::to_string(i) + " is not valid UTF-8", ErrorKind::kInvalidArgument);
    }
    out += gbnf_literal(choices[i]);
  }
  out += "\n";
  return out;
}

std::string json_object_gbnf(const JsonObjectOptions& options) {
  // The whitespace rule is the only difference: [ \t\n\r]* or nothing.
  std::string g = R"(root   ::= ws object ws
value  ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" ( [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
)";
  g += options.whitespace ? "ws     ::= [ \\t\\n\\r]*\n" : "ws     ::= \"\"\n";
  return g;
}

}  // namespace vllm::structured
