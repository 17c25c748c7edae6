// Component-level tests on small synthetic configurations: normalizers, pre-tokenizers (all five
// split behaviours), decoders, added tokens (lstrip / rstrip / single_word / normalized),
// post-processors, WordPiece, and the streaming detokenizer's hold-back rules. Expected values
// follow the `tokenizers` library's documented behaviour and its own unit tests.
#include "tokenizer_test_util.h"
#include "vllm/tokenizer/components.h"
#include "vllm/tokenizer/unicode.h"

namespace vllm::test {
namespace {

using Strings = std::vector<std::string>;

Strings pretok(const std::string& json, const std::string& text, bool at_start = true) {
  auto p = tok::make_pre_tokenizer(nlohmann::json::parse(json), tok::JsonPath("test.json", "pre_tokenizer"));
  std::vector<tok::Piece> pieces{{text, at_start}};
  p->pre_tokenize(pieces);
  Strings out;
  for (const auto& piece : pieces) out.push_back(piece.text);
  return out;
}

std::string normalize(const std::string& json, std::string text) {
  auto n = tok::make_normalizer(nlohmann::json::parse(json), tok::JsonPath("test.json", "normalizer"));
  n->normalize(text);
  return text;
}

Strings decode_chain(const std::string& json, Strings tokens) {
  auto d = tok::make_decoder(nlohmann::json::parse(json), tok::JsonPath("test.json", "decoder"));
  d->decode_chain(tokens);
  return tokens;
}

std::string split_json(const std::string& pattern_kind, const std::string& pattern, const std::string& behavior,
                       bool invert = false) {
  nlohmann::json j = {{"type", "Split"},
                      {"pattern", {{pattern_kind, pattern}}},
                      {"behavior", behavior},
                      {"invert", invert}};
  return j.dump();
}

TEST(Normalizers, UnicodeForms) {
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(normalize(R"({"type":"NFD"})", "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFKC"})", "\xEF\xAC\x81 \xE2\x91\xA0"), "fi 1");  // ﬁ ①
  EXPECT_EQ(normalize(R"({"type":"NFKD"})", "\xEF\xAC\x81\xC3\xA9"), "fie\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFC"})", std::string("a\0b", 3)), std::string("a\0b", 3));  // NUL kept
}

TEST(Normalizers, LowercaseStripPrependReplaceSequence) {
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "HeLLo \xC3\x89T\xC3\x89 \xC4\xB0"), "hello \xC3\xA9t\xC3\xA9 i\xCC\x87");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":true})", " \t hi there \xE3\x80\x80\n"),
            "hi there");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":false,"strip_right":true})", "  hi  "), "  hi");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"\u2581"})", "hi"), "\xE2\x96\x81hi");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"\u2581"})", ""), "");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":" "},"content":"\u2581"})", "a b  c"),
            "a\xE2\x96\x81" "b\xE2\x96\x81\xE2\x96\x81" "c");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\n b"), "a b");
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"}]})",
                      "\xEF\xBC\xA1\xEF\xBC\xA2"),  // fullwidth "ＡＢ"
            "ab");
}

TEST(PreTokenizers, SplitBehaviors) {
  const std::string text = "How are you  doing?";
  EXPECT_EQ(pretok(split_json("String", " ", "Removed"), text), (Strings{"How", "are", "you", "doing?"}));
  EXPECT_EQ(pretok(split_json("String", " ", "Isolated"), text),
            (Strings{"How", " ", "are", " ", "you", " ", " ", "doing?"}));
  EXPECT_EQ(pretok(split_json("String", " ", "MergedWithPrevious"), text),
            (Strings{"How ", "are ", "you ", " ", "doing?"}));
  EXPECT_EQ(pretok(split_json("String", " ", "MergedWithNext"), text),
            (Strings{"How", " are", " you", " ", " doing?"}));
  EXPECT_EQ(pretok(split_json("String", " ", "Contiguous"), text),
            (Strings{"How", " ", "are", " ", "you", "  ", "doing?"}));
  // invert: the matches are the pieces and the rest the delimiters.
  EXPECT_EQ(pretok(split_json("Regex", "\\w+|[^\\w\\s]+", "Removed", true), "Hey friend!     How are you?!?"),
            (Strings{"Hey", "friend", "!", "How", "are", "you", "?!?"}));
  // Oniguruma's \s includes U+0085 (NEL); the PCRE2 translation keeps that.
  EXPECT_EQ(pretok(split_json("Regex", "\\s+", "Removed"), "a\xC2\x85" "b"), (Strings{"a", "b"}));
  EXPECT_EQ(pretok(split_json("Regex", "\\S+", "Removed", true), "a\xC2\x85" "b"), (Strings{"a", "b"}));
}

