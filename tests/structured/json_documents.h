// Deterministic JSON documents for walks through the JSON grammar (tests and the benchmark):
// nested objects and arrays, strings with escapes and non-ASCII text, numbers of every shape,
// true / false / null; compact, spaced or pretty-printed. Every document is a JSON object.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace vllm::structured::testing {

class JsonDocuments {
 public:
  explicit JsonDocuments(uint64_t seed) : rng_(seed) {}

  std::string next() {
    style_ = static_cast<int>(rng_() % 3);
    std::string out;
    object(out, 0);
    if (style_ == 2) out += "\n";
    return out;
  }

 private:
  size_t pick(size_t n) { return static_cast<size_t>(rng_() % n); }

  void newline(std::string& out, int depth) {
    if (style_ != 2) return;
    out += "\n";
    out.append(static_cast<size_t>(depth) * 2, ' ');
  }

  void value(std::string& out, int depth) {
    const size_t kind = depth >= 3 ? 2 + pick(6) : pick(8);
    switch (kind) {
      case 0: object(out, depth); break;
      case 1: array(out, depth); break;
      case 2: case 3: string(out); break;
      case 4: case 5: number(out); break;
      case 6: out += pick(2) ? "true" : "false"; break;
      default: out += "null"; break;
    }
  }

  void object(std::string& out, int depth) {
    static const char* const kKeys[] = {"id", "name", "title", "description", "tags", "value", "count",
                                        "enabled", "items", "user", "email", "created_at", "price",
                                        "location", "notes", "type", "status", "children", "score", "url"};
    const size_t n = depth == 0 ? 2 + pick(6) : pick(5);
    out += "{";
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += style_ == 0 ? "," : ",";
      if (style_ == 1 && i > 0) out += " ";
      newline(out, depth + 1);
      out += "\"";
      out += kKeys[pick(sizeof(kKeys) / sizeof(kKeys[0]))];
      out += "\"";
      out += style_ == 0 ? ":" : ": ";
      value(out, depth + 1);
    }
    if (n > 0) newline(out, depth);
    out += "}";
  }

  void array(std::string& out, int depth) {
    const size_t n = pick(6);
    out += "[";
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += style_ == 0 ? "," : ", ";
      value(out, depth + 1);
    }
    out += "]";
  }

  void string(std::string& out) {
    static const char* const kWords[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
                                         "Hello", "world", "data", "2024-01-15", "user@example.com",
                                         "caf\xC3\xA9", "na\xC3\xAFve", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                                         "\xCE\xA9mega", "\xF0\x9F\x98\x80", "http://example.org/a?b=c",
                                         "line\\nbreak", "say \\\"hi\\\"", "tab\\there", "back\\\\slash",
                                         "\\u00e9t\\u00E9", "C:/path/to/file.txt", "$100", "50%", "a+b=c"};
    const size_t n = pick(9);
    out += "\"";
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) out += " ";
      out += kWords[pick(sizeof(kWords) / sizeof(kWords[0]))];
    }
    out += "\"";
  }

  void number(std::string& out) {
    // (Appends rather than operator+ chains, which trip GCC 12's -Wrestrict.)
    switch (pick(5)) {
      case 0: out.append(std::to_string(pick(100))); break;
      case 1: out.push_back('-'); out.append(std::to_string(1 + pick(100000))); break;
      case 2:
        out.append(std::to_string(pick(1000)));
        out.push_back('.');
        out.append(std::to_string(pick(1000)));
        break;
      case 3:
        out.append(std::to_string(1 + pick(9)));
        out.push_back('.');
        out.append(std::to_string(pick(100)));
        out.push_back('e');
        out.push_back(pick(2) ? '-' : '+');
        out.append(std::to_string(pick(20)));
        break;
      default: out.push_back('0'); break;
    }
  }

  std::mt19937_64 rng_;
  int style_ = 0;
};

}  // namespace vllm::structured::testing
