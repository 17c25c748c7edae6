// vllm tokenize | detokenize | render-chat: the model folder's tokenizer and chat template from
// the command line, for users checking what a model sees and for tests.
//
//   vllm tokenize    -m DIR --text "Hello" [--no-special-tokens] [--json]
//   vllm detokenize  -m DIR --ids 1,2,3 [--skip-special-tokens]
//   vllm render-chat -m DIR --messages '[{"role":"user","content":"Hi"}]' [--no-generation-prompt]
//                    [--chat-template FILE] [--tools JSON] [--chat-template-kwargs JSON] [--tokenize]
//
// --text, --ids and --messages read standard input when given "-".
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vllm/chat/chat_template.h"
#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::cli {

namespace {

struct TokenizeArgs {
  std::string model, tokenizer;
  std::string text, ids, messages, chat_template, tools, kwargs;
  bool no_special_tokens = false, skip_special_tokens = false, json = false;
  bool no_generation_prompt = false, tokenize = false;
};

std::string stdin_if_dash(const std::string& v) {
  if (v != "-") return v;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

std::shared_ptr<const Tokenizer> load(const TokenizeArgs& a) {
  const std::string dir = a.tokenizer.empty() ? resolve_model_folder(a.model) : a.tokenizer;
  return Tokenizer::from_folder(dir);
}

nlohmann::ordered_json parse_json(const std::string& flag, const std::string& text) {
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e999)
    throw Error(flag + " is not valid JSON: " + e.what());
  }
}

void print_ids(const std::vector<int32_t>& ids, bool json) {
  if (json) {
    std::cout << nlohmann::json(ids).dump() << "\n";
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
  std::cout << "\n";
}

int run_tokenize(const TokenizeArgs& a) {
  auto tok = load(a);
  print_ids(tok->encode(stdin_if_dash(a.text), !a.no_special_tokens), a.json);
  return 0;
}

int run_detokenize(const TokenizeArgs& a) {
  auto tok = load(a);
  std::vector<int32_t> ids;
  std::stringstream ss(stdin_if_dash(a.ids));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (v < 0 || v >= tok->vocab_size()) throw Error("--ids: token id " + item + " is outside the vocabulary (size " +
                                                       std::to_string(tok->vocab_size()) + ")");
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::logic_error&) {
      throw Error("--ids: '" + item + "' is not a token id (expected comma-separated integers)");
    }
  }
  std::cout << tok->decode(ids, a.skip_special_tokens) << "\n";
  return 0;
}

int run_render_chat(const TokenizeArgs& a) {
  auto tok = load(a);
  std::string source;
  if (!a.chat_template.empty()) {
    // vLLM's --chat-template takes a file or the template itself. Only a regular file is read
    // (a FIFO would block); something else there is an error.
    const PathType type = path_type(a.chat_template);
    source = type == PathType::kMissing ? a.chat_template : read_regular_file(a.chat_template, ErrorKind::kInvalidArgument);
  } else if (auto t = tok->chat_template()) {
    source = *t;
  } else {
    throw Error("the tokenizer has no chat template; give one with --chat-template");
  }
  ChatTemplate tmpl(source);
  ChatTemplateInputs in;
  in.messages = parse_json("--messages", stdin_if_dash(a.messages));
  if (!in.messages.is_array()) throw Error("--messages must be a JSON list of messages");
  if (!a.tools.empty()) in.tools = parse_json("--tools", a.tools);
  if (!a.kwargs.empty()) in.extra_kwargs = parse_json("--chat-template-kwargs", a.kwargs);
  in.add_generation_prompt = !a.no_generation_prompt;
  in.bos_token = tok->bos_token();
  in.eos_token = tok->eos_token();
  const std::string prompt = apply_chat_template(tmpl, in);
  // Rendered templates carry their own special tokens (vLLM tokenizes them without adding more).
  if (a.tokenize) print_ids(tok->encode(prompt, false), a.json);
  else std::cout << prompt;
  return 0;
}

void add_model_options(CLI::App* sub, TokenizeArgs* a) {
  sub->add_option("-m,--model", a->model, "Model folder (default: the embedded default model)");
  sub->add_option("--tokenizer", a->tokenizer, "Tokenizer folder (default: the model's)");
}

}  // namespace

Runner add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("tokenize", "Text to token ids with the model's tokenizer");
  add_model_options(sub, a.get());
  sub->add_option("--text", a->text, "Text to encode (\"-\": standard input)")->required();
  sub->add_flag("--no-special-tokens", a->no_special_tokens, "Do not add BOS/EOS or template tokens");
  sub->add_flag("--json", a->json, "Print a JSON list");
  return [a] { return run_tokenize(*a); };
}

Runner add_detokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("detokenize", "Token ids to text with the model's tokenizer");
  add_model_options(sub, a.get());
  sub->add_option("--ids", a->ids, "Comma-separated token ids (\"-\": standard input)")->required();
  sub->add_flag("--skip-special-tokens", a->skip_special_tokens, "Leave special tokens out");
  return [a] { return run_detokenize(*a); };
}

Runner add_render_chat(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("render-chat", "Render messages with the model's chat template");
  add_model_options(sub, a.get());
  sub->add_option("--messages", a->messages, "JSON list of {role, content} (\"-\": standard input)")->required();
  sub->add_option("--chat-template", a->chat_template, "Template file or the template itself");
  sub->add_option("--tools", a->tools, "JSON list of tool schemas");
  sub->add_option("--chat-template-kwargs", a->kwargs, "JSON object of extra template variables");
  sub->add_flag("--no-generation-prompt", a->no_generation_prompt, "add_generation_prompt=False");
  sub->add_flag("--tokenize", a->tokenize, "Print token ids instead of text");
  sub->add_flag("--json", a->json, "With --tokenize: print a JSON list");
  return [a] { return run_render_chat(*a); };
}

}  // namespace vllm::cli
