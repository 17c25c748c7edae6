// ECMAScript pattern parser (the subset of regex.h) and the anchor normaliser.
#include "vllm/structured/regex_ast.h"

#include <cstdint>
#include <string>

#include "vllm/structured/regex.h"

namespace vllm::structured {

namespace {

using Kind = RegexNode::Kind;

bool is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
int hex_value(uint32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}
bool is_ascii_letter(uint32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

CodePointSet digit_set() { return CodePointSet::range('0', '9'); }
CodePointSet word_set() {
  CodePointSet s = CodePointSet::range('a', 'z');
  s.add('A', 'Z');
  s.add('0', '9');
  s.add('_');
  return s;
}
// ECMAScript WhiteSpace and LineTerminator.
CodePointSet space_set() {
  CodePointSet s;
  for (uint32_t c : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0xA0u, 0x1680u, 0x2028u, 0x2029u,
                     0x202Fu, 0x205Fu, 0x3000u, 0xFEFFu})
    s.add(c);
  s.add(0x2000, 0x200A);
  return s;
}
CodePointSet negate(const CodePointSet& s) {
  CodePointSet out = CodePointSet::any_scalar();
  out.subtract(s);
  return out;
}
CodePointSet dot_set() {
  CodePointSet s = CodePointSet::any_scalar();
  for (uint32_t c : {0x0Au, 0x0Du, 0x2028u, 0x2029u}) s.subtract(CodePointSet::single(c));
  return s;
}

RegexNode make_repeat(RegexNode child, uint32_t min, uint32_t max, size_t pos) {
  if (child.kind == Kind::kNothing) return min == 0 ? RegexNode::empty(pos) : RegexNode::nothing(pos);
  if (child.kind == Kind::kEmpty || max == 0) return RegexNode::empty(pos);
  if (min == 1 && max == 1) return child;
  RegexNode n;
  n.kind = Kind::kRepeat;
  n.min = min;
  n.max = max;
  n.position = pos;
  n.children.push_back(std::move(child));
  return n;
}

class Parser {
 public:
  explicit Parser(std::string_view pattern) {
    if (!decode_utf8(pattern, p_)) throw RegexError("pattern is not valid UTF-8", 0);
    if (p_.size() > kMaxRegexLength)
      throw RegexError("pattern longer than " + std::to_string(kMaxRegexLength) + " characters",
                       kMaxRegexLength);
  }

  RegexNode parse() {
    RegexNode n = parse_disjunction();
    if (i_ < p_.size()) throw RegexError("unmatched ')'", i_);
    return n;
  }

 private:
  bool at_end() const { return i_ >= p_.size(); }
  uint32_t peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : 0; }
  bool has(size_t ahead) const { return i_ + ahead < p_.size(); }

  RegexNode parse_disjunction() {
    size_t start = i_;
    std::vector<RegexNode> alts;
    alts.push_back(parse_alternative());
    while (!at_end() && peek() == '|') {
      ++i_;
      alts.push_back(parse_alternative());
    }
    if (alts.size() == 1) return std::move(alts[0]);
    // Keep anchors' branches apart: alt() simplification never merges across them.
    return RegexNode::alt(std::move(alts), start);
  }

  RegexNode parse_alternative() {
    size_t start = i_;
    std::vector<RegexNode> terms;
    while (!at_end() && peek() != '|' && peek() != ')') terms.push_back(parse_term());
    return RegexNode::seq(std::move(terms), start);
  }