TEST(PreTokenizers, Llama3Regex) {
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  EXPECT_EQ(pretok(split_json("Regex", llama3, "Isolated"), "I'M 12345 ok  \n\n x"),
            (Strings{"I", "'M", " ", "123", "45", " ok", "  \n\n", " x"}));
}

TEST(PreTokenizers, ByteLevel) {
  EXPECT_EQ(pretok(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})",
                   "Hello my friend, how is your day going?"),
            (Strings{"\xC4\xA0Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ",", "\xC4\xA0how", "\xC4\xA0is",
                     "\xC4\xA0your", "\xC4\xA0" "day", "\xC4\xA0going", "?"}));
  EXPECT_EQ(pretok(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "a b\n"),
            (Strings{"a\xC4\xA0" "b\xC4\x8A"}));
  // The GPT-2 pattern: contractions, digit runs, whitespace before a word stays separate.
  EXPECT_EQ(pretok(R"({"type":"ByteLevel","add_prefix_space":false})", "it's  42x"),
            (Strings{"it", "'s", "\xC4\xA0", "\xC4\xA0" "42", "x"}));
}

TEST(PreTokenizers, MetaspacePrependSchemes) {
  const std::string always = R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always","split":true})";
  EXPECT_EQ(pretok(always, "Hey friend!"), (Strings{"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend!"}));
  EXPECT_EQ(pretok(always, "Hey   friend!"),
            (Strings{"\xE2\x96\x81Hey", "\xE2\x96\x81", "\xE2\x96\x81", "\xE2\x96\x81" "friend!"}));
  const std::string first = R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"first","split":false})";
  EXPECT_EQ(pretok(first, "Hey you", true), (Strings{"\xE2\x96\x81Hey\xE2\x96\x81you"}));
  EXPECT_EQ(pretok(first, "how are", false), (Strings{"how\xE2\x96\x81" "are"}));  // not at the start
  const std::string never = R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"never"})";
  EXPECT_EQ(pretok(never, "a b"), (Strings{"a", "\xE2\x96\x81" "b"}));
  const std::string legacy = R"({"type":"Metaspace","replacement":"\u2581","add_prefix_space":false})";
  EXPECT_EQ(pretok(legacy, "a"), (Strings{"a"}));
}

