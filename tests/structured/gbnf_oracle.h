// Test-only: decides whether a string is in the language of a GBNF text, by brute force (the
// text expanded to plain BNF over code point sets, then an Earley recogniser). Independent of
// the engine's grammar compiler and matcher, so front-end tests can check languages on their own.
#pragma once

#include <cctype>
#include <cstdint>
#include <tuple>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/structured/code_point_set.h"

namespace vllm::structured::testing {

class GbnfOracle {
 public:
  explicit GbnfOracle(const std::string& text) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      std::string line = text.substr(pos, eol - pos);
      pos = eol + 1;
      if (line.empty() || line[0] == '#') continue;
      size_t def = line.find(" ::= ");
      if (def == std::string::npos) throw std::runtime_error("oracle: no ::= in " + line);
      int lhs = nonterminal(line.substr(0, def));
      defined_.insert(lhs);
      src_ = line.substr(def + 5);
      i_ = 0;
      for (auto& alt : parse_alternatives()) add(lhs, alt);
      skip();
      if (i_ != src_.size()) throw std::runtime_error("oracle: trailing text in " + line);
    }
    for (const auto& [name, id] : names_)
      if (!defined_.count(id)) throw std::runtime_error("oracle: undefined rule " + name);
    root_ = names_.at("root");
  }

  bool accepts(std::string_view utf8) const {
    std::vector<uint32_t> cps;
    if (!decode_utf8(utf8, cps)) return false;
    return earley(cps);
  }

 private:
  // A symbol: >= 0 a nonterminal, < 0 the terminal set -1 - symbol.
  using Seq = std::vector<int>;

  int nonterminal(const std::string& name) {
    auto it = names_.find(name);
    if (it != names_.end()) return it->second;
    int id = static_cast<int>(rules_.size());
    rules_.emplace_back();
    names_[name] = id;
    return id;
  }
  int fresh() {
    rules_.emplace_back();
    defined_.insert(static_cast<int>(rules_.size()) - 1);
    return static_cast<int>(rules_.size()) - 1;
  }
  void add(int lhs, Seq s) { rules_[lhs].push_back(std::move(s)); }
  int terminal(const CodePointSet& s) {
    sets_.push_back(s);
    return -static_cast<int>(sets_.size());
  }

  void skip() {
    while (i_ < src_.size() && src_[i_] == ' ') ++i_;
  }

  std::vector<Seq> parse_alternatives() {
    std::vector<Seq> alts;
    alts.push_back(parse_sequence());
    skip();
    while (i_ < src_.size() && src_[i_] == '|') {
      ++i_;
      alts.push_back(parse_sequence());
      skip();
    }
    return alts;
  }

  Seq parse_sequence() {
    Seq seq;
    while (true) {
      skip();
      if (i_ >= src_.size() || src_[i_] == '|' || src_[i_] == ')') return seq;
      Seq atom = parse_atom();
      skip();
      if (i_ < src_.size() && (src_[i_] == '*' || src_[i_] == '+' || src_[i_] == '?' || src_[i_] == '{')) {
        uint64_t lo = 0, hi = UINT64_MAX;
        char q = src_[i_++];
        if (q == '+') lo = 1;
        if (q == '?') hi = 1;
        if (q == '{') {
          lo = number();
          if (src_[i_] == '}') hi = lo;
          else {
            ++i_;  // ,
            if (src_[i_] != '}') hi = number();
          }
          ++i_;  // }
        }
        int item = fresh();
        add(item, atom);
        for (uint64_t k = 0; k < lo; ++k) seq.push_back(item);
        if (hi == UINT64_MAX) {
          int star = fresh();  // star ::= | item star
          add(star, {});
          add(star, {item, star});
          seq.push_back(star);
        } else if (hi > lo) {
          // opt_k ::= | item opt_{k-1}
          int next = -1;
          for (uint64_t k = 0; k < hi - lo; ++k) {
            int opt = fresh();
            add(opt, {});
            Seq s = {item};
            if (next >= 0) s.push_back(next);
            add(opt, s);
            next = opt;
          }
          seq.push_back(next);
        }
      } else {
        seq.insert(seq.end(), atom.begin(), atom.end());
      }
    }
  }

  uint64_t number() {
    uint64_t v = 0;
    while (i_ < src_.size() && src_[i_] >= '0' && src_[i_] <= '9') v = v * 10 + static_cast<uint64_t>(src_[i_++] - '0');
    return v;
  }

  uint32_t hex(size_t n) {
    uint32_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = src_[i_++];
      v = v * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
  }

  uint32_t escaped() {
    char c = src_[i_++];
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      default: return static_cast<unsigned char>(c);
    }
  }

  uint32_t next_char() {
    std::vector<uint32_t> one;
    size_t len = 1;
    auto b = static_cast<unsigned char>(src_[i_]);
    if (b >= 0xF0) len = 4;
    else if (b >= 0xE0) len = 3;
    else if (b >= 0xC0) len = 2;
    decode_utf8(std::string_view(src_).substr(i_, len), one);
    i_ += len;
    return one.at(0);
  }

  Seq parse_atom() {
    char c = src_[i_];
    if (c == '"') {
      ++i_;
      Seq s;
      while (src_[i_] != '"') {
        uint32_t cp = src_[i_] == '\\' ? (++i_, escaped()) : next_char();
        s.push_back(terminal(CodePointSet::single(cp)));
      }
      ++i_;
      return s;
    }
    if (c == '[') {
      ++i_;
      bool neg = src_[i_] == '^';
      if (neg) ++i_;
      CodePointSet set;
      while (src_[i_] != ']') {
        uint32_t lo = src_[i_] == '\\' ? (++i_, escaped()) : next_char();
        uint32_t hi = lo;
        if (src_[i_] == '-' && src_[i_ + 1] != ']') {
          ++i_;
          hi = src_[i_] == '\\' ? (++i_, escaped()) : next_char();
        }
        set.add(lo, hi);
      }
      ++i_;
      if (neg) set = set.complement();
      set = set.intersect(CodePointSet::any_scalar());
      return {terminal(set)};
    }
    if (c == '(') {
      ++i_;
      int g = fresh();
      for (auto& alt : parse_alternatives()) add(g, alt);
      skip();
      if (src_[i_] != ')') throw std::runtime_error("oracle: missing )");
      ++i_;
      return {g};
    }
    if (c == '.') {
      ++i_;
      return {terminal(CodePointSet::any_scalar())};
    }
    size_t start = i_;
    while (i_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[i_])) || src_[i_] == '-' || src_[i_] == '_')) ++i_;
    if (start == i_) throw std::runtime_error("oracle: unexpected '" + std::string(1, c) + "' in " + src_);
    return {nonterminal(src_.substr(start, i_ - start))};
  }

  struct Item {
    int rule, alt, dot, origin;
    bool operator<(const Item& o) const {
      return std::tie(rule, alt, dot, origin) < std::tie(o.rule, o.alt, o.dot, o.origin);
    }
  };

  bool earley(const std::vector<uint32_t>& text) const {
    const size_t n = text.size();
    std::vector<std::set<Item>> sets(n + 1);
    std::vector<std::vector<Item>> work(n + 1);
    auto push = [&](size_t k, Item it) {
      if (sets[k].insert(it).second) work[k].push_back(it);
    };
    for (int a = 0; a < static_cast<int>(rules_[root_].size()); ++a) push(0, {root_, a, 0, 0});
    for (size_t k = 0; k <= n; ++k) {
      // Nullable completions: track which rules completed empty at k.
      std::set<int> empty_done;
      for (size_t w = 0; w < work[k].size(); ++w) {
        Item it = work[k][w];
        const Seq& seq = rules_[it.rule][it.alt];
        if (it.dot == static_cast<int>(seq.size())) {
          if (it.origin == static_cast<int>(k)) empty_done.insert(it.rule);
          std::vector<Item> parents(sets[it.origin].begin(), sets[it.origin].end());
          for (const Item& p : parents) {
            const Seq& ps = rules_[p.rule][p.alt];
            if (p.dot < static_cast<int>(ps.size()) && ps[p.dot] == it.rule) push(k, {p.rule, p.alt, p.dot + 1, p.origin});
          }
          continue;
        }
        int sym = seq[it.dot];
        if (sym >= 0) {
          for (int a = 0; a < static_cast<int>(rules_[sym].size()); ++a) push(k, {sym, a, 0, static_cast<int>(k)});
          if (empty_done.count(sym)) push(k, {it.rule, it.alt, it.dot + 1, it.origin});
        } else if (k < n && sets_[-1 - sym].contains(text[k])) {
          push(k + 1, {it.rule, it.alt, it.dot + 1, it.origin});
        }
      }
    }
    for (const Item& it : sets[n])
      if (it.rule == root_ && it.origin == 0 && it.dot == static_cast<int>(rules_[root_][it.alt].size())) return true;
    return false;
  }

  std::map<std::string, int> names_;
  std::set<int> defined_;
  std::vector<std::vector<Seq>> rules_;
  std::vector<CodePointSet> sets_;
  std::string src_;
  size_t i_ = 0;
  int root_ = 0;
};

}  // namespace vllm::structured::testing
