// Normalizers: NFC/NFD/NFKC/NFKD, Lowercase, Strip, Prepend, Replace and Sequence, with the
// semantics of the `tokenizers` library's normalizers module. Also the Pattern helpers that
// Replace shares with the Split pre-tokenizer and the Replace decoder.
#include <memory>
#include <stdexcept>
#include <vector>

#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/regex.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm::tok {

void Pattern::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  for_each_match(text, [&out](size_t s, size_t e) { out.emplace_back(s, e); });
}

Pattern parse_pattern(const Json& obj, const JsonPath& where) {
  json_object(obj, where);
  Pattern p;
  if (const Json* s = json_find(obj, "String")) {
    p.literal = json_string(*s, where / "String");
    return p;
  }
  if (const Json* r = json_find(obj, "Regex")) {
    const std::string pattern = json_string(*r, where / "Regex");
    try {
      p.regex = std::make_shared<const Regex>(pattern);
    } catch (const std::invalid_argument& e) {
      (where / "Regex").fail(std::string("is not a usable regex: ") + e.what());
    }
    return p;
  }
  where.fail("must be {\"String\": ...} or {\"Regex\": ...}");
}

std::string replace_all(std::string_view text, const Pattern& pattern, std::string_view content) {
  std::vector<std::pair<size_t, size_t>> matches;
  pattern.find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t prev = 0;
  for (auto [s, e] : matches) {
    out.append(text.substr(prev, s - prev));
    out.append(content);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override { text = unicode_normalize(text, form_); }

 private:
  NormalForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = unicode_lowercase(text); }
};

// Strips Unicode White_Space (Rust's char::is_whitespace) from either end.
class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t i = begin;
        if (!is_whitespace(utf8_next(text, i))) break;
        begin = i;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;  // back up to the lead byte of the last character
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!is_whitespace(utf8_next(text, i))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  // Empty text stays empty: `tokenizers` only prepends to non-empty strings.
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = replace_all(text, pattern_, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> items)
      : items_(std::move(items)) {}
  void normalize(std::string& text) const override {
    for (const auto& n : items_) n->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const JsonPath& where) {
  json_object(j, where);
  const std::string type = json_get_string(j, "type", where);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Strip") {
    return std::make_unique<Strip>(json_get_bool(j, "strip_left", true, where),
                                   json_get_bool(j, "strip_right", true, where));
  }
  if (type == "Prepend") return std::make_unique<Prepend>(json_get_string(j, "prepend", where));
  if (type == "Replace") {
    return std::make_unique<Replace>(parse_pattern(json_require(j, "pattern", where), where / "pattern"),
                                     json_get_string(j, "content", where));
  }
  if (type == "Sequence") {
    const JsonPath list_path = where / "normalizers";
    const Json& list = json_array(json_require(j, "normalizers", where), list_path);
    std::vector<std::unique_ptr<Normalizer>> items;
    for (size_t i = 0; i < list.size(); ++i) items.push_back(make_normalizer(list[i], list_path[i]));
    return std::make_unique<SequenceNormalizer>(std::move(items));
  }
  (where / "type").fail_component("unsupported normalizer type '" + type + "'");
}

}  // namespace vllm::tok