TEST(PreTokenizers, DigitsPunctuationWhitespace) {
  EXPECT_EQ(pretok(R"({"type":"Digits","individual_digits":true})", "Hey 123 friend!"),
            (Strings{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pretok(R"({"type":"Digits","individual_digits":false})", "Hey 123 friend!"),
            (Strings{"Hey ", "123", " friend!"}));
  EXPECT_EQ(pretok(R"({"type":"Punctuation"})", "Hey friend!     How are you?!?"),
            (Strings{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(pretok(R"({"type":"Punctuation","behavior":"Contiguous"})", "a?!?b"), (Strings{"a", "?!?", "b"}));
  EXPECT_EQ(pretok(R"({"type":"Whitespace"})", "How are you doing?"),
            (Strings{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(pretok(R"({"type":"Whitespace"})", "\n"), Strings{});
  EXPECT_EQ(pretok(R"({"type":"Whitespace"})", "caf\xC3\xA9s!! e\xCC\x81t\xC3\xA9"),
            (Strings{"caf\xC3\xA9s", "!!", "e\xCC\x81t\xC3\xA9"}));
  EXPECT_EQ(pretok(R"({"type":"WhitespaceSplit"})", "Hey man!\xE3\x80\x80you"), (Strings{"Hey", "man!", "you"}));
  EXPECT_EQ(pretok(R"({"type":"BertPreTokenizer"})", "Hey friend!  ok"), (Strings{"Hey", "friend", "!", "ok"}));
  EXPECT_EQ(pretok(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]})",
                   "ab12 c3"),
            (Strings{"ab", "1", "2", "c", "3"}));
}

TEST(Decoders, Components) {
  EXPECT_EQ(decode_chain(R"({"type":"Strip","content":"H","start":1,"stop":0})", {"Hey", " friend!", "HHH"}),
            (Strings{"ey", " friend!", "HH"}));
  EXPECT_EQ(decode_chain(R"({"type":"Strip","content":"y","start":0,"stop":1})", {"Hey", " friend!", ""}),
            (Strings{"He", " friend!", ""}));
  EXPECT_EQ(decode_chain(R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always"})",
                         {"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend!"}),
            (Strings{"Hey", " friend!"}));
  EXPECT_EQ(decode_chain(R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"never"})",
                         {"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend!"}),
            (Strings{" Hey", " friend!"}));
  EXPECT_EQ(decode_chain(R"({"type":"ByteFallback"})", {"<0xE5>", "<0x8f>", "<0xab>", "a"}), (Strings{"\xE5\x8F\xAB", "a"}));
  EXPECT_EQ(decode_chain(R"({"type":"ByteFallback"})", {"<0xE5>", "<0x8f>", "a"}),
            (Strings{"\xEF\xBF\xBD", "\xEF\xBF\xBD", "a"}));
  EXPECT_EQ(decode_chain(R"({"type":"ByteLevel"})", {"Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ","}),
            (Strings{"Hello my friend,"}));
  EXPECT_EQ(decode_chain(R"({"type":"ByteLevel"})", {"\xC3\xA4", "<|end|>"}),  // byte 0xE4 alone, then text
            (Strings{"\xEF\xBF\xBD<|end|>"}));
  EXPECT_EQ(decode_chain(R"({"type":"WordPiece","prefix":"##","cleanup":true})",
                         {"##uelo", "Ara", "##\xC3\xBAj", "##o", "No", "##guera", "do", "not", "."}),
            (Strings{"##uelo", " Ara", "\xC3\xBAj", "o", " No", "guera", " do", " not", "."}));
  EXPECT_EQ(decode_chain(R"({"type":"BPEDecoder","suffix":"</w>"})", {"My</w>", "na", "me</w>"}),
            (Strings{"My ", "na", "me"}));
  EXPECT_EQ(decode_chain(R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"\u2581"},"content":" "},
                                                          {"type":"ByteFallback"},{"type":"Fuse"},
                                                          {"type":"Strip","content":" ","start":1,"stop":0}]})",
                         {"\xE2\x96\x81Hi", "<0x21>", "\xE2\x96\x81you"}),
            (Strings{"Hi! you"}));
}

TEST(Decoders, CleanUpTokenization) {
  EXPECT_EQ(clean_up_tokenization("Hello , world . I 'm here , don 't ; it 's ok ! yes ? we 're they 've"),
            "Hello, world. I'm here, don 't ; it's ok! yes? we're they've");
  EXPECT_EQ(clean_up_tokenization("can n't ' go ' ' x"), "cann't'go'' x");
  EXPECT_EQ(tok::wordpiece_cleanup("I do not know ."), "I don't know.");
}

// A byte-level tokenizer with one token per byte (ids 0..255) and no merges: every encode is
// the byte sequence, which makes the effect of added-token options plain to see.
std::string byte_tokenizer_json(const nlohmann::json& added, const nlohmann::json& normalizer = nullptr) {
  nlohmann::json vocab = nlohmann::json::object();
  const auto& alphabet = tok::byte_level_alphabet();
  for (int b = 0; b < 256; ++b) vocab[alphabet[static_cast<size_t>(b)]] = b;
  nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
                      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                      {"decoder", {{"type", "ByteLevel"}}},
                      {"added_tokens", added},
                      {"normalizer", normalizer}};
  return j.dump();
}

