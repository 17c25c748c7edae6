#include "vllm/tokenizer/tokenizer_config.h"

#include <cmath>

namespace vllm::tok {

namespace {

// A special token given as "<s>" or as {"content": "<s>", "lstrip": ..., ...} (also the
// {"__type": "AddedToken", ...} form of older files). Null -> nullopt.
std::optional<AddedToken> parse_token_spec(const Json& v, const JsonPath& where) {
  if (v.is_null()) return std::nullopt;
  AddedToken t;
  t.special = true;
  t.normalized = false;
  if (v.is_string()) {
    t.content = v.get<std::string>();
  } else if (v.is_object()) {
    t.content = json_get_string(v, "content", where);
    t.lstrip = json_get_bool(v, "lstrip", false, where);
    t.rstrip = json_get_bool(v, "rstrip", false, where);
    t.single_word = json_get_bool(v, "single_word", false, where);
    t.special = json_get_bool(v, "special", true, where);
    t.normalized = json_get_bool(v, "normalized", !t.special, where);
  } else {
    where.fail(std::string("must be a string or an object with \"content\", got ") + json_type_name(v));
  }
  if (t.content.empty()) return std::nullopt;
  return t;
}

void parse_special_fields(TokenizerConfig& c, const Json& j, const JsonPath& where) {
  auto field = [&](const char* key, std::optional<AddedToken>& dst) {
    if (!j.contains(key)) return;
    dst = parse_token_spec(j[key], where / key);
  };
  field("bos_token", c.bos);
  field("eos_token", c.eos);
  field("unk_token", c.unk);
  field("pad_token", c.pad);
  if (const Json* extra = json_find(j, "additional_special_tokens")) {
    const JsonPath p = where / "additional_special_tokens";
    json_array(*extra, p);
    c.additional_special_tokens.clear();
    for (size_t i = 0; i < extra->size(); ++i) {
      if (auto t = parse_token_spec((*extra)[i], p[i])) c.additional_special_tokens.push_back(*t);
    }
  }
}

}  // namespace

TokenizerConfig parse_tokenizer_config(const Json& j, const JsonPath& where) {
  json_object(j, where);
  TokenizerConfig c;
  c.add_bos_token = json_opt_bool(j, "add_bos_token", where);
  c.add_eos_token = json_opt_bool(j, "add_eos_token", where);
  c.add_prefix_space = json_opt_bool(j, "add_prefix_space", where);
  c.clean_up_tokenization_spaces = json_get_bool(j, "clean_up_tokenization_spaces", false, where);
  c.tokenizer_class = json_opt_string(j, "tokenizer_class", where).value_or("");
  parse_special_fields(c, j, where);

  if (const Json* decoder = json_find(j, "added_tokens_decoder")) {
    const JsonPath p = where / "added_tokens_decoder";
    json_object(*decoder, p);
    for (auto it = decoder->begin(); it != decoder->end(); ++it) {
      const JsonPath e = p / it.key();
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(it.key(), &used);
        if (used != it.key().size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0 || id > INT32_MAX) e.fail("has a key that is not a token id");
      json_object(it.value(), e);
      AddedToken t;
      t.id = static_cast<int32_t>(id);
      t.content = json_get_string(it.value(), "content", e);
      t.lstrip = json_get_bool(it.value(), "lstrip", false, e);
      t.rstrip = json_get_bool(it.value(), "rstrip", false, e);
      t.single_word = json_get_bool(it.value(), "single_word", false, e);
      t.special = json_get_bool(it.value(), "special", false, e);
      t.normalized = json_get_bool(it.value(), "normalized", !t.special, e);
      c.added_tokens_decoder.push_back(std::move(t));
    }
  }

  if (const Json* tmpl = json_find(j, "chat_template")) {
    const JsonPath p = where / "chat_template";
    if (tmpl->is_string()) {
      c.chat_templates["default"] = tmpl->get<std::string>();
    } else if (tmpl->is_array()) {
      for (size_t i = 0; i < tmpl->size(); ++i) {
        const Json& e = json_object((*tmpl)[i], p[i]);
        c.chat_templates[json_get_string(e, "name", p[i])] = json_get_string(e, "template", p[i]);
      }
    } else {
      p.fail(std::string("must be a string or a list of {name, template}, got ") + json_type_name(*tmpl));
    }
  }

  if (const Json* m = json_find(j, "model_max_length")) {
    // transformers writes int(1e30) for "no limit"; anything beyond int64 (parsed as a float
    // here) or at least 1e29 means the same.
    if (m->is_number_integer() || m->is_number_unsigned()) {
      if (!m->is_number_unsigned() || m->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) {
        const int64_t v = m->get<int64_t>();
        if (v > 0) c.model_max_length = v;
      }
    } else if (m->is_number_float()) {
      const double v = m->get<double>();
      if (std::isfinite(v) && v > 0 && v < 9.2e18 && v == std::floor(v)) {
        c.model_max_length = static_cast<int64_t>(v);
      }
    } else {
      (where / "model_max_length").fail(std::string("must be a number, got ") + json_type_name(*m));
    }
  }
  return c;
}

void apply_special_tokens_map(TokenizerConfig& config, const Json& j, const JsonPath& where) {
  json_object(j, where);
  parse_special_fields(config, j, where);
}

}  // namespace vllm::tok
