// POST /tokenize and /detokenize: vLLM's OpenAIServingTokenization. /tokenize takes a prompt
// (add_special_tokens defaults to true) or chat messages (rendered with the chat template;
// add_generation_prompt true and add_special_tokens false by default, as for chat requests).
#include "vllm/server/handlers.h"
#include "vllm/server/json_body.h"
#include "vllm/server/sse.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::server {

void handle_tokenize(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex) {
  try {
    const ojson body = parse_body(req);
    check_model(ctx, body);
    if (!ctx.tokenizer()) throw ApiError("this model has no tokenizer");
    std::vector<int32_t> ids;
    if (body.contains("messages")) {
      ids = render_chat(ctx, body).token_ids;
    } else {
      auto prompt = body.find("prompt");
      if (prompt == body.end() || prompt->is_null()) throw ApiError("prompt: Field required", "prompt");
      if (!prompt->is_string()) throw ApiError("prompt must be a string", "prompt");
      ids = ctx.tokenizer()->encode(prompt->get<std::string>(), get_bool(body, "add_special_tokens", true));
    }
    ojson out;
    out["count"] = ids.size();
    out["max_model_len"] = ctx.engine.max_model_len();
    out["tokens"] = ids;
    if (get_bool(body, "return_token_strs", false)) {
      ojson strs = ojson::array();
      for (int32_t id : ids) strs.push_back(ctx.tokenizer()->id_to_token(id));
      out["token_strs"] = std::move(strs);
    } else {
      out["token_strs"] = nullptr;
    }
    ex->respond(json_response(out));
  } catch (const ApiError& e) {
    ex->respond(error_response(e));
  } catch (const Error& e) {
    ex->respond(error_response(api_error_from(e)));
  } catch (const nlohmann::json::exception& e) {
    // A field of an unexpected JSON type deep inside the request.
    ex->respond(error_response(ApiError("Invalid request: " + json_error_text(e))));
  }
}

void handle_detokenize(ServingContext& ctx, HttpRequest&& req, std::shared_ptr<Exchange> ex) {
  try {
    const ojson body = parse_body(req);
    check_model(ctx, body);
    if (!ctx.tokenizer()) throw ApiError("this model has no tokenizer");
    auto tokens = body.find("tokens");
    if (tokens == body.end() || tokens->is_null()) throw ApiError("tokens: Field required", "tokens");
    if (!tokens->is_array()) throw ApiError("tokens must be a list of token ids", "tokens");
    std::vector<int32_t> ids;
    for (const auto& t : *tokens) {
      if (!t.is_number_integer()) throw ApiError("tokens must be a list of token ids", "tokens");
      const int64_t id = t.is_number_unsigned() && t.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)
                             ? int64_t{INT32_MAX} + 1
                             : t.get<int64_t>();
      if (id < 0 || id > ctx.max_token_id)
        throw ApiError("Token id " + std::to_string(id) + " is out of vocabulary", "tokens");
      ids.push_back(static_cast<int32_t>(id));
    }
    ojson out;
    out["prompt"] = ctx.tokenizer()->decode(ids, /*skip_special_tokens=*/false);
    ex->respond(json_response(out));
  } catch (const ApiError& e) {
    ex->respond(error_response(e));
  } catch (const Error& e) {
    ex->respond(error_response(api_error_from(e)));
  } catch (const nlohmann::json::exception& e) {
    // A field of an unexpected JSON type deep inside the request.
    ex->respond(error_response(ApiError("Invalid request: " + json_error_text(e))));
  }
}

}  // namespace vllm::server
