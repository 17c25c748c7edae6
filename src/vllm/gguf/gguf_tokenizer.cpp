#include "vllm/gguf/gguf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "vllm/core/error.h"
#include "vllm/core/files.h"

namespace vllm::gguf {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, ErrorKind kind = ErrorKind::kModelLoad) {
  throw Error(path + ": " + what, kind);
}

json read_json(const std::string& path) {
  const std::string text = read_regular_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
}

// The pre-tokenizer regexes llama.cpp knows by name (tokenizer.ggml.pre), as tokenizer.json spells
// them.
constexpr const char* kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// llama.cpp's name for a tokenizer.json pre-tokenizer: a Split by the Llama-3 or Qwen2 regex then
// ByteLevel, or GPT-2's ByteLevel with its own regex.
std::string recognise_pre(const json& pre, const std::string& path) {
  if (pre.is_object() && pre.value("type", "") == "ByteLevel" && pre.value("use_regex", true)) return "gpt-2";
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers")) {
    for (const json& p : pre["pretokenizers"]) {
      if (p.value("type", "") != "Split" || !p.contains("pattern") || !p["pattern"].contains("Regex")) continue;
      const std::string re = p["pattern"]["Regex"].get<std::string>();
      if (re == kLlama3Split) return "llama-bpe";
      if (re == kQwen2Split) return "qwen2";
    }
  }
  fail(path, "the pre-tokenizer is not one llama.cpp names (Llama-3, Qwen2 or GPT-2 byte-level); give its name "
             "with --tokenizer-pre",
       ErrorKind::kUnsupported);
}

// A special token named in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> token_text(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// llama.cpp's converter marks added tokens that look like control tokens as CONTROL even when the
// tokenizer does not call them special.
bool looks_special(const std::string& t) {
  auto wrapped = [&](const std::string& a, const std::string& b) {
    return t.size() >= a.size() + b.size() && t.compare(0, a.size(), a) == 0 && t.compare(t.size() - b.size(), b.size(), b) == 0;
  };
  return t == "<pad>" || t == "<mask>" || wrapped("<|", "|>") || wrapped("<unused", ">");
}

}  // namespace

