// Streaming detokenization with vLLM's prefix_offset / read_offset scheme, made exact: text is
// emitted only once no later token can change it.
#include <algorithm>
#include <cctype>

#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm {

namespace {

// How many prompt tokens give the decoder its context (vLLM uses 5).
constexpr size_t kContextTokens = 5;
constexpr size_t kMaxContextTokens = 24;
constexpr size_t kNone = static_cast<size_t>(-1);

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4]));
}

// Characters that take part in clean_up_tokenization's patterns. Text before any other
// character can no longer be changed by what follows it, since no pattern can span it and
// only spaces are ever deleted.
bool is_cleanup_char(char c) {
  switch (c) {
    case ' ': case '.': case '?': case '!': case ',': case '\'': case 'n': case 't': case 'm':
    case 's': case 'v': case 'e': case 'r':
      return true;
    default:
      return false;
  }
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tok,
                                               std::vector<int32_t> prompt_ids,
                                               bool skip_special_tokens,
                                               bool spaces_between_special_tokens)
    : tok_(std::move(tok)), tokens_(std::move(prompt_ids)) {
  if (!tok_) throw Error("IncrementalDetokenizer needs a tokenizer", ErrorKind::kInvalidArgument);
  prompt_len_ = tokens_.size();
  options_.skip_special_tokens = skip_special_tokens;
  options_.spaces_between_special_tokens = spaces_between_special_tokens;
  // Windows are decoded raw; clean-up is applied here, on the output text only.
  options_.clean_up_tokenization_spaces = false;
  cleanup_ = tok_->clean_up_tokenization_spaces();
  byte_fallback_ = tok_->decoder_uses_byte_fallback();
  read_offset_ = prompt_len_;
  // The context window starts a few tokens back. With byte fallback it must not start inside a
  // run of <0xNN> tokens (the decoder judges a run as a whole), so it moves back to the run's
  // start; and it moves back (a little) while its text would start inside a UTF-8 character.
  size_t p = prompt_len_ >= kContextTokens ? prompt_len_ - kContextTokens : 0;
  if (byte_fallback_) {
    while (p > 0) {
      const size_t prev = last_visible(p, 0);
      if (prev == kNone || !is_byte_token(tok_->id_to_token(tokens_[prev]))) break;
      p = prev;
    }
  }
  while (p > 0 && prompt_len_ - p < kMaxContextTokens) {
    const std::string text =
        tok_->decode(std::span<const int32_t>(tokens_).subspan(p, prompt_len_ - p), options_);
    if (text.compare(0, 3, "\xEF\xBF\xBD") != 0) break;
    --p;
  }
  prefix_offset_ = p;
  prefix_text_ = tok_->decode(
      std::span<const int32_t>(tokens_).subspan(prefix_offset_, read_offset_ - prefix_offset_), options_);
}

size_t IncrementalDetokenizer::last_visible(size_t end, size_t begin) const {
  for (size_t k = end; k > begin; --k) {
    const int32_t id = tokens_[k - 1];
    if (options_.skip_special_tokens && tok_->is_special(id)) continue;
    if (tok_->id_to_token(id).empty()) continue;  // an id outside the vocabulary decodes to nothing
    return k - 1;
  }
  return kNone;
}

std::string IncrementalDetokenizer::step() {
  if (read_offset_ >= tokens_.size()) return "";
  // Hold back an open run of <0xNN> tokens: ByteFallback turns a run into text only when the
  // whole run is valid UTF-8, so a later byte can still change it. (Checked before decoding, so
  // a long run costs one decode when it closes, not one per token.)
  if (byte_fallback_) {
    const size_t last = last_visible(tokens_.size(), prefix_offset_);
    if (last != kNone && !tok_->is_added_token(tokens_[last]) &&
        is_byte_token(tok_->id_to_token(tokens_[last]))) {
      return "";
    }
  }
  const std::span<const int32_t> all(tokens_);
  std::string new_text = tok_->decode(all.subspan(prefix_offset_), options_);
  // Hold back a possibly incomplete UTF-8 character.
  if (ends_with(new_text, "\xEF\xBF\xBD")) return "";
  if (new_text.size() <= prefix_text_.size()) return "";
  std::string delta = new_text.substr(prefix_text_.size());
  prefix_offset_ = read_offset_;
  read_offset_ = tokens_.size();
  prefix_text_ = tok_->decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), options_);
  return delta;
}

std::string IncrementalDetokenizer::emit(std::string raw) {
  if (!cleanup_) {
    text_ += raw;
    return raw;
  }
  cleanup_pending_ += raw;
  // Cut after the last character that no clean-up pattern contains; everything before the cut
  // is final (see is_cleanup_char).
  size_t cut = cleanup_pending_.size();
  while (cut > 0) {
    const char c = cleanup_pending_[cut - 1];
    const bool at_char_end =
        cut == cleanup_pending_.size() || (static_cast<unsigned char>(cleanup_pending_[cut]) & 0xC0) != 0x80;
    if (at_char_end && !is_cleanup_char(c)) break;
    --cut;
  }
  if (cut == 0) return "";
  std::string out = clean_up_tokenization(std::string_view(cleanup_pending_).substr(0, cut));
  cleanup_pending_.erase(0, cut);
  text_ += out;
  return out;
}

std::string IncrementalDetokenizer::add(int32_t id) {
  if (flushed_) throw Error("IncrementalDetokenizer::add after flush", ErrorKind::kInvalidArgument);
  tokens_.push_back(id);
  return emit(step());
}

std::string IncrementalDetokenizer::add(std::span<const int32_t> ids) {
  std::string out;
  for (int32_t id : ids) out += add(id);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  flushed_ = true;
  std::string raw;
  if (read_offset_ < tokens_.size()) {
    const std::span<const int32_t> all(tokens_);
    const std::string new_text = tok_->decode(all.subspan(prefix_offset_), options_);
    if (new_text.size() > prefix_text_.size()) raw = new_text.substr(prefix_text_.size());
    prefix_offset_ = read_offset_ = tokens_.size();
    prefix_text_.clear();
  }
  std::string out = emit(std::move(raw));
  if (cleanup_ && !cleanup_pending_.empty()) {
    std::string tail = clean_up_tokenization(cleanup_pending_);
    cleanup_pending_.clear();
    text_ += tail;
    out += tail;
  }
  return out;
}

}  // namespace vllm
