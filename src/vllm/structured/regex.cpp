#include "vllm/structured/regex.h"

#include "vllm/structured/regex_emit.h"

#include <cstdint>

namespace vllm::structured {

namespace {

using Kind = RegexNode::Kind;

std::string quantifier(uint32_t min, uint32_t max) {
  if (min == 0 && max == 1) return "?";
  if (min == 0 && max == RegexNode::kUnbounded) return "*";
  if (min == 1 && max == RegexNode::kUnbounded) return "+";
  if (max == RegexNode::kUnbounded) return cat("{", std::to_string(min), ",}");
  if (min == max) return cat("{", std::to_string(min), "}");
  return cat("{", std::to_string(min), ",", std::to_string(max), "}");
}

class Emitter {
 public:
  Emitter(bool json, GbnfWriter& w) : json_(json), w_(w) {}

  std::string emit(const RegexNode& n) {
    switch (n.kind) {
      case Kind::kEmpty:
        return "\"\"";
      case Kind::kNothing:
      case Kind::kStart:
      case Kind::kEnd:
        VLLM_CHECK(false, "unresolved regex node");
        return {};
      case Kind::kSet:
        if (!json_) return gbnf_class(n.set);
        // Any character (search semantics' free sides, `.*` tails of excluded names) is common
        // and long in JSON form: one shared rule.
        if (n.set == CodePointSet::any_scalar())
          return w_.helper("json-string-char", [&] { return gbnf_json_char(n.set); });
        return gbnf_json_char(n.set);
      case Kind::kConcat:
        return emit_concat(n);
      case Kind::kAlt: {
        std::vector<std::string> alts;
        for (const auto& c : n.children) alts.push_back(emit(c));
        return gbnf_alternatives(alts);
      }
      case Kind::kRepeat: {
        const RegexNode& c = n.children[0];
        std::string inner = emit(c);
        // A sequence or a repetition needs parentheses to take a postfix operator.
        if (c.kind == Kind::kConcat || c.kind == Kind::kRepeat) inner = cat("( ", inner, " )");
        return inner + quantifier(n.min, n.max);
      }
    }
    return {};
  }

 private:
  // Runs of single characters become one literal.
  std::string emit_concat(const RegexNode& n) {
    std::string out, run;
    auto flush = [&] {
      if (run.empty()) return;
      if (!out.empty()) out += ' ';
      out += gbnf_ascii_literal(run);
      run.clear();
    };
    for (const auto& c : n.children) {
      if (c.kind == Kind::kSet && c.set.is_single()) {
        uint32_t cp = c.set.ranges()[0].first;
        if (!json_) {
          append_utf8(run, cp);
          continue;
        }
        std::string esc;
        if (json_escape_code_point(cp, esc)) {
          run += esc;
          continue;
        }
      }
      flush();
      if (!out.empty()) out += ' ';
      out += emit(c);
    }
    flush();
    return out;
  }

  bool json_;
  GbnfWriter& w_;
};

}  // namespace

std::string regex_expression(const RegexNode& node, bool json_string, GbnfWriter& writer) {
  return Emitter(json_string, writer).emit(node);
}

std::string regex_to_gbnf(std::string_view pattern, const RegexOptions& opts) {
  RegexNode resolved = resolve_anchors(parse_regex(pattern), opts.search);
  if (resolved.kind == Kind::kNothing) throw RegexError("the pattern matches no string", 0);
  GbnfWriter w;
  std::string root = regex_expression(resolved, opts.json_string, w);
  return w.finish(root);
}

}  // namespace vllm::structured