void write_tokenizer_metadata(GgufWriter& w, const TokenizerSource& src, const ModelConfig& c) {
  const fs::path dir(src.dir);
  std::map<int64_t, std::string> by_id;
  std::vector<std::string> merges;
  std::map<int64_t, bool> added;  // id -> special
  std::string pre = src.pre;

  const fs::path tj = dir / "tokenizer.json";
  if (path_type(tj.string()) == PathType::kRegular) {
    const json t = read_json(tj.string());
    const json& model = t.contains("model") ? t["model"] : json();
    if (!model.is_object() || model.value("type", "") != "BPE" || !model.contains("vocab") || !model.contains("merges"))
      fail(tj.string(), "only BPE tokenizers can be written as GGUF yet", ErrorKind::kUnsupported);
    if (model.value("byte_fallback", false) || !t.contains("pre_tokenizer") ||
        t["pre_tokenizer"].dump().find("ByteLevel") == std::string::npos)
      fail(tj.string(),
           "only byte-level BPE tokenizers (GPT-2 style, GGUF model 'gpt2') can be written as GGUF yet; this one is "
           "SentencePiece-style",
           ErrorKind::kUnsupported);
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) by_id[it.value().get<int64_t>()] = it.key();
    for (const json& m : model["merges"])
      merges.push_back(m.is_string() ? m.get<std::string>() : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
    for (const json& a : t.value("added_tokens", json::array())) {
      const int64_t id = a.at("id").get<int64_t>();
      by_id[id] = a.at("content").get<std::string>();
      added[id] = a.value("special", false);
    }
    if (pre.empty()) pre = recognise_pre(t["pre_tokenizer"], tj.string());
  } else {
    const fs::path vj = dir / "vocab.json", mt = dir / "merges.txt";
    if (path_type(vj.string()) != PathType::kRegular || path_type(mt.string()) != PathType::kRegular)
      fail(src.dir, "has no tokenizer.json, nor vocab.json and merges.txt");
    const json v = read_json(vj.string());
    for (auto it = v.begin(); it != v.end(); ++it) by_id[it.value().get<int64_t>()] = it.key();
    std::istringstream lines(read_regular_file(mt.string()));
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.rfind("#version", 0) == 0) continue;
      merges.push_back(line);
    }
    if (pre.empty()) pre = "gpt-2";
  }

  std::string cfg_path = src.config_path;
  if (cfg_path.empty() && path_type((dir / "tokenizer_config.json").string()) == PathType::kRegular)
    cfg_path = (dir / "tokenizer_config.json").string();
  const json cfg = cfg_path.empty() ? json::object() : read_json(cfg_path);
  if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object())
    for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
      const int64_t id = std::stoll(it.key());
      if (!by_id.count(id)) by_id[id] = it.value().value("content", "");
      added[id] = added[id] || it.value().value("special", false);
    }

  std::map<std::string, int64_t> id_of;
  for (const auto& [id, text] : by_id) id_of.emplace(text, id);
  auto lookup = [&](const char* key) -> std::optional<int64_t> {
    auto text = token_text(cfg, key);
    if (!text) return std::nullopt;
    auto it = id_of.find(*text);
    if (it == id_of.end()) fail(cfg_path, std::string(key) + " '" + *text + "' is not in the vocabulary");
    return it->second;
  };
  // Tokens the tokenizer config names (bos, eos, unk, pad) are special, as transformers treats them.
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
    if (auto id = lookup(key)) added[*id] = true;

  if (!by_id.empty() && by_id.rbegin()->first >= c.vocab_size)
    fail(src.dir, "token id " + std::to_string(by_id.rbegin()->first) + " is outside the model's vocab_size " +
                      std::to_string(c.vocab_size));
  std::vector<std::string> tokens(static_cast<size_t>(c.vocab_size));
  std::vector<int32_t> types(static_cast<size_t>(c.vocab_size));
  for (int64_t id = 0; id < c.vocab_size; ++id) {
    auto it = by_id.find(id);
    auto& tok = tokens[static_cast<size_t>(id)];
    auto& type = types[static_cast<size_t>(id)];
    if (it == by_id.end()) {
      tok = "[PAD" + std::to_string(id) + "]";
      type = static_cast<int32_t>(TokenType::kUnused);
      continue;
    }
    tok = it->second;
    auto a = added.find(id);
    if (a == added.end()) {
      type = static_cast<int32_t>(TokenType::kNormal);
    } else if (a->second || looks_special(tok)) {
      type = static_cast<int32_t>(TokenType::kControl);
    } else {
      // User-defined tokens are stored pre-normalized: SentencePiece's word marker as a space.
      for (size_t p; (p = tok.find("\xe2\x96\x81")) != std::string::npos;) tok.replace(p, 3, " ");
      type = static_cast<int32_t>(TokenType::kUserDefined);
    }
  }

  w.set("tokenizer.ggml.model", Value::string("gpt2"));
  w.set("tokenizer.ggml.pre", Value::string(pre));
  w.set("tokenizer.ggml.tokens", Value::string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", Value::int32_array(types));
  w.set("tokenizer.ggml.merges", Value::string_array(std::move(merges)));
  std::optional<int64_t> bos = lookup("bos_token"), eos = lookup("eos_token"), pad = lookup("pad_token");
  if (!bos && c.bos_token_id) bos = *c.bos_token_id;
  if (!eos && !c.eos_token_ids.empty()) eos = c.eos_token_ids.front();
  if (bos) w.set("tokenizer.ggml.bos_token_id", Value::u32(static_cast<uint32_t>(*bos)));
  if (eos) w.set("tokenizer.ggml.eos_token_id", Value::u32(static_cast<uint32_t>(*eos)));
  if (pad) w.set("tokenizer.ggml.padding_token_id", Value::u32(static_cast<uint32_t>(*pad)));
  // Written always, so that readers need no per-tokenizer default: what transformers does with
  // this tokenizer (tokenizer_config's add_bos_token, else no BOS).
  const bool add_bos = cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean() && cfg["add_bos_token"].get<bool>();
  w.set("tokenizer.ggml.add_bos_token", Value::boolean(add_bos));
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
    w.set("tokenizer.ggml.add_eos_token", Value::boolean(cfg["add_eos_token"].get<bool>()));
  if (cfg.contains("chat_template")) {
    const json& t = cfg["chat_template"];
    if (t.is_string()) {
      w.set("tokenizer.chat_template", Value::string(t.get<std::string>()));
    } else if (t.is_array()) {
      for (const json& named : t)
        if (named.value("name", "") == "default") w.set("tokenizer.chat_template", Value::string(named.value("template", "")));
    }
  }
}

bool has_tokenizer(const GgufFile& f) { return f.find("tokenizer.ggml.model") != nullptr; }

