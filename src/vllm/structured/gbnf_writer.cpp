#include "vllm/structured/gbnf_writer.h"

#include <cstdint>
#include <cstdio>

namespace vllm::structured {

namespace {

std::string hex_escape(uint32_t cp) {
  char buf[16];
  if (cp < 0x80) std::snprintf(buf, sizeof buf, "\\x%02X", cp);
  else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04X", cp);
  else std::snprintf(buf, sizeof buf, "\\U%08X", cp);
  return buf;
}

// A code point inside "...".
void literal_char(std::string& out, uint32_t cp) {
  switch (cp) {
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    case '\n': out += "\\n"; return;
    case '\t': out += "\\t"; return;
    case '\r': out += "\\r"; return;
    default: break;
  }
  if (cp >= 0x20 && cp < 0x7F) out += static_cast<char>(cp);
  else out += hex_escape(cp);
}

// A code point inside [...]: class syntax characters are written as hex escapes.
void class_char(std::string& out, uint32_t cp) {
  switch (cp) {
    case '\\': out += "\\\\"; return;
    case ']': case '[': case '^': case '-': out += hex_escape(cp); return;
    case '\n': out += "\\n"; return;
    case '\t': out += "\\t"; return;
    case '\r': out += "\\r"; return;
    default: break;
  }
  if (cp >= 0x20 && cp < 0x7F) out += static_cast<char>(cp);
  else out += hex_escape(cp);
}

std::string class_body(const CodePointSet& set) {
  std::string out;
  for (const auto& [lo, hi] : set.ranges()) {
    class_char(out, lo);
    if (hi == lo) continue;
    if (hi > lo + 1) out += '-';
    class_char(out, hi);
  }
  return out;
}

// Hex digits whose value is in `nibbles` (bit i: value i), either case for a-f, as a class.
std::string hex_digit_class(unsigned nibbles) {
  CodePointSet s;
  for (unsigned v = 0; v < 16; ++v) {
    if (!(nibbles & (1u << v))) continue;
    if (v < 10) {
      s.add('0' + v);
    } else {
      s.add('a' + v - 10);
      s.add('A' + v - 10);
    }
  }
  return gbnf_class(s);
}

}  // namespace

std::string gbnf_ascii_literal(std::string_view utf8) {
  std::vector<uint32_t> cps;
  if (!decode_utf8(utf8, cps)) throw vllm::Error("invalid UTF-8 in a grammar literal", ErrorKind::kInvalidArgument);
  std::string out = "\"";
  for (uint32_t cp : cps) literal_char(out, cp);
  out += '"';
  return out;
}

std::string gbnf_class(const CodePointSet& set_in) {
  CodePointSet set = set_in.intersect(CodePointSet::any_scalar());
  VLLM_CHECK(!set.empty(), "empty character class");
  if (set.is_single()) {
    std::string out = "\"";
    literal_char(out, set.ranges()[0].first);
    out += '"';
    return out;
  }
  CodePointSet negated = set.complement();  // includes the surrogates, so they stay excluded
  if (negated.ranges().size() < set.ranges().size()) return cat("[^", class_body(negated), "]");
  return cat("[", class_body(set), "]");
}

bool json_escape_code_point(uint32_t cp, std::string& out) {
  switch (cp) {
    case '"': out += "\\\""; return true;
    case '\\': out += "\\\\"; return true;
    case 0x08: out += "\\b"; return true;
    case 0x0C: out += "\\f"; return true;
    case 0x0A: out += "\\n"; return true;
    case 0x0D: out += "\\r"; return true;
    case 0x09: out += "\\t"; return true;
    default: break;
  }
  if (cp < 0x20) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    out += buf;
    // Only digits: one form. A letter digit (\u001a) may be in either case.
    return (cp & 0xF) < 10;
  }
  append_utf8(out, cp);
  return true;
}

std::string json_escape(std::string_view utf8) {
  std::vector<uint32_t> cps;
  if (!decode_utf8(utf8, cps)) throw vllm::Error("invalid UTF-8 in a JSON string", ErrorKind::kInvalidArgument);
  std::string out;
  for (uint32_t cp : cps) json_escape_code_point(cp, out);
  return out;
}

