// UTF-8 and Unicode helpers shared by the tokenizer components (internal header).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vllm::tok {

// Decodes the code point starting at s[i] and advances i past it. The input must be valid UTF-8
// (everything inside the pipeline is: encode() sanitizes its input first).
inline char32_t utf8_next(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if (b0 < 0xE0) {
    char32_t cp = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    i += 2;
    return cp;
  }
  if (b0 < 0xF0) {
    char32_t cp = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
                  (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    i += 3;
    return cp;
  }
  char32_t cp = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
                ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
                (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
  i += 4;
  return cp;
}

// Length in bytes of the UTF-8 sequence that starts with lead byte b (1 for stray bytes).
inline size_t utf8_len(unsigned char b) {
  if (b < 0xC0) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

void utf8_append(std::string& out, char32_t cp);

// True when s is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool utf8_valid(std::string_view s);

// Appends `bytes` to `out`, replacing each maximal invalid subsequence with U+FFFD (the
// "substitution of maximal subparts" policy of Unicode 3.9, used by Rust's from_utf8_lossy and
// Python's errors="replace").
void utf8_append_lossy(std::string& out, std::string_view bytes);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_whitespace(char32_t c);
// The regex crate's \w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
bool is_word_char(char32_t c);
// Rust's char::is_numeric: Nd, Nl, No.
bool is_numeric(char32_t c);
// tokenizers' is_punc: ASCII punctuation or a Unicode P* category.
bool is_punctuation(char32_t c);
bool is_mark(char32_t c);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };
// Unicode normalization through utf8proc (the input must be valid UTF-8).
std::string unicode_normalize(std::string_view s, NormalForm form);
// Full lowercase mapping per code point, as Rust's char::to_lowercase (no final-sigma context).
std::string unicode_lowercase(std::string_view s);

// GPT-2's bytes_to_unicode table: each byte maps to one printable code point, stored here as its
// UTF-8 encoding. byte_level_decode() maps back; -1 for code points outside the table.
const std::array<std::string, 256>& byte_level_alphabet();
int byte_level_decode(char32_t c);

}  // namespace vllm::tok
