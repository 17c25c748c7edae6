// The OpenAI request parsing of `vllm serve`: a request body, as POST /v1/completions,
// /v1/chat/completions, /tokenize and /detokenize read it, up to the validated SamplingParams,
// the tokenized prompts and the rendered chat, on the default model (models/default: its
// tokenizer and chat template), with no engine run. The steps and their order are the
// handlers' (src/vllm/server/{completions,chat_completions,tokenize}.cpp) before they hand the
// request to the engine.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "vllm/core/logging.h"
#include "vllm/server/api_server.h"
#include "vllm/server/errors.h"
#include "vllm/server/handlers.h"
#include "vllm/server/protocol.h"
#include "vllm/tokenizer/tokenizer.h"

using namespace vllm;
using namespace vllm::server;

namespace {

ServingContext* ctx = nullptr;

void completions(const HttpRequest& req) {
  const ojson body = parse_body(req);
  request_options(*ctx, body);
  const bool stream = get_bool(body, "stream", false);
  check_logprobs_fields(body, stream);
  parse_stream_options(*ctx, body, stream);
  check_model(*ctx, body);
  (void)base_request_id(req, body);
  (void)get_bool(body, "echo", false);
  (void)opt_bool(body, "return_tokens_as_token_ids");
  const int64_t max_tokens = opt_int(body, "max_tokens").value_or(16);
  nlohmann::json fields = sampling_fields(body);
  if (auto it = body.find("logprobs"); it != body.end() && !it->is_null()) fields["logprobs"] = nlohmann::json(*it);
  const auto truncate = opt_int(body, "truncate_prompt_tokens");
  std::vector<PromptIn> inputs =
      parse_prompts(*ctx, body, get_bool(body, "add_special_tokens", true), max_tokens, truncate.has_value());
  for (PromptIn& in : inputs) {
    truncate_prompt(*ctx, truncate, &in.ids);
    if (in.ids.empty()) continue;
    check_token_ids(*ctx, in.ids);
    const int64_t engine_max = resolve_max_tokens(*ctx, static_cast<int64_t>(in.ids.size()), max_tokens, "max_tokens");
    SamplingParams params = make_sampling_params(*ctx, fields, engine_max, stream);
    FUZZ_CHECK(params.max_tokens.value_or(1) >= 0);
    (void)params.to_json().dump();
    (void)ctx->tokenizer()->decode(in.ids, false);
  }
}

void chat(const HttpRequest& req) {
  const ojson body = parse_body(req);
  request_options(*ctx, body);
  const bool stream = get_bool(body, "stream", false);
  parse_stream_options(*ctx, body, stream);
  check_chat_logprobs(body, stream);
  check_model(*ctx, body);
  RenderedChat chat = render_chat(*ctx, body);
  std::vector<int32_t> ids = std::move(chat.token_ids);
  truncate_prompt(*ctx, opt_int(body, "truncate_prompt_tokens"), &ids);
  if (ids.empty()) return;
  check_token_ids(*ctx, ids);
  std::optional<int64_t> requested = opt_int(body, "max_completion_tokens");
  if (!requested) requested = opt_int(body, "max_tokens");
  const int64_t max_tokens = resolve_max_tokens(*ctx, static_cast<int64_t>(ids.size()), requested, "max_tokens");
  nlohmann::json fields = sampling_fields(body);
  if (get_bool(body, "logprobs", false)) fields["logprobs"] = opt_int(body, "top_logprobs").value_or(0);
  (void)make_sampling_params(*ctx, fields, max_tokens, stream);
}

void tokenize(const HttpRequest& req) {
  const ojson body = parse_body(req);
  check_model(*ctx, body);
  if (body.contains("messages")) {
    (void)render_chat(*ctx, body);
  } else if (auto prompt = body.find("prompt"); prompt != body.end() && prompt->is_string()) {
    for (int32_t id : ctx->tokenizer()->encode(prompt->get<std::string>(), get_bool(body, "add_special_tokens", true)))
      (void)ctx->tokenizer()->id_to_token(id);
  }
}

void detokenize(const HttpRequest& req) {
  const ojson body = parse_body(req);
  auto tokens = body.find("tokens");
  if (tokens == body.end() || !tokens->is_array()) return;
  std::vector<int32_t> ids;
  for (const auto& t : *tokens) {
    if (!t.is_number_integer()) return;
    const int64_t id = t.is_number_unsigned() && t.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)
                           ? int64_t{INT32_MAX} + 1
                           : t.get<int64_t>();
    if (id < 0 || id > ctx->max_token_id) return;
    ids.push_back(static_cast<int32_t>(id));
  }
  FUZZ_CHECK(fuzz::valid_utf8(ctx->tokenizer()->decode(ids, false)));
}

// Runs one endpoint's steps; the errors its handler answers with are expected.
template <typename F>
void answer(F&& steps, const HttpRequest& req) {
  try {
    steps(req);
  } catch (const ApiError&) {
  } catch (const Error&) {
  } catch (const nlohmann::json::exception&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  set_log_level("error");  // unknown fields log a warning each
  EngineConfig config;
  config.model = VLLM_DEFAULT_MODEL_DIR;
  config.device = "cpu";
  config.num_kv_blocks = 16;
  auto* engine = new DataParallelEngine(config, 0.0);  // one replica; lives as long as the process
  ServerConfig server;
  server.model_root = "default";
  server.served_model_names = {"default"};
  server.access_log = false;
  server.trust_request_chat_template = true;  // the corpus' own templates reach the renderer
  ctx = new ServingContext(*engine, server, config);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  HttpRequest req;
  req.method = "POST";
  req.headers = {{"content-type", "application/json"}};
  req.body.assign(reinterpret_cast<const char*>(data), size);
  answer(completions, req);
  answer(chat, req);
  answer(tokenize, req);
  answer(detokenize, req);
  return 0;
}