std::vector<int32_t> bytes_of(const std::string& s) {
  std::vector<int32_t> ids;
  for (char c : s) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(AddedTokens, StripSingleWordNormalizedLongest) {
  const nlohmann::json added = nlohmann::json::parse(R"([
    {"id": 300, "content": "<tok>", "special": true, "lstrip": true, "rstrip": true, "normalized": false},
    {"id": 301, "content": "<raw>", "special": true, "normalized": false},
    {"id": 302, "content": "cat", "special": false, "single_word": true, "normalized": false},
    {"id": 303, "content": "ab", "special": false, "normalized": false},
    {"id": 304, "content": "abc", "special": false, "normalized": false},
    {"id": 305, "content": "HELLO", "special": false, "normalized": true},
    {"id": 306, "content": "WORLD", "special": false, "normalized": false}
  ])");
  auto tok = Tokenizer::from_json(byte_tokenizer_json(added, {{"type", "Lowercase"}}));
  EXPECT_EQ(tok->vocab_size(), 307);
  EXPECT_EQ(tok->encode("x  <tok>  y"), cat({bytes_of("x"), {300}, bytes_of("y")}));
  EXPECT_EQ(tok->encode("x  <raw>  y"), cat({bytes_of("x  "), {301}, bytes_of("  y")}));
  EXPECT_EQ(tok->encode("cat concat cat."), cat({{302}, bytes_of(" concat "), {302}, bytes_of(".")}));
  EXPECT_EQ(tok->encode("abcd ab"), cat({{304}, bytes_of("d "), {303}}));
  // "HELLO" is matched in the normalized (lowercased) text; "WORLD" only in the raw input.
  EXPECT_EQ(tok->encode("say Hello"), cat({bytes_of("say "), {305}}));
  EXPECT_EQ(tok->encode("WORLD World"), cat({{306}, bytes_of(" world")}));
  // Added tokens are split out with or without add_special_tokens, and decode back.
  EXPECT_EQ(tok->encode("<raw>", false), (std::vector<int32_t>{301}));
  EXPECT_EQ(tok->decode(tok->encode("a<raw>b")), "a<raw>b");
  EXPECT_EQ(tok->decode(tok->encode("a<raw>b"), true), "ab");
  EXPECT_EQ(tok->decode(tok->encode("a cat b"), true), "a cat b");  // non-special stays
}

TEST(PostProcessors, TemplateAndBert) {
  const std::string tmpl = R"({
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "un": 3, "##aff": 4, "##able": 5, "hello": 6}},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "added_tokens": [{"id": 1, "content": "[CLS]", "special": true}, {"id": 2, "content": "[SEP]", "special": true}],
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
      "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
      "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                         "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}
  })";
  auto tok = Tokenizer::from_json(tmpl, R"({"cls_token": "[CLS]"})");
  EXPECT_EQ(tok->encode("unaffable hello xyz"), (std::vector<int32_t>{1, 3, 4, 5, 6, 0, 2}));
  EXPECT_EQ(tok->encode("unaffable hello xyz", false), (std::vector<int32_t>{3, 4, 5, 6, 0}));
  EXPECT_EQ(tok->decode(tok->encode("unaffable hello xyz")), "[CLS] unaffable hello [UNK] [SEP]");
  EXPECT_EQ(tok->decode(tok->encode("unaffable hello xyz"), true), "unaffable hello [UNK]");
  // spaces_between_special_tokens=false: no space between consecutive added tokens.
  EXPECT_EQ(tok->decode({1, 2, 6, 2, 1}, false, true), "[CLS] [SEP] hello [SEP] [CLS]");
  EXPECT_EQ(tok->decode({1, 2, 6, 2, 1}, false, false), "[CLS][SEP] hello [SEP][CLS]");
  // The string form of a template and the Bert processor give the same ids.
  auto j = nlohmann::json::parse(tmpl);
  j["post_processor"]["single"] = "[CLS]:0 $A:0 [SEP]:0";
  EXPECT_EQ(Tokenizer::from_json(j.dump())->encode("hello"), (std::vector<int32_t>{1, 6, 2}));
  j["post_processor"] = {{"type", "BertProcessing"}, {"cls", {"[CLS]", 1}}, {"sep", {"[SEP]", 2}}};
  EXPECT_EQ(Tokenizer::from_json(j.dump())->encode("hello"), (std::vector<int32_t>{1, 6, 2}));
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors", {{{"type", "ByteLevel"}}, {{"type", "RobertaProcessing"}, {"cls", {"[CLS]", 1}}, {"sep", {"[SEP]", 2}}}}}};
  EXPECT_EQ(Tokenizer::from_json(j.dump())->encode("hello"), (std::vector<int32_t>{1, 6, 2}));
}

