// Grammar -> Automaton: choose the real rules, build each one's NFA (Thompson construction with
// inlining), remove epsilon edges, trim, and compute the return sites of every real rule.
#include "vllm/structured/automaton.h"

#include <cstdint>
#include <algorithm>
#include <map>

#include "vllm/structured/graph.h"
#include "vllm/structured/limits.h"

namespace vllm::structured::detail {

namespace {

// A user rule is inlined into its users when its inlined size (elements, counting what it
// inlines in turn) is at most this: small rules like `ws` or `sign` cost little to copy, and a
// copy is classified in its real context (what follows it), which keeps runtime checks rare.
constexpr size_t kInlineUserRule = 48;
// A user rule that never matches more than this many bytes (one character of a JSON string:
// `json-string-char`, `json-code-point`, up to the 12 bytes of an escaped surrogate pair) is
// inlined up to kInlineShortRule elements, whatever kInlineUserRule says. Kept real, such a
// rule would end a few bytes after every place it starts: every longer token would leave it at
// nearly every trie node, and each of those ends would be followed into each of its return
// sites (a character rule has one per string of the grammar), which is what took JSON schemas
// with many strings past limits::kMaxCompileMoves once a character class's UTF-8 paths made the
// rule bigger than kInlineUserRule.
constexpr size_t kInlineShortRuleBytes = 16;
constexpr size_t kInlineShortRule = 1024;
// Any inlined rule (a helper too) above this size stays a real rule, so that big groups are not
// copied without end. Generous, because a bounded repetition's chain is best kept in one rule:
// each place a chain is cut into another real rule is one more "end" whose neighbours need
// token classes of their own (see node_equivalence.h). X{0,1000} of a character fits.
constexpr size_t kInlineMax = size_t{1} << 15;

struct RawNode {
  std::vector<ByteEdge> bytes;
  std::vector<RefEdge> refs;
  std::vector<uint32_t> eps;
};

class Builder {
 public:
  explicit Builder(const Grammar& g) : g_(g) {}

  Automaton build() {
    choose_real_rules();
    Automaton a;
    a.sets = g_.byte_sets();
    a.root = real_index_[g_.root()];
    a.rule_start.resize(real_rules_.size());
    for (uint32_t r : real_rules_) a.rule_names.push_back(g_.rules()[r].name);
    for (size_t i = 0; i < real_rules_.size(); ++i) build_rule(static_cast<uint32_t>(i), a);
    compute_return_sites(a);
    return a;
  }

 private:
  // Real rules: the root, rules on a cycle of references (other than tail self-references,
  // which become loops), and rules too big to inline.
  void choose_real_rules() {
    const auto& rules = g_.rules();
    const size_t n = rules.size();
    // Strongly connected components of the reference graph, without tail self-references.
    std::vector<std::vector<uint32_t>> out(n);
    std::vector<bool> self_loop(n, false);
    for (uint32_t r = 0; r < n; ++r) {
      for (const GrammarSequence& seq : rules[r].alternatives) {
        for (size_t i = 0; i < seq.size(); ++i) {
          if (seq[i].kind != GrammarElement::Kind::kRule) continue;
          if (seq[i].index == r) {
            if (i + 1 != seq.size()) self_loop[r] = true;  // a non-tail self-reference
            continue;
          }
          out[r].push_back(seq[i].index);
        }
      }
    }
    std::vector<int> comp = strongly_connected_components(out);
    std::vector<int> comp_size(n, 0);
    for (uint32_t r = 0; r < n; ++r) ++comp_size[static_cast<size_t>(comp[r])];
    std::vector<bool> recursive(n, false);
    for (uint32_t r = 0; r < n; ++r) recursive[r] = self_loop[r] || comp_size[static_cast<size_t>(comp[r])] > 1;

    // Inlined sizes, callees first: components are numbered in reverse topological
    // order (a component's callees get smaller numbers), so sort rules by component.
    std::vector<uint32_t> order(n);
    for (uint32_t r = 0; r < n; ++r) order[r] = r;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return comp[a] < comp[b]; });
    inline_.assign(n, false);
    std::vector<size_t> size(n, 0);
    // Longest match in bytes, kUnbounded for rules with a loop or on a recursion cycle.
    constexpr size_t kUnbounded = SIZE_MAX;
    std::vector<size_t> longest(n, 0);
    for (uint32_t r : order) {
      size_t s = 0;
      size_t most = recursive[r] ? kUnbounded : 0;
      for (const GrammarSequence& seq : rules[r].alternatives) {
        size_t len = 0;
        for (const GrammarElement& e : seq) {
          const bool call = e.kind == GrammarElement::Kind::kRule;
          s += (call && e.index != r && inline_[e.index]) ? size[e.index] : 1;
          const size_t add = !call ? 1 : e.index == r ? kUnbounded : longest[e.index];
          len = add == kUnbounded || len == kUnbounded ? kUnbounded : len + add;
        }
        most = std::max(most, len);
        s += 1;
      }
      size[r] = std::min(s, kInlineMax + 1);
      longest[r] = most;
      if (r == g_.root() || recursive[r]) continue;
      inline_[r] = rules[r].helper ? s <= kInlineMax
                                   : s <= kInlineUserRule || (most <= kInlineShortRuleBytes && s <= kInlineShortRule);
    }
    real_index_.assign(n, UINT32_MAX);
    for (uint32_t r = 0; r < n; ++r) {
      if (!inline_[r]) {
        real_index_[r] = static_cast<uint32_t>(real_rules_.size());
        real_rules_.push_back(r);
      }
    }
  }