  RegexNode parse_term() {
    size_t start = i_;
    uint32_t c = peek();
    if (c == '^' || c == '$') {
      ++i_;
      RegexNode n;
      n.kind = c == '^' ? Kind::kStart : Kind::kEnd;
      n.position = start;
      uint32_t m = 0, x = 0;
      size_t qpos = i_;
      if (parse_quantifier(m, x)) throw RegexError("nothing to repeat", qpos);
      return n;
    }
    RegexNode atom = parse_atom();
    uint32_t min = 0, max = 0;
    size_t qpos = i_;
    if (!parse_quantifier(min, max)) return atom;
    if (min > max) throw RegexError("numbers out of order in {} quantifier", qpos);
    if (min > kMaxRegexRepetition || (max != RegexNode::kUnbounded && max > kMaxRegexRepetition))
      throw RegexError("repetition bound above " + std::to_string(kMaxRegexRepetition), qpos);
    repetition_total_ += max == RegexNode::kUnbounded ? min : max;
    if (repetition_total_ > kMaxRegexRepetitionTotal)
      throw RegexError("repetition bounds add up to more than " +
                           std::to_string(kMaxRegexRepetitionTotal),
                       qpos);
    if (!at_end() && peek() == '?') ++i_;  // lazy: same language
    size_t after = i_;
    uint32_t m2 = 0, x2 = 0;
    if (parse_quantifier(m2, x2)) throw RegexError("nothing to repeat", after);
    return make_repeat(std::move(atom), min, max, start);
  }

  // Reads a quantifier at the cursor; false (cursor unchanged) if there is none.
  bool parse_quantifier(uint32_t& min, uint32_t& max) {
    if (at_end()) return false;
    uint32_t c = peek();
    if (c == '*') { ++i_; min = 0; max = RegexNode::kUnbounded; return true; }
    if (c == '+') { ++i_; min = 1; max = RegexNode::kUnbounded; return true; }
    if (c == '?') { ++i_; min = 0; max = 1; return true; }
    if (c != '{') return false;
    size_t save = i_;
    ++i_;
    if (!read_number(min)) { i_ = save; return false; }
    if (!at_end() && peek() == '}') { ++i_; max = min; return true; }
    if (at_end() || peek() != ',') { i_ = save; return false; }
    ++i_;
    if (!at_end() && peek() == '}') { ++i_; max = RegexNode::kUnbounded; return true; }
    if (!read_number(max) || at_end() || peek() != '}') { i_ = save; return false; }
    ++i_;
    return true;
  }

  // Decimal digits, saturating (a huge bound then fails the limit check with its position).
  bool read_number(uint32_t& out) {
    if (at_end() || !is_digit(peek())) return false;
    uint64_t v = 0;
    while (!at_end() && is_digit(peek())) {
      v = v * 10 + (peek() - '0');
      if (v > 1000000000ull) v = 1000000000ull;
      ++i_;
    }
    out = static_cast<uint32_t>(v);
    return true;
  }

  RegexNode parse_atom() {
    size_t start = i_;
    uint32_t c = peek();
    switch (c) {
      case '.':
        ++i_;
        return RegexNode::chars(dot_set(), start);
      case '(':
        return parse_group();
      case ')':
        throw RegexError("unmatched ')'", start);
      case '[':
        return RegexNode::chars(parse_class(), start);
      case '*':
      case '+':
      case '?':
        throw RegexError("nothing to repeat", start);
      case '{': {
        uint32_t m = 0, x = 0;
        if (parse_quantifier(m, x)) throw RegexError("nothing to repeat", start);
        ++i_;  // a '{' that opens no quantifier is a literal (ECMAScript Annex B)
        return RegexNode::chars(CodePointSet::single('{'), start);
      }
      case '\\':
        return parse_atom_escape();
      default:
        ++i_;
        return RegexNode::chars(CodePointSet::single(c), start);
    }
  }

  RegexNode parse_group() {
    size_t start = i_;
    ++i_;  // (
    if (++depth_ > kMaxRegexNesting)
      throw RegexError("groups nested deeper than " + std::to_string(kMaxRegexNesting), start);
    if (!at_end() && peek() == '?') {
      uint32_t k = peek(1);
      if (k == ':') {
        i_ += 2;
      } else if (k == '=' || k == '!') {
        throw RegexError("lookahead assertions are unsupported", start);
      } else if (k == '<' && (peek(2) == '=' || peek(2) == '!')) {
        throw RegexError("lookbehind assertions are unsupported", start);
      } else if (k == '<') {
        i_ += 2;
        size_t name_start = i_;
        while (!at_end() && peek() != '>') {
          uint32_t n = peek();
          if (!(is_ascii_letter(n) || is_digit(n) || n == '_' || n == '$' || n >= 0x80))
            throw RegexError("invalid character in a group name", i_);
          ++i_;
        }
        if (at_end() || i_ == name_start) throw RegexError("invalid group name", name_start);
        ++i_;  // >
      } else {
        throw RegexError("unsupported group syntax '(?" + std::string(1, static_cast<char>(k < 0x80 ? k : '?')) + "' (inline flags and other extensions are not ECMAScript)", start);
      }
    }
    RegexNode inner = parse_disjunction();
    if (at_end() || peek() != ')') throw RegexError("missing ')'", start);
    ++i_;
    --depth_;
    return inner;
  }

