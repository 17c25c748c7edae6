#include "vllm/structured/structural_tag.h"

#include <cstdint>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "vllm/core/error.h"
#include "vllm/structured/code_point_set.h"
#include "vllm/structured/gbnf_writer.h"
#include "vllm/structured/json_schema.h"

namespace vllm::structured {

namespace {

using CodePoints = std::vector<uint32_t>;

struct Structure {
  CodePoints begin;
  std::string end;
  std::string schema_rule;  // the schema grammar's (prefixed) root
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string utf8_of(const CodePoints& cps, size_t from = 0) {
  std::string s;
  for (size_t i = from; i < cps.size(); ++i) append_utf8(s, cps[i]);
  return s;
}

bool ends_with(const CodePoints& text, const CodePoints& suffix) {
  return suffix.size() <= text.size() && std::equal(suffix.begin(), suffix.end(), text.end() - static_cast<std::ptrdiff_t>(suffix.size()));
}

CodePoints utf8_field(const nlohmann::ordered_json& obj, const char* field, const std::string& where, bool non_empty) {
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string())
    throw Error("structural_tag: " + where + " needs a string '" + field + "'");
  CodePoints cps;
  if (!decode_utf8(it->get<std::string>(), cps)) throw Error("structural_tag: " + where + "'s '" + field + "' is not valid UTF-8");
  if (non_empty && cps.empty()) throw Error("structural_tag: " + where + "'s '" + field + "' must not be empty");
  return cps;
}

}  // namespace

std::string prefix_gbnf_rules(std::string_view g, std::string_view prefix) {
  std::string out;
  out.reserve(g.size() + g.size() / 8);
  size_t i = 0;
  auto copy_quoted = [&](char close) {  // a literal or class, escapes included
    out += g[i++];
    while (i < g.size() && g[i] != close) {
      if (g[i] == '\\' && i + 1 < g.size()) out += g[i++];
      out += g[i++];
    }
    if (i < g.size()) out += g[i++];
  };
  while (i < g.size()) {
    const char c = g[i];
    if (c == '"') {
      copy_quoted('"');
    } else if (c == '[') {
      copy_quoted(']');
    } else if (c == '{') {  // repetition bounds: digits, not rule names
      while (i < g.size() && g[i] != '}') out += g[i++];
    } else if (c == '#') {
      while (i < g.size() && g[i] != '\n') out += g[i++];
    } else if (is_name_char(c)) {
      out += prefix;
      while (i < g.size() && is_name_char(g[i])) out += g[i++];
    } else {
      out += g[i++];
    }
  }
  return out;
}

std::string structural_tag_to_gbnf(std::string_view tag_json) {
  nlohmann::ordered_json tag;
  try {
    tag = nlohmann::ordered_json::parse(tag_json);
  } catch (const nlohmann::json::exception&) {
    throw Error("structural_tag must be a JSON object (its text does not parse as JSON)");
  }
  if (!tag.is_object()) throw Error("structural_tag must be a JSON object");
  if (auto t = tag.find("type"); t != tag.end() && (!t->is_string() || *t != "structural_tag"))
    throw Error("structural_tag: 'type' must be \"structural_tag\" (the structures/triggers form)");
  auto structures_it = tag.find("structures");
  auto triggers_it = tag.find("triggers");
  if (structures_it == tag.end() || !structures_it->is_array() || structures_it->empty())
    throw Error("structural_tag needs a non-empty list 'structures'");
  if (triggers_it == tag.end() || !triggers_it->is_array() || triggers_it->empty())
    throw Error("structural_tag needs a non-empty list 'triggers'");
  if (structures_it->size() > kMaxStructuralTagStructures)
    throw Error("structural_tag has more than " + std::to_string(kMaxStructuralTagStructures) + " structures");
  if (triggers_it->size() > kMaxStructuralTagTriggers)
    throw Error("structural_tag has more than " + std::to_string(kMaxStructuralTagTriggers) + " triggers");

  std::vector<CodePoints> triggers;
  for (const auto& t : *triggers_it) {
    if (!t.is_string() || t.get<std::string>().empty()) throw Error("structural_tag: every trigger must be a non-empty string");
    if (t.get<std::string>().size() > kMaxStructuralTagTriggerBytes)
      throw Error("structural_tag: a trigger is longer than " + std::to_string(kMaxStructuralTagTriggerBytes) + " bytes");
    CodePoints cps;
    if (!decode_utf8(t.get<std::string>(), cps)) throw Error("structural_tag: a trigger is not valid UTF-8");
    triggers.push_back(std::move(cps));
  }

  std::string rules;
  std::vector<Structure> structures;
  for (size_t k = 0; k < structures_it->size(); ++k) {
    const auto& s = (*structures_it)[k];
    const std::string where = cat("structures[", std::to_string(k), "]");
    if (!s.is_object()) throw Error("structural_tag: " + where + " must be an object");
    Structure st;
    st.begin = utf8_field(s, "begin", where, true);
    st.end = utf8_of(utf8_field(s, "end", where, false));
    auto schema = s.find("schema");
    const nlohmann::ordered_json any_schema = nlohmann::ordered_json::object();
    const std::string prefix = cat("st", std::to_string(k), "-");
    try {
      rules += prefix_gbnf_rules(json_schema_to_gbnf(schema == s.end() ? any_schema : *schema), prefix);
    } catch (const JsonSchemaError& e) {
      throw Error(cat("structural_tag: ", where, ".schema: ", e.what()));
    }
    rules += "\n";
    st.schema_rule = cat(prefix, "root");
    structures.push_back(std::move(st));
  }

  // Which structures each trigger opens: those whose begin starts with it (xgrammar's rule).
  std::vector<std::vector<size_t>> opened(triggers.size());
  for (size_t k = 0; k < structures.size(); ++k) {
    bool any = false;
    for (size_t t = 0; t < triggers.size(); ++t) {
      const CodePoints& b = structures[k].begin;
      if (b.size() >= triggers[t].size() && std::equal(triggers[t].begin(), triggers[t].end(), b.begin())) {
        opened[t].push_back(k);
        any = true;
      }
    }
    if (!any) throw Error("structural_tag: structures[" + std::to_string(k) + "]'s begin starts with no trigger");
  }

  // The free-text automaton: states are the proper prefixes of the triggers.
  std::map<CodePoints, size_t> state_of;
  std::vector<CodePoints> states;
  auto add_state = [&](const CodePoints& p) {
    if (state_of.emplace(p, states.size()).second) states.push_back(p);
  };
  add_state({});
  for (const auto& t : triggers)
    for (size_t n = 1; n < t.size(); ++n) add_state(CodePoints(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n)));
  std::set<uint32_t> interesting;
  for (const auto& t : triggers) interesting.insert(t.begin(), t.end());
  CodePointSet others = CodePointSet::any_scalar();
  for (uint32_t c : interesting) others.subtract(CodePointSet::single(c));

