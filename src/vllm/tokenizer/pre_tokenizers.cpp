// Pre-tokenizers: ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit,
// BertPreTokenizer, CharDelimiterSplit and Sequence, with the semantics of the `tokenizers`
// library (NormalizedString::split and its five delimiter behaviours). They stream: each stage
// hands its sub-pieces straight to the next one instead of building lists.
#include <array>
#include <memory>
#include <vector>

#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/regex.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm::tok {

SplitBehavior parse_split_behavior(const Json& v, const JsonPath& where) {
  const std::string s = json_string(v, where);
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  where.fail("has unknown split behavior '" + s + "'");
}

void PreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  for (const Piece& p : pieces) {
    split(p.text, p.at_start, [&out](std::string_view t, bool s) { out.push_back(Piece{std::string(t), s}); });
  }
  pieces = std::move(out);
}

namespace {

// Turns the segments of one piece - delimiter matches and the text between them, in order,
// covering the piece - into sub-pieces for a SplitBehavior, keeping O(1) state. This is
// `tokenizers`' NormalizedString::split, whose MergedWithNext fold runs right to left: a match
// joins the segment after it when that one is not a match.
class SegmentEmitter {
 public:
  SegmentEmitter(std::string_view text, bool at_start, SplitBehavior behavior, PieceFn emit)
      : text_(text), at_start_(at_start), behavior_(behavior), emit_(emit) {}

  void add(size_t begin, size_t end, bool is_match) {
    switch (behavior_) {
      case SplitBehavior::kIsolated:
        out(begin, end);
        break;
      case SplitBehavior::kRemoved:
        if (!is_match) out(begin, end);
        break;
      case SplitBehavior::kContiguous:  // runs of adjacent matches become one piece
        if (pending_ && is_match == previous_match_) {
          pending_end_ = end;
        } else {
          flush();
          hold(begin, end);
        }
        break;
      case SplitBehavior::kMergedWithPrevious:  // a match joins the text before it
        if (pending_ && is_match && !previous_match_) {
          pending_end_ = end;
        } else {
          flush();
          hold(begin, end);
        }
        break;
      case SplitBehavior::kMergedWithNext:
        if (pending_) {
          if (!is_match) {
            out(pending_begin_, end);
            pending_ = false;
            break;
          }
          flush();
        }
        if (is_match) {
          hold(begin, end);
        } else {
          out(begin, end);
        }
        break;
    }
    previous_match_ = is_match;
  }

  void finish() { flush(); }

 private:
  void out(size_t begin, size_t end) {
    if (end > begin) emit_(text_.substr(begin, end - begin), at_start_ && begin == 0);
  }
  void hold(size_t begin, size_t end) {
    pending_ = true;
    pending_begin_ = begin;
    pending_end_ = end;
  }
  void flush() {
    if (pending_) out(pending_begin_, pending_end_);
    pending_ = false;
  }

  std::string_view text_;
  bool at_start_;
  SplitBehavior behavior_;
  PieceFn emit_;
  bool pending_ = false;
  size_t pending_begin_ = 0, pending_end_ = 0;
  bool previous_match_ = false;
};

// Segments from pattern matches (the gaps are non-matches), optionally inverted.
void split_by_pattern(const Pattern& pattern, std::string_view text, bool at_start,
                      SplitBehavior behavior, bool invert, PieceFn emit) {
  SegmentEmitter seg(text, at_start, behavior, emit);
  if (text.empty()) {
    seg.add(0, 0, invert);
    seg.finish();
    return;
  }
  size_t prev = 0;
  pattern.for_each_match(text, [&](size_t s, size_t e) {
    if (prev != s) seg.add(prev, s, invert);
    seg.add(s, e, !invert);
    prev = e;
  });
  if (prev != text.size()) seg.add(prev, text.size(), invert);
  seg.finish();
}

// Segments for a per-character predicate: every matching character is its own match.
template <typename Pred>
void split_by_char(std::string_view text, bool at_start, SplitBehavior behavior, Pred pred, PieceFn emit) {
  SegmentEmitter seg(text, at_start, behavior, emit);
  size_t last = 0, i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const char32_t c = utf8_next(text, i);
    if (pred(c)) {
      if (last < start) seg.add(last, start, false);
      seg.add(start, i, true);
      last = i;
    }
  }
  if (last < text.size() || text.empty()) seg.add(last, text.size(), false);
  seg.finish();
}