namespace {

json split_then_bytes(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
}

std::optional<std::string> token_at(const GgufFile& f, const std::vector<std::string>& tokens, const char* key) {
  const Value* v = f.find(key);
  if (!v) return std::nullopt;
  const int64_t id = v->as_int(key);
  if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
    fail(f.path(), std::string(key) + " " + std::to_string(id) + " is not a token id (the vocabulary has " +
                       std::to_string(tokens.size()) + ")");
  return tokens[static_cast<size_t>(id)];
}

}  // namespace

json tokenizer_json(const GgufFile& f) {
  const std::string model = f.get("tokenizer.ggml.model").as_string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail(f.path(),
         "GGUF tokenizer model '" + model + "' is not supported yet (only byte-level BPE, 'gpt2'); pass --tokenizer "
         "with the model's tokenizer folder",
         ErrorKind::kUnsupported);
  const std::string pre = f.find("tokenizer.ggml.pre") ? f.get("tokenizer.ggml.pre").as_string("tokenizer.ggml.pre") : "default";
  json pre_tokenizer, normalizer = nullptr;
  bool ignore_merges = false;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    pre_tokenizer = split_then_bytes(kLlama3Split);
    ignore_merges = true;
  } else if (pre == "qwen2") {
    pre_tokenizer = split_then_bytes(kQwen2Split);
    normalizer = {{"type", "NFC"}};
  } else if (pre == "gpt-2" || pre == "phi-2" || pre == "default") {
    pre_tokenizer = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  } else {
    fail(f.path(),
         "GGUF pre-tokenizer '" + pre + "' is not supported yet (supported: llama-bpe, qwen2, gpt-2, phi-2); pass "
         "--tokenizer with the model's tokenizer folder",
         ErrorKind::kUnsupported);
  }
  const std::vector<std::string>& tokens = f.get("tokenizer.ggml.tokens").as_strings("tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), static_cast<int64_t>(TokenType::kNormal));
  if (const Value* t = f.find("tokenizer.ggml.token_type")) {
    types = t->as_ints("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
      fail(f.path(), "tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                         std::to_string(tokens.size()) + " tokens");
  }
  json vocab = json::object(), added = json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!vocab.contains(tokens[id])) vocab[tokens[id]] = id;  // the first id of a repeated string
    const auto type = static_cast<TokenType>(types[id]);
    if (type == TokenType::kControl || type == TokenType::kUserDefined)
      added.push_back({{"id", id},
                       {"content", tokens[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", type == TokenType::kUserDefined},
                       {"special", type == TokenType::kControl}});
  }
  json merges = json::array();
  if (const Value* m = f.find("tokenizer.ggml.merges")) merges = m->as_strings("tokenizer.ggml.merges");
  json post = nullptr;
  const bool add_bos = f.find("tokenizer.ggml.add_bos_token") &&
                       f.get("tokenizer.ggml.add_bos_token").as_bool("tokenizer.ggml.add_bos_token");
  if (add_bos) {
    const auto bos = token_at(f, tokens, "tokenizer.ggml.bos_token_id");
    if (!bos) fail(f.path(), "tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id");
    const int64_t bos_id = f.get("tokenizer.ggml.bos_token_id").as_int("");
    const json special = {{"SpecialToken", {{"id", *bos}, {"type_id", 0}}}};
    post = {{"type", "TemplateProcessing"},
            {"single", {special, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair", {special, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, special, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{*bos, {{"id", *bos}, {"ids", {bos_id}}, {"tokens", {*bos}}}}}}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", post},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", ignore_merges},
            {"vocab", vocab},
            {"merges", merges}}}};
}

json tokenizer_config_json(const GgufFile& f) {
  const std::vector<std::string>& tokens = f.get("tokenizer.ggml.tokens").as_strings("tokenizer.ggml.tokens");
  json c = {{"clean_up_tokenization_spaces", false}};
  if (auto bos = token_at(f, tokens, "tokenizer.ggml.bos_token_id")) c["bos_token"] = *bos;
  if (auto eos = token_at(f, tokens, "tokenizer.ggml.eos_token_id")) c["eos_token"] = *eos;
  if (auto pad = token_at(f, tokens, "tokenizer.ggml.padding_token_id")) c["pad_token"] = *pad;
  if (const Value* v = f.find("tokenizer.ggml.add_bos_token")) c["add_bos_token"] = v->as_bool("tokenizer.ggml.add_bos_token");
  if (const Value* v = f.find("tokenizer.ggml.add_eos_token")) c["add_eos_token"] = v->as_bool("tokenizer.ggml.add_eos_token");
  if (const Value* v = f.find("tokenizer.chat_template")) c["chat_template"] = v->as_string("tokenizer.chat_template");
  return c;
}

}  // namespace vllm::gguf
