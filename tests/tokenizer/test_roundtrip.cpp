// Seeded property tests over the seven reference tokenizers:
//  - decode(encode(s, no special)) == expected(s) for 10,000 random strings drawn from all
//    Unicode planes, combining marks, emoji ZWJ sequences, control characters and long
//    whitespace runs, where expected(s) is the exact transform the tokenizer applies:
//      tiny-phi (GPT-2 byte-level BPE), tiny-gptoss (o200k byte-level BPE): s itself
//      tiny-llama3 (byte-level BPE, clean_up_tokenization_spaces=true): clean_up_tokenization(s)
//      tiny-qwen3 (NFC normalizer, byte-level BPE): NFC(s)
//      tiny-llama2 / tiny-qwen2 / tiny-gemma3 (SentencePiece-style BPE with byte fallback; spaces
//        are encoded as U+2581 and the decoder turns every U+2581 back into a space): s with
//        U+2581 -> ' '
//  - IncrementalDetokenizer: over those ids, fed one at a time, every intermediate text is valid
//    UTF-8 and a prefix of the final text, and the deltas plus flush() concatenate exactly to
//    decode(ids); the same with a prompt (the output text is then what decode(prompt + output)
//    adds to decode(prompt)); and the same for random id sequences (byte tokens, special tokens,
//    out-of-vocabulary ids), where text is invalid UTF-8 at the byte level.
#include <utf8proc.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "tokenizer_test_util.h"

namespace vllm::test {
namespace {

constexpr int kNumStrings = 10000;
constexpr uint64_t kSeed = 20261125;

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Random text, one "element" at a time from a mix of hard categories.
class TextGenerator {
 public:
  explicit TextGenerator(uint64_t seed) : rng_(seed) {}

  std::string next() {
    std::string s;
    const int elements = static_cast<int>(pick(0, 24));
    for (int e = 0; e < elements; ++e) element(s);
    return s;
  }

 private:
  uint32_t pick(uint32_t lo, uint32_t hi) { return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_); }