  RegexNode parse_atom_escape() {
    size_t start = i_;
    ++i_;  // backslash
    if (at_end()) throw RegexError("pattern ends with a lone backslash", start);
    uint32_t c = peek();
    switch (c) {
      case 'b': throw RegexError("word boundary \\b is unsupported", start);
      case 'B': throw RegexError("word boundary \\B is unsupported", start);
      case 'k': throw RegexError("backreferences are unsupported", start);
      default: break;
    }
    if (c >= '1' && c <= '9') throw RegexError("backreferences are unsupported", start);
    return RegexNode::chars(parse_escape_set(start, /*in_class=*/false), start);
  }

  // The escape after a backslash (cursor on the character after it) as a set of code points.
  CodePointSet parse_escape_set(size_t start, bool in_class) {
    uint32_t c = peek();
    ++i_;
    switch (c) {
      case 'd': return digit_set();
      case 'D': return negate(digit_set());
      case 'w': return word_set();
      case 'W': return negate(word_set());
      case 's': return space_set();
      case 'S': return negate(space_set());
      case 't': return CodePointSet::single(0x09);
      case 'n': return CodePointSet::single(0x0A);
      case 'v': return CodePointSet::single(0x0B);
      case 'f': return CodePointSet::single(0x0C);
      case 'r': return CodePointSet::single(0x0D);
      case 'b':
        if (in_class) return CodePointSet::single(0x08);
        break;
      case '0':
        if (!at_end() && is_digit(peek())) throw RegexError("octal escapes are unsupported", start);
        return CodePointSet::single(0);
      case 'c': {
        if (at_end() || !is_ascii_letter(peek()))
          throw RegexError("\\c must be followed by a letter", start);
        uint32_t l = peek();
        ++i_;
        return CodePointSet::single(l % 32);
      }
      case 'x': {
        int h1 = hex_value(peek()), h2 = has(1) ? hex_value(peek(1)) : -1;
        if (at_end() || h1 < 0 || h2 < 0) throw RegexError("\\x must be followed by two hex digits", start);
        i_ += 2;
        return CodePointSet::single(static_cast<uint32_t>(h1 * 16 + h2));
      }
      case 'u':
        return CodePointSet::single(parse_unicode_escape(start));
      case 'p':
      case 'P':
        throw RegexError("Unicode property escapes are unsupported", start);
      default:
        break;
    }
    if (in_class && c == '-') return CodePointSet::single('-');
    if (is_ascii_letter(c) || is_digit(c)) {
      std::string e = "\\";
      e += static_cast<char>(c);
      throw RegexError("unsupported escape '" + e + "'", start);
    }
    return CodePointSet::single(c);  // an escaped syntax or other character stands for itself
  }

