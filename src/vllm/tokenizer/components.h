// The pipeline components of a tokenizer, as the `tokenizers` library defines them (internal
// header). Each kind has a JSON factory that reads its tokenizer.json section and throws a
// kModelLoad vllm::Error naming the file, the path and the offending type or field.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vllm/tokenizer/json_util.h"
#include "vllm/tokenizer/regex.h"

namespace vllm::tok {

// One piece of text on its way from normalization to the model.
struct Piece {
  std::string text;
  // Whether the piece starts at offset 0 of the original input (Metaspace's prepend_scheme
  // "first" prepends only there).
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// A non-owning reference to a callable taking one pre-tokenized piece (text, at_start). The
// text is only valid during the call. Cheaper than std::function: no allocation, one indirect
// call per piece.
class PieceFn {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, PieceFn>>>
  PieceFn(F&& f)  // NOLINT: implicit on purpose, so lambdas can be passed directly
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, std::string_view text, bool at_start) {
          (*static_cast<std::remove_reference_t<F>*>(o))(text, at_start);
        }) {}
  void operator()(std::string_view text, bool at_start) const { call_(obj_, text, at_start); }

 private:
  void* obj_;
  void (*call_)(void*, std::string_view, bool);
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Calls `emit` with every sub-piece of one piece, in order. Empty pieces are never emitted,
  // as in `tokenizers`. Streaming (rather than building a list) keeps a 1 MB input from
  // turning into hundreds of thousands of short-lived strings.
  virtual void split(std::string_view text, bool at_start, PieceFn emit) const = 0;
  // The list form, for tests: replaces `pieces` with their sub-pieces.
  void pre_tokenize(std::vector<Piece>& pieces) const;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized word.
  virtual void tokenize(std::string_view word, std::vector<int32_t>& out) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // nullptr for ids outside the vocabulary.
  virtual const std::string* id_to_token(int32_t id) const = 0;
  virtual int32_t max_id() const = 0;  // -1 when empty
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence (nothing when add_special_tokens is false).
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
  // The ids added before / after a single sequence, to infer add_bos_token / add_eos_token.
  virtual void added_ids(std::vector<int32_t>& before, std::vector<int32_t>& after) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings in place; may merge them (ByteLevel, Fuse return one string).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // Whether it puts a space in front of tokens (WordPiece, BPEDecoder): only then does
  // spaces_between_special_tokens change anything.
  virtual bool inserts_spaces() const { return false; }
  // Whether it turns <0xNN> tokens into bytes (the streaming detokenizer holds open byte runs).
  virtual bool handles_byte_fallback() const { return false; }
  // The bytes one token adds to decoded text in the middle of a sequence (Tokenizer::token_bytes):
  // this decoder's rewrite of a single token, without the rules that only apply at the start or
  // the end of the text and without UTF-8 repair (a byte token gives its raw byte). `merged` is
  // set once a decoder of the chain has joined the token list into one string (ByteLevel, Fuse):
  // after that, per-token edits (Strip) only reach the text's ends, never a token in the middle.
  virtual void token_bytes(std::string& token, bool& merged) const = 0;
};

// A {"String": "..."} or {"Regex": "..."} pattern (Split, Replace).
struct Pattern {
  std::string literal;                  // used when regex is null
  std::shared_ptr<const Regex> regex;
  // Non-overlapping matches, left to right. An empty literal matches nothing.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  // fn(start, end) for every match, without building a list.
  template <typename F>
  void for_each_match(std::string_view text, F&& fn) const {
    if (regex) {
      regex->for_each_match(text, fn);
      return;
    }
    if (literal.empty()) return;
    size_t pos = text.find(literal);
    while (pos != std::string_view::npos) {
      fn(pos, pos + literal.size());
      pos = text.find(literal, pos + literal.size());
    }
  }
};
Pattern parse_pattern(const Json& obj, const JsonPath& where);
// Every match of `pattern` in `text` replaced by `content`.
std::string replace_all(std::string_view text, const Pattern& pattern, std::string_view content);

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const JsonPath& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const JsonPath& where);
std::unique_ptr<Model> make_bpe_model(const Json& j, const JsonPath& where);
std::unique_ptr<Model> make_wordpiece_model(const Json& j, const JsonPath& where);
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const JsonPath& where);
std::unique_ptr<Decoder> make_decoder(const Json& j, const JsonPath& where);

// GPT-2 style folders: vocab.json + merges.txt as a byte-level BPE model.
std::unique_ptr<Model> make_bpe_from_files(const std::string& vocab_path,
                                           const std::string& merges_path);
// The components HF's GPT2TokenizerFast builds around it.
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
std::unique_ptr<Decoder> make_byte_level_decoder();
// A post-processor that adds fixed ids around a single sequence (GPT-2 add_bos/add_eos_token).
std::unique_ptr<PostProcessor> make_fixed_post_processor(std::vector<int32_t> before,
                                                         std::vector<int32_t> after);

// The WordPiece decoder's cleanup (tokenizers' decoders::wordpiece::cleanup).
std::string wordpiece_cleanup(std::string_view text);

// Shared by pre-tokenizers: how the delimiters found in a piece become sub-pieces.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
SplitBehavior parse_split_behavior(const Json& v, const JsonPath& where);

}  // namespace vllm::tok