  void element(std::string& s) {
    static const char* const kWords[] = {"the", "Hello", "world", "don't", "I'm", "HE'S", "we'll",
                                         "tokenizer", "1234567", "3.14", "foo_bar", "x", "  ",
                                         "https://a.b/c?d=e", "naïve", "Straße", "日本語", "ÅÉÎ"};
    switch (pick(0, 13)) {
      case 0:
      case 1:  // words and ASCII punctuation
        s += kWords[pick(0, sizeof(kWords) / sizeof(kWords[0]) - 1)];
        if (pick(0, 2) == 0) s.push_back(" .,!?;:'\"()-"[pick(0, 12)]);
        if (pick(0, 1) == 0) s.push_back(' ');
        break;
      case 2:  // random printable ASCII
        for (uint32_t k = pick(1, 8); k > 0; --k) s.push_back(static_cast<char>(pick(0x20, 0x7E)));
        break;
      case 3: {  // whitespace runs, long ones included
        static const uint32_t kSpaces[] = {' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680,
                                           0x2000, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
        const uint32_t len = pick(0, 3) == 0 ? pick(20, 300) : pick(1, 6);
        const bool uniform = pick(0, 1) == 0;
        const uint32_t fixed = kSpaces[pick(0, 16)];
        for (uint32_t k = 0; k < len; ++k) append_utf8(s, uniform ? fixed : kSpaces[pick(0, 16)]);
        break;
      }
      case 4:  // control characters (C0, DEL, C1)
        for (uint32_t k = pick(1, 3); k > 0; --k) {
          const uint32_t c = pick(0, 1) ? pick(0x00, 0x1F) : pick(0x7F, 0x9F);
          append_utf8(s, c);
        }
        break;
      case 5: {  // base letter + combining marks (NFC-composable and not)
        append_utf8(s, pick(0, 1) ? pick('a', 'z') : pick(0xC0, 0x17F));
        for (uint32_t k = pick(1, 3); k > 0; --k) {
          append_utf8(s, pick(0, 3) ? pick(0x300, 0x36F) : pick(0x20D0, 0x20F0));
        }
        break;
      }
      case 6: {  // Hangul: precomposed syllables or conjoining jamo (NFC composes them)
        if (pick(0, 1)) {
          append_utf8(s, pick(0xAC00, 0xD7A3));
        } else {
          append_utf8(s, pick(0x1100, 0x1112));
          append_utf8(s, pick(0x1161, 0x1175));
          if (pick(0, 1)) append_utf8(s, pick(0x11A8, 0x11C2));
        }
        break;
      }
      case 7:  // CJK, kana, Arabic, Hebrew, Devanagari, Thai
        for (uint32_t k = pick(1, 6); k > 0; --k) {
          static const std::pair<uint32_t, uint32_t> kRanges[] = {
              {0x4E00, 0x9FFF}, {0x3040, 0x30FF}, {0x0600, 0x06FF}, {0x05D0, 0x05EA},
              {0x0900, 0x097F}, {0x0E00, 0x0E7F}, {0x0400, 0x04FF}, {0xFF00, 0xFFEF}};
          const auto& r = kRanges[pick(0, 7)];
          append_utf8(s, pick(r.first, r.second));
        }
        break;
      case 8: {  // emoji: single, skin tones, ZWJ families, flags, keycaps, variation selectors
        switch (pick(0, 4)) {
          case 0:
            append_utf8(s, pick(0x1F300, 0x1FAFF));
            break;
          case 1:
            append_utf8(s, pick(0x1F466, 0x1F469));
            append_utf8(s, pick(0x1F3FB, 0x1F3FF));
            break;
          case 2:
            for (uint32_t k = pick(2, 4); k > 0; --k) {
              append_utf8(s, pick(0x1F466, 0x1F469));
              if (k > 1) append_utf8(s, 0x200D);
            }
            break;
          case 3:
            append_utf8(s, pick(0x1F1E6, 0x1F1FF));
            append_utf8(s, pick(0x1F1E6, 0x1F1FF));
            break;
          default:
            append_utf8(s, pick('0', '9'));
            append_utf8(s, 0xFE0F);
            append_utf8(s, 0x20E3);
            break;
        }
        break;
      }
      case 9:
      case 10: {  // any code point of any plane (no surrogates), including noncharacters / PUA
        uint32_t cp;
        switch (pick(0, 3)) {
          case 0: cp = pick(0x80, 0xFFFF); break;
          case 1: cp = pick(0x10000, 0x3FFFF); break;
          case 2: cp = pick(0xE0000, 0x10FFFF); break;
          default: cp = pick(0, 0x10FFFF); break;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        if (pick(0, 15) == 0) cp = pick(0, 1) ? 0xFFFE : 0x10FFFF;
        append_utf8(s, cp);
        break;
      }
      case 11:  // digits and numbers
        for (uint32_t k = pick(1, 12); k > 0; --k) s.push_back(static_cast<char>(pick('0', '9')));
        if (pick(0, 1)) append_utf8(s, pick(0x660, 0x669));  // Arabic-Indic digits
        break;
      case 12:  // contractions and clean-up patterns (" .", " n't", " 's" ...)
        s += std::vector<std::string>{" .", " ?", " !", " ,", " ' ", " n't", " 'm", " 's", " 've",
                                      " 're", "'S", "'ll", "'D"}[pick(0, 12)];
        break;
      default:  // the metaspace character and zero-width characters
        append_utf8(s, std::vector<uint32_t>{0x2581, 0x200B, 0x200C, 0x200D, 0xFEFF, 0x2060, 0xFFFD}[pick(0, 6)]);
        break;
    }
  }

  std::mt19937_64 rng_;
};

// NFC through utf8proc with an explicit length (embedded NULs survive).
std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string r = n >= 0 ? std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n)) : "<nfc error>";
  std::free(out);
  return r;
}

