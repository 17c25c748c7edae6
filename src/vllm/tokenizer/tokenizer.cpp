// Tokenizer: loading a model folder and running the encode / decode pipelines.
#include "vllm/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/tokenizer/added_tokens.h"
#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/tokenizer_config.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm {

using tok::AddedToken;
using tok::Json;
using tok::JsonPath;

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Model> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  tok::AddedVocabulary added;
  tok::TokenizerConfig config;
  int32_t vocab_size = 0;
  bool decoder_inserts_spaces = false;
  bool decoder_byte_fallback = false;
  std::vector<int32_t> post_before, post_after;  // ids the post-processor adds

  void encode_into(std::string_view text, bool add_special_tokens, std::vector<int32_t>& out) const;
  void tokenize_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options) const;
  std::string run_decoder(std::vector<std::string>& tokens) const;
  const std::string* token_string(int32_t id) const {
    if (const AddedToken* a = added.by_id(id)) return &a->content;
    return model->id_to_token(id);
  }
  std::optional<int32_t> token_to_id(std::string_view token) const {
    if (const AddedToken* a = added.by_content(token)) return a->id;
    return model->token_to_id(token);
  }
  std::optional<int32_t> special_id(const std::optional<AddedToken>& t) const {
    if (!t) return std::nullopt;
    return token_to_id(t->content);
  }
};