// The GPT-2 split pattern the ByteLevel pre-tokenizer uses when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The byte-level alphabet as (length, bytes) pairs, for appending without string overhead.
struct ByteChars {
  std::array<std::array<char, 2>, 256> bytes{};
  std::array<uint8_t, 256> len{};
  ByteChars() {
    const auto& alphabet = byte_level_alphabet();
    for (size_t b = 0; b < 256; ++b) {
      len[b] = static_cast<uint8_t>(alphabet[b].size());
      for (size_t k = 0; k < alphabet[b].size(); ++k) bytes[b][k] = alphabet[b][k];
    }
  }
};

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) {
      pattern_.regex = std::make_shared<const Regex>(kGpt2Pattern);
    }
  }
  void split(std::string_view text, bool at_start, PieceFn emit) const override {
    static const ByteChars chars;
    std::string prefixed;
    if (add_prefix_space_ && (text.empty() || text[0] != ' ')) {
      prefixed.reserve(text.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(text);
      text = prefixed;
    }
    if (text.empty()) return;
    std::string mapped;
    auto map_and_emit = [&](std::string_view piece, bool first) {
      mapped.resize(piece.size() * 2);
      size_t n = 0;
      for (char ch : piece) {
        const auto b = static_cast<unsigned char>(ch);
        mapped[n] = chars.bytes[b][0];
        if (chars.len[b] == 2) mapped[n + 1] = chars.bytes[b][1];
        n += chars.len[b];
      }
      emit(std::string_view(mapped).substr(0, n), first);
    };
    if (!pattern_.regex) {
      map_and_emit(text, at_start);
      return;
    }
    // Isolated: the matches and the gaps between them are all pieces.
    split_by_pattern(pattern_, text, at_start, SplitBehavior::kIsolated, false, map_and_emit);
  }

 private:
  bool add_prefix_space_;
  Pattern pattern_;
};

