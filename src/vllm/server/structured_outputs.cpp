#include "vllm/server/structured_outputs.h"

#include <string>

#include "vllm/core/error.h"
#include "vllm/server/tool_calls.h"

namespace vllm::server {

namespace {

const ojson* present(const ojson& body, const char* field) {
  auto it = body.find(field);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

// A schema as text in the client's key order (nlohmann::json would sort the keys).
nlohmann::json schema_text(const ojson& schema, const char* field) {
  if (schema.is_string()) return schema.get<std::string>();
  if (!schema.is_object() && !schema.is_boolean())
    throw ApiError(std::string(field) + " must be a JSON schema (an object), got " + schema.type_name(), field);
  return schema.dump();
}

}  // namespace

std::optional<nlohmann::json> structured_outputs_from_request(const ojson& body) {
  nlohmann::json so = nlohmann::json::object();
  bool any = false;

  // vLLM's own object: its fields as they are.
  if (const ojson* v = present(body, "structured_outputs")) {
    if (!v->is_object()) throw ApiError("structured_outputs must be an object", "structured_outputs");
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (it->is_null()) continue;
      so[it.key()] = it.key() == "json" ? schema_text(*it, "structured_outputs.json") : nlohmann::json(*it);
    }
    any = true;
  }

  // The older guided_* fields (vLLM maps them onto structured_outputs).
  static const std::pair<const char*, const char*> kGuided[] = {{"guided_json", "json"},
                                                                 {"guided_regex", "regex"},
                                                                 {"guided_choice", "choice"},
                                                                 {"guided_grammar", "grammar"}};
  for (const auto& [field, key] : kGuided) {
    const ojson* v = present(body, field);
    if (!v) continue;
    so[key] = std::string(key) == "json" ? schema_text(*v, field) : nlohmann::json(*v);
    any = true;
  }
  if (const ojson* v = present(body, "guided_whitespace_pattern")) {
    if (!v->is_string()) throw ApiError("guided_whitespace_pattern must be a string", "guided_whitespace_pattern");
    so["whitespace_pattern"] = v->get<std::string>();
  }
  if (const ojson* v = present(body, "guided_decoding_backend")) {
    if (!v->is_string()) throw ApiError("guided_decoding_backend must be a string", "guided_decoding_backend");
    const std::string b = v->get<std::string>();
    if (b != "auto" && b != "vllm-cpp")
      throw ApiError("guided_decoding_backend '" + b + "' is not available in vllm-cpp; use 'auto' (vllm-cpp's own engine)",
                     "guided_decoding_backend");
  }

  // OpenAI's response_format, on top (as vLLM: it fills structured_outputs).
  if (const ojson* rf = present(body, "response_format")) {
    if (!rf->is_object()) throw ApiError("response_format must be an object", "response_format");
    const auto type_it = rf->find("type");
    if (type_it == rf->end() || !type_it->is_string())
      throw ApiError("response_format.type must be one of 'text', 'json_object', 'json_schema', 'structural_tag'",
                     "response_format");
    const std::string type = type_it->get<std::string>();
    if (type == "json_object") {
      so["json_object"] = true;
      any = true;
    } else if (type == "json_schema") {
      const ojson* js = present(*rf, "json_schema");
      if (!js || !js->is_object())
        throw ApiError("response_format of type 'json_schema' needs a 'json_schema' object", "response_format");
      if (const ojson* name = present(*js, "name"); name && !name->is_string())
        throw ApiError("response_format.json_schema.name must be a string", "response_format");
      // OpenAI's field is `schema`; vLLM also reads `json_schema`, the pydantic name behind it.
      const ojson* schema = present(*js, "schema");
      if (!schema) schema = present(*js, "json_schema");
      if (!schema) throw ApiError("response_format.json_schema needs a 'schema'", "response_format");
      so["json"] = schema_text(*schema, "response_format.json_schema.schema");
      any = true;
    } else if (type == "structural_tag") {
      so["structural_tag"] = rf->dump();
      any = true;
    } else if (type != "text") {
      throw ApiError("response_format.type must be one of 'text', 'json_object', 'json_schema', 'structural_tag', got '" +
                         type + "'",
                     "response_format");
    }
  }
  if (!any) return std::nullopt;
  return so;
}

void apply_structured_outputs(const ServingContext& ctx, const ojson& body, nlohmann::json& fields,
                              AddRequestOptions& options, std::optional<nlohmann::json> forced,
                              std::optional<std::string_view> chat_prompt) {
  std::optional<nlohmann::json> so = forced ? std::move(forced) : structured_outputs_from_request(body);
  if (!so) return;
  if (chat_prompt && !ctx.config.structured_outputs_in_reasoning) constrain_after_reasoning(ctx, *chat_prompt, *so);
  for (auto it = ctx.config.structured_outputs_defaults.begin(); it != ctx.config.structured_outputs_defaults.end(); ++it)
    if (!so->contains(it.key())) (*so)[it.key()] = it.value();
  try {
    options.grammar = ctx.engine.compile_structured_outputs(*so);
  } catch (const Error& e) {
    ApiError api = api_error_from(e);
    throw ApiError(api.what(), std::string("structured_outputs"), api.status(), api.type());
  }
  fields["structured_outputs"] = std::move(*so);
}

}  // namespace vllm::server