  uint32_t new_raw() {
    if (raw_.size() >= limits::kMaxCompiledNodes) {
      const GrammarRule& r = g_.rules()[current_rule_];
      throw GrammarError(r.line, r.column,
                         "grammar too large to compile: more than " + std::to_string(limits::kMaxCompiledNodes) +
                             " automaton nodes (limits::kMaxCompiledNodes)");
    }
    raw_.emplace_back();
    return static_cast<uint32_t>(raw_.size() - 1);
  }

  // Thompson construction of grammar rule `r` between raw nodes entry and exit.
  void emit(uint32_t r, uint32_t entry, uint32_t exit) {
    for (const GrammarSequence& seq : g_.rules()[r].alternatives) {
      if (seq.empty()) {
        raw_[entry].eps.push_back(exit);
        continue;
      }
      uint32_t cur = entry;
      for (size_t k = 0; k < seq.size(); ++k) {
        const GrammarElement& e = seq[k];
        const bool last = k + 1 == seq.size();
        if (e.kind == GrammarElement::Kind::kRule && e.index == r && last) {
          raw_[cur].eps.push_back(entry);  // tail self-reference: loop back to the start
          break;
        }
        const uint32_t next = last ? exit : new_raw();
        if (e.kind == GrammarElement::Kind::kBytes) {
          raw_[cur].bytes.push_back({e.index, next});
        } else if (inline_[e.index]) {
          const uint32_t in = new_raw(), out = new_raw();
          raw_[cur].eps.push_back(in);
          emit(e.index, in, out);
          raw_[out].eps.push_back(next);
        } else {
          raw_[cur].refs.push_back({real_index_[e.index], next, false});
        }
        cur = next;
      }
    }
  }

