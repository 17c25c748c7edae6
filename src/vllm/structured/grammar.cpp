// Grammar, ByteSet and the checks GrammarBuilder::finish runs: reachability, left recursion
// (through nullable prefixes; a cycle of tail references only is allowed, since a tail reference
// replaces its frame and cannot grow the stack), and productivity (every reachable rule matches
// some finite string, so every state the matcher reaches can still be completed).
#include <cstdint>
#include <algorithm>
#include <bit>
#include <cstdio>
#include <functional>
#include <set>
#include <unordered_set>

#include "vllm/structured/grammar_builder.h"
#include "vllm/structured/graph.h"
#include "vllm/structured/limits.h"

namespace vllm::structured {

GrammarError::GrammarError(int line, int column, const std::string& message)
    : Error("grammar error at line " + std::to_string(line) + ", column " + std::to_string(column) +
                ": " + message,
            ErrorKind::kInvalidArgument),
      line_(line),
      column_(column),
      reason_(message) {}

int ByteSet::count() const {
  int n = 0;
  for (uint64_t w : words_) n += std::popcount(w);
  return n;
}

std::string ByteSet::to_string() const {
  // (Built with append rather than operator+ chains, which trip GCC 12's -Wrestrict.)
  auto append_byte = [](std::string& out, int b) {
    if (b >= 0x20 && b < 0x7F && b != '\\' && b != ']' && b != '-' && b != '^' && b != '"') {
      out.push_back(static_cast<char>(b));
      return;
    }
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02X", b);
    out.append(buf);
  };
  std::string out;
  if (count() == 1) {
    for (int b = 0; b < 256; ++b) {
      if (!test(static_cast<uint8_t>(b))) continue;
      if (b >= 0x20 && b < 0x7F && b != '"' && b != '\\') {
        out.push_back('"');
        out.push_back(static_cast<char>(b));
        out.push_back('"');
        return out;
      }
      break;
    }
  }
  out.push_back('[');
  for (int b = 0; b < 256;) {
    if (!test(static_cast<uint8_t>(b))) {
      ++b;
      continue;
    }
    int e = b;
    while (e + 1 < 256 && test(static_cast<uint8_t>(e + 1))) ++e;
    append_byte(out, b);
    if (e > b) {
      out.push_back('-');
      append_byte(out, e);
    }
    b = e + 1;
  }
  out.push_back(']');
  return out;
}

std::optional<uint32_t> Grammar::find_rule(std::string_view name) const {
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].name == name) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

size_t Grammar::num_elements() const {
  size_t n = 0;
  for (const GrammarRule& r : rules_) {
    for (const GrammarSequence& s : r.alternatives) n += s.size();
  }
  return n;
}

std::string Grammar::to_string() const {
  std::string out;
  for (const GrammarRule& r : rules_) {
    out += r.name + " ::=";
    for (size_t a = 0; a < r.alternatives.size(); ++a) {
      if (a > 0) out += " |";
      for (const GrammarElement& e : r.alternatives[a]) {
        out += " ";
        out += e.kind == GrammarElement::Kind::kBytes ? byte_sets_[e.index].to_string() : rules_[e.index].name;
      }
      if (r.alternatives[a].empty()) out += " \"\"";
    }
    out += "\n";
  }
  return out;
}

TextPosition text_position(std::string_view text, size_t offset) {
  TextPosition p;
  offset = std::min(offset, text.size());
  for (size_t i = 0; i < offset; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++p.line;
      p.column = 1;
    } else if ((c & 0xC0) != 0x80) {  // count code points, not continuation bytes
      ++p.column;
    }
  }
  return p;
}

void GrammarBuilder::fail(size_t offset, const std::string& message) const {
  const TextPosition p = text_position(text_, offset);
  throw GrammarError(p.line, p.column, message);
}

uint32_t GrammarBuilder::add_rule(std::string name, bool helper, uint32_t owner, size_t offset) {
  if (rules_.size() >= limits::kMaxRules) {
    fail(offset, "grammar too large: more than " + std::to_string(limits::kMaxRules) +
                     " rules after expanding groups, repetitions and classes (limits::kMaxRules)");
  }
  GrammarRule r;
  r.name = std::move(name);
  r.helper = helper;
  r.owner = helper ? owner : static_cast<uint32_t>(rules_.size());
  rules_.push_back(std::move(r));
  offsets_.push_back(offset);
  return static_cast<uint32_t>(rules_.size() - 1);
}

uint32_t GrammarBuilder::byte_set(const ByteSet& set) {
  auto [it, inserted] = byte_set_index_.emplace(set, static_cast<uint32_t>(byte_sets_.size()));
  if (inserted) byte_sets_.push_back(set);
  return it->second;
}

