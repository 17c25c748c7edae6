// UTF-8 range splitting: a code point range becomes byte-range sequences, the way regex engines
// compile Unicode classes to byte automata (split at the encoded-length boundaries, then at the
// points where a continuation byte would otherwise not cover its full 0x80-0xBF span).
#include "vllm/structured/utf8_classes.h"

#include <cstdint>
#include <algorithm>
#include <array>
#include <map>
#include <string>

namespace vllm::structured {

namespace {

constexpr uint32_t kSurrogateLo = 0xD800, kSurrogateHi = 0xDFFF;

int encoded_length(uint32_t cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

void encode(uint32_t cp, std::array<uint8_t, 4>& out) {
  std::string s;
  append_utf8(s, cp);
  for (size_t i = 0; i < s.size(); ++i) out[i] = static_cast<uint8_t>(s[i]);
}

// A byte-range sequence: position i accepts bytes in [lo[i], hi[i]].
struct RangeSeq {
  int n = 0;
  std::array<ByteSet, 4> sets;
};

// Appends the sequences of [lo, hi], a range of scalar values of one encoded length.
void split_range(uint32_t lo, uint32_t hi, std::vector<RangeSeq>& out) {
  const int n = encoded_length(lo);
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (uint32_t{1} << (6 * i)) - 1;  // the low bits the last i bytes carry
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {  // lo does not start a full block of the last i bytes
        split_range(lo, lo | m, out);
        split_range((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {  // hi does not end one
        split_range(lo, (hi & ~m) - 1, out);
        split_range(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::array<uint8_t, 4> a{}, b{};
  encode(lo, a);
  encode(hi, b);
  RangeSeq seq;
  seq.n = n;
  for (int i = 0; i < n; ++i) seq.sets[i].set_range(a[i], b[i]);
  out.push_back(seq);
}

// Merges sequences that differ in exactly one position (union of that position's sets), until
// none do. Quadratic, so only for the usual handful of sequences.
void merge_one_position(std::vector<RangeSeq>& seqs) {
  if (seqs.size() > 512) return;
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < seqs.size() && !changed; ++i) {
      for (size_t j = i + 1; j < seqs.size() && !changed; ++j) {
        if (seqs[i].n != seqs[j].n) continue;
        int diff = -1, ndiff = 0;
        for (int k = 0; k < seqs[i].n; ++k) {
          if (!(seqs[i].sets[k] == seqs[j].sets[k])) {
            diff = k;
            ++ndiff;
          }
        }
        if (ndiff == 1) {
          seqs[i].sets[diff] |= seqs[j].sets[diff];
          seqs.erase(seqs.begin() + static_cast<std::ptrdiff_t>(j));
          changed = true;
        }
      }
    }
  }
}

// Builds the prefix tree of seqs[*][from..]: sequences whose set at `from` is equal share an edge.
std::unique_ptr<Utf8Node> build_tree(const std::vector<const RangeSeq*>& seqs, int from) {
  auto node = std::make_unique<Utf8Node>();
  std::vector<std::pair<ByteSet, std::vector<const RangeSeq*>>> groups;
  for (const RangeSeq* s : seqs) {
    if (from >= s->n) continue;  // an end (only ever alone: encodings are prefix-free)
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == s->sets[from]; });
    if (it == groups.end()) {
      groups.push_back({s->sets[from], {s}});
    } else {
      it->second.push_back(s);
    }
  }
  for (auto& [set, members] : groups) {
    Utf8Node::Edge e;
    e.bytes = set;
    e.next = build_tree(members, from + 1);
    node->edges.push_back(std::move(e));
  }
  return node;
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::vector<CodePointRange> normalize_class(std::vector<CodePointRange> ranges, bool negate) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<CodePointRange> merged;
  for (const CodePointRange& r : ranges) {
    if (!merged.empty() && r.lo <= merged.back().hi + 1) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else {
      merged.push_back(r);
    }
  }
  if (negate) {
    std::vector<CodePointRange> complement;
    uint32_t next = 0;
    for (const CodePointRange& r : merged) {
      if (r.lo > next) complement.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodePoint) complement.push_back({next, kMaxCodePoint});
    merged = std::move(complement);
  }
  std::vector<CodePointRange> out;
  for (const CodePointRange& r : merged) {  // cut out the surrogates
    if (r.hi < kSurrogateLo || r.lo > kSurrogateHi) {
      out.push_back(r);
      continue;
    }
    if (r.lo < kSurrogateLo) out.push_back({r.lo, kSurrogateLo - 1});
    if (r.hi > kSurrogateHi) out.push_back({kSurrogateHi + 1, r.hi});
  }
  return out;
}

std::unique_ptr<Utf8Node> utf8_class_sequences(const std::vector<CodePointRange>& ranges) {
  std::vector<RangeSeq> seqs;
  static constexpr uint32_t kLengthEnds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
  for (const CodePointRange& r : ranges) {
    uint32_t lo = r.lo;
    for (uint32_t end : kLengthEnds) {
      if (lo > r.hi) break;
      if (lo > end) continue;
      const uint32_t hi = std::min(r.hi, end);
      split_range(lo, hi, seqs);
      lo = hi + 1;
    }
  }
  merge_one_position(seqs);
  std::vector<const RangeSeq*> ptrs;
  ptrs.reserve(seqs.size());
  for (const RangeSeq& s : seqs) ptrs.push_back(&s);
  return build_tree(ptrs, 0);
}

}  // namespace vllm::structured