  // After "\u": XXXX (a surrogate pair \uHHHH\uLLLL is one code point) or {X...}.
  uint32_t parse_unicode_escape(size_t start) {
    if (!at_end() && peek() == '{') {
      ++i_;
      uint64_t v = 0;
      size_t digits = 0;
      while (!at_end() && hex_value(peek()) >= 0) {
        v = v * 16 + static_cast<uint64_t>(hex_value(peek()));
        if (v > kMaxCodePoint) throw RegexError("\\u{...} beyond U+10FFFF", start);
        ++i_;
        ++digits;
      }
      if (digits == 0 || at_end() || peek() != '}') throw RegexError("malformed \\u{...} escape", start);
      ++i_;
      if (v >= kSurrogateFirst && v <= kSurrogateLast) throw RegexError("lone surrogate escapes are unsupported", start);
      return static_cast<uint32_t>(v);
    }
    uint32_t v = 0;
    if (!read_hex4(v)) throw RegexError("\\u must be followed by four hex digits or {...}", start);
    if (v >= 0xD800 && v <= 0xDBFF && peek() == '\\' && peek(1) == 'u') {
      size_t save = i_;
      i_ += 2;
      uint32_t lo = 0;
      if (read_hex4(lo) && lo >= 0xDC00 && lo <= 0xDFFF)
        return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
      i_ = save;
    }
    if (v >= kSurrogateFirst && v <= kSurrogateLast) throw RegexError("lone surrogate escapes are unsupported", start);
    return v;
  }

  bool read_hex4(uint32_t& out) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      int h = has(k) ? hex_value(peek(k)) : -1;
      if (h < 0) return false;
      v = v * 16 + static_cast<uint32_t>(h);
    }
    i_ += 4;
    out = v;
    return true;
  }

  CodePointSet parse_class() {
    size_t start = i_;
    ++i_;  // [
    bool negated = false;
    if (!at_end() && peek() == '^') {
      negated = true;
      ++i_;
    }
    CodePointSet set;
    while (true) {
      if (at_end()) throw RegexError("missing ']'", start);
      if (peek() == ']') {
        ++i_;
        break;
      }
      size_t atom_pos = i_;
      CodePointSet lo = parse_class_atom();
      if (!at_end() && peek() == '-' && has(1) && peek(1) != ']') {
        ++i_;  // -
        size_t hi_pos = i_;
        CodePointSet hi = parse_class_atom();
        if (!lo.is_single() || !hi.is_single())
          throw RegexError("a class escape cannot bound a range", atom_pos);
        uint32_t a = lo.ranges()[0].first, b = hi.ranges()[0].first;
        if (a > b) throw RegexError("range out of order in character class", hi_pos);
        set.add(a, b);
      } else {
        set.add(lo);
      }
    }
    set = set.intersect(CodePointSet::any_scalar());
    return negated ? negate(set) : set;
  }

  CodePointSet parse_class_atom() {
    size_t start = i_;
    uint32_t c = peek();
    if (c != '\\') {
      ++i_;
      return CodePointSet::single(c);
    }
    ++i_;
    if (at_end()) throw RegexError("pattern ends with a lone backslash", start);
    uint32_t e = peek();
    if (e == 'B') throw RegexError("\\B is not valid in a character class", start);
    if (e >= '1' && e <= '9') throw RegexError("backreferences are unsupported", start);
    if (e == 'k') throw RegexError("backreferences are unsupported", start);
    return parse_escape_set(start, /*in_class=*/true);
  }

  std::vector<uint32_t> p_;
  size_t i_ = 0;
  size_t depth_ = 0;
  uint64_t repetition_total_ = 0;
};

// --- anchors ------------------------------------------------------------------------------

// Position of the first node of `kind` under n, or npos.
size_t find_kind(const RegexNode& n, Kind kind) {
  if (n.kind == kind) return n.position;
  for (const auto& c : n.children) {
    size_t p = find_kind(c, kind);
    if (p != std::string::npos) return p;
  }
  return std::string::npos;
}

struct Split {
  RegexNode anchored;    // the strings whose match is anchored at this side (anchor removed)
  RegexNode unanchored;  // the others
};