class SplitPre final : public PreTokenizer {
 public:
  SplitPre(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(std::string_view text, bool at_start, PieceFn emit) const override {
    split_by_pattern(pattern_, text, at_start, behavior_, invert_, emit);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePre final : public PreTokenizer {
 public:
  MetaspacePre(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    utf8_append(rep_, replacement);
  }
  void split(std::string_view text, bool at_start, PieceFn emit) const override {
    std::string q;
    q.reserve(text.size() + rep_.size() * 4);
    for (char ch : text) {
      if (ch == ' ') {
        q += rep_;
      } else {
        q.push_back(ch);
      }
    }
    const bool starts_with_rep = q.compare(0, rep_.size(), rep_) == 0;
    if (!starts_with_rep &&
        (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && at_start))) {
      q.insert(0, rep_);
    }
    if (!split_) {
      if (!q.empty()) emit(q, at_start);
      return;
    }
    const char32_t rep = replacement_;
    split_by_char(q, at_start, SplitBehavior::kMergedWithNext, [rep](char32_t c) { return c == rep; }, emit);
  }

 private:
  char32_t replacement_;
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

// Splits by a per-character predicate (Digits, Punctuation, WhitespaceSplit, CharDelimiterSplit).
template <typename Pred>
class CharPre final : public PreTokenizer {
 public:
  CharPre(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void split(std::string_view text, bool at_start, PieceFn emit) const override {
    split_by_char(text, at_start, behavior_, pred_, emit);
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> make_char_pre(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharPre<Pred>>(pred, behavior);
}

// Whitespace: the regex \w+|[^\w\s]+, keeping the matches (runs of word characters, or runs of
// characters that are neither word characters nor whitespace).
class WhitespacePre final : public PreTokenizer {
 public:
  void split(std::string_view t, bool at_start, PieceFn emit) const override {
    size_t i = 0, run_start = 0;
    int run_kind = 0;  // 0 whitespace (dropped), 1 word, 2 other
    auto close = [&](size_t end) {
      if (run_kind != 0 && end > run_start) emit(t.substr(run_start, end - run_start), at_start && run_start == 0);
    };
    while (i < t.size()) {
      const size_t start = i;
      const char32_t c = utf8_next(t, i);
      const int kind = is_word_char(c) ? 1 : (is_whitespace(c) ? 0 : 2);
      if (kind != run_kind) {
        close(start);
        run_kind = kind;
        run_start = start;
      }
    }
    close(t.size());
  }
};

// BertPreTokenizer: whitespace splits (removed), then punctuation characters stand alone.
class BertPre final : public PreTokenizer {
 public:
  void split(std::string_view text, bool at_start, PieceFn emit) const override {
    split_by_char(text, at_start, SplitBehavior::kRemoved, is_whitespace, [&](std::string_view t, bool s) {
      split_by_char(t, s, SplitBehavior::kIsolated, is_punctuation, emit);
    });
  }
};

class SequencePre final : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> items) : items_(std::move(items)) {}
  void split(std::string_view text, bool at_start, PieceFn emit) const override { run(0, text, at_start, emit); }

 private:
  void run(size_t stage, std::string_view text, bool at_start, PieceFn emit) const {
    if (stage == items_.size()) {
      emit(text, at_start);
      return;
    }
    items_[stage]->split(text, at_start,
                         [&](std::string_view t, bool s) { run(stage + 1, t, s, emit); });
  }

  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPre>(add_prefix_space, use_regex);
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const JsonPath& where) {
  json_object(j, where);
  const std::string type = json_get_string(j, "type", where);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(json_get_bool(j, "add_prefix_space", true, where),
                                          json_get_bool(j, "use_regex", true, where));
  }
  if (type == "Split") {
    Pattern pattern = parse_pattern(json_require(j, "pattern", where), where / "pattern");
    const SplitBehavior behavior =
        parse_split_behavior(json_require(j, "behavior", where), where / "behavior");
    return std::make_unique<SplitPre>(std::move(pattern), behavior,
                                      json_get_bool(j, "invert", false, where));
  }
  if (type == "Metaspace") {
    const char32_t replacement = json_char(json_require(j, "replacement", where), where / "replacement");
    PrependScheme scheme = PrependScheme::kAlways;
    if (auto s = json_opt_string(j, "prepend_scheme", where)) {
      if (*s == "always") {
        scheme = PrependScheme::kAlways;
      } else if (*s == "first") {
        scheme = PrependScheme::kFirst;
      } else if (*s == "never") {
        scheme = PrependScheme::kNever;
      } else {
        (where / "prepend_scheme").fail("has unknown value '" + *s + "'");
      }
    } else if (auto add = json_opt_bool(j, "add_prefix_space", where)) {
      scheme = *add ? PrependScheme::kAlways : PrependScheme::kNever;  // legacy field
    }
    return std::make_unique<MetaspacePre>(replacement, scheme, json_get_bool(j, "split", true, where));
  }
  if (type == "Digits") {
    const bool individual = json_get_bool(j, "individual_digits", false, where);
    return make_char_pre(is_numeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (type == "Punctuation") {
    SplitBehavior behavior = SplitBehavior::kIsolated;
    if (const Json* b = json_find(j, "behavior")) behavior = parse_split_behavior(*b, where / "behavior");
    return make_char_pre(is_punctuation, behavior);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePre>();
  if (type == "WhitespaceSplit") return make_char_pre(is_whitespace, SplitBehavior::kRemoved);
  if (type == "BertPreTokenizer") return std::make_unique<BertPre>();
  if (type == "CharDelimiterSplit") {
    const char32_t d = json_char(json_require(j, "delimiter", where), where / "delimiter");
    return make_char_pre([d](char32_t c) { return c == d; }, SplitBehavior::kRemoved);
  }
  if (type == "Sequence") {
    const JsonPath list_path = where / "pretokenizers";
    const Json& list = json_array(json_require(j, "pretokenizers", where), list_path);
    std::vector<std::unique_ptr<PreTokenizer>> items;
    for (size_t i = 0; i < list.size(); ++i) items.push_back(make_pre_tokenizer(list[i], list_path[i]));
    return std::make_unique<SequencePre>(std::move(items));
  }
  (where / "type").fail_component("unsupported pre_tokenizer type '" + type + "'");
}

}  // namespace vllm::tok