  auto state_rule = [](size_t s) { return cat("st-free-", std::to_string(s)); };
  for (size_t s = 0; s < states.size(); ++s) {
    std::vector<std::string> alts = {"\"\""};
    if (!others.empty()) alts.push_back(cat(gbnf_class(others), " ", state_rule(0)));
    for (uint32_t c : interesting) {
      CodePoints text = states[s];
      text.push_back(c);
      const std::string lit = gbnf_ascii_literal(utf8_of({c}));
      // Text in which a trigger just occurred must go on as one of its structures.
      bool completed = false;
      for (size_t t = 0; t < triggers.size(); ++t) {
        if (!ends_with(text, triggers[t])) continue;
        completed = true;
        for (size_t k : opened[t]) {
          const Structure& st = structures[k];
          std::string alt = lit;
          const std::string rest = utf8_of(st.begin, triggers[t].size());
          if (!rest.empty()) alt += cat(" ", gbnf_ascii_literal(rest));
          alt += cat(" ", st.schema_rule);
          if (!st.end.empty()) alt += cat(" ", gbnf_ascii_literal(st.end));
          alts.push_back(cat(alt, " ", state_rule(0)));
        }
      }
      if (completed) continue;
      // Otherwise: the longest suffix that is still a trigger's proper prefix.
      size_t next = 0;
      for (size_t len = text.size(); len > 0; --len) {
        CodePoints suffix(text.end() - static_cast<std::ptrdiff_t>(len), text.end());
        if (auto it = state_of.find(suffix); it != state_of.end()) {
          next = it->second;
          break;
        }
      }
      alts.push_back(cat(lit, " ", state_rule(next)));
    }
    std::string body;
    for (size_t a = 0; a < alts.size(); ++a) body += cat(a ? " | " : "", alts[a]);
    rules += cat(state_rule(s), " ::= ", body, "\n");
  }
  return cat("root ::= ", state_rule(0), "\n", rules);
}

std::string text_until_gbnf(std::string_view marker_text, std::string_view prefix, std::string_view then) {
  CodePoints marker;
  if (!decode_utf8(marker_text, marker) || marker.empty()) throw Error("text_until_gbnf: the marker must be non-empty UTF-8");
  // States: the longest suffix of the text so far that is a proper prefix of the marker.
  const std::set<uint32_t> interesting(marker.begin(), marker.end());
  CodePointSet others = CodePointSet::any_scalar();
  for (uint32_t c : interesting) others.subtract(CodePointSet::single(c));
  auto state_rule = [&](size_t s) { return cat(std::string(prefix), std::to_string(s)); };
  std::string rules;
  for (size_t s = 0; s < marker.size(); ++s) {
    std::vector<std::string> alts;
    if (!others.empty()) alts.push_back(cat(gbnf_class(others), " ", state_rule(0)));
    for (uint32_t c : interesting) {
      CodePoints text(marker.begin(), marker.begin() + static_cast<std::ptrdiff_t>(s));
      text.push_back(c);
      const std::string lit = gbnf_ascii_literal(utf8_of({c}));
      if (text == marker) {
        alts.push_back(cat(lit, " ", std::string(then)));
        continue;
      }
      size_t next = 0;
      for (size_t len = std::min(text.size(), marker.size() - 1); len > 0; --len)
        if (std::equal(text.end() - static_cast<std::ptrdiff_t>(len), text.end(), marker.begin())) {
          next = len;
          break;
        }
      alts.push_back(cat(lit, " ", state_rule(next)));
    }
    std::string body;
    for (size_t a = 0; a < alts.size(); ++a) body += cat(a ? " | " : "", alts[a]);
    rules += cat(state_rule(s), " ::= ", body, "\n");
  }
  return rules;
}

}  // namespace vllm::structured