std::string gbnf_json_char(const CodePointSet& set_in) {
  CodePointSet set = set_in.intersect(CodePointSet::any_scalar());
  VLLM_CHECK(!set.empty(), "empty character set");
  std::vector<std::string> alts;
  CodePointSet plain = set;
  plain.subtract(CodePointSet::range(0, 0x1F));
  plain.subtract(CodePointSet::single('"'));
  plain.subtract(CodePointSet::single('\\'));
  if (!plain.empty()) alts.push_back(gbnf_class(plain));
  if (set.contains('"')) alts.push_back("\"\\\\\\\"\"");  // \"
  if (set.contains('\\')) alts.push_back("\"\\\\\\\\\"");  // \\ (two backslashes)
  std::string shorts;
  for (auto [cp, letter] : {std::pair<uint32_t, char>{0x08, 'b'}, {0x0C, 'f'}, {0x0A, 'n'}, {0x0D, 'r'}, {0x09, 't'}})
    if (set.contains(cp)) shorts += letter;
  if (shorts.size() == 1) alts.push_back(cat("\"\\\\", shorts, "\""));
  else if (!shorts.empty()) alts.push_back(cat("\"\\\\\" [", shorts, "]"));
  // Other control characters: \u00 then the high nibble (0 or 1) and the low nibble.
  std::vector<std::string> long_forms;
  for (uint32_t high = 0; high < 2; ++high) {
    unsigned nibbles = 0;
    for (uint32_t low = 0; low < 16; ++low) {
      uint32_t cp = high * 16 + low;
      if (!set.contains(cp)) continue;
      if (cp == 0x08 || cp == 0x0C || cp == 0x0A || cp == 0x0D || cp == 0x09) continue;
      nibbles |= 1u << low;
    }
    if (nibbles) long_forms.push_back(cat("\"", std::to_string(high), "\" ", hex_digit_class(nibbles)));
  }
  if (!long_forms.empty()) alts.push_back(cat("\"\\\\u00\" ", gbnf_alternatives(long_forms)));
  return gbnf_alternatives(alts);
}

std::string gbnf_alternatives(const std::vector<std::string>& alts) {
  VLLM_CHECK(!alts.empty(), "no alternatives");
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) {
    out += i ? " | " : " ";
    out += alts[i];
  }
  out += " )";
  return out;
}

std::string GbnfWriter::reserve(std::string_view hint) {
  std::string base;
  for (char c : hint) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) base += c;
    else if (c >= 'A' && c <= 'Z') base += static_cast<char>(c - 'A' + 'a');
    else if (!base.empty() && base.back() != '-') base += '-';
  }
  while (!base.empty() && base.back() == '-') base.pop_back();
  if (base.empty()) base.push_back('r');
  if (base.size() > 48) base.resize(48);
  // "root" is the start rule, written by finish().
  int& n = used_[base];
  std::string name = base;
  if (base == "root" && n == 0) n = 1;
  if (n > 0) {
    // Numbered names may collide with a hint that already ends in a number: probe.
    do {
      name = cat(base, "-", std::to_string(++n));
    } while (used_.count(name));
    used_[name] = 1;
  } else {
    n = 1;
  }
  return name;
}

void GbnfWriter::define(const std::string& name, const std::string& body) {
  bytes_ += name.size() + body.size() + 6;
  if (bytes_ > kMaxFrontendGrammarBytes) throw GrammarTooLargeError();
  rules_.emplace_back(name, body);
}

std::string GbnfWriter::helper(const std::string& key, const std::function<std::string()>& body) {
  auto it = helpers_.find(key);
  if (it != helpers_.end()) return it->second;
  std::string name = reserve(key);
  helpers_[key] = name;
  std::string b = body();
  define(name, b);
  return name;
}

std::string GbnfWriter::finish(const std::string& root_body) const {
  std::string out = cat("root ::= ", root_body, "\n");
  for (const auto& [name, body] : rules_) out += cat(name, " ::= ", body, "\n");
  if (out.size() > kMaxFrontendGrammarBytes) throw GrammarTooLargeError();
  return out;
}

}  // namespace vllm::structured
