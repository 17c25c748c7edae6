// The WordPiece model (BERT family): greedy longest-match-first over the vocabulary, with the
// continuing-subword prefix ("##") on every piece after the first; a word with no complete
// segmentation, or longer than max_input_chars_per_word characters, becomes the unk token.
#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/unicode.h"
#include "vllm/tokenizer/vocab.h"

namespace vllm::tok {

namespace {

class WordPieceModel final : public Model {
 public:
  WordPieceModel(Vocab vocab, int32_t unk_id, std::string prefix, size_t max_chars)
      : vocab_(std::move(vocab)), unk_id_(unk_id), prefix_(std::move(prefix)), max_chars_(max_chars) {}

  void tokenize(std::string_view word, std::vector<int32_t>& out) const override {
    if (word.empty()) return;
    size_t chars = 0;
    for (char ch : word) chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    if (chars > max_chars_) {
      out.push_back(unk_id_);
      return;
    }
    const size_t before = out.size();
    std::string candidate;
    size_t start = 0;
    while (start < word.size()) {
      size_t end = word.size();
      std::optional<int32_t> found;
      size_t found_end = 0;
      while (end > start) {
        candidate.clear();
        if (start > 0) candidate += prefix_;
        candidate.append(word.substr(start, end - start));
        if (auto id = vocab_.find(candidate)) {
          found = id;
          found_end = end;
          break;
        }
        // Step back one whole character.
        --end;
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      }
      if (!found) {
        out.resize(before);
        out.push_back(unk_id_);
        return;
      }
      out.push_back(*found);
      start = found_end;
    }
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  int32_t max_id() const override { return vocab_.max_id(); }

 private:
  Vocab vocab_;
  int32_t unk_id_;
  std::string prefix_;
  size_t max_chars_;
};

}  // namespace

std::unique_ptr<Model> make_wordpiece_model(const Json& j, const JsonPath& where) {
  Vocab vocab = Vocab::from_json(json_require(j, "vocab", where), where / "vocab");
  const std::string unk = json_opt_string(j, "unk_token", where).value_or("[UNK]");
  const auto unk_id = vocab.find(unk);
  if (!unk_id) (where / "unk_token").fail("names '" + unk + "', which is not in the vocabulary");
  const std::string prefix = json_opt_string(j, "continuing_subword_prefix", where).value_or("##");
  const int64_t max_chars = json_get_int(j, "max_input_chars_per_word", 100, where);
  return std::make_unique<WordPieceModel>(std::move(vocab), *unk_id, prefix,
                                          static_cast<size_t>(std::max<int64_t>(max_chars, 0)));
}

}  // namespace vllm::tok