std::string expected_roundtrip(const std::string& model, const std::string& s) {
  if (model == "tiny-phi" || model == "tiny-gptoss") return s;
  if (model == "tiny-llama3") return clean_up_tokenization(s);
  if (model == "tiny-qwen3") return nfc(s);
  // llama2 / qwen2 / gemma3: every U+2581 decodes as a space.
  std::string out;
  size_t pos = 0, hit;
  while ((hit = s.find("\xE2\x96\x81", pos)) != std::string::npos) {
    out.append(s, pos, hit - pos);
    out.push_back(' ');
    pos = hit + 3;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// Feeds `output` to a detokenizer primed with `prompt`; checks every step and returns the text.
std::string stream(const std::shared_ptr<const Tokenizer>& tok, const std::vector<int32_t>& prompt,
                   const std::vector<int32_t>& output, bool skip_special, const std::string& expected,
                   std::string* failure) {
  IncrementalDetokenizer detok(tok, prompt, skip_special);
  std::string concat;
  for (size_t i = 0; i < output.size(); ++i) {
    const std::string delta = detok.add(output[i]);
    concat += delta;
    if (!valid_utf8(delta) && failure->empty()) *failure = "delta " + std::to_string(i) + " is not valid UTF-8";
    if (expected.compare(0, detok.text().size(), detok.text()) != 0 && failure->empty()) {
      *failure = "text after token " + std::to_string(i) + " is not a prefix of the final text: " +
                 nlohmann::json(detok.text()).dump() + " vs " + nlohmann::json(expected).dump();
    }
  }
  concat += detok.flush();
  if (concat != detok.text() && failure->empty()) *failure = "deltas do not add up to text()";
  return concat;
}

std::string dump(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string dump(const std::vector<int32_t>& ids) { return nlohmann::json(ids).dump(); }

class RoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTripTest, RandomStringsAndStreaming) {
  const std::string model = GetParam();
  auto tok = load_reference(model);
  ASSERT_NE(tok, nullptr);
  // Strings containing an added token of any reference tokenizer are regenerated: those are
  // split out before normalization, a different (and separately tested) path.
  std::vector<std::string> added_contents;
  for (const auto& m : reference_models()) {
    auto t = load_reference(m);
    ASSERT_NE(t, nullptr);
    for (int32_t id = 0; id < t->vocab_size(); ++id) {
      if (t->is_added_token(id)) added_contents.push_back(t->id_to_token(id));
    }
  }
  auto has_added = [&](const std::string& s) {
    for (const auto& c : added_contents) {
      if (s.find(c) != std::string::npos) return true;
    }
    return false;
  };

  const auto t0 = std::chrono::steady_clock::now();
  TextGenerator gen(kSeed);
  std::mt19937_64 split_rng(kSeed + 1);
  int roundtrip_ok = 0, stream_ok = 0, prompt_stream_ok = 0, failures = 0;
  for (int n = 0; n < kNumStrings; ++n) {
    std::string s = gen.next();
    while (has_added(s)) s = gen.next();
    ASSERT_TRUE(valid_utf8(s));
    const auto ids = tok->encode(s, false);
    const std::string decoded = tok->decode(ids);
    const std::string expected = expected_roundtrip(model, s);
    bool ok = true;
    if (decoded != expected) {
      ok = false;
      if (++failures <= 10) {
        ADD_FAILURE() << model << " string " << n << ": decode(encode(s)) != expected\n  s        = " << dump(s)
                      << "\n  ids      = " << dump(ids) << "\n  decoded  = " << dump(decoded)
                      << "\n  expected = " << dump(expected);
      }
    }
    roundtrip_ok += ok;

    // Streaming without a prompt: deltas add up to decode(ids).
    const std::string full = tok->decode(ids, true);
    std::string failure;
    const std::string streamed = stream(tok, {}, ids, true, full, &failure);
    if (streamed != full || !failure.empty()) {
      if (++failures <= 10) {
        ADD_FAILURE() << model << " string " << n << ": streaming mismatch (" << failure << ")\n  ids = " << dump(ids)
                      << "\n  streamed = " << dump(streamed) << "\n  decode   = " << dump(full);
      }
    } else {
      ++stream_ok;
    }

    // Streaming with a prompt: the output text is what the output ids add to the prompt's text.
    // Split points inside a UTF-8 character have no well-defined answer and move forward.
    DecodeOptions raw;
    raw.skip_special_tokens = true;
    raw.clean_up_tokenization_spaces = false;
    const std::string raw_all = tok->decode(ids, raw);
    size_t k = ids.empty() ? 0 : split_rng() % (ids.size() + 1);
    std::string raw_prompt;
    for (;; ++k) {
      raw_prompt = tok->decode(std::span<const int32_t>(ids).first(k), raw);
      if (raw_all.compare(0, raw_prompt.size(), raw_prompt) == 0) break;
    }
    std::string expected_out = raw_all.substr(raw_prompt.size());
    if (tok->clean_up_tokenization_spaces()) expected_out = clean_up_tokenization(expected_out);
    const std::vector<int32_t> prompt(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k));
    const std::vector<int32_t> output(ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end());
    failure.clear();
    const std::string streamed_out = stream(tok, prompt, output, true, expected_out, &failure);
    if (streamed_out != expected_out || !failure.empty()) {
      if (++failures <= 10) {
        ADD_FAILURE() << model << " string " << n << ": prompt streaming mismatch (" << failure << ")\n  prompt = "
                      << dump(prompt) << "\n  output = " << dump(output) << "\n  streamed = " << dump(streamed_out)
                      << "\n  expected = " << dump(expected_out);
      }
    } else {
      ++prompt_stream_ok;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ property ] " << model << ": " << roundtrip_ok << "/" << kNumStrings << " round trips, "
            << stream_ok << "/" << kNumStrings << " streams, " << prompt_stream_ok << "/" << kNumStrings
            << " prompted streams (" << secs << " s)\n";
  EXPECT_EQ(roundtrip_ok, kNumStrings);
  EXPECT_EQ(stream_ok, kNumStrings);
  EXPECT_EQ(prompt_stream_ok, kNumStrings);
}

// Random id sequences: byte tokens, special tokens, ids past the vocabulary. Whatever the text,
// streaming must add up to decode().
TEST_P(RoundTripTest, RandomIdStreams) {
  const std::string model = GetParam();
  auto tok = load_reference(model);
  ASSERT_NE(tok, nullptr);
  std::mt19937_64 rng(kSeed + 7);
  std::vector<int32_t> specials, bytes;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    if (tok->is_added_token(id)) specials.push_back(id);
    const std::string t = tok->id_to_token(id);
    if (t.size() == 6 && t.rfind("<0x", 0) == 0) bytes.push_back(id);
  }
  // Byte-level vocabularies: single-byte tokens are the first 256 ids.
  if (bytes.empty()) {
    for (int32_t id = 0; id < 256; ++id) bytes.push_back(id);
  }
  int ok = 0;
  constexpr int kSequences = 2000;
  for (int n = 0; n < kSequences; ++n) {
    std::vector<int32_t> ids(rng() % 24);
    for (auto& id : ids) {
      switch (rng() % 6) {
        case 0: id = specials.empty() ? 0 : specials[rng() % specials.size()]; break;
        case 1: case 2: id = bytes[rng() % bytes.size()]; break;
        case 3: id = static_cast<int32_t>(tok->vocab_size() + rng() % 16); break;  // out of range
        default: id = static_cast<int32_t>(rng() % static_cast<uint64_t>(tok->vocab_size())); break;
      }
    }
    const bool skip = rng() % 2 == 0;
    DecodeOptions opts;
    opts.skip_special_tokens = skip;
    const std::string full = tok->decode(ids, opts);
    std::string failure;
    const std::string streamed = stream(tok, {}, ids, skip, full, &failure);
    if (streamed == full && failure.empty() && valid_utf8(full)) {
      ++ok;
    } else if (n - ok <= 10) {
      ADD_FAILURE() << model << " sequence " << n << " (skip_special=" << skip << "): " << failure
                    << "\n  ids = " << dump(ids) << "\n  streamed = " << dump(streamed)
                    << "\n  decode   = " << dump(full);
    }
  }
  std::cout << "[ property ] " << model << ": " << ok << "/" << kSequences << " random id streams\n";
  EXPECT_EQ(ok, kSequences);
}

// The tokenizer is shared between threads (the BPE word cache is the only mutable state).
TEST_P(RoundTripTest, ConcurrentEncodeMatchesSerial) {
  auto tok = load_reference(GetParam());
  ASSERT_NE(tok, nullptr);
  TextGenerator gen(kSeed + 3);
  std::vector<std::string> texts(400);
  for (auto& t : texts) t = gen.next();
  std::vector<std::vector<int32_t>> serial;
  for (const auto& t : texts) serial.push_back(tok->encode(t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i * 7 + static_cast<size_t>(w) * 13 + static_cast<size_t>(round)) % texts.size();
          if (tok->encode(texts[k]) != serial[k]) ++mismatches;
          if (tok->decode(serial[k]) != tok->decode(serial[k])) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, RoundTripTest, ::testing::ValuesIn(reference_models()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

}  // namespace
}  // namespace vllm::test
