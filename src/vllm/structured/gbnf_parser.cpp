// The GBNF parser: llama.cpp's dialect, desugared into a byte-level Grammar (grammar.h).
//
//   grammar     ::= (rule | blank line | comment)*
//   rule        ::= name "::=" alternatives            (ends at the end of the line)
//   alternatives::= sequence ("|" sequence)*
//   sequence    ::= (primary postfix*)*
//   primary     ::= "literal" | [class] | [^class] | . | name | ( alternatives )
//   postfix     ::= * | + | ? | {m} | {m,} | {m,n}
//
// Whitespace separates items; a newline ends a rule except inside parentheses and right after
// "::=" or "|". As in llama.cpp, a rule cannot continue on the next line unless that line starts
// with "|" (an extension: llama.cpp rejects such lines, but they read naturally and cannot be
// mistaken for the start of a rule). `#` starts a comment that runs to the end of the line.
// Literals and classes are over Unicode code points: \xHH, \uHHHH and \UHHHHHHHH name code points
// (so "\xE9" is U+00E9, two bytes in UTF-8), and the grammar only ever matches valid UTF-8.
#include <cstdint>
#include <map>
#include <unordered_map>

#include "vllm/structured/grammar_builder.h"
#include "vllm/structured/limits.h"
#include "vllm/structured/utf8_classes.h"

namespace vllm::structured {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Parser {
 public:
  Parser(std::string_view text, GrammarBuilder& b) : text_(text), b_(b) {}

  Grammar parse(std::string_view root_name) {
    skip_space(true);
    while (pos_ < text_.size()) {
      parse_rule();
      skip_space(true);
    }
    // Undefined rules: report the first reference in the text.
    size_t first_offset = SIZE_MAX;
    std::string first_name;
    for (const auto& [name, id] : ids_) {
      if (!defined_[id] && first_use_[id] < first_offset) {
        first_offset = first_use_[id];
        first_name = name;
      }
    }
    if (!first_name.empty()) b_.fail(first_offset, "undefined rule '" + first_name + "'");
    auto root = ids_.find(std::string(root_name));
    if (root == ids_.end()) b_.fail(0, "no rule named '" + std::string(root_name) + "' (the start rule)");
    return b_.finish(root->second);
  }

 private:
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }

