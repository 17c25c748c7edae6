// Tokenizer encode throughput, one thread, for the five reference tokenizers on 1 MB of English
// prose and 1 MB of mixed source code + CJK text.
//
// English: the license texts in /usr/share/common-licenses (Debian), repeated to 1 MB; when they
// are not there, deterministic English-like text. Code + CJK: generated deterministically here.
// The text is encoded as a list of documents of up to 4 KiB cut at line ends (serving-sized
// prompts); "cold" is the first pass over it (empty BPE word cache), "warm" the best of the
// following passes. "1-shot" encodes the whole 1 MB as one string.
//
// usage: tokenizer_bench [--data-dir DIR] [--models a,b,...] [--passes N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"

namespace {

constexpr size_t kTextBytes = 1000000;  // 1 MB
constexpr size_t kDocumentBytes = 4096;

// Cuts `text` to at most `limit` bytes at a line end (so it stays valid UTF-8).
std::string cut_at_line(std::string text, size_t limit) {
  if (text.size() <= limit) return text;
  const size_t nl = text.rfind('\n', limit - 1);
  text.resize(nl == std::string::npos ? limit : nl + 1);
  return text;
}

std::string english_text() {
  std::string corpus;
  const char* files[] = {"GPL-3", "GPL-2", "LGPL-3", "LGPL-2.1", "Apache-2.0", "MPL-2.0",
                         "GFDL-1.3", "Artistic", "BSD", "CC0-1.0"};
  for (const char* f : files) {
    std::ifstream in(std::string("/usr/share/common-licenses/") + f, std::ios::binary);
    if (!in) continue;
    std::stringstream buf;
    buf << in.rdbuf();
    corpus += buf.str();
  }
  if (corpus.size() < 10000) {
    // Fallback: English-like word salad from a fixed seed.
    static const char* const kWords[] = {
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
        "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
        "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
        "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "software",
        "license", "distribution", "program", "modified", "version", "conditions", "copyright"};
    std::mt19937 rng(42);
    corpus.clear();
    while (corpus.size() < kTextBytes) {
      for (int w = 0, n = 5 + static_cast<int>(rng() % 20); w < n; ++w) {
        if (w > 0) corpus += ' ';
        corpus += kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
      }
      corpus += rng() % 4 == 0 ? ".\n" : ". ";
    }
  }
  std::string text;
  while (text.size() < kTextBytes) text += corpus;
  return cut_at_line(std::move(text), kTextBytes);
}

std::string code_cjk_text() {
  std::mt19937 rng(1234);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  static const char* const kIdents[] = {"value", "count", "buffer", "index", "result", "node",
                                        "tokens", "offset", "cache", "request", "batch", "logits"};
  static const char* const kTypes[] = {"int", "float", "std::string", "size_t", "auto", "double"};
  // Common CJK characters (Chinese, Japanese kana, Korean) and full-width punctuation.
  static const char* const kCjk[] = {
      "的", "一", "是", "不", "了", "人", "我", "在", "有", "他", "这", "中", "大", "来", "上",
      "国", "个", "到", "说", "们", "为", "子", "和", "你", "地", "出", "道", "也", "时", "年",
      "模", "型", "推", "理", "服", "务", "请", "求", "缓", "存", "数", "据", "计", "算", "语",
      "言", "の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "れ", "さ", "ト", "ー",
      "ク", "ン", "テ", "キ", "ス", "한", "국", "어", "모", "델", "서", "버", "，", "。", "、",
      "「", "」", "！", "？", "：", "（", "）"};
  std::string text;
  while (text.size() < kTextBytes + 4096) {
    if (pick(2) == 0) {
      // A function in C++ or Python.
      const std::string name = std::string(kIdents[pick(12)]) + "_" + kIdents[pick(12)];
      if (pick(2) == 0) {
        text += std::string(kTypes[pick(6)]) + " " + name + "(const " + kTypes[pick(6)] + "& " +
                kIdents[pick(12)] + ") {\n";
        for (size_t l = 0, n = 2 + pick(6); l < n; ++l) {
          text += "    " + std::string(kIdents[pick(12)]) + "[" + std::to_string(pick(4096)) + "] += " +
                  kIdents[pick(12)] + " * " + std::to_string(pick(100)) + ".5f;  // step " +
                  std::to_string(l) + "\n";
        }
        text += "    return " + std::string(kIdents[pick(12)]) + ";\n}\n\n";
      } else {
        text += "def " + name + "(self, " + kIdents[pick(12)] + ", " + kIdents[pick(12)] + "=None):\n";
        for (size_t l = 0, n = 2 + pick(6); l < n; ++l) {
          text += "    if self." + std::string(kIdents[pick(12)]) + " is not None and len(" +
                  kIdents[pick(12)] + ") > " + std::to_string(pick(512)) + ":\n        self." +
                  kIdents[pick(12)] + ".append({\"id\": " + std::to_string(pick(100000)) + "})\n";
        }
        text += "    return " + std::string(kIdents[pick(12)]) + "\n\n";
      }
    } else {
      // A paragraph of CJK text.
      for (size_t c = 0, n = 40 + pick(200); c < n; ++c) text += kCjk[pick(sizeof(kCjk) / sizeof(kCjk[0]))];
      text += "\n\n";
    }
  }
  return cut_at_line(std::move(text), kTextBytes);
}

std::vector<std::string> documents(const std::string& text) {
  std::vector<std::string> docs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + kDocumentBytes);
    if (end < text.size()) {
      const size_t nl = text.rfind('\n', end - 1);
      if (nl != std::string::npos && nl >= pos) end = nl + 1;
    }
    docs.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return docs;
}

