// vllm chat | vllm complete: vLLM's small interactive clients of a running server. One message
// with --quick, otherwise one line of stdin per turn; replies stream to stdout as they arrive.
// `chat` keeps the conversation (system prompt, user and assistant turns); `complete` sends each
// line as a new prompt.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "vllm/cli/commands.h"
#include "vllm/cli/openai_client.h"
#include "vllm/core/error.h"

namespace vllm::cli {

namespace {

struct ClientArgs {
  std::string url = "http://localhost:8000/v1";
  std::string model_name;  // "": the first model the server lists
  std::string api_key;
  std::string system_prompt;
  std::string quick;
  bool quick_given = false;
  // Sent only when set: unset, the server applies the model's generation_config defaults.
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::optional<int64_t> seed;
};

void add_client_flags(CLI::App* sub, ClientArgs& a) {
  sub->add_option("--url", a.url, "URL of the server's OpenAI API")->capture_default_str();
  sub->add_option("--model-name", a.model_name, "Model to use (default: the first the server lists)");
  sub->add_option("--api-key", a.api_key, "API key (default: env OPENAI_API_KEY)");
  sub->add_option("-q,--quick", a.quick, "Send this one message, print the answer and exit");
  sub->add_option("--temperature", a.temperature, "Sampling temperature (default: the model's)");
  sub->add_option("--max-tokens", a.max_tokens, "Most tokens per answer (default: the server's)");
  sub->add_option("--seed", a.seed, "Sampling seed");
}

void prepare(ClientArgs& a, CLI::App* sub) {
  a.quick_given = sub->count("--quick") > 0;
  if (a.api_key.empty())
    if (const char* k = std::getenv("OPENAI_API_KEY")) a.api_key = k;
  if (a.model_name.empty()) a.model_name = first_model_id(a.url, a.api_key);
}

void add_sampling(nlohmann::json& body, const ClientArgs& a) {
  if (a.temperature) body["temperature"] = *a.temperature;
  if (a.max_tokens) body["max_tokens"] = *a.max_tokens;
  if (a.seed) body["seed"] = *a.seed;
}

// The text a streamed chunk adds: choices[0].delta.content (chat) or choices[0].text (completions).
std::string chunk_text(std::string_view data, bool chat) {
  if (data == "[DONE]") return "";
  auto j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return "";
  const auto& choice = j["choices"][0];
  const auto* field = chat ? (choice.contains("delta") ? &choice["delta"] : nullptr) : &choice;
  if (!field) return "";
  const char* key = chat ? "content" : "text";
  if (!field->contains(key) || !(*field)[key].is_string()) return "";
  return (*field)[key].get<std::string>();
}

// Streams one request; prints the text as it comes and returns all of it.
std::string stream_reply(const ClientArgs& a, const std::string& path, nlohmann::json body, bool chat) {
  body["model"] = a.model_name;
  body["stream"] = true;
  add_sampling(body, a);
  std::string reply;
  http_post_stream(join_url(a.url, path), body.dump(), a.api_key, [&](std::string_view data) {
    const std::string piece = chunk_text(data, chat);
    reply += piece;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return reply;
}

// Reads the next line of input ("> " shown on a terminal only, so piped output holds replies only).
bool next_line(std::string& line) {
  if (isatty(STDIN_FILENO)) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
  }
  return static_cast<bool>(std::getline(std::cin, line));
}

int run_chat(ClientArgs& a) {
  nlohmann::json messages = nlohmann::json::array();
  if (!a.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", a.system_prompt}});
  auto turn = [&](const std::string& text) {
    messages.push_back({{"role", "user"}, {"content", text}});
    const std::string reply = stream_reply(a, "/chat/completions", {{"messages", messages}}, true);
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  };
  if (a.quick_given) {
    turn(a.quick);
    return 0;
  }
  std::string line;
  while (next_line(line)) turn(line);
  return 0;
}

int run_complete(ClientArgs& a) {
  auto once = [&](const std::string& prompt) { stream_reply(a, "/completions", {{"prompt", prompt}}, false); };
  if (a.quick_given) {
    once(a.quick);
    return 0;
  }
  std::string line;
  while (next_line(line)) once(line);
  return 0;
}

}  // namespace

Runner add_chat(CLI::App& app) {
  auto a = std::make_shared<ClientArgs>();
  CLI::App* sub = app.add_subcommand("chat", "Chat with a running server (OpenAI chat completions API)");
  add_client_flags(sub, *a);
  sub->add_option("--system-prompt", a->system_prompt, "System prompt to start the conversation with");
  return [a, sub] {
    prepare(*a, sub);
    return run_chat(*a);
  };
}

Runner add_complete(CLI::App& app) {
  auto a = std::make_shared<ClientArgs>();
  CLI::App* sub = app.add_subcommand("complete", "Complete prompts with a running server (OpenAI completions API)");
  add_client_flags(sub, *a);
  return [a, sub] {
    prepare(*a, sub);
    return run_complete(*a);
  };
}

}  // namespace vllm::cli