namespace {

std::string read_text_file(const std::string& path) { return read_regular_file(path); }

// Whether the folder holds this file. Something else under that name (a directory, a FIFO, a
// symlink loop) is an error rather than a file to skip, so that the message names it.
bool is_file(const std::string& path) {
  std::string why;
  switch (path_type(path, &why)) {
    case PathType::kMissing: return false;
    case PathType::kRegular: return true;
    case PathType::kDirectory: throw Error(path + ": is a directory, not a regular file", ErrorKind::kModelLoad);
    case PathType::kOther: break;
  }
  throw Error(path + ": " + why, ErrorKind::kModelLoad);
}

AddedToken parse_added_token(const Json& e, const JsonPath& where) {
  tok::json_object(e, where);
  AddedToken t;
  const int64_t id = tok::json_int(tok::json_require(e, "id", where), where / "id");
  if (id < 0 || id > INT32_MAX) (where / "id").fail("is out of range");
  t.id = static_cast<int32_t>(id);
  t.content = tok::json_get_string(e, "content", where);
  if (t.content.empty()) (where / "content").fail("must not be empty");
  t.single_word = tok::json_get_bool(e, "single_word", false, where);
  t.lstrip = tok::json_get_bool(e, "lstrip", false, where);
  t.rstrip = tok::json_get_bool(e, "rstrip", false, where);
  t.special = tok::json_get_bool(e, "special", false, where);
  t.normalized = tok::json_get_bool(e, "normalized", !t.special, where);
  return t;
}

std::unique_ptr<tok::Model> make_model(const Json& j, const JsonPath& where) {
  tok::json_object(j, where);
  std::string type;
  if (const Json* t = tok::json_find(j, "type")) {
    type = tok::json_string(*t, where / "type");
  } else if (j.contains("merges")) {
    type = "BPE";  // older files leave the model untagged
  } else if (j.contains("max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    (where / "type").fail("is missing");
  }
  if (type == "BPE") return tok::make_bpe_model(j, where);
  if (type == "WordPiece") return tok::make_wordpiece_model(j, where);
  (where / "type").fail_component("unsupported model type '" + type + "'");
}

// Adds the special tokens tokenizer_config.json declares but the tokenizer files lack, as
// transformers does when it loads a tokenizer (e.g. GPT-2's "<|endoftext|>", which is a plain
// vocabulary entry in vocab.json, becomes a special token that is matched before BPE).
void add_config_tokens(Tokenizer::Impl& impl) {
  auto next_id = [&]() {
    return std::max(impl.model->max_id(), impl.added.max_id()) + 1;
  };
  auto ensure = [&](const AddedToken& spec, bool force_special) {
    if (impl.added.by_content(spec.content) != nullptr) return;
    AddedToken t = spec;
    if (force_special) t.special = true;
    if (auto id = impl.model->token_to_id(t.content)) {
      t.id = *id;
    } else if (t.id < 0 || impl.token_string(t.id) != nullptr) {
      t.id = next_id();
    }
    impl.added.add(std::move(t));
  };
  for (const AddedToken& t : impl.config.added_tokens_decoder) ensure(t, false);
  for (const auto* t : {&impl.config.bos, &impl.config.eos, &impl.config.unk, &impl.config.pad}) {
    if (*t) ensure(**t, true);
  }
  for (const AddedToken& t : impl.config.additional_special_tokens) ensure(t, true);
}

void finish(Tokenizer::Impl& impl) {
  add_config_tokens(impl);
  impl.added.build(impl.normalizer.get());
  impl.vocab_size = std::max(impl.model->max_id(), impl.added.max_id()) + 1;
  if (impl.decoder) {
    impl.decoder_inserts_spaces = impl.decoder->inserts_spaces();
    impl.decoder_byte_fallback = impl.decoder->handles_byte_fallback();
  }
  if (impl.post_processor) impl.post_processor->added_ids(impl.post_before, impl.post_after);
}

void load_tokenizer_json(Tokenizer::Impl& impl, const Json& root, const std::string& file) {
  const JsonPath where(file);
  tok::json_object(root, where);
  impl.model = make_model(tok::json_require(root, "model", where), where / "model");
  if (const Json* n = tok::json_find(root, "normalizer")) {
    impl.normalizer = tok::make_normalizer(*n, where / "normalizer");
  }
  if (const Json* p = tok::json_find(root, "pre_tokenizer")) {
    impl.pre_tokenizer = tok::make_pre_tokenizer(*p, where / "pre_tokenizer");
  }
  if (const Json* p = tok::json_find(root, "post_processor")) {
    impl.post_processor = tok::make_post_processor(*p, where / "post_processor");
  }
  if (const Json* d = tok::json_find(root, "decoder")) {
    impl.decoder = tok::make_decoder(*d, where / "decoder");
  }
  if (const Json* list = tok::json_find(root, "added_tokens")) {
    const JsonPath p = where / "added_tokens";
    tok::json_array(*list, p);
    for (size_t i = 0; i < list->size(); ++i) impl.added.add(parse_added_token((*list)[i], p[i]));
  }
}

// GPT-2 style folder: what transformers' GPT2TokenizerFast builds from vocab.json + merges.txt.
void load_gpt2_files(Tokenizer::Impl& impl, const std::string& vocab, const std::string& merges) {
  impl.model = tok::make_bpe_from_files(vocab, merges);
  impl.pre_tokenizer =
      tok::make_byte_level_pre_tokenizer(impl.config.add_prefix_space.value_or(false), true);
  impl.decoder = tok::make_byte_level_decoder();
}

void load_config_files(Tokenizer::Impl& impl, const std::string& config_dir) {
  const std::string config_path = config_dir + "/tokenizer_config.json";
  if (is_file(config_path)) {
    impl.config = tok::parse_tokenizer_config(tok::json_parse_file(config_path, config_path),
                                              JsonPath(config_path));
  }
  const std::string map_path = config_dir + "/special_tokens_map.json";
  if (is_file(map_path)) {
    tok::apply_special_tokens_map(impl.config, tok::json_parse_file(map_path, map_path),
                                  JsonPath(map_path));
  }
  // Newer Hub layouts keep the chat template in its own file.
  const std::string jinja_path = config_dir + "/chat_template.jinja";
  if (impl.config.chat_templates.count("default") == 0 && is_file(jinja_path)) {
    impl.config.chat_templates["default"] = read_text_file(jinja_path);
  }
  const std::string ct_json = config_dir + "/chat_template.json";
  if (impl.config.chat_templates.count("default") == 0 && is_file(ct_json)) {
    const Json j = tok::json_parse_file(ct_json, ct_json);
    if (auto s = tok::json_opt_string(j, "chat_template", JsonPath(ct_json))) {
      impl.config.chat_templates["default"] = *s;
    }
  }
}

// GPT-2 folders have no post-processor in the files; add_bos_token / add_eos_token decide.
void gpt2_post_processor(Tokenizer::Impl& impl) {
  std::vector<int32_t> before, after;
  if (impl.config.add_bos_token.value_or(false)) {
    if (auto id = impl.special_id(impl.config.bos)) before.push_back(*id);
  }
  if (impl.config.add_eos_token.value_or(false)) {
    if (auto id = impl.special_id(impl.config.eos)) after.push_back(*id);
  }
  impl.post_processor = tok::make_fixed_post_processor(std::move(before), std::move(after));
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::shared_ptr<const Tokenizer> Tokenizer::from_folder(const std::string& dir) {
  return from_folders(dir, dir);
}

std::shared_ptr<const Tokenizer> Tokenizer::from_folders(const std::string& tokenizer_dir,
                                                         const std::string& config_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(tokenizer_dir, ec)) {
    throw Error(tokenizer_dir + ": tokenizer folder does not exist", ErrorKind::kModelLoad);
  }
  auto impl = std::make_unique<Impl>();
  load_config_files(*impl, config_dir);
  const std::string json_path = tokenizer_dir + "/tokenizer.json";
  const std::string vocab_path = tokenizer_dir + "/vocab.json";
  const std::string merges_path = tokenizer_dir + "/merges.txt";
  if (is_file(json_path)) {
    load_tokenizer_json(*impl, tok::json_parse_file(json_path, json_path), json_path);
    finish(*impl);
  } else if (is_file(vocab_path) && is_file(merges_path)) {
    load_gpt2_files(*impl, vocab_path, merges_path);
    add_config_tokens(*impl);
    gpt2_post_processor(*impl);
    finish(*impl);
  } else {
    throw Error(tokenizer_dir + ": no tokenizer.json, and no vocab.json + merges.txt pair",
                ErrorKind::kModelLoad);
  }
  return std::make_shared<const Tokenizer>(std::move(impl));
}

std::shared_ptr<const Tokenizer> Tokenizer::from_json(const std::string& tokenizer_json,
                                                      const std::string& tokenizer_config_json,
                                                      const std::string& origin) {
  auto impl = std::make_unique<Impl>();
  if (!tokenizer_config_json.empty()) {
    const std::string name = origin + " (tokenizer_config.json)";
    impl->config = tok::parse_tokenizer_config(tok::json_parse_text(tokenizer_config_json, name),
                                               JsonPath(name));
  }
  load_tokenizer_json(*impl, tok::json_parse_text(tokenizer_json, origin), origin);
  finish(*impl);
  return std::make_shared<const Tokenizer>(std::move(impl));
}

// ---------------------------------------------------------------------------------------------
// Encoding

void Tokenizer::Impl::tokenize_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  if (!pre_tokenizer) {
    model->tokenize(text, out);
    return;
  }
  pre_tokenizer->split(text, at_start, [&](std::string_view word, bool) { model->tokenize(word, out); });
}

void Tokenizer::Impl::encode_into(std::string_view input, bool add_special_tokens,
                                  std::vector<int32_t>& out) const {
  // Invalid UTF-8 is replaced up front (U+FFFD per maximal invalid subsequence), so every later
  // stage can rely on valid UTF-8.
  std::string sanitized;
  std::string_view text = input;
  if (!tok::utf8_valid(input)) {
    tok::utf8_append_lossy(sanitized, input);
    text = sanitized;
  }
  std::vector<tok::AddedVocabulary::Span> spans, inner;
  // 1. Added tokens that match the raw input.
  added.split(text, /*normalized=*/false, spans);
  for (const auto& span : spans) {
    if (span.id >= 0) {
      out.push_back(span.id);
      continue;
    }
    // 2. Normalize the text between them, then cut out the tokens that match normalized text.
    std::string_view piece = text.substr(span.begin, span.end - span.begin);
    std::string normalized;  // only materialized when there is a normalizer
    if (normalizer) {
      normalized.assign(piece);
      normalizer->normalize(normalized);
      piece = normalized;
    }
    if (piece.empty()) continue;
    const bool at_start = span.begin == 0;
    if (!added.has_normalized()) {
      tokenize_text(piece, at_start, out);
      continue;
    }
    inner.clear();
    added.split(piece, /*normalized=*/true, inner);
    for (const auto& sub : inner) {
      if (sub.id >= 0) {
        out.push_back(sub.id);
      } else {
        // 3. Pre-tokenize and run the model on what is left.
        tokenize_text(piece.substr(sub.begin, sub.end - sub.begin), at_start && sub.begin == 0, out);
      }
    }
  }
  // 4. Special tokens around the sequence.
  if (post_processor) post_processor->process(out, add_special_tokens);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  impl_->encode_into(text, add_special_tokens, ids);
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Decoding

std::string Tokenizer::Impl::run_decoder(std::vector<std::string>& tokens) const {
  std::string text;
  if (!decoder) {
    // No decoder: tokens joined by spaces, as `tokenizers` does.
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text.push_back(' ');
      text += tokens[i];
    }
    return text;
  }
  decoder->decode_chain(tokens);
  for (const std::string& t : tokens) text += t;
  return text;
}

std::string Tokenizer::Impl::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  std::string text;
  bool previous_added = false;
  const bool split_added = !options.spaces_between_special_tokens && decoder_inserts_spaces;
  for (int32_t id : ids) {
    const AddedToken* a = added.by_id(id);
    if (a != nullptr) {
      if (options.skip_special_tokens && a->special) continue;
      if (split_added && previous_added) {
        // Two added tokens in a row: decode what came before separately, so the decoder does
        // not put a space between them.
        text += run_decoder(tokens);
        tokens.clear();
      }
      tokens.push_back(a->content);
      previous_added = true;
      continue;
    }
    // Ids outside the vocabulary are skipped, as `tokenizers` does.
    if (const std::string* s = model->id_to_token(id)) {
      tokens.push_back(*s);
      previous_added = false;
    }
  }
  text += run_decoder(tokens);
  if (options.clean_up_tokenization_spaces.value_or(config.clean_up_tokenization_spaces)) {
    text = clean_up_tokenization(text);
  }
  return text;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens,
                              bool spaces_between_special_tokens) const {
  DecodeOptions o;
  o.skip_special_tokens = skip_special_tokens;
  o.spaces_between_special_tokens = spaces_between_special_tokens;
  return impl_->decode(ids, o);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  return impl_->decode(ids, options);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary and configuration

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  return impl_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* s = impl_->token_string(id);
  return s ? *s : std::string();
}