struct Result {
  double cold_mbs = 0, warm_mbs = 0, oneshot_mbs = 0;
  size_t tokens = 0;
};

Result measure(const vllm::Tokenizer& tok, const std::string& text, int passes) {
  using clock = std::chrono::steady_clock;
  const auto docs = documents(text);
  Result r;
  double best = 1e30;
  for (int pass = 0; pass <= passes; ++pass) {
    size_t tokens = 0;
    const auto t0 = clock::now();
    for (const auto& d : docs) tokens += tok.encode(d, false).size();
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (pass == 0) {
      r.cold_mbs = static_cast<double>(text.size()) / s / 1e6;
      r.tokens = tokens;
    } else {
      best = std::min(best, s);
    }
  }
  r.warm_mbs = static_cast<double>(text.size()) / best / 1e6;
  const auto t0 = clock::now();
  const size_t n = tok.encode(text, false).size();
  const double s = std::chrono::duration<double>(clock::now() - t0).count();
  (void)n;
  r.oneshot_mbs = static_cast<double>(text.size()) / s / 1e6;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = VLLM_TEST_DATA_DIR;
  std::vector<std::string> models = {"tiny-phi", "tiny-llama2", "tiny-llama3", "tiny-qwen3", "tiny-qwen2"};
  int passes = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data-dir" && i + 1 < argc) {
      data_dir = argv[++i];
    } else if (a == "--models" && i + 1 < argc) {
      models.clear();
      std::stringstream ss(argv[++i]);
      for (std::string m; std::getline(ss, m, ',');) models.push_back(m);
    } else if (a == "--passes" && i + 1 < argc) {
      passes = std::max(1, std::atoi(argv[++i]));
    } else {
      std::cerr << "usage: " << argv[0] << " [--data-dir DIR] [--models a,b,...] [--passes N]\n";
      return 2;
    }
  }
  std::cout << "command:";
  for (int i = 0; i < argc; ++i) std::cout << ' ' << argv[i];
  std::cout << "\n";

  const std::string english = english_text();
  const std::string mixed = code_cjk_text();
  std::printf("texts: English %zu bytes, code+CJK %zu bytes; documents of <= %zu bytes; 1 thread; "
              "MB = 1e6 bytes; warm = best of %d passes\n\n",
              english.size(), mixed.size(), kDocumentBytes, passes);
  std::printf("%-12s %7s | %9s %9s %9s %8s | %9s %9s %9s %8s\n", "tokenizer", "load s", "en cold",
              "en warm", "en 1-shot", "en tok", "mix cold", "mix warm", "mix 1shot", "mix tok");
  std::printf("%-12s %7s | %9s %9s %9s %8s | %9s %9s %9s %8s\n", "", "", "MB/s", "MB/s", "MB/s", "",
              "MB/s", "MB/s", "MB/s", "");
  for (const auto& m : models) {
    const auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<const vllm::Tokenizer> tok;
    try {
      tok = vllm::Tokenizer::from_folders(data_dir + "/tokenizers/" + m, data_dir + "/models/" + m);
    } catch (const vllm::Error& e) {
      std::fprintf(stderr, "%s: %s (run scripts/fetch_tokenizers.sh?)\n", m.c_str(), e.what());
      return 1;
    }
    const double load = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Result en = measure(*tok, english, passes);
    const Result mx = measure(*tok, mixed, passes);
    std::printf("%-12s %7.2f | %9.2f %9.2f %9.2f %8zu | %9.2f %9.2f %9.2f %8zu\n", m.c_str(), load,
                en.cold_mbs, en.warm_mbs, en.oneshot_mbs, en.tokens, mx.cold_mbs, mx.warm_mbs,
                mx.oneshot_mbs, mx.tokens);
    std::fflush(stdout);
  }
  return 0;
}