// Separates the branches of n that begin (at_start) or end with their anchor. An anchor found
// elsewhere is an error, since the language would depend on context we do not model.
Split split(const RegexNode& n, bool at_start) {
  Kind anchor = at_start ? Kind::kStart : Kind::kEnd;
  const char* what = at_start ? "'^' is supported only at the start of the pattern"
                              : "'$' is supported only at the end of the pattern";
  switch (n.kind) {
    case Kind::kStart:
    case Kind::kEnd:
      if (n.kind == anchor) return {RegexNode::empty(n.position), RegexNode::nothing(n.position)};
      return {RegexNode::nothing(n.position), n};
    case Kind::kAlt: {
      std::vector<RegexNode> a, u;
      for (const auto& c : n.children) {
        Split s = split(c, at_start);
        a.push_back(std::move(s.anchored));
        u.push_back(std::move(s.unanchored));
      }
      return {RegexNode::alt(std::move(a), n.position), RegexNode::alt(std::move(u), n.position)};
    }
    case Kind::kConcat: {
      size_t edge = at_start ? 0 : n.children.size() - 1;
      std::vector<RegexNode> rest;
      for (size_t k = 0; k < n.children.size(); ++k) {
        if (k == edge) continue;
        size_t p = find_kind(n.children[k], anchor);
        if (p != std::string::npos) throw RegexError(what, p);
        rest.push_back(n.children[k]);
      }
      Split s = split(n.children[edge], at_start);
      auto join = [&](RegexNode edge_part) {
        std::vector<RegexNode> parts;
        if (at_start) {
          parts.push_back(std::move(edge_part));
          for (const auto& r : rest) parts.push_back(r);
        } else {
          parts = rest;
          parts.push_back(std::move(edge_part));
        }
        return RegexNode::seq(std::move(parts), n.position);
      };
      return {join(std::move(s.anchored)), join(std::move(s.unanchored))};
    }
    case Kind::kRepeat: {
      size_t p = find_kind(n, anchor);
      if (p != std::string::npos) throw RegexError(what, p);
      return {RegexNode::nothing(n.position), n};
    }
    default:
      return {RegexNode::nothing(n.position), n};
  }
}

}  // namespace

RegexNode RegexNode::seq(std::vector<RegexNode> parts, size_t pos) {
  std::vector<RegexNode> flat;
  for (auto& p : parts) {
    if (p.kind == Kind::kNothing) return nothing(pos);
    if (p.kind == Kind::kEmpty) continue;
    if (p.kind == Kind::kConcat) {
      for (auto& c : p.children) flat.push_back(std::move(c));
    } else {
      flat.push_back(std::move(p));
    }
  }
  if (flat.empty()) return empty(pos);
  if (flat.size() == 1) return std::move(flat[0]);
  RegexNode n;
  n.kind = Kind::kConcat;
  n.children = std::move(flat);
  n.position = pos;
  return n;
}

RegexNode RegexNode::alt(std::vector<RegexNode> parts, size_t pos) {
  std::vector<RegexNode> flat;
  for (auto& p : parts) {
    if (p.kind == Kind::kNothing) continue;
    if (p.kind == Kind::kAlt) {
      for (auto& c : p.children) flat.push_back(std::move(c));
    } else {
      flat.push_back(std::move(p));
    }
  }
  if (flat.empty()) return nothing(pos);
  if (flat.size() == 1) return std::move(flat[0]);
  RegexNode n;
  n.kind = Kind::kAlt;
  n.children = std::move(flat);
  n.position = pos;
  return n;
}

RegexNode parse_regex(std::string_view pattern) { return Parser(pattern).parse(); }

RegexNode resolve_anchors(const RegexNode& root, bool search) {
  RegexNode any = make_repeat(RegexNode::chars(CodePointSet::any_scalar()), 0, RegexNode::kUnbounded, 0);
  Split s = split(root, /*at_start=*/true);
  std::vector<RegexNode> out;
  for (int started = 0; started < 2; ++started) {
    const RegexNode& part = started ? s.anchored : s.unanchored;
    if (part.kind == Kind::kNothing) continue;
    Split e = split(part, /*at_start=*/false);
    for (int ended = 0; ended < 2; ++ended) {
      const RegexNode& body = ended ? e.anchored : e.unanchored;
      if (body.kind == Kind::kNothing) continue;
      if (!search) {
        out.push_back(body);
        continue;
      }
      std::vector<RegexNode> seq;
      if (!started) seq.push_back(any);
      seq.push_back(body);
      if (!ended) seq.push_back(any);
      out.push_back(RegexNode::seq(std::move(seq)));
    }
  }
  return RegexNode::alt(std::move(out));
}

}  // namespace vllm::structured