std::string Tokenizer::token_bytes(int32_t id) const {
  const std::string* s = impl_->token_string(id);
  if (s == nullptr) return {};
  std::string bytes = *s;
  if (!impl_->decoder) return " " + bytes;  // no decoder: tokens are joined by spaces
  bool merged = false;
  impl_->decoder->token_bytes(bytes, merged);
  return bytes;
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = impl_->added.by_id(id);
  return a != nullptr && a->special;
}

bool Tokenizer::is_added_token(int32_t id) const { return impl_->added.by_id(id) != nullptr; }

std::optional<int32_t> Tokenizer::bos_token_id() const { return impl_->special_id(impl_->config.bos); }
std::optional<int32_t> Tokenizer::eos_token_id() const { return impl_->special_id(impl_->config.eos); }
std::optional<int32_t> Tokenizer::pad_token_id() const { return impl_->special_id(impl_->config.pad); }
std::optional<int32_t> Tokenizer::unk_token_id() const { return impl_->special_id(impl_->config.unk); }

static std::string content_or_empty(const std::optional<AddedToken>& t) { return t ? t->content : ""; }
std::string Tokenizer::bos_token() const { return content_or_empty(impl_->config.bos); }
std::string Tokenizer::eos_token() const { return content_or_empty(impl_->config.eos); }
std::string Tokenizer::pad_token() const { return content_or_empty(impl_->config.pad); }
std::string Tokenizer::unk_token() const { return content_or_empty(impl_->config.unk); }

bool Tokenizer::add_bos_token() const {
  if (impl_->config.add_bos_token) return *impl_->config.add_bos_token;
  const auto bos = bos_token_id();
  return bos && std::find(impl_->post_before.begin(), impl_->post_before.end(), *bos) !=
                    impl_->post_before.end();
}

bool Tokenizer::add_eos_token() const {
  if (impl_->config.add_eos_token) return *impl_->config.add_eos_token;
  const auto eos = eos_token_id();
  return eos && std::find(impl_->post_after.begin(), impl_->post_after.end(), *eos) !=
                    impl_->post_after.end();
}

bool Tokenizer::clean_up_tokenization_spaces() const {
  return impl_->config.clean_up_tokenization_spaces;
}

bool Tokenizer::decoder_uses_byte_fallback() const { return impl_->decoder_byte_fallback; }

std::optional<std::string> Tokenizer::chat_template(const std::string& name) const {
  auto it = impl_->config.chat_templates.find(name);
  if (it == impl_->config.chat_templates.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Tokenizer::chat_template_names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : impl_->config.chat_templates) names.push_back(name);
  return names;
}

std::optional<int64_t> Tokenizer::model_max_length() const { return impl_->config.model_max_length; }

}  // namespace vllm
