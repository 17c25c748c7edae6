// Ranges are split by digit count, and each same-length range [lo, hi] by its first differing
// digit: lo's digit then [lo's rest, 99..9], the digits strictly between then anything, hi's
// digit then [00..0, hi's rest] (the classic decomposition). The result is exact.
#include "vllm/structured/integer_range.h"

#include <cstdint>
#include <vector>

#include "vllm/structured/gbnf_writer.h"

namespace vllm::structured {

namespace {

std::string digit_class(char a, char b) {
  if (a == b) return cat("\"", std::string(1, a), "\"");
  if (a == '0' && b == '9') return "[0-9]";
  return cat("[", std::string(1, a), "-", std::string(1, b), "]");
}

std::string any_digits(size_t n) {
  if (n == 0) return {};
  if (n == 1) return "[0-9]";
  return cat("[0-9]{", std::to_string(n), "}");
}

void join(std::string& seq, const std::string& part) {
  if (part.empty()) return;
  if (!seq.empty()) seq += ' ';
  seq += part;
}

// Same-length digit strings lo <= hi: appends one sequence per alternative, each after `prefix`.
void same_length(const std::string& lo, const std::string& hi, const std::string& prefix,
                 std::vector<std::string>& out) {
  size_t k = 0;
  while (k < lo.size() && lo[k] == hi[k]) ++k;
  std::string pre = prefix;
  if (k > 0) join(pre, cat("\"", lo.substr(0, k), "\""));
  if (k == lo.size()) {
    out.push_back(pre);
    return;
  }
  const size_t rest = lo.size() - k - 1;
  const std::string lo_rest = lo.substr(k + 1), hi_rest = hi.substr(k + 1);
  const bool lo_zeros = lo_rest.find_first_not_of('0') == std::string::npos;
  const bool hi_nines = hi_rest.find_first_not_of('9') == std::string::npos;
  char first = lo[k], last = hi[k];
  if (!lo_zeros) {
    std::string p = pre;
    join(p, digit_class(lo[k], lo[k]));
    same_length(lo_rest, std::string(rest, '9'), p, out);
    ++first;
  }
  if (!hi_nines) --last;
  if (first <= last) {
    std::string p = pre;
    join(p, digit_class(first, last));
    join(p, any_digits(rest));
    out.push_back(p);
  }
  if (!hi_nines) {
    std::string p = pre;
    join(p, digit_class(hi[k], hi[k]));
    same_length(std::string(rest, '0'), hi_rest, p, out);
  }
}

std::string pow10_minus1(size_t digits) { return std::string(digits, '9'); }
std::string pow10(size_t zeros) {
  std::string s(zeros + 1, '0');
  s[0] = '1';
  return s;
}

// Magnitudes in [a, b] (b missing: unbounded), written without leading zeros.
void magnitudes(uint64_t a, std::optional<uint64_t> b, std::vector<std::string>& out) {
  const std::string as = std::to_string(a);
  if (!b) {
    same_length(as, pow10_minus1(as.size()), "", out);
    out.push_back(cat("[1-9] [0-9]{", std::to_string(as.size()), ",}"));
    return;
  }
  if (a > *b) return;
  const std::string bs = std::to_string(*b);
  for (size_t len = as.size(); len <= bs.size(); ++len) {
    std::string lo = len == as.size() ? as : pow10(len - 1);
    std::string hi = len == bs.size() ? bs : pow10_minus1(len);
    same_length(lo, hi, "", out);
  }
}

}  // namespace

std::optional<std::string> integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  if (lo && hi && *lo > *hi) return std::nullopt;
  std::vector<std::string> alts;
  if (!hi || *hi >= 0) {
    uint64_t a = lo && *lo > 0 ? static_cast<uint64_t>(*lo) : 0;
    std::optional<uint64_t> b;
    if (hi) b = static_cast<uint64_t>(*hi);
    magnitudes(a, b, alts);
  }
  if (!lo || *lo < 0) {
    // -n for n in [max(1, -hi), -lo].
    uint64_t a = hi && *hi < 0 ? static_cast<uint64_t>(-*hi) : 1;
    std::optional<uint64_t> b;
    if (lo) b = static_cast<uint64_t>(-*lo);
    std::vector<std::string> neg;
    magnitudes(a, b, neg);
    if (!neg.empty()) alts.push_back(cat("\"-\" ", gbnf_alternatives(neg)));
  }
  if (alts.empty()) return std::nullopt;
  // Adjacent digit literals read better as one: "1" "5" "0" -> "150".
  for (auto& a : alts) {
    for (size_t p; (p = a.find("\" \"")) != std::string::npos;) a.erase(p, 3);
  }
  return gbnf_alternatives(alts);
}

}  // namespace vllm::structured
