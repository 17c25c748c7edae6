// Decoders: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, WordPiece, BPEDecoder and
// Sequence, with the `tokenizers` library's decode_chain semantics (each works on the list of
// token strings; some merge it into one string). Also both clean-up functions.
#include <memory>
#include <vector>

#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/tokenizer.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm {

namespace {

// Sequential, non-overlapping str.replace calls, as Python and Rust do them.
std::string replace_each(std::string s, std::initializer_list<std::pair<std::string_view, std::string_view>> rules) {
  for (const auto& [from, to] : rules) {
    size_t pos = s.find(from);
    if (pos == std::string::npos) continue;
    std::string out;
    out.reserve(s.size());
    size_t prev = 0;
    while (pos != std::string::npos) {
      out.append(s, prev, pos - prev);
      out.append(to);
      prev = pos + from.size();
      pos = s.find(from, prev);
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

std::string clean_up_tokenization(std::string_view text) {
  return replace_each(std::string(text), {{" .", "."},
                                          {" ?", "?"},
                                          {" !", "!"},
                                          {" ,", ","},
                                          {" ' ", "'"},
                                          {" n't", "n't"},
                                          {" 'm", "'m"},
                                          {" 's", "'s"},
                                          {" 've", "'ve"},
                                          {" 're", "'re"}});
}

namespace tok {

std::string wordpiece_cleanup(std::string_view text) {
  return replace_each(std::string(text), {{" .", "."},
                                          {" ?", "?"},
                                          {" !", "!"},
                                          {" ,", ","},
                                          {" ' ", "'"},
                                          {" n't", "n't"},
                                          {" 'm", "'m"},
                                          {" do not", " don't"},
                                          {" 's", "'s"},
                                          {" 've", "'ve"},
                                          {" 're", "'re"}});
}

namespace {

// Maps byte-level alphabet characters back to bytes and decodes the whole sequence as UTF-8
// (lossy: invalid sequences become U+FFFD). A token with any character outside the alphabet
// (an added token such as "<|im_end|>" is inside it, but "▁" is not) contributes its own bytes.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      size_t i = 0;
      while (i < t.size()) {
        const int b = byte_level_decode(utf8_next(t, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    std::string text;
    text.reserve(bytes.size());
    utf8_append_lossy(text, bytes);
    tokens.assign(1, std::move(text));
  }
  void token_bytes(std::string& token, bool& merged) const override {
    std::string bytes;
    size_t i = 0;
    while (i < token.size()) {
      const int b = byte_level_decode(utf8_next(token, i));
      if (b < 0) {  // outside the byte alphabet: the token's own bytes, as decode_chain does
        merged = true;
        return;
      }
      bytes.push_back(static_cast<char>(b));
    }
    token = std::move(bytes);
    merged = true;
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = replace_all(t, pattern_, content_);
  }

  void token_bytes(std::string& token, bool&) const override {
    token = replace_all(token, pattern_, content_);
  }
 private:
  Pattern pattern_;
  std::string content_;
};

// "<0xNN>" tokens -> bytes. A run of byte tokens that is valid UTF-8 becomes its text; an
// invalid run becomes one U+FFFD per byte token.
class ByteFallbackDecoder final : public Decoder {
 public:
  static int byte_of(const std::string& t) {
    if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(t[3]), lo = hex(t[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    auto flush = [&]() {
      if (run.empty()) return;
      if (utf8_valid(run)) {
        out.push_back(std::move(run));
      } else {
        for (size_t k = 0; k < run.size(); ++k) out.emplace_back(kReplacementChar);
      }
      run.clear();
    };
    for (std::string& t : tokens) {
      const int b = byte_of(t);
      if (b >= 0) {
        run.push_back(static_cast<char>(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
  bool handles_byte_fallback() const override { return true; }
  void token_bytes(std::string& token, bool&) const override {
    const int b = byte_of(token);
    if (b >= 0) token.assign(1, static_cast<char>(b));
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
  void token_bytes(std::string&, bool& merged) const override { merged = true; }
};

// Removes up to `start` leading and `stop` trailing `content` characters from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<size_t> offsets;  // byte offset of every character, plus the end
      size_t i = 0;
      std::vector<char32_t> chars;
      while (i < t.size()) {
        offsets.push_back(i);
        chars.push_back(utf8_next(t, i));
      }
      offsets.push_back(t.size());
      size_t start_cut = 0;
      for (size_t k = 0; k < start_ && k < chars.size() && chars[k] == content_; ++k) start_cut = k + 1;
      size_t stop_cut = chars.size();
      for (size_t k = 0; k < stop_ && k < chars.size(); ++k) {
        const size_t index = chars.size() - k - 1;
        if (chars[index] != content_) break;
        stop_cut = index;
      }
      if (stop_cut < start_cut) stop_cut = start_cut;
      t = t.substr(offsets[start_cut], offsets[stop_cut] - offsets[start_cut]);
    }
  }

  void token_bytes(std::string& token, bool& merged) const override {
    if (merged) return;  // only the text's first and last characters are stripped
    std::vector<std::string> one{std::move(token)};
    decode_chain(one);
    token = std::move(one[0]);
  }
 private:
  char32_t content_;
  size_t start_, stop_;
};

// The replacement character becomes a space, except in the first token (when a prefix space
// was prepended at encode time) where every replacement character is dropped.
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first) : replacement_(replacement), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string out;
      out.reserve(t.size());
      size_t i = 0;
      while (i < t.size()) {
        const size_t start = i;
        const char32_t c = utf8_next(t, i);
        if (c == replacement_) {
          if (!(k == 0 && strip_first_)) out.push_back(' ');
        } else {
          out.append(t, start, i - start);
        }
      }
      tokens[k] = std::move(out);
    }
  }

  void token_bytes(std::string& token, bool&) const override {
    // Mid-sequence: every replacement character is a space (only the first token loses it).
    std::string out;
    out.reserve(token.size());
    size_t i = 0;
    while (i < token.size()) {
      const size_t start = i;
      if (utf8_next(token, i) == replacement_) {
        out.push_back(' ');
      } else {
        out.append(token, start, i - start);
      }
    }
    token = std::move(out);
  }
 private:
  char32_t replacement_;
  bool strip_first_;
};

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      std::string& t = tokens[k];
      if (k != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          // (Built anew rather than insert(0, ...), which trips GCC 12's -Wrestrict.)
          std::string spaced;
          spaced.reserve(t.size() + 1);
          spaced.push_back(' ');
          spaced += t;
          t = std::move(spaced);
        }
      }
      if (cleanup_) t = wordpiece_cleanup(t);
    }
  }
  bool inserts_spaces() const override { return true; }

  void token_bytes(std::string& token, bool&) const override {
    // As the second token of a chain: a continuation loses its prefix, a word gets its space.
    std::vector<std::string> two{std::string(), std::move(token)};
    decode_chain(two);
    token = std::move(two[1]);
  }
 private:
  std::string prefix_;
  bool cleanup_;
};

// The end-of-word suffix becomes a space (nothing in the last token).
class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    Pattern p;
    p.literal = suffix_;
    for (size_t k = 0; k < tokens.size(); ++k) {
      tokens[k] = replace_all(tokens[k], p, k + 1 == tokens.size() ? "" : " ");
    }
  }
  bool inserts_spaces() const override { return true; }

  void token_bytes(std::string& token, bool&) const override {
    Pattern p;
    p.literal = suffix_;
    token = replace_all(token, p, " ");  // not the last token: the suffix ends a word
  }
 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }
  bool inserts_spaces() const override {
    for (const auto& d : items_) {
      if (d->inserts_spaces()) return true;
    }
    return false;
  }
  bool handles_byte_fallback() const override {
    for (const auto& d : items_) {
      if (d->handles_byte_fallback()) return true;
    }
    return false;
  }

  void token_bytes(std::string& token, bool& merged) const override {
    for (const auto& d : items_) d->token_bytes(token, merged);
  }
 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

std::unique_ptr<Decoder> make_byte_level_decoder() { return std::make_unique<ByteLevelDecoder>(); }

std::unique_ptr<Decoder> make_decoder(const Json& j, const JsonPath& where) {
  json_object(j, where);
  const std::string type = json_get_string(j, "type", where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(parse_pattern(json_require(j, "pattern", where), where / "pattern"),
                                            json_get_string(j, "content", where));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const char32_t content = json_char(json_require(j, "content", where), where / "content");
    const int64_t start = json_get_int(j, "start", 0, where);
    const int64_t stop = json_get_int(j, "stop", 0, where);
    if (start < 0) (where / "start").fail("must not be negative");
    if (stop < 0) (where / "stop").fail("must not be negative");
    return std::make_unique<StripDecoder>(content, static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "Metaspace") {
    const char32_t replacement = json_char(json_require(j, "replacement", where), where / "replacement");
    bool strip_first = true;
    if (auto s = json_opt_string(j, "prepend_scheme", where)) {
      if (*s != "always" && *s != "first" && *s != "never") {
        (where / "prepend_scheme").fail("has unknown value '" + *s + "'");
      }
      strip_first = *s != "never";
    } else if (auto add = json_opt_bool(j, "add_prefix_space", where)) {
      strip_first = *add;  // legacy field
    }
    return std::make_unique<MetaspaceDecoder>(replacement, strip_first);
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(json_opt_string(j, "prefix", where).value_or("##"),
                                              json_get_bool(j, "cleanup", true, where));
  }
  if (type == "BPEDecoder") {
    return std::make_unique<BpeDecoder>(json_opt_string(j, "suffix", where).value_or("</w>"));
  }
  if (type == "Sequence") {
    const JsonPath list_path = where / "decoders";
    const Json& list = json_array(json_require(j, "decoders", where), list_path);
    std::vector<std::unique_ptr<Decoder>> items;
    for (size_t i = 0; i < list.size(); ++i) items.push_back(make_decoder(list[i], list_path[i]));
    return std::make_unique<SequenceDecoder>(std::move(items));
  }
  (where / "type").fail_component("unsupported decoder type '" + type + "'");
}

}  // namespace tok
}  // namespace vllm
