// Python's view of text over UTF-8 bytes. Templates index, slice, count and case-map strings by
// code point, as Python does, so a message in Chinese behaves as it does under transformers.
// Invalid UTF-8 never fails: each bad byte decodes to U+DC80..U+DCFF (Python's
// "surrogateescape") and encodes back to the same byte, so bytes round-trip unchanged.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace vllm::jinja::unicode {

// Decodes the code point at s[i] and advances i past it.
char32_t next(std::string_view s, size_t& i);
// Decodes the code point that ends at s[i] (exclusive) and moves i back to its first byte.
char32_t prev(std::string_view s, size_t& i);
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append(std::string& out, char32_t cp);

bool is_ascii(std::string_view s);
size_t length(std::string_view s);  // in code points
// Byte offset of code point number `index` (clamped to s.size()).
size_t byte_offset(std::string_view s, size_t index);
// Code point count of s[0, byte_pos).
size_t count_before(std::string_view s, size_t byte_pos);

// str.isspace / str.isprintable / str.isalpha ... for one code point.
bool is_space(char32_t c);
bool is_printable(char32_t c);
bool is_alpha(char32_t c);
bool is_decimal(char32_t c);
bool is_digit(char32_t c);
bool is_numeric(char32_t c);
bool is_alnum(char32_t c);
bool is_upper(char32_t c);
bool is_lower(char32_t c);
bool is_cased(char32_t c);  // upper, lower or title case
bool is_word(char32_t c);   // the \w of Python's re module
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_title(char32_t c);

std::string upper(std::string_view s);
std::string lower(std::string_view s);

}  // namespace vllm::jinja::unicode
