// JSON Schema -> GBNF. A schema is flattened into a conjunction (allOf and $ref expanded, anyOf
// and oneOf kept as disjunctions); disjunctions are distributed (each branch compiled together
// with its siblings); a conjunction without disjunctions becomes per-type facts (the types it
// admits, string/number/object/array constraints merged across its parts) and then one
// alternative per admitted type. A schema that is only a $ref becomes a rule reference, which
// is how recursive schemas terminate.
#include "vllm/structured/json_schema.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

#include "vllm/structured/gbnf_writer.h"
#include "vllm/structured/integer_range.h"
#include "vllm/structured/json_schema_document.h"
#include "vllm/structured/json_schema_validate.h"
#include "vllm/structured/regex.h"
#include "vllm/structured/regex_emit.h"

namespace vllm::structured {

namespace {

using Expr = std::optional<std::string>;  // nullopt: the empty language

struct Disjunction {
  bool one_of;
  std::vector<SchemaRef> branches;
  std::string ptr;
};

struct Conj {
  std::vector<SchemaRef> atoms;  // schema objects with constraints besides $ref/allOf/anyOf/oneOf
  std::vector<Disjunction> disjunctions;
  bool is_false = false;
};

bool is_structural(const std::string& k) {
  return k == "$ref" || k == "allOf" || k == "anyOf" || k == "oneOf";
}

// Whether a schema object constrains anything besides the structural keywords.
bool has_own_constraints(const ojson& node) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (is_structural(it.key())) continue;
    if (keyword_class(it.key()) != KeywordClass::kIgnored) return true;
  }
  return false;
}

bool trivially_true(const ojson& node) {
  if (node.is_boolean()) return node.get<bool>();
  if (!node.is_object()) return false;
  for (auto it = node.begin(); it != node.end(); ++it)
    if (keyword_class(it.key()) != KeywordClass::kIgnored) return false;
  return true;
}

uint64_t non_negative_integer(const ojson& v, const std::string& key, const std::string& ptr) {
  if (!v.is_number() || value_type(v) != kTypeInteger || v.get<double>() < 0)
    throw_invalid(cat("'", key, "' must be a non-negative integer"), ptr);
  double d = v.get<double>();
  return d > 1e18 ? static_cast<uint64_t>(1e18) : v.get<uint64_t>();
}

std::string quantifier(uint64_t min, std::optional<uint64_t> max) {
  if (!max) {
    if (min == 0) return "*";
    if (min == 1) return "+";
    return cat("{", std::to_string(min), ",}");
  }
  if (min == 0 && *max == 1) return "?";
  if (min == *max) return cat("{", std::to_string(min), "}");
  return cat("{", std::to_string(min), ",", std::to_string(*max), "}");
}

// The per-type facts of a conjunction without disjunctions.
struct Facts {
  uint8_t types = kTypeAll;
  std::vector<std::pair<const ojson*, std::string>> enums;  // enum arrays / const values
  bool has_const_only = false;
  // string
  uint64_t min_len = 0;
  std::optional<uint64_t> max_len;
  std::string len_ptr;
  std::vector<std::pair<std::string, std::string>> patterns;  // source, ptr
  std::vector<std::pair<std::string, std::string>> formats;
  // integer
  std::optional<int64_t> int_lo, int_hi;
  std::string number_keyword, number_ptr;  // the first numeric keyword, for "for type number"
  struct Bound {
    const ojson* value;
    std::string keyword, ptr;
    bool lower, exclusive;
  };
  std::vector<Bound> bounds;  // minimum/maximum/exclusive*, read once the types are known
  bool multiple_of_excludes_integers = false;
  std::string multiple_of_ptr;
  // object / array parts: atoms with keywords of that type
  std::vector<SchemaRef> object_parts, array_parts;
  bool constrains_object = false, constrains_array = false, constrains_string = false,
       constrains_number = false;
  // keywords we cannot express, with the types they constrain
  struct Unsupported {
    std::string keyword, detail, ptr;
    uint8_t types;
  };
  std::vector<Unsupported> unsupported;
};

class Compiler {
 public:
  Compiler(const ojson& root, const JsonSchemaOptions& opts, bool sort_keys)
      : doc_(root), opts_(opts), validator_(doc_), sort_keys_(sort_keys) {}

  std::string run() {
    Expr e = compile(SchemaRef{&doc_.root(), ""}, "root", 0);
    if (!e) throw JsonSchemaError("the schema accepts no JSON value at /", "");
    return w_.finish(*e);
  }

 private:
  // --- whitespace and separators ---------------------------------------------------------

  std::string ws() {
    if (opts_.disable_any_whitespace) return {};
    return w_.helper("ws", [&] {
      if (!opts_.whitespace_pattern.empty()) {
        RegexNode n = resolve_anchors(parse_regex(opts_.whitespace_pattern), /*search=*/false);
        if (n.kind == RegexNode::Kind::kNothing) throw RegexError("the pattern matches no string", 0);
        return regex_expression(n, /*json_string=*/false, w_);
      }
      return cat("[ \\t]{0,", std::to_string(kWhitespaceMaxInline), "} | \"\\r\"? \"\\n\" [ \\t]{0,",
                 std::to_string(kWhitespaceMaxIndent), "}");
    });
  }
  // A token with optional whitespace on both sides: `ws "," ws`.
  std::string punct(const char* token) {
    std::string t = gbnf_ascii_literal(token);
    std::string s = ws();
    if (s.empty()) return t;
    return cat(s, " ", t, " ", s);
  }
  std::string open(const char* token) {
    std::string s = ws();
    return s.empty() ? gbnf_ascii_literal(token) : cat(gbnf_ascii_literal(token), " ", s);
  }
  std::string close(const char* token) {
    std::string s = ws();
    return s.empty() ? gbnf_ascii_literal(token) : cat(s, " ", gbnf_ascii_literal(token));
  }

  // --- generic JSON ----------------------------------------------------------------------