  // Skips blanks and comments; newlines too when `newlines` is set.
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || (c == '\r' && peek(1) != '\n')) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && text_[pos_] != '\n' && !(text_[pos_] == '\r' && peek(1) == '\n')) ++pos_;
      } else if (newlines && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  // Where the next line starting with "|" continues the current rule: the offset of that "|",
  // or npos when the next non-blank, non-comment line is something else.
  size_t continuation_bar() const {
    size_t p = pos_;
    while (p < text_.size()) {
      const char c = text_[p];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++p;
      } else if (c == '#') {
        while (p < text_.size() && text_[p] != '\n') ++p;
      } else {
        return c == '|' ? p : std::string_view::npos;
      }
    }
    return std::string_view::npos;
  }

  // Whether only blanks precede `offset` on its line.
  bool starts_line(size_t offset) const {
    while (offset > 0 && (text_[offset - 1] == ' ' || text_[offset - 1] == '\t')) --offset;
    return offset == 0 || text_[offset - 1] == '\n' || text_[offset - 1] == '\r';
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  uint32_t rule_id(const std::string& name, size_t use_offset) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const uint32_t id = b_.add_rule(name, false, 0, use_offset);
    ids_.emplace(name, id);
    defined_.resize(id + 1, false);
    first_use_.resize(id + 1, SIZE_MAX);
    first_use_[id] = use_offset;
    return id;
  }

  void parse_rule() {
    const size_t start = pos_;
    const std::string name = parse_name();
    if (name.empty()) b_.fail(pos_, unexpected("a rule name"));
    skip_space(false);
    if (text_.compare(pos_, 3, "::=") != 0) b_.fail(pos_, unexpected("'::=' after rule name '" + name + "'"));
    pos_ += 3;
    skip_space(true);
    const uint32_t id = rule_id(name, start);
    if (defined_[id]) {
      const TextPosition p = text_position(text_, def_offset_[id]);
      b_.fail(start, "rule '" + name + "' is defined twice (first at line " + std::to_string(p.line) + ")");
    }
    defined_[id] = true;
    def_offset_[id] = start;
    b_.set_offset(id, start);  // created at its first use, it is defined here
    owner_ = id;
    helper_count_ = 0;
    stopped_at_rule_ = false;
    std::vector<GrammarSequence> alts = parse_alternatives(false);
    b_.rule(id).alternatives = std::move(alts);
    if (!at_end() && !stopped_at_rule_ && text_[pos_] != '\n' && text_[pos_] != '\r') {
      if (text_[pos_] == ')') b_.fail(pos_, "unmatched ')'");
      b_.fail(pos_, unexpected("the end of the line"));
    }
  }

  std::string unexpected(const std::string& expected) const {
    if (at_end()) return "expected " + expected + ", found the end of the grammar";
    const char c = text_[pos_];
    if (c == '\n' || c == '\r') return "expected " + expected + ", found the end of the line";
    std::string shown;
    const size_t len = std::min<size_t>(utf8_length(static_cast<unsigned char>(c)), text_.size() - pos_);
    shown.assign(text_.substr(pos_, len));
    return "expected " + expected + ", found '" + shown + "'";
  }

  static size_t utf8_length(unsigned char b) {
    if (b < 0xC0) return 1;
    if (b < 0xE0) return 2;
    if (b < 0xF0) return 3;
    return 4;
  }

  std::vector<GrammarSequence> parse_alternatives(bool nested) {
    std::vector<GrammarSequence> alts;
    alts.push_back(parse_sequence(nested));
    for (;;) {
      if (peek() == '|') {
        ++pos_;
        skip_space(true);
        alts.push_back(parse_sequence(nested));
        continue;
      }
      if (!nested) {
        const size_t bar = continuation_bar();
        if (bar != std::string_view::npos) {
          pos_ = bar;
          continue;
        }
      }
      return alts;
    }
  }

  uint32_t new_helper(size_t offset) {
    const std::string name = b_.rule(owner_).name + "--" + std::to_string(++helper_count_);
    return b_.add_rule(name, true, owner_, offset);
  }

  void append(GrammarSequence& seq, GrammarElement e, size_t offset) {
    b_.count_elements(1, offset);
    seq.push_back(e);
  }

  GrammarSequence parse_sequence(bool nested) {
    GrammarSequence seq;
    for (;;) {
      const size_t item_offset = pos_;
      const size_t item_start = seq.size();
      const char c = peek();
      if (at_end()) break;
      if (c == '"') {
        parse_literal(seq);
      } else if (c == '[') {
        parse_class(seq);
      } else if (c == '.') {
        ++pos_;
        append_class(seq, normalize_class({{0, kMaxCodePoint}}, false), item_offset);
      } else if (c == '(') {
        if (++nesting_ > limits::kMaxNesting) {
          b_.fail(pos_, "parentheses nested deeper than " + std::to_string(limits::kMaxNesting) +
                            " levels (limits::kMaxNesting)");
        }
        ++pos_;
        skip_space(true);
        std::vector<GrammarSequence> alts = parse_alternatives(true);
        skip_space(true);
        if (peek() != ')') {
          if (at_end()) b_.fail(item_offset, "unclosed '('");
          b_.fail(pos_, unexpected("')'"));
        }
        ++pos_;
        --nesting_;
        if (alts.size() == 1) {
          // A one-alternative group is its sequence; no helper rule needed.
          for (const GrammarElement& e : alts[0]) seq.push_back(e);
        } else {
          const uint32_t h = new_helper(item_offset);
          b_.rule(h).alternatives = std::move(alts);
          append(seq, GrammarBuilder::rule_element(h), item_offset);
        }
      } else if (is_name_char(c)) {
        const std::string name = parse_name();
        const size_t after = pos_;
        skip_space(false);
        if (text_.compare(pos_, 3, "::=") == 0) {
          // "a ::=" with nothing after it on its line reaches the next rule: a is empty.
          if (!nested && starts_line(item_offset)) {
            pos_ = item_offset;
            stopped_at_rule_ = true;
            break;
          }
          b_.fail(item_offset, "rule '" + name + "' must start on a new line");
        }
        pos_ = after;
        append(seq, GrammarBuilder::rule_element(rule_id(name, item_offset)), item_offset);
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        b_.fail(pos_, std::string("'") + c + "' must follow an item to repeat");
      } else {
        break;
      }
      skip_space(nested);
      while (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')) {
        parse_postfix(seq, item_start, item_offset);
        skip_space(nested);
      }
    }
    return seq;
  }

  // Reads one code point of a literal or class at pos_ (an escape or a UTF-8 character). The
  // class escapes \] \[ \- \^ are accepted in literals too.
  uint32_t parse_char() {
    const size_t start = pos_;
    const auto c = static_cast<unsigned char>(text_[pos_]);
    if (c == '\\') {
      if (pos_ + 1 >= text_.size()) b_.fail(start, "unfinished escape at the end of the grammar");
      const char e = text_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case 'n': return '\n';
        case 't': return '\t';
        case 'r': return '\r';
        case '\\': return '\\';
        case '"': return '"';
        case '\'': return '\'';
        case '/': return '/';
        case '[': return '[';
        case ']': return ']';
        case '-': return '-';
        case '^': return '^';
        case 'x': return parse_hex(2, start);
        case 'u': return parse_hex(4, start);
        case 'U': return parse_hex(8, start);
        default: break;
      }
      b_.fail(start, std::string("unknown escape '\\") + e + "'");
    }
    if (c < 0x80) {
      ++pos_;
      return c;
    }
    // A UTF-8 character of the grammar text itself.
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07;
    } else {
      b_.fail(start, "invalid UTF-8 in the grammar text");
    }
    if (pos_ + n > text_.size()) b_.fail(start, "invalid UTF-8 in the grammar text");
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(text_[pos_ + k]);
      if ((d & 0xC0) != 0x80) b_.fail(start, "invalid UTF-8 in the grammar text");
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > kMaxCodePoint))) {
      b_.fail(start, "invalid UTF-8 in the grammar text");
    }
    pos_ += n;
    return cp;
  }

  uint32_t parse_hex(int digits, size_t start) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const int h = pos_ < text_.size() ? hex_value(text_[pos_]) : -1;
      if (h < 0) {
        b_.fail(start, "escape needs " + std::to_string(digits) + " hexadecimal digits");
      }
      v = (v << 4) | static_cast<uint32_t>(h);
      ++pos_;
    }
    if (v > kMaxCodePoint) b_.fail(start, "code point above U+10FFFF");
    return v;
  }

  void parse_literal(GrammarSequence& seq) {
    const size_t start = pos_;
    ++pos_;
    std::string bytes;
    for (;;) {
      if (at_end()) b_.fail(start, "unterminated literal");
      if (text_[pos_] == '"') {
        ++pos_;
        break;
      }
      const size_t char_start = pos_;
      const uint32_t cp = parse_char();
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        b_.fail(char_start, "a surrogate code point has no UTF-8 encoding");
      }
      append_utf8(bytes, cp);
    }
    for (char ch : bytes) {
      ByteSet s;
      s.set(static_cast<uint8_t>(ch));
      append(seq, b_.bytes_element(s), start);
    }
  }

  void parse_class(GrammarSequence& seq) {
    const size_t start = pos_;
    ++pos_;
    bool negate = false;
    if (peek() == '^') {
      negate = true;
      ++pos_;
    }
    std::vector<CodePointRange> ranges;
    for (;;) {
      if (at_end()) b_.fail(start, "unterminated character class");
      if (text_[pos_] == ']') {
        ++pos_;
        break;
      }
      const size_t item = pos_;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < text_.size()) {
        ++pos_;
        hi = parse_char();
        if (hi < lo) b_.fail(item, "character range is out of order");
      }
      ranges.push_back({lo, hi});
    }
    std::vector<CodePointRange> cls = normalize_class(std::move(ranges), negate);
    if (cls.empty()) b_.fail(start, "character class matches no character");
    append_class(seq, cls, start);
  }

  // Appends a class: one byte-set element when it is ASCII only, else a (shared) helper rule.
  void append_class(GrammarSequence& seq, const std::vector<CodePointRange>& cls, size_t offset) {
    if (cls.back().hi < 0x80) {
      ByteSet s;
      for (const CodePointRange& r : cls) s.set_range(static_cast<uint8_t>(r.lo), static_cast<uint8_t>(r.hi));
      append(seq, b_.bytes_element(s), offset);
      return;
    }
    auto it = class_rules_.find(cls);
    if (it == class_rules_.end()) {
      const std::unique_ptr<Utf8Node> tree = utf8_class_sequences(cls);
      const uint32_t rule = utf8_rule(*tree, offset);
      it = class_rules_.emplace(cls, rule).first;
    }
    append(seq, GrammarBuilder::rule_element(it->second), offset);
  }

  // The rule for a prefix-tree node: one alternative per edge; a chain of single-edge nodes
  // stays in one sequence.
  uint32_t utf8_rule(const Utf8Node& node, size_t offset) {
    const uint32_t rule = new_helper(offset);
    std::vector<GrammarSequence> alts;
    for (const Utf8Node::Edge& e : node.edges) {
      GrammarSequence seq;
      append(seq, b_.bytes_element(e.bytes), offset);
      const Utf8Node* n = e.next.get();
      while (!n->is_end()) {
        if (n->edges.size() == 1) {
          append(seq, b_.bytes_element(n->edges[0].bytes), offset);
          n = n->edges[0].next.get();
        } else {
          append(seq, GrammarBuilder::rule_element(utf8_rule(*n, offset)), offset);
          break;
        }
      }
      alts.push_back(std::move(seq));
    }
    b_.rule(rule).alternatives = std::move(alts);
    return rule;
  }

  uint32_t parse_count() {
    const size_t start = pos_;
    uint64_t v = 0;
    while (!at_end() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(text_[pos_] - '0');
      if (v > limits::kMaxRepetition) {
        b_.fail(start, "repetition count above " + std::to_string(limits::kMaxRepetition) +
                           " (limits::kMaxRepetition)");
      }
      ++pos_;
    }
    if (pos_ == start) b_.fail(pos_, unexpected("a number in '{...}'"));
    return static_cast<uint32_t>(v);
  }

  // X* as a helper rule: star ::= X star | ""
  uint32_t star_rule(const GrammarSequence& item, size_t offset) {
    const uint32_t h = new_helper(offset);
    GrammarSequence loop = item;
    b_.count_elements(item.size() + 1, offset);
    loop.push_back(GrammarBuilder::rule_element(h));
    b_.rule(h).alternatives = {std::move(loop), {}};
    return h;
  }

  void parse_postfix(GrammarSequence& seq, size_t item_start, size_t item_offset) {
    const size_t op_offset = pos_;
    const char op = text_[pos_++];
    GrammarSequence item(seq.begin() + static_cast<std::ptrdiff_t>(item_start), seq.end());
    seq.resize(item_start);
    uint32_t min = 0, max = 0;
    bool bounded = true;
    if (op == '{') {
      skip_space(true);
      min = parse_count();
      skip_space(true);
      if (peek() == ',') {
        ++pos_;
        skip_space(true);
        if (peek() == '}') {
          bounded = false;
        } else {
          max = parse_count();
          if (max < min) b_.fail(op_offset, "repetition {m,n} needs m <= n");
        }
        skip_space(true);
      } else {
        max = min;
      }
      if (peek() != '}') b_.fail(pos_, unexpected("'}'"));
      ++pos_;
    }
    if (item.empty()) return;  // repeating the empty string is the empty string
    switch (op) {
      case '*':
        append(seq, GrammarBuilder::rule_element(star_rule(item, item_offset)), item_offset);
        return;
      case '+': {
        const uint32_t star = star_rule(item, item_offset);
        b_.count_elements(item.size(), item_offset);
        seq.insert(seq.end(), item.begin(), item.end());
        append(seq, GrammarBuilder::rule_element(star), item_offset);
        return;
      }
      case '?': {
        const uint32_t h = new_helper(item_offset);
        b_.count_elements(item.size(), item_offset);
        b_.rule(h).alternatives = {std::move(item), {}};
        append(seq, GrammarBuilder::rule_element(h), item_offset);
        return;
      }
      default:
        break;
    }
    // {m}, {m,}, {m,n}: the item once as one element, so that copies share it.
    GrammarElement unit;
    if (item.size() == 1) {
      unit = item[0];
    } else {
      const uint32_t h = new_helper(item_offset);
      b_.count_elements(item.size(), item_offset);
      b_.rule(h).alternatives = {std::move(item)};
      unit = GrammarBuilder::rule_element(h);
    }
    b_.count_elements(min, op_offset);
    seq.insert(seq.end(), min, unit);
    if (!bounded) {
      append(seq, GrammarBuilder::rule_element(star_rule({unit}, item_offset)), item_offset);
      return;
    }
    // The n - m optional copies, nested so that each prefix has exactly one parse:
    // opt_k ::= unit opt_{k-1} | ""
    uint32_t prev = UINT32_MAX;
    for (uint32_t k = 0; k < max - min; ++k) {
      const uint32_t h = new_helper(item_offset);
      GrammarSequence s{unit};
      if (prev != UINT32_MAX) s.push_back(GrammarBuilder::rule_element(prev));
      b_.count_elements(s.size(), op_offset);
      b_.rule(h).alternatives = {std::move(s), {}};
      prev = h;
    }
    if (prev != UINT32_MAX) append(seq, GrammarBuilder::rule_element(prev), item_offset);
  }

  std::string_view text_;
  size_t pos_ = 0;
  GrammarBuilder& b_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::unordered_map<uint32_t, size_t> def_offset_;
  bool stopped_at_rule_ = false;  // the current rule ended where the next one starts
  std::map<std::vector<CodePointRange>, uint32_t> class_rules_;
  uint32_t owner_ = 0;
  uint32_t helper_count_ = 0;
  int nesting_ = 0;
};

}  // namespace

Grammar Grammar::from_gbnf(std::string_view text, std::string_view root_rule) {
  if (text.size() > limits::kMaxGrammarBytes) {
    throw GrammarError(1, 1, "grammar text is " + std::to_string(text.size()) + " bytes, more than " +
                                 std::to_string(limits::kMaxGrammarBytes) + " (limits::kMaxGrammarBytes)");
  }
  GrammarBuilder builder(text);
  Parser parser(text, builder);
  return parser.parse(root_rule);
}

}  // namespace vllm::structured