TEST(Models, WordPieceAndBpeOptions) {
  // WordPiece: a word longer than max_input_chars_per_word is unk.
  auto wp = Tokenizer::from_json(R"({
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "max_input_chars_per_word": 4,
              "vocab": {"[UNK]": 0, "abcd": 1, "a": 2, "##bcde": 3}},
    "pre_tokenizer": {"type": "WhitespaceSplit"}})");
  EXPECT_EQ(wp->encode("abcd abcde"), (std::vector<int32_t>{1, 0}));
  // BPE with continuing_subword_prefix / end_of_word_suffix, unk fusing and byte fallback.
  auto bpe = Tokenizer::from_json(R"({
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false,
              "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
              "vocab": {"<unk>": 0, "a": 1, "##b": 2, "##c</w>": 3, "ab": 4, "abc</w>": 5, "c</w>": 6},
              "merges": ["a ##b", "ab ##c</w>"]},
    "pre_tokenizer": {"type": "WhitespaceSplit"}})");
  EXPECT_EQ(bpe->encode("abc c"), (std::vector<int32_t>{5, 6}));
  // "x", "##y", "##a", "##b</w>" are all unknown: fuse_unk makes them one unk token.
  EXPECT_EQ(bpe->encode("xyab"), (std::vector<int32_t>{0}));
  auto fb = Tokenizer::from_json(R"({
    "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
              "vocab": {"<unk>": 0, "<0xC3>": 1, "<0xA9>": 2, "a": 3}, "merges": []},
    "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}})");
  EXPECT_EQ(fb->encode("a\xC3\xA9"), (std::vector<int32_t>{3, 1, 2}));
  EXPECT_EQ(fb->decode({3, 1, 2}), "a\xC3\xA9");
  EXPECT_EQ(fb->decode({3, 1}), "a\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizer, HoldsBackIncompleteCharacters) {
  auto tok = Tokenizer::from_json(byte_tokenizer_json(nlohmann::json::array()));
  const std::string text = "a\xE4\xB8\xAD\xF0\x9F\x98\x80z";  // a 中 😀 z
  IncrementalDetokenizer detok(tok, {});
  std::vector<std::string> deltas;
  for (int32_t id : tok->encode(text)) deltas.push_back(detok.add(id));
  deltas.push_back(detok.flush());
  EXPECT_EQ(deltas, (Strings{"a", "", "", "\xE4\xB8\xAD", "", "", "", "\xF0\x9F\x98\x80", "z", ""}));
  EXPECT_EQ(detok.text(), text);
  // A dangling lead byte comes out as U+FFFD at flush, as decode() gives it.
  IncrementalDetokenizer cut(tok, {});
  EXPECT_EQ(cut.add(0xE4), "");
  EXPECT_EQ(cut.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(tok->decode({0xE4}), "\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizer, PromptContextAndCleanup) {
  auto llama2 = load_reference("tiny-llama2");
  ASSERT_NE(llama2, nullptr);
  // SentencePiece-style: with the prompt as context the first output word keeps its space.
  const auto prompt = llama2->encode("Hello");
  const auto out = llama2->encode("Hello world", false);
  IncrementalDetokenizer detok(llama2, prompt);
  for (size_t i = 1; i < out.size(); ++i) detok.add(out[i]);  // " world"
  detok.flush();
  EXPECT_EQ(detok.text(), " world");
  // Without context the leading space of the first token is stripped, as decode() does.
  IncrementalDetokenizer bare(llama2, {});
  for (size_t i = 1; i < out.size(); ++i) bare.add(out[i]);
  bare.flush();
  EXPECT_EQ(bare.text(), llama2->decode(std::vector<int32_t>(out.begin() + 1, out.end())));

  auto llama3 = load_reference("tiny-llama3");
  ASSERT_NE(llama3, nullptr);
  const std::string text = "Hello , world . They 're here , aren 't they ?";
  const auto ids = llama3->encode(text, false);
  IncrementalDetokenizer clean(llama3, {});
  for (int32_t id : ids) clean.add(id);
  clean.flush();
  EXPECT_EQ(clean.text(), "Hello, world. They're here, aren 't they?");
  EXPECT_EQ(clean.text(), llama3->decode(ids));
}

}  // namespace
}  // namespace vllm::test
