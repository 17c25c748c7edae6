// Hugging Face compatible tokenizer, in C++ (no Python at run time).
//
// A Tokenizer is loaded once from a model folder (tokenizer.json, or GPT-2 style vocab.json +
// merges.txt, plus tokenizer_config.json and special_tokens_map.json) and is then immutable:
// every method is const and safe to call from many threads at once.
//
// Encoding follows the `tokenizers` library pipeline: added tokens are split out first, then each
// remaining piece is normalized, pre-tokenized, run through the model (BPE / WordPiece) and the
// post-processor adds special tokens. Decoding runs the configured decoder chain, then (when
// tokenizer_config.json asks for it) transformers' clean_up_tokenization.
//
// Text contract: encode() accepts any bytes. Invalid UTF-8 is replaced before tokenization with
// U+FFFD, one per maximal invalid subsequence (the same policy as Python's
// bytes.decode(errors="replace") and Rust's String::from_utf8_lossy). decode() always returns valid
// UTF-8; byte tokens that do not form valid UTF-8 decode to U+FFFD the way the `tokenizers`
// decoders do.
//
// Scope: encode() adds exactly what the tokenizer.json post-processor adds, as the `tokenizers`
// library does (add_bos_token() reports tokenizer_config.json's flag, or infers it from the
// post-processor). GPT-2 style folders follow add_bos_token / add_eos_token. The truncation and
// padding sections of tokenizer.json are ignored (the engine truncates by itself). Ids outside
// the vocabulary decode to nothing, as in `tokenizers`. Single sequences only (no pairs).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vllm {

struct DecodeOptions {
  bool skip_special_tokens = false;
  // Hugging Face *fast* tokenizer semantics, which is what vLLM serves with: the decoder chain
  // decides the spacing. When false, two consecutive added tokens are decoded as separate chunks,
  // so decoders that insert a space before every token (WordPiece) do not put one between them
  // (vLLM's FastIncrementalDetokenizer rule). For byte-level and SentencePiece-style decoders the
  // two settings give the same text.
  bool spaces_between_special_tokens = true;
  // transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...). Unset: the
  // clean_up_tokenization_spaces value of tokenizer_config.json (false when absent).
  std::optional<bool> clean_up_tokenization_spaces;
};

class Tokenizer {
 public:
  // Loads tokenizer.json (or GPT-2 style vocab.json + merges.txt when there is no tokenizer.json)
  // plus tokenizer_config.json (and special_tokens_map.json, chat_template.jinja if present) from
  // a model folder. Errors (vllm::Error with kind kModelLoad) name the file and the
  // field/component.
  static std::shared_ptr<const Tokenizer> from_folder(const std::string& dir);
  // Same, with the tokenizer files (tokenizer.json or vocab.json + merges.txt) in `tokenizer_dir`
  // and the configuration files (tokenizer_config.json, special_tokens_map.json,
  // chat_template.jinja) in `config_dir`.
  static std::shared_ptr<const Tokenizer> from_folders(const std::string& tokenizer_dir,
                                                       const std::string& config_dir);
  // From in-memory JSON documents (tokenizer.json content and tokenizer_config.json content; the
  // latter may be empty). `origin` names the source in error messages.
  static std::shared_ptr<const Tokenizer> from_json(const std::string& tokenizer_json,
                                                    const std::string& tokenizer_config_json = "",
                                                    const std::string& origin = "tokenizer.json");

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false,
                     bool spaces_between_special_tokens = true) const;  // thread-safe, const
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options) const;

  int32_t vocab_size() const;  // including added tokens: the largest id + 1
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // raw vocab string; "" for an unknown id
  // The bytes token `id` adds to decoded text in the middle of a sequence, for constrained
  // decoding: the decoder chain run on this one token, without the rules that only apply at the
  // start or end of the text (a SentencePiece token keeps its leading space) and without UTF-8
  // repair (a byte-level or <0xNN> token gives its raw byte, possibly part of a character).
  // clean_up_tokenization is not applied. Added tokens give their decoded content; "" for an
  // id outside the vocabulary.
  std::string token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;          // an added token marked special
  bool is_added_token(int32_t id) const;

  std::optional<int32_t> bos_token_id() const;
  std::optional<int32_t> eos_token_id() const;
  std::optional<int32_t> pad_token_id() const;
  std::optional<int32_t> unk_token_id() const;
  std::string bos_token() const;  // "" if none
  std::string eos_token() const;  // "" if none
  std::string pad_token() const;  // "" if none
  std::string unk_token() const;  // "" if none
  // tokenizer_config.json's add_bos_token / add_eos_token; when absent, whether the
  // post-processor adds the BOS / EOS token to a single sequence.
  bool add_bos_token() const;
  bool add_eos_token() const;
  bool clean_up_tokenization_spaces() const;
  // Whether the decoder turns <0xNN> byte-fallback tokens into bytes (SentencePiece-style BPE).
  bool decoder_uses_byte_fallback() const;

  // Chat templates from tokenizer_config.json (or chat_template.jinja): "default" or a named one.
  std::optional<std::string> chat_template(const std::string& name = "default") const;
  std::vector<std::string> chat_template_names() const;
  // None when absent or when it is transformers' "no limit" placeholder (about 1e30).
  std::optional<int64_t> model_max_length() const;

  // Implementation detail, public only so that the loader in tokenizer.cpp can build it.
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenizer: feed ids one at a time (or several), get text deltas. Never emits a
// partial UTF-8 character; deltas (plus flush()) concatenate exactly to the generated part of
// decode(prompt + output) with the same options: with an empty prompt that is decode(output).
//
// It works like vLLM's incremental detokenizer: only a short window of recent ids
// [prefix_offset, end) is re-decoded per step, and the text of [prefix_offset, read_offset) is
// subtracted, so the decoder sees the context it needs (leading-space stripping of SentencePiece
// decoders applies to the context token, not to the new text). Text is held back while it could
// still change: a trailing incomplete UTF-8 sequence (U+FFFD at the end), an open run of
// <0xNN> byte-fallback tokens, and - when clean_up_tokenization_spaces is on - the tail that a
// later " ." / " n't" style rewrite could still reach.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tok, std::vector<int32_t> prompt_ids,
                         bool skip_special_tokens = true, bool spaces_between_special_tokens = true);
  // returns the new text (may be empty while a character is incomplete)
  std::string add(int32_t id);
  std::string add(std::span<const int32_t> ids);
  // at the end: whatever is still held back (replacement chars if invalid)
  std::string flush();
  const std::string& text() const { return text_; }  // all output text so far
  size_t num_output_tokens() const { return tokens_.size() - prompt_len_; }

 private:
  std::string step();
  std::string emit(std::string raw);
  // Index of the last token in [begin, end) that the decoder sees (skipped special tokens and
  // ids outside the vocabulary do not count), or SIZE_MAX.
  size_t last_visible(size_t end, size_t begin) const;

  std::shared_ptr<const Tokenizer> tok_;
  std::vector<int32_t> tokens_;  // prompt + output ids
  size_t prompt_len_ = 0;
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
  std::string prefix_text_;  // decode(tokens_[prefix_offset_, read_offset_))
  DecodeOptions options_;
  bool cleanup_ = false;
  bool byte_fallback_ = false;
  std::string cleanup_pending_;  // raw text not yet final under clean_up_tokenization
  std::string text_;
  bool flushed_ = false;
};

// transformers' PreTrainedTokenizerBase.clean_up_tokenization, exactly (sequential replaces).
std::string clean_up_tokenization(std::string_view text);

}  // namespace vllm