  void build_rule(uint32_t real, Automaton& a) {
    current_rule_ = real_rules_[real];
    raw_.clear();
    const uint32_t entry = new_raw(), exit = new_raw();
    emit(current_rule_, entry, exit);

    // The nodes reachable from the entry through byte and ref edges, with their epsilon
    // closures (computed for those nodes only).
    const size_t n = raw_.size();
    std::vector<std::vector<uint32_t>> closure(n);
    std::vector<uint32_t> mark(n, UINT32_MAX);
    auto close = [&](uint32_t u) {
      std::vector<uint32_t> work{u};
      mark[u] = u;
      while (!work.empty()) {
        const uint32_t x = work.back();
        work.pop_back();
        closure[u].push_back(x);
        for (uint32_t y : raw_[x].eps) {
          if (mark[y] != u) {
            mark[y] = u;
            work.push_back(y);
          }
        }
      }
    };
    std::vector<uint32_t> id(n, UINT32_MAX);
    std::vector<uint32_t> order{entry};
    id[entry] = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      close(order[i]);
      for (uint32_t x : closure[order[i]]) {
        auto visit = [&](uint32_t t) {
          if (id[t] == UINT32_MAX) {
            id[t] = static_cast<uint32_t>(order.size());
            order.push_back(t);
          }
        };
        for (const ByteEdge& e : raw_[x].bytes) visit(e.target);
        for (const RefEdge& e : raw_[x].refs) visit(e.ret);
      }
    }
    // Merged edges per kept node: byte edges to one target are joined into one set.
    struct Merged {
      std::vector<ByteEdge> bytes;
      std::vector<RefEdge> refs;
      bool final = false;
    };
    std::vector<Merged> merged(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      std::map<uint32_t, ByteSet> by_target;
      for (uint32_t x : closure[order[i]]) {
        if (x == exit) merged[i].final = true;
        for (const ByteEdge& e : raw_[x].bytes) by_target[id[e.target]] |= a.sets[e.set];
        for (const RefEdge& e : raw_[x].refs) merged[i].refs.push_back({e.rule, id[e.ret], false});
      }
      for (const auto& [target, set] : by_target) merged[i].bytes.push_back({intern_set(a, set), target});
      auto& refs = merged[i].refs;
      std::sort(refs.begin(), refs.end(), [](const RefEdge& x, const RefEdge& y) {
        return x.rule != y.rule ? x.rule < y.rule : x.ret < y.ret;
      });
      refs.erase(std::unique(refs.begin(), refs.end(),
                             [](const RefEdge& x, const RefEdge& y) { return x.rule == y.rule && x.ret == y.ret; }),
                 refs.end());
    }
    // Trim nodes that cannot reach the end of the rule (the grammar is checked, so this only
    // removes what epsilon removal left behind; kept for safety: every state must be live).
    std::vector<bool> live(order.size(), false);
    bool changed = true;
    while (changed) {
      changed = false;
      for (size_t i = 0; i < order.size(); ++i) {
        if (live[i]) continue;
        bool l = merged[i].final;
        for (const ByteEdge& e : merged[i].bytes) l = l || live[e.target];
        for (const RefEdge& e : merged[i].refs) l = l || live[e.ret];
        if (l) {
          live[i] = true;
          changed = true;
        }
      }
    }
    std::vector<uint32_t> final_id(order.size(), UINT32_MAX);
    const uint32_t base = static_cast<uint32_t>(a.nodes.size());
    uint32_t next = base;
    for (size_t i = 0; i < order.size(); ++i) {
      if (live[i] || i == 0) final_id[i] = next++;
    }
    if (a.nodes.size() + (next - base) > limits::kMaxCompiledNodes) {
      const GrammarRule& r = g_.rules()[current_rule_];
      throw GrammarError(r.line, r.column,
                         "grammar too large to compile: more than " + std::to_string(limits::kMaxCompiledNodes) +
                             " automaton nodes (limits::kMaxCompiledNodes)");
    }
    a.rule_start[real] = base;
    for (size_t i = 0; i < order.size(); ++i) {
      if (final_id[i] == UINT32_MAX) continue;
      Node node;
      node.rule = real;
      node.final = merged[i].final;
      node.bytes_begin = static_cast<uint32_t>(a.byte_edges.size());
      for (const ByteEdge& e : merged[i].bytes) {
        if (!live[e.target]) continue;
        a.byte_edges.push_back({e.set, final_id[e.target]});
        node.first |= a.sets[e.set];
      }
      node.bytes_end = static_cast<uint32_t>(a.byte_edges.size());
      node.refs_begin = static_cast<uint32_t>(a.ref_edges.size());
      for (const RefEdge& e : merged[i].refs) {
        if (!live[e.ret]) continue;
        a.ref_edges.push_back({e.rule, final_id[e.ret], false});
      }
      node.refs_end = static_cast<uint32_t>(a.ref_edges.size());
      a.nodes.push_back(node);
    }
  }

  uint32_t intern_set(Automaton& a, const ByteSet& s) {
    if (set_index_.empty()) {
      for (size_t i = 0; i < a.sets.size(); ++i) set_index_.emplace(a.sets[i], static_cast<uint32_t>(i));
    }
    auto [it, inserted] = set_index_.emplace(s, static_cast<uint32_t>(a.sets.size()));
    if (inserted) a.sets.push_back(s);
    return it->second;
  }

  // Tail flags, then RS(R): the return nodes of non-tail references to R, the return sites of
  // every rule that tail-calls R, and the end of the input for the root.
  void compute_return_sites(Automaton& a) {
    for (RefEdge& e : a.ref_edges) {
      const Node& ret = a.nodes[e.ret];
      e.tail = ret.final && !ret.has_bytes() && ret.refs_end == ret.refs_begin;
    }
    const size_t nr = real_rules_.size();
    std::vector<std::vector<uint32_t>> sites(nr);
    std::vector<std::vector<uint32_t>> tail_callers(nr);
    for (const Node& node : a.nodes) {
      for (uint32_t k = node.refs_begin; k < node.refs_end; ++k) {
        const RefEdge& e = a.ref_edges[k];
        if (e.tail) {
          tail_callers[e.rule].push_back(node.rule);
        } else {
          sites[e.rule].push_back(e.ret);
        }
      }
    }
    sites[a.root].push_back(kAcceptSite);
    bool changed = true;
    for (auto& s : sites) {
      std::sort(s.begin(), s.end());
      s.erase(std::unique(s.begin(), s.end()), s.end());
    }
    while (changed) {
      changed = false;
      for (uint32_t r = 0; r < nr; ++r) {
        for (uint32_t caller : tail_callers[r]) {
          if (caller == r) continue;
          std::vector<uint32_t> merged;
          std::set_union(sites[r].begin(), sites[r].end(), sites[caller].begin(), sites[caller].end(),
                         std::back_inserter(merged));
          if (merged.size() != sites[r].size()) {
            sites[r] = std::move(merged);
            changed = true;
          }
        }
      }
    }
    a.return_sites = std::move(sites);
  }

  const Grammar& g_;
  std::vector<bool> inline_;
  std::vector<uint32_t> real_index_;  // grammar rule -> real rule, or UINT32_MAX when inlined
  std::vector<uint32_t> real_rules_;  // real rule -> grammar rule
  std::vector<RawNode> raw_;
  uint32_t current_rule_ = 0;
  std::map<ByteSet, uint32_t> set_index_;
};

}  // namespace

size_t Automaton::memory_bytes() const {
  size_t n = nodes.size() * sizeof(Node) + byte_edges.size() * sizeof(ByteEdge) +
             ref_edges.size() * sizeof(RefEdge) + sets.size() * sizeof(ByteSet) + rule_start.size() * 4;
  for (const auto& s : return_sites) n += s.size() * 4;
  return n;
}

Automaton build_automaton(const Grammar& grammar) { return Builder(grammar).build(); }

}  // namespace vllm::structured::detail