  std::string json_char() {
    return w_.helper("json-char", [&] {
      CodePointSet plain = CodePointSet::any_scalar();
      plain.subtract(CodePointSet::range(0, 0x1F));
      plain.subtract(CodePointSet::single('"'));
      plain.subtract(CodePointSet::single('\\'));
      return cat(gbnf_class(plain), " | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )");
    });
  }
  // One code point of a JSON string (for minLength/maxLength): a surrogate pair escape is one.
  std::string json_code_point() {
    return w_.helper("json-code-point", [&] {
      CodePointSet plain = CodePointSet::any_scalar();
      plain.subtract(CodePointSet::range(0, 0x1F));
      plain.subtract(CodePointSet::single('"'));
      plain.subtract(CodePointSet::single('\\'));
      return cat(gbnf_class(plain),
                 " | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" ( [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )"
                 " | \"\\\\u\" [dD] [89abAB] [0-9a-fA-F]{2} \"\\\\u\" [dD] [c-fC-F] [0-9a-fA-F]{2}");
    });
  }
  std::string json_string() {
    return w_.helper("json-string", [&] { return cat("\"\\\"\" ", json_char(), "* \"\\\"\""); });
  }
  std::string json_number() {
    return w_.helper("json-number", [&] {
      return std::string(
          "\"-\"? ( \"0\" | [1-9] [0-9]* ) ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )?");
    });
  }
  std::string json_integer() {
    return w_.helper("json-integer", [&] { return std::string("\"-\"? ( \"0\" | [1-9] [0-9]* )"); });
  }
  std::string json_value() {
    return w_.helper("json-value", [&] {
      return cat(json_object(), " | ", json_array(), " | ", json_string(), " | ", json_number(),
                 " | \"true\" | \"false\" | \"null\"");
    });
  }
  std::string json_object() {
    return w_.helper("json-object", [&] {
      std::string member = cat(json_string(), " ", punct(":"), " ", json_value());
      return cat(open("{"), " ( ", member, " ( ", punct(","), " ", member, " )* ", close("}"),
                 " | ", gbnf_ascii_literal("}"), " )");
    });
  }
  std::string json_array() {
    return w_.helper("json-array", [&] {
      std::string v = json_value();
      return cat(open("["), " ( ", v, " ( ", punct(","), " ", v, " )* ", close("]"), " | ",
                 gbnf_ascii_literal("]"), " )");
    });
  }
  std::string quote() { return gbnf_ascii_literal("\""); }

  // A JSON value as a literal with whitespace between its tokens (enum and const).
  std::string literal(const ojson& v) {
    if (v.is_object()) {
      if (v.empty()) return cat(open("{"), " ", gbnf_ascii_literal("}"));
      std::string out = open("{");
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += cat(" ", punct(","));
        first = false;
        out += cat(" ", gbnf_ascii_literal(ojson(it.key()).dump()), " ", punct(":"), " ", literal(it.value()));
      }
      return cat(out, " ", close("}"));
    }
    if (v.is_array()) {
      if (v.empty()) return cat(open("["), " ", gbnf_ascii_literal("]"));
      std::string out = open("[");
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += cat(" ", punct(","));
        out += cat(" ", literal(v[i]));
      }
      return cat(out, " ", close("]"));
    }
    return gbnf_ascii_literal(v.dump());
  }

  // --- structure ---------------------------------------------------------------------------

  static void check_depth(size_t depth, const std::string& ptr) {
    if (depth > kMaxSchemaDepth)
      throw JsonSchemaError(cat("schema nested deeper than ", std::to_string(kMaxSchemaDepth),
                                " levels (or a $ref/allOf cycle) at ", pointer_text(ptr)),
                            ptr);
  }

  // Adds the parts of one schema to a conjunction.
  void flatten(const SchemaRef& s, Conj& c, size_t depth) {
    check_depth(depth, s.ptr);
    const ojson& node = *s.node;
    if (node.is_boolean()) {
      if (!node.get<bool>()) c.is_false = true;
      return;
    }
    if (!node.is_object()) throw_invalid("a schema must be an object or a boolean", s.ptr);
    auto ref = node.find("$ref");
    if (ref != node.end() && doc_.legacy_ref()) {
      flatten(doc_.resolve(*ref, s.ptr), c, depth + 1);
      return;
    }
    // The schema's own keywords first, then what it refers to and its allOf parts: object keys
    // come out in that order.
    if (has_own_constraints(node)) c.atoms.push_back(s);
    if (ref != node.end()) flatten(doc_.resolve(*ref, s.ptr), c, depth + 1);
    for (const char* key : {"allOf", "anyOf", "oneOf"}) {
      auto it = node.find(key);
      if (it == node.end()) continue;
      std::string kptr = pointer_child(s.ptr, key);
      if (!it->is_array() || it->empty()) throw_invalid(cat("'", key, "' must be a non-empty array"), s.ptr);
      if (std::string_view(key) == "allOf") {
        for (size_t i = 0; i < it->size(); ++i) flatten(SchemaRef{&(*it)[i], pointer_child(kptr, i)}, c, depth + 1);
        continue;
      }
      Disjunction d{std::string_view(key) == "oneOf", {}, s.ptr};
      for (size_t i = 0; i < it->size(); ++i) d.branches.push_back(SchemaRef{&(*it)[i], pointer_child(kptr, i)});
      c.disjunctions.push_back(std::move(d));
    }
  }

  // A schema that is only a $ref (annotations aside): its target's rule.
  bool is_pure_ref(const ojson& node) const {
    if (!node.is_object() || !node.contains("$ref")) return false;
    if (doc_.legacy_ref()) return true;
    for (auto it = node.begin(); it != node.end(); ++it)
      if (it.key() != "$ref" && keyword_class(it.key()) != KeywordClass::kIgnored) return false;
    return true;
  }

  std::string hint_for(const std::string& ptr) {
    size_t slash = ptr.rfind('/');
    std::string last = slash == std::string::npos ? ptr : ptr.substr(slash + 1);
    return last.empty() ? "schema" : last;
  }

  Expr ref_rule(const SchemaRef& target, size_t depth) {
    auto it = ref_rules_.find(target.ptr);
    if (it != ref_rules_.end()) {
      if (it->second.empty()) return std::nullopt;
      if (in_progress_.count(target.ptr)) used_recursively_.insert(target.ptr);
      return it->second;
    }
    std::string name = w_.reserve(target.ptr.empty() ? "root-schema" : hint_for(target.ptr));
    ref_rules_[target.ptr] = name;
    in_progress_.insert(target.ptr);
    Expr e = compile(target, name, depth + 1);
    in_progress_.erase(target.ptr);
    if (!e) {
      if (used_recursively_.count(target.ptr))
        throw JsonSchemaError(cat("the schema at ", pointer_text(target.ptr),
                                  " accepts no JSON value but refers to itself"),
                              target.ptr);
      ref_rules_[target.ptr].clear();
      return std::nullopt;
    }
    w_.define(name, *e);
    return name;
  }

  Expr compile(const SchemaRef& s, const std::string& hint, size_t depth) {
    check_depth(depth, s.ptr);
    if (is_pure_ref(*s.node)) return ref_rule(doc_.resolve((*s.node)["$ref"], s.ptr), depth);
    Conj c;
    flatten(s, c, depth);
    return compile_conj(std::move(c), hint, depth);
  }

  Expr compile_refs(const std::vector<SchemaRef>& refs, const std::string& hint, size_t depth) {
    if (refs.empty()) return json_value();
    if (refs.size() == 1) return compile(refs[0], hint, depth + 1);
    Conj c;
    for (const auto& r : refs) flatten(r, c, depth + 1);
    return compile_conj(std::move(c), hint, depth + 1);
  }

  Expr compile_conj(Conj c, const std::string& hint, size_t depth) {
    if (c.is_false) return std::nullopt;
    if (c.disjunctions.empty()) return emit_facts(c.atoms, hint, depth);
    uint64_t product = 1;
    for (const auto& d : c.disjunctions) {
      product *= d.branches.size();
      if (product > kMaxSchemaBranches)
        throw JsonSchemaError(cat("anyOf/oneOf alternatives multiply to more than ",
                                  std::to_string(kMaxSchemaBranches), " at ", pointer_text(d.ptr)),
                              d.ptr);
    }
    Disjunction d = std::move(c.disjunctions.front());
    c.disjunctions.erase(c.disjunctions.begin());
    if (d.one_of) check_disjoint(d, c, depth);
    std::vector<std::string> alts;
    for (size_t i = 0; i < d.branches.size(); ++i) {
      std::string bh = cat(hint, "-", std::to_string(i));
      Expr e;
      if (c.atoms.empty() && c.disjunctions.empty()) {
        e = compile(d.branches[i], bh, depth + 1);
      } else {
        Conj sub = c;
        flatten(d.branches[i], sub, depth + 1);
        e = compile_conj(std::move(sub), bh, depth + 1);
      }
      if (e && std::find(alts.begin(), alts.end(), *e) == alts.end()) alts.push_back(*e);
    }
    if (alts.empty()) return std::nullopt;
    return gbnf_alternatives(alts);
  }

  // --- oneOf ---------------------------------------------------------------------------------

  struct Summary {
    uint8_t types = kTypeAll;
    std::optional<std::vector<ojson>> values;           // finite value set (enum/const)
    std::map<std::string, std::vector<ojson>> tags;     // required key -> its finite values
    std::vector<SchemaRef> all;                         // the branch with its context
  };

  std::vector<ojson> finite_values(const std::vector<SchemaRef>& atoms, const std::vector<SchemaRef>& all) {
    for (const auto& a : atoms) {
      const ojson& n = *a.node;
      if (n.contains("const")) return filter_values({n["const"]}, all);
      auto e = n.find("enum");
      if (e != n.end() && e->is_array()) return filter_values(std::vector<ojson>(e->begin(), e->end()), all);
    }
    return {};
  }

  std::vector<ojson> filter_values(const std::vector<ojson>& candidates, const std::vector<SchemaRef>& all) {
    std::vector<ojson> out;
    for (const auto& v : candidates)
      if (validator_.valid_all(v, all)) out.push_back(v);
    return out;
  }

  Summary summarize(const Conj& c, const std::vector<SchemaRef>& all, size_t depth) {
    Summary s;
    s.all = all;
    for (const auto& a : c.atoms) {
      const ojson& n = *a.node;
      auto t = n.find("type");
      if (t != n.end()) {
        uint8_t bits = parse_type_keyword(*t, a.ptr);
        auto nl = n.find("nullable");
        if (nl != n.end() && nl->is_boolean() && nl->get<bool>()) bits |= kTypeNull;
        s.types &= bits;
      }
      if (n.contains("const") || n.contains("enum")) s.values = finite_values(c.atoms, all);
    }
    for (const auto& d : c.disjunctions) {
      uint8_t u = 0;
      for (const auto& b : d.branches) {
        Conj bc;
        flatten(b, bc, depth + 1);
        u |= summarize(bc, {b}, depth + 1).types;
      }
      s.types &= u;
    }
    // Discriminating properties: required keys whose schema has a finite value set.
    std::set<std::string> required;
    for (const auto& a : c.atoms) {
      auto r = a.node->find("required");
      if (r != a.node->end() && r->is_array())
        for (const auto& k : *r)
          if (k.is_string()) required.insert(k.get<std::string>());
    }
    for (const auto& key : required) {
      std::vector<SchemaRef> prop;
      for (const auto& a : c.atoms) {
        auto p = a.node->find("properties");
        if (p == a.node->end() || !p->is_object() || !p->contains(key)) continue;
        prop.push_back(SchemaRef{&(*p)[key], pointer_child(pointer_child(a.ptr, "properties"), key)});
      }
      if (prop.empty()) continue;
      Conj pc;
      for (const auto& p : prop) flatten(p, pc, depth + 1);
      bool finite = false;
      for (const auto& a : pc.atoms) finite |= a.node->contains("const") || a.node->contains("enum");
      if (finite) s.tags[key] = finite_values(pc.atoms, prop);
    }
    return s;
  }

  static bool share_value(const std::vector<ojson>& a, const std::vector<ojson>& b) {
    for (const auto& x : a)
      for (const auto& y : b)
        if (x == y) return true;
    return false;
  }

  bool disjoint(const Summary& a, const Summary& b) {
    uint8_t common = a.types & b.types;
    if (common == 0) return true;
    if (a.values && b.values) return !share_value(*a.values, *b.values);
    if (a.values) {
      for (const auto& v : *a.values)
        if (validator_.valid_all(v, b.all)) return false;
      return true;
    }
    if (b.values) return disjoint(b, a);
    if (common == kTypeObject) {
      for (const auto& [key, vals] : a.tags) {
        auto it = b.tags.find(key);
        if (it != b.tags.end() && !share_value(vals, it->second)) return true;
      }
    }
    return false;
  }

  void check_disjoint(const Disjunction& d, const Conj& context, size_t depth) {
    std::vector<Summary> sums;
    for (const auto& b : d.branches) {
      Conj c;
      c.atoms = context.atoms;
      flatten(b, c, depth + 1);
      std::vector<SchemaRef> all = context.atoms;
      all.push_back(b);
      if (c.is_false) {
        Summary s;
        s.types = 0;
        sums.push_back(s);
        continue;
      }
      sums.push_back(summarize(c, all, depth));
    }
    for (size_t i = 0; i < sums.size(); ++i)
      for (size_t j = i + 1; j < sums.size(); ++j)
        if (!disjoint(sums[i], sums[j]))
          throw_unsupported("oneOf",
                            cat("branches ", std::to_string(i), " and ", std::to_string(j),
                                " are not provably disjoint; use anyOf, distinct types, or a "
                                "required property with distinct const/enum values"),
                            d.ptr);
  }

  // --- facts -----------------------------------------------------------------------------

  static std::optional<int64_t> integer_bound(const ojson& v, const std::string& key, const std::string& ptr,
                                              bool lower, bool exclusive) {
    if (!v.is_number()) throw_invalid(cat("'", key, "' must be a number"), ptr);
    double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(kMaxIntegerRangeBound))
      throw_unsupported(key, cat("bound ", v.dump(), " beyond +-1e18"), ptr);
    int64_t b;
    if (value_type(v) == kTypeInteger && !v.is_number_float()) {
      b = v.get<int64_t>();
      if (exclusive) b += lower ? 1 : -1;
    } else {
      // The smallest (largest) integer above (below) a fractional bound.
      double r = lower ? std::floor(d) : std::ceil(d);
      b = static_cast<int64_t>(r);
      if (lower && (exclusive || r < d)) b += 1;
      if (!lower && (exclusive || r > d)) b -= 1;
      if (lower && !exclusive && r == d) b = static_cast<int64_t>(r);
      if (!lower && !exclusive && r == d) b = static_cast<int64_t>(r);
    }
    return b;
  }

  void read_atom(const SchemaRef& a, Facts& f) {
    const ojson& n = *a.node;
    bool object_part = false, array_part = false;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string& k = it.key();
      const ojson& x = it.value();
      if (is_structural(k)) continue;
      KeywordClass kc = keyword_class(k);
      if (kc == KeywordClass::kIgnored) continue;
      if (kc == KeywordClass::kUnsupported) {
        // `if` without then/else constrains nothing.
        if (k == "if" && !n.contains("then") && !n.contains("else")) continue;
        f.unsupported.push_back({k, "", a.ptr, keyword_types(k)});
        continue;
      }
      uint8_t kt = keyword_types(k);
      if (kt == kTypeObject) { object_part = true; f.constrains_object = true; }
      if (kt == kTypeArray) { array_part = true; f.constrains_array = true; }
      if (kt == kTypeString) f.constrains_string = true;
      if (k == "type") {
        uint8_t bits = parse_type_keyword(x, a.ptr);
        auto nl = n.find("nullable");
        if (nl != n.end() && nl->is_boolean() && nl->get<bool>()) bits |= kTypeNull;
        f.types &= bits;
      } else if (k == "enum") {
        if (!x.is_array()) throw_invalid("'enum' must be an array", a.ptr);
        if (x.size() > kMaxSchemaEnumValues)
          throw JsonSchemaError(cat("'enum' with more than ", std::to_string(kMaxSchemaEnumValues),
                                    " values at ", pointer_text(a.ptr)),
                                a.ptr);
        f.enums.push_back({&x, a.ptr});
      } else if (k == "const") {
        f.enums.push_back({&x, a.ptr});
      } else if (k == "minLength") {
        f.min_len = std::max(f.min_len, non_negative_integer(x, k, a.ptr));
        f.len_ptr = a.ptr;
      } else if (k == "maxLength") {
        uint64_t m = non_negative_integer(x, k, a.ptr);
        f.max_len = f.max_len ? std::min(*f.max_len, m) : m;
        f.len_ptr = a.ptr;
      } else if (k == "pattern") {
        if (!x.is_string()) throw_invalid("'pattern' must be a string", a.ptr);
        f.patterns.push_back({x.get<std::string>(), a.ptr});
      } else if (k == "format") {
        if (!x.is_string()) throw_invalid("'format' must be a string", a.ptr);
        f.formats.push_back({x.get<std::string>(), a.ptr});
      } else if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum") {
        if (x.is_boolean()) continue;  // draft-04 form: read with its minimum/maximum
        if (f.number_keyword.empty()) f.number_keyword = k, f.number_ptr = a.ptr;
        f.constrains_number = true;
        bool lower = k == "minimum" || k == "exclusiveMinimum";
        bool exclusive = k[0] == 'e';
        if (!exclusive) {
          auto ex = n.find(lower ? "exclusiveMinimum" : "exclusiveMaximum");
          exclusive = ex != n.end() && ex->is_boolean() && ex->get<bool>();
        }
        if (!x.is_number()) throw_invalid(cat("'", k, "' must be a number"), a.ptr);
        f.bounds.push_back({&x, k, a.ptr, lower, exclusive});
      } else if (k == "multipleOf") {
        if (!x.is_number() || !(x.get<double>() > 0)) throw_invalid("'multipleOf' must be a positive number", a.ptr);
        if (f.number_keyword.empty()) f.number_keyword = k, f.number_ptr = a.ptr;
        f.constrains_number = true;
        // Every integer is a multiple of 1/q for a whole q.
        double inv = 1.0 / x.get<double>();
        if (std::fabs(inv - std::round(inv)) > 1e-12) {
          f.multiple_of_excludes_integers = true;
          f.multiple_of_ptr = a.ptr;
        }
      }
    }
    if (object_part) f.object_parts.push_back(a);
    if (array_part) f.array_parts.push_back(a);
  }

  // JSON numbers with every bound at 0: the sign and whether the value is zero are read from
  // the text (exponents do not change either).
  Expr number_sign_range(const Facts& f) {
    bool has_lo = false, has_hi = false, lo_excl = false, hi_excl = false;
    for (const auto& b : f.bounds) {
      if (b.lower) has_lo = true, lo_excl |= b.exclusive;
      else has_hi = true, hi_excl |= b.exclusive;
    }
    const std::string exp = "( [eE] [-+]? [0-9]+ )?";
    const std::string zero = cat("\"0\" ( \".\" \"0\"+ )? ", exp);
    // A magnitude that is not zero.
    const std::string nonzero =
        cat("( [1-9] [0-9]* ( \".\" [0-9]+ )? | \"0.\" \"0\"* [1-9] [0-9]* ) ", exp);
    std::vector<std::string> alts;
    const bool zero_ok = !(has_lo && lo_excl) && !(has_hi && hi_excl);
    if (!has_lo || !has_hi || zero_ok) {
      // Positive values: allowed unless an upper bound of 0 excludes them.
      if (!has_hi) alts.push_back(nonzero);
      if (!has_lo) alts.push_back(cat("\"-\" ", nonzero));
    }
    if (zero_ok) alts.push_back(cat("\"-\"? ", zero));
    if (alts.empty()) return std::nullopt;
    return gbnf_alternatives(alts);
  }

  Expr emit_facts(const std::vector<SchemaRef>& atoms, const std::string& hint, size_t depth) {
    if (atoms.empty()) return json_value();
    Facts f;
    for (const auto& a : atoms) read_atom(a, f);
    if (f.types == 0) return std::nullopt;
    if (!f.enums.empty()) {
      // A finite language: keep the values the whole conjunction accepts.
      std::vector<ojson> candidates;
      // `const: [..]` is one array value, `enum: [..]` a list: look at which keyword it was.
      candidates.clear();
      for (const auto& a : atoms) {
        const ojson& n = *a.node;
        auto c = n.find("const");
        if (c != n.end() && &*c == f.enums[0].first) candidates.push_back(*c);
        auto e = n.find("enum");
        if (e != n.end() && &*e == f.enums[0].first) candidates.assign(e->begin(), e->end());
      }
      std::vector<std::string> alts;
      for (const auto& v : filter_values(candidates, atoms)) {
        std::string l = literal(v);
        if (std::find(alts.begin(), alts.end(), l) == alts.end()) alts.push_back(l);
      }
      if (alts.empty()) return std::nullopt;
      return gbnf_alternatives(alts);
    }
    for (const auto& u : f.unsupported)
      if (u.types & f.types) throw_unsupported(u.keyword, u.detail, u.ptr);
    // Numbers: bounds at 0 only (the sign of a JSON number is readable from its text; other
    // bounds would need exponent arithmetic). Integers: exact ranges.
    std::optional<std::string> number_expr;
    if (f.types & kTypeFraction) {
      if (f.constrains_number) {
        for (const auto& a : atoms)
          if (a.node->contains("multipleOf")) throw_unsupported("multipleOf", "for type number", a.ptr);
        for (const auto& b : f.bounds)
          if (b.value->get<double>() != 0) throw_unsupported(b.keyword, "for type number", b.ptr);
        number_expr = number_sign_range(f);
      }
    } else if (f.types & kTypeInteger) {
      for (const auto& b : f.bounds) {
        std::optional<int64_t> v = integer_bound(*b.value, b.keyword, b.ptr, b.lower, b.exclusive);
        if (b.lower) f.int_lo = f.int_lo ? std::max(*f.int_lo, *v) : *v;
        else f.int_hi = f.int_hi ? std::min(*f.int_hi, *v) : *v;
      }
    }
    if ((f.types & kTypeInteger) && f.multiple_of_excludes_integers)
      throw_unsupported("multipleOf", "for type integer", f.multiple_of_ptr);
    if (f.types == kTypeAll && !f.constrains_object && !f.constrains_array && !f.constrains_string &&
        !f.constrains_number)
      return json_value();

    std::vector<std::string> alts;
    if (f.types & kTypeNull) alts.push_back(gbnf_ascii_literal("null"));
    if (f.types & kTypeBool) alts.push_back(gbnf_alternatives({gbnf_ascii_literal("true"), gbnf_ascii_literal("false")}));
    if (f.types & kTypeFraction) {
      if (!f.bounds.empty()) {
        if (number_expr) alts.push_back(*number_expr);
      } else {
        alts.push_back(json_number());
      }
    } else if (f.types & kTypeInteger) {
      if (!f.int_lo && !f.int_hi) {
        alts.push_back(json_integer());
      } else if (Expr r = integer_range_gbnf(f.int_lo, f.int_hi)) {
        alts.push_back(*r);
      }
    }
    if (f.types & kTypeString)
      if (Expr e = emit_string(f)) alts.push_back(*e);
    if (f.types & kTypeArray)
      if (Expr e = emit_array(f, hint, depth)) alts.push_back(*e);
    if (f.types & kTypeObject)
      if (Expr e = emit_object(f, hint, depth)) alts.push_back(*e);
    if (alts.empty()) return std::nullopt;
    return gbnf_alternatives(alts);
  }

  // --- strings -----------------------------------------------------------------------------

  Expr emit_string(const Facts& f) {
    if (f.max_len && f.min_len > *f.max_len) return std::nullopt;
    std::set<std::string> patterns, formats;
    for (const auto& p : f.patterns) patterns.insert(p.first);
    for (const auto& p : f.formats) formats.insert(p.first);
    if (patterns.size() > 1) throw_unsupported("pattern", "several different patterns on one string", f.patterns[1].second);
    if (formats.size() > 1) throw_unsupported("format", "several different formats on one string", f.formats[1].second);
    const bool has_len = f.min_len > 0 || f.max_len;
    if (!patterns.empty() && !formats.empty())
      throw_unsupported("format", "together with 'pattern'", f.formats[0].second);
    if (has_len && !patterns.empty())
      throw_unsupported(f.min_len > 0 ? "minLength" : "maxLength", "together with 'pattern'", f.len_ptr);
    if (has_len && !formats.empty())
      throw_unsupported(f.min_len > 0 ? "minLength" : "maxLength", "together with 'format'", f.len_ptr);
    if (!patterns.empty()) {
      const RegexNode& n = doc_.pattern(f.patterns[0].first, "pattern", f.patterns[0].second);
      if (n.kind == RegexNode::Kind::kNothing) return std::nullopt;
      return cat(quote(), " ", regex_expression(n, /*json_string=*/true, w_), " ", quote());
    }
    if (!formats.empty()) {
      const std::string& name = f.formats[0].first;
      const RegexNode& n = doc_.format(name, f.formats[0].second);
      std::string rule = w_.helper(cat("format-", name), [&] {
        return cat(quote(), " ", regex_expression(n, /*json_string=*/true, w_), " ", quote());
      });
      return rule;
    }
    if (has_len) {
      if (f.min_len > kMaxSchemaRepetition || (f.max_len && *f.max_len > kMaxSchemaRepetition))
        throw_unsupported(f.min_len > kMaxSchemaRepetition ? "minLength" : "maxLength",
                          cat("above ", std::to_string(kMaxSchemaRepetition)), f.len_ptr);
      if (f.max_len && *f.max_len == 0) return cat(quote(), " ", quote());
      return cat(quote(), " ", json_code_point(), quantifier(f.min_len, f.max_len), " ", quote());
    }
    return json_string();
  }

  // --- arrays ------------------------------------------------------------------------------

  Expr emit_array(const Facts& f, const std::string& hint, size_t depth) {
    if (!f.constrains_array) return json_array();
    uint64_t min_items = 0;
    std::optional<uint64_t> max_items;
    bool unique = false;
    std::string unique_ptr, count_ptr;
    // Per part: its prefix schemas and the schema of the items after them (nullopt: any).
    struct Part {
      std::vector<SchemaRef> prefix;
      std::optional<SchemaRef> rest;
    };
    std::vector<Part> parts;
    for (const auto& a : f.array_parts) {
      const ojson& n = *a.node;
      Part p;
      const ojson* prefix = nullptr;
      std::string prefix_key;
      auto pre = n.find("prefixItems");
      auto items = n.find("items");
      if (pre != n.end()) {
        if (!pre->is_array()) throw_invalid("'prefixItems' must be an array", a.ptr);
        prefix = &*pre;
        prefix_key = "prefixItems";
        if (items != n.end()) p.rest = SchemaRef{&*items, pointer_child(a.ptr, "items")};
      } else if (items != n.end() && items->is_array()) {
        prefix = &*items;
        prefix_key = "items";
        auto add = n.find("additionalItems");
        if (add != n.end()) p.rest = SchemaRef{&*add, pointer_child(a.ptr, "additionalItems")};
      } else if (items != n.end()) {
        p.rest = SchemaRef{&*items, pointer_child(a.ptr, "items")};
      }
      if (prefix)
        for (size_t i = 0; i < prefix->size(); ++i)
          p.prefix.push_back(SchemaRef{&(*prefix)[i], pointer_child(pointer_child(a.ptr, prefix_key), i)});
      auto mn = n.find("minItems");
      if (mn != n.end()) {
        min_items = std::max(min_items, non_negative_integer(*mn, "minItems", a.ptr));
        count_ptr = a.ptr;
      }
      auto mx = n.find("maxItems");
      if (mx != n.end()) {
        uint64_t m = non_negative_integer(*mx, "maxItems", a.ptr);
        max_items = max_items ? std::min(*max_items, m) : m;
        count_ptr = a.ptr;
      }
      auto u = n.find("uniqueItems");
      if (u != n.end() && u->is_boolean() && u->get<bool>()) unique = true, unique_ptr = a.ptr;
      parts.push_back(std::move(p));
    }
    size_t prefix_len = 0;
    for (const auto& p : parts) prefix_len = std::max(prefix_len, p.prefix.size());
    if (prefix_len > kMaxSchemaRepetition)
      throw_unsupported("prefixItems", cat("more than ", std::to_string(kMaxSchemaRepetition), " items"), f.array_parts[0].ptr);
    std::vector<std::string> prefix;
    for (size_t i = 0; i < prefix_len; ++i) {
      if (max_items && i >= *max_items) break;
      std::vector<SchemaRef> refs;
      for (const auto& p : parts) {
        if (i < p.prefix.size()) refs.push_back(p.prefix[i]);
        else if (p.rest) refs.push_back(*p.rest);
      }
      Expr e = compile_refs(refs, cat(hint, "-", std::to_string(i)), depth);
      if (!e) {
        max_items = i;  // no array reaches this position
        break;
      }
      prefix.push_back(*e);
    }
    Expr tail;
    if (!max_items || *max_items > prefix.size()) {
      std::vector<SchemaRef> refs;
      for (const auto& p : parts)
        if (p.rest) refs.push_back(*p.rest);
      if (prefix.size() == prefix_len) tail = compile_refs(refs, cat(hint, "-item"), depth);
      if (!tail) max_items = prefix.size();
    }
    if (max_items && min_items > *max_items) return std::nullopt;
    if (unique && (!max_items || *max_items > 1))
      throw_unsupported("uniqueItems", "for arrays that may hold more than one item", unique_ptr);
    if (min_items > kMaxSchemaRepetition || (max_items && *max_items > kMaxSchemaRepetition && *max_items != prefix.size()))
      throw_unsupported(min_items > kMaxSchemaRepetition ? "minItems" : "maxItems",
                        cat("above ", std::to_string(kMaxSchemaRepetition)), count_ptr);
    const std::string sep = punct(",");
    // Elements from position i on; positions below min_items are mandatory.
    std::string body;
    std::function<std::string(size_t)> from = [&](size_t i) -> std::string {
      const bool first = i == 0;
      if (i < prefix.size()) {
        std::string e = first ? prefix[i] : cat(sep, " ", prefix[i]);
        std::string next = from(i + 1);
        if (!next.empty()) e = cat(e, " ", next);
        // Position 0 absent is the empty array, written by the caller.
        if (i < min_items || first) return e;
        // Optional positions nest; every eighth level becomes a rule so that long prefixItems
        // stay within the grammar parser's parenthesis depth.
        if (i % 8 == 7) {
          std::string name = w_.reserve(cat(hint, "-from-", std::to_string(i)));
          w_.define(name, e);
          return cat(name, "?");
        }
        return cat("( ", e, " )?");
      }
      if (!tail) return {};
      uint64_t lo = min_items > i ? min_items - i : 0;
      std::optional<uint64_t> hi;
      if (max_items) hi = *max_items - i;
      if (hi && *hi == 0) return {};
      if (first) {
        std::optional<uint64_t> rest_hi;
        if (hi) rest_hi = *hi - 1;
        std::string e = *tail;
        if (!rest_hi || *rest_hi > 0)
          e = cat(e, " ( ", sep, " ", *tail, " )", quantifier(lo > 0 ? lo - 1 : 0, rest_hi));
        return e;  // an empty array is written by the caller
      }
      return cat("( ", sep, " ", *tail, " )", quantifier(lo, hi));
    };
    body = from(0);
    std::string name = w_.reserve(hint);
    if (body.empty()) w_.define(name, cat(open("["), " ", gbnf_ascii_literal("]")));
    else if (min_items > 0) w_.define(name, cat(open("["), " ", body, " ", close("]")));
    else w_.define(name, cat(open("["), " ( ", body, " ", close("]"), " | ", gbnf_ascii_literal("]"), " )"));
    return name;
  }

  // --- objects -----------------------------------------------------------------------------

  Expr emit_object(const Facts& f, const std::string& hint, size_t depth) {
    if (!f.constrains_object) return json_object();
    struct Part {
      SchemaRef atom;
      const ojson* props = nullptr;
      std::vector<std::pair<std::string, SchemaRef>> patterns;
      std::optional<SchemaRef> addl;
      bool addl_explicit = false;
    };
    std::vector<Part> parts;
    std::vector<std::string> keys;
    std::set<std::string> required, seen;
    std::optional<uint64_t> min_props, max_props;
    std::string min_props_ptr, max_props_ptr;
    size_t count = 0;
    for (const auto& a : f.object_parts) {
      const ojson& n = *a.node;
      Part p{a, nullptr, {}, std::nullopt, false};
      auto props = n.find("properties");
      if (props != n.end()) {
        if (!props->is_object()) throw_invalid("'properties' must be an object", a.ptr);
        p.props = &*props;
        for (auto it = props->begin(); it != props->end(); ++it)
          if (seen.insert(it.key()).second) keys.push_back(it.key());
      }
      auto pats = n.find("patternProperties");
      if (pats != n.end()) {
        if (!pats->is_object()) throw_invalid("'patternProperties' must be an object", a.ptr);
        for (auto it = pats->begin(); it != pats->end(); ++it)
          p.patterns.push_back({it.key(), SchemaRef{&it.value(), pointer_child(pointer_child(a.ptr, "patternProperties"), it.key())}});
      }
      auto addl = n.find("additionalProperties");
      if (addl != n.end()) {
        p.addl = SchemaRef{&*addl, pointer_child(a.ptr, "additionalProperties")};
        p.addl_explicit = true;
      }
      count += p.patterns.size() + (p.props ? p.props->size() : 0);
      auto mn = n.find("minProperties");
      if (mn != n.end()) {
        uint64_t v = non_negative_integer(*mn, "minProperties", a.ptr);
        if (!min_props || v > *min_props) min_props = v, min_props_ptr = a.ptr;
      }
      auto mx = n.find("maxProperties");
      if (mx != n.end()) {
        uint64_t v = non_negative_integer(*mx, "maxProperties", a.ptr);
        if (!max_props || v < *max_props) max_props = v, max_props_ptr = a.ptr;
      }
      parts.push_back(std::move(p));
    }
    for (const auto& p : parts) {
      auto req = p.atom.node->find("required");
      if (req == p.atom.node->end()) continue;
      if (!req->is_array()) throw_invalid("'required' must be an array of strings", p.atom.ptr);
      for (const auto& r : *req) {
        if (!r.is_string()) throw_invalid("'required' must be an array of strings", p.atom.ptr);
        required.insert(r.get<std::string>());
        if (seen.insert(r.get<std::string>()).second) keys.push_back(r.get<std::string>());
      }
    }
    if (sort_keys_) std::sort(keys.begin(), keys.end());
    if (count + keys.size() > 2 * kMaxSchemaProperties || keys.size() > kMaxSchemaProperties)
      throw JsonSchemaError(cat("object schema with more than ", std::to_string(kMaxSchemaProperties),
                                " properties at ", pointer_text(f.object_parts[0].ptr)),
                            f.object_parts[0].ptr);
    // The patterns, compiled once.
    auto key_matches = [&](const std::pair<std::string, SchemaRef>& pat, const std::string& key) {
      std::vector<uint32_t> cps;
      decode_utf8(key, cps);
      return regex_full_match(doc_.pattern(pat.first, "patternProperties", pat.second.ptr), cps);
    };
    // Named keys: the conjunction of what each part says about them.
    struct Item {
      std::string kv;
      bool required;
    };
    std::vector<Item> items;
    const std::string colon = punct(":");
    for (const auto& key : keys) {
      std::vector<SchemaRef> refs;
      for (const auto& p : parts) {
        // properties and matching patternProperties all apply; additionalProperties only
        // when neither does.
        bool matched = false;
        if (p.props && p.props->contains(key)) {
          refs.push_back(SchemaRef{&(*p.props)[key], pointer_child(pointer_child(p.atom.ptr, "properties"), key)});
          matched = true;
        }
        for (const auto& pat : p.patterns)
          if (key_matches(pat, key)) refs.push_back(pat.second), matched = true;
        if (!matched && p.addl) refs.push_back(*p.addl);
      }
      Expr value = compile_refs(refs, cat(hint, "-", key), depth);
      bool req = required.count(key) > 0;
      if (!value) {
        if (req) return std::nullopt;
        continue;
      }
      items.push_back({cat(gbnf_ascii_literal(cat("\"", json_escape(key), "\"")), " ", colon, " ", *value), req});
    }
    // Keys beyond the named ones.
    std::optional<std::string> extra = extra_member(parts, keys, hint, depth, colon);
    size_t n_required = 0;
    for (const auto& it : items) n_required += it.required;
    if (min_props && *min_props > n_required)
      throw_unsupported("minProperties", "more than the required properties", min_props_ptr);
    if (max_props && (extra || items.size() > *max_props))
      throw_unsupported("maxProperties", "fewer than the properties the schema allows", max_props_ptr);

    const std::string sep = punct(",");
    const std::string extras = extra ? cat("( ", sep, " ", *extra, " )*") : std::string();
    // Items after at least one member, from slot i: each present item may be followed by extra
    // members; optional ones may be skipped. Unambiguous, since every key differs.
    auto after = [&](size_t i) {
      std::string out;
      for (size_t j = i; j < items.size(); ++j) {
        std::string g = cat(sep, " ", items[j].kv);
        if (!extras.empty()) g = cat(g, " ", extras);
        g = items[j].required ? g : cat("( ", g, " )?");
        out = out.empty() ? g : cat(out, " ", g);
      }
      return out;
    };
    std::vector<std::string> alts;
    size_t first_required = items.size();
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].required) { first_required = i; break; }
    // The first member is item j (all before it skipped), or an extra member.
    std::vector<std::string> rest_rules(items.size() + 1);
    const size_t n_alts = std::min(first_required + 1, items.size()) + (first_required == items.size() && extra ? 1 : 0);
    auto rest = [&](size_t i) -> std::string {
      if (n_alts <= 1) return after(i);
      // Shared by several alternatives: chained rules keep the text linear.
      return rest_ref(rest_rules, i, items, sep, extras, hint);
    };
    for (size_t j = 0; j < items.size() && j <= first_required; ++j) {
      std::string a = items[j].kv;
      if (!extras.empty()) a = cat(a, " ", extras);
      std::string r = j + 1 < items.size() ? rest(j + 1) : "";
      alts.push_back(r.empty() ? a : cat(a, " ", r));
    }
    if (first_required == items.size() && extra) {
      std::string a = cat(*extra, " ", extras);
      std::string r = items.empty() ? "" : rest(0);
      alts.push_back(r.empty() ? a : cat(a, " ", r));
    }
    std::string name = w_.reserve(hint);
    if (alts.empty()) {
      w_.define(name, cat(open("{"), " ", gbnf_ascii_literal("}")));
    } else if (first_required < items.size()) {
      w_.define(name, cat(open("{"), " ", gbnf_alternatives(alts), " ", close("}")));
    } else {
      w_.define(name, cat(open("{"), " ( ", gbnf_alternatives(alts), " ", close("}"), " | ", gbnf_ascii_literal("}"), " )"));
    }
    return name;
  }

  template <class Items>
  std::string rest_ref(std::vector<std::string>& rules, size_t i, const Items& items, const std::string& sep,
                       const std::string& extras, const std::string& hint) {
    if (!rules[i].empty()) return rules[i];
    std::string name = w_.reserve(cat(hint, "-rest"));
    rules[i] = name;
    std::string g = cat(sep, " ", items[i].kv);
    if (!extras.empty()) g = cat(g, " ", extras);
    if (!items[i].required) g = cat("( ", g, " )?");
    std::string next = i + 1 < items.size() ? cat(" ", rest_ref(rules, i + 1, items, sep, extras, hint)) : "";
    w_.define(name, cat(g, next));
    return name;
  }

  // The member grammar for keys not named by the schema, or nullopt if none may appear.
  template <class Parts>
  std::optional<std::string> extra_member(const Parts& parts, const std::vector<std::string>& keys,
                                          const std::string& hint, size_t depth, const std::string& colon) {
    std::vector<SchemaRef> value_refs;
    const typename Parts::value_type* patterned = nullptr;
    bool any_explicit = false;
    for (const auto& p : parts) {
      any_explicit |= p.addl_explicit;
      if (!p.patterns.empty()) {
        if (patterned) throw_unsupported("patternProperties", "in more than one allOf part of an object", p.atom.ptr);
        patterned = &p;
      }
    }
    std::vector<std::vector<uint32_t>> named;
    for (const auto& k : keys) {
      named.emplace_back();
      decode_utf8(k, named.back());
    }
    RegexNode key_language;
    if (!patterned) {
      if (opts_.disable_additional_properties && !any_explicit) return std::nullopt;
      for (const auto& p : parts)
        if (p.addl) value_refs.push_back(*p.addl);
      key_language = RegexNode{RegexNode::Kind::kRepeat, {}, {RegexNode::chars(CodePointSet::any_scalar())}, 0,
                               RegexNode::kUnbounded, 0};
    } else {
      for (const auto& p : parts)
        if (&p != patterned && p.addl) value_refs.push_back(*p.addl);
      // One schema for all patterns (several patterns with different schemas would need the
      // intersections of their languages).
      const ojson& s0 = *patterned->patterns[0].second.node;
      for (const auto& pat : patterned->patterns)
        if (*pat.second.node != s0)
          throw_unsupported("patternProperties", "several patterns with different schemas", patterned->atom.ptr);
      const bool addl_false = patterned->addl_explicit
                                  ? patterned->addl->node->is_boolean() && !patterned->addl->node->template get<bool>()
                                  : opts_.disable_additional_properties;
      if (addl_false) {
        std::vector<RegexNode> alts;
        for (const auto& pat : patterned->patterns)
          alts.push_back(doc_.pattern(pat.first, "patternProperties", pat.second.ptr));
        key_language = RegexNode::alt(std::move(alts));
        value_refs.push_back(patterned->patterns[0].second);
      } else if (trivially_true(s0) && (!patterned->addl || trivially_true(*patterned->addl->node))) {
        key_language = RegexNode{RegexNode::Kind::kRepeat, {}, {RegexNode::chars(CodePointSet::any_scalar())}, 0,
                                 RegexNode::kUnbounded, 0};
      } else {
        throw_unsupported("patternProperties", "with additionalProperties other than false", patterned->atom.ptr);
      }
    }
    Expr value = compile_refs(value_refs, cat(hint, "-additional"), depth);
    if (!value) return std::nullopt;
    RegexNode key = regex_minus_strings(key_language, named);
    if (key.kind == RegexNode::Kind::kNothing) return std::nullopt;
    std::string key_expr = named.empty() && key_language.kind == RegexNode::Kind::kRepeat &&
                                   patterned == nullptr
                               ? json_string()
                               : cat(quote(), " ", regex_expression(key, /*json_string=*/true, w_), " ", quote());
    std::string name = w_.reserve(cat(hint, "-additional"));
    w_.define(name, cat(key_expr, " ", colon, " ", *value));
    return name;
  }

  SchemaDocument doc_;
  JsonSchemaOptions opts_;
  GbnfWriter w_;
  SchemaValidator validator_;
  std::map<std::string, std::string> ref_rules_;
  std::set<std::string> in_progress_, used_recursively_;
  bool sort_keys_;  // the schema came without an order (nlohmann::json): keys sorted
};

}  // namespace

namespace {

std::string run_compiler(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opts, bool sort_keys) {
  try {
    return Compiler(schema, opts, sort_keys).run();
  } catch (const nlohmann::json::exception& e) {
    // A keyword value of a type no check above caught (the checks name the keyword; this
    // keeps any other malformed schema a 400 rather than an internal error).
    throw JsonSchemaError(cat("invalid JSON Schema: a keyword has a value of the wrong type (",
                              e.what(), ")"),
                          "");
  }
}

}  // namespace

std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opts) {
  return run_compiler(schema, opts, /*sort_keys=*/false);
}

std::string json_schema_to_gbnf(const nlohmann::json& schema, const JsonSchemaOptions& opts) {
  nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(schema.dump());
  return run_compiler(ordered, opts, /*sort_keys=*/true);
}

}  // namespace vllm::structured