void GrammarBuilder::count_elements(size_t n, size_t offset) {
  elements_ += n;
  if (elements_ > limits::kMaxElements) {
    fail(offset, "grammar too large: more than " + std::to_string(limits::kMaxElements) +
                     " elements after expanding repetitions (limits::kMaxElements)");
  }
}

namespace {

std::vector<bool> nullable_rules(const std::vector<GrammarRule>& rules) {
  std::vector<bool> nullable(rules.size(), false);
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t r = 0; r < rules.size(); ++r) {
      if (nullable[r]) continue;
      for (const GrammarSequence& seq : rules[r].alternatives) {
        const bool all = std::all_of(seq.begin(), seq.end(), [&](const GrammarElement& e) {
          return e.kind == GrammarElement::Kind::kRule && nullable[e.index];
        });
        if (all) {
          nullable[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

}  // namespace

void GrammarBuilder::check_left_recursion(const std::vector<uint32_t>& reachable) const {
  // Left edges: R -> S when S can be the first thing R reads (everything before it nullable).
  // `tail` when S is the last element: such a reference replaces R's frame.
  const std::vector<bool> nullable = nullable_rules(rules_);
  struct Edge {
    uint32_t to;
    bool tail;
  };
  std::vector<std::vector<Edge>> edges(rules_.size());
  for (uint32_t r : reachable) {
    for (const GrammarSequence& seq : rules_[r].alternatives) {
      for (size_t i = 0; i < seq.size(); ++i) {
        if (seq[i].kind != GrammarElement::Kind::kRule) break;
        edges[r].push_back({seq[i].index, i + 1 == seq.size()});
        if (!nullable[seq[i].index]) break;
      }
    }
  }
  std::vector<std::vector<uint32_t>> out(rules_.size());
  for (uint32_t r : reachable) {
    for (const Edge& e : edges[r]) out[r].push_back(e.to);
  }
  const std::vector<int> comp = strongly_connected_components(out);
  const size_t n = rules_.size();
  // A non-tail edge inside a component lies on a cycle: unbounded stack growth without input.
  // Report the one whose rule is defined first.
  std::optional<std::pair<uint32_t, uint32_t>> bad;
  for (uint32_t r : reachable) {
    for (const Edge& e : edges[r]) {
      if (e.tail || comp[e.to] != comp[r]) continue;
      if (!bad || offsets_[r] < offsets_[bad->first]) bad = std::make_pair(r, e.to);
    }
  }
  if (!bad) return;
  const auto [u, v] = *bad;
  // The cycle: u -> v, then the shortest path from v back to u inside the component.
  std::vector<int64_t> prev(n, -1);
  std::vector<uint32_t> queue{v};
  std::vector<bool> seen(n, false);
  seen[v] = true;
  for (size_t qi = 0; qi < queue.size() && !seen[u]; ++qi) {
    const uint32_t x = queue[qi];
    for (const Edge& e : edges[x]) {
      if (comp[e.to] != comp[u] || seen[e.to]) continue;
      seen[e.to] = true;
      prev[e.to] = x;
      queue.push_back(e.to);
    }
  }
  std::vector<uint32_t> path;  // u, v, ..., u
  if (u == v) {
    path = {u, u};
  } else {
    for (int64_t x = u; x >= 0; x = x == static_cast<int64_t>(v) ? -1 : prev[static_cast<size_t>(x)]) {
      path.push_back(static_cast<uint32_t>(x));
    }
    path.push_back(u);
    std::reverse(path.begin(), path.end());
  }
  // Name user rules only: a helper stands for the rule it was written in.
  std::string chain;
  std::string last;
  for (size_t i = 0; i < path.size(); ++i) {
    const std::string& name = rules_[rules_[path[i]].owner].name;
    if (i > 0 && i + 1 < path.size() && name == last) continue;
    if (!chain.empty()) chain += " -> ";
    chain += name;
    last = name;
  }
  const uint32_t owner = rules_[u].owner;
  fail(offsets_[owner], "rule '" + rules_[owner].name + "' is left-recursive (" + chain +
                            "): a rule must read a byte before it can reach itself again");
}

void GrammarBuilder::check_productive(const std::vector<uint32_t>& reachable) const {
  std::vector<bool> productive(rules_.size(), false);
  bool changed = true;
  while (changed) {
    changed = false;
    for (uint32_t r : reachable) {
      if (productive[r]) continue;
      for (const GrammarSequence& seq : rules_[r].alternatives) {
        const bool all = std::all_of(seq.begin(), seq.end(), [&](const GrammarElement& e) {
          return e.kind == GrammarElement::Kind::kBytes || productive[e.index];
        });
        if (all) {
          productive[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  // Report a rule that matches nothing by itself, not merely because it uses one that does:
  // one in a bottom component of the references among such rules (defined first among them).
  std::vector<std::vector<uint32_t>> out(rules_.size());
  for (uint32_t r : reachable) {
    if (productive[r]) continue;
    for (const GrammarSequence& seq : rules_[r].alternatives) {
      for (const GrammarElement& e : seq) {
        if (e.kind == GrammarElement::Kind::kRule && !productive[e.index]) out[r].push_back(e.index);
      }
    }
  }
  const std::vector<int> comp = strongly_connected_components(out);
  std::vector<bool> bottom(rules_.size(), true);  // by component
  for (uint32_t r : reachable) {
    for (uint32_t s : out[r]) {
      if (comp[s] != comp[r]) bottom[static_cast<size_t>(comp[r])] = false;
    }
  }
  std::optional<uint32_t> bad;
  for (uint32_t r : reachable) {
    if (productive[r] || !bottom[static_cast<size_t>(comp[r])]) continue;
    const uint32_t owner = rules_[r].owner;
    if (!bad || offsets_[owner] < offsets_[*bad]) bad = owner;
  }
  if (bad) {
    fail(offsets_[*bad], "rule '" + rules_[*bad].name +
                             "' matches no string: every alternative needs the rule again, with no way to finish");
  }
}

Grammar GrammarBuilder::finish(uint32_t root) {
  // Rules reachable from the root, in definition order.
  std::vector<bool> seen(rules_.size(), false);
  std::vector<uint32_t> work{root};
  seen[root] = true;
  while (!work.empty()) {
    const uint32_t r = work.back();
    work.pop_back();
    for (const GrammarSequence& seq : rules_[r].alternatives) {
      for (const GrammarElement& e : seq) {
        if (e.kind == GrammarElement::Kind::kRule && !seen[e.index]) {
          seen[e.index] = true;
          work.push_back(e.index);
        }
      }
    }
  }
  std::vector<uint32_t> reachable;
  for (uint32_t r = 0; r < rules_.size(); ++r) {
    if (seen[r]) reachable.push_back(r);
  }
  check_left_recursion(reachable);
  check_productive(reachable);

  // Renumber the reachable rules and the byte sets they use.
  std::vector<uint32_t> new_index(rules_.size(), UINT32_MAX);
  for (size_t i = 0; i < reachable.size(); ++i) new_index[reachable[i]] = static_cast<uint32_t>(i);
  Grammar g;
  std::vector<uint32_t> set_index(byte_sets_.size(), UINT32_MAX);
  std::unordered_set<std::string> user_names;
  for (const GrammarRule& r : rules_) {
    if (!r.helper) user_names.insert(r.name);
  }
  for (uint32_t old : reachable) {
    GrammarRule r = std::move(rules_[old]);
    for (GrammarSequence& seq : r.alternatives) {
      for (GrammarElement& e : seq) {
        if (e.kind == GrammarElement::Kind::kRule) {
          e.index = new_index[e.index];
        } else {
          if (set_index[e.index] == UINT32_MAX) {
            set_index[e.index] = static_cast<uint32_t>(g.byte_sets_.size());
            g.byte_sets_.push_back(byte_sets_[e.index]);
          }
          e.index = set_index[e.index];
        }
      }
    }
    // A helper's owner may be unreachable only if the helper is too (it is written inside it).
    r.owner = new_index[r.owner];
    if (r.helper) {
      while (user_names.count(r.name) != 0) r.name += "_";
    }
    g.rules_.push_back(std::move(r));
  }
  // Definition positions, in one pass over the text.
  std::vector<std::pair<size_t, uint32_t>> by_offset;
  for (size_t i = 0; i < reachable.size(); ++i) by_offset.push_back({offsets_[reachable[i]], static_cast<uint32_t>(i)});
  std::sort(by_offset.begin(), by_offset.end());
  TextPosition p;
  size_t at = 0;
  for (const auto& [offset, i] : by_offset) {
    for (; at < offset && at < text_.size(); ++at) {
      const auto c = static_cast<unsigned char>(text_[at]);
      if (c == '\n') {
        ++p.line;
        p.column = 1;
      } else if ((c & 0xC0) != 0x80) {
        ++p.column;
      }
    }
    g.rules_[i].line = p.line;
    g.rules_[i].column = p.column;
  }
  g.root_ = new_index[root];
  return g;
}

}  // namespace vllm::structured
