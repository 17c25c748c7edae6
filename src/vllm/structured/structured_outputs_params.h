// A request's output constraint as vLLM names it (SamplingParams.structured_outputs): exactly one
// of a JSON schema, a regex, a choice of strings, a GBNF grammar, any JSON object or a structural
// tag, plus the JSON options. Read from the engine's JSON form (what the server, the Python
// package and the CLI all produce), validated with vLLM's messages, and turned into GBNF text by
// the front ends (json_schema.h, regex.h, builtin_grammars.h).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace vllm::structured {

enum class ConstraintKind { kJson, kRegex, kChoice, kGrammar, kJsonObject, kStructuralTag };
const char* constraint_kind_name(ConstraintKind kind);  // "json", "regex", ...

struct StructuredOutputsParams {
  ConstraintKind kind = ConstraintKind::kJsonObject;
  // The constraint's text: the schema's JSON text (key order as the client wrote it), the
  // regex, the grammar or the structural tag's JSON text. Empty for choice and json_object.
  std::string text;
  std::vector<std::string> choice;
  bool disable_any_whitespace = false;
  bool disable_additional_properties = false;
  std::optional<std::string> whitespace_pattern;

  // A reasoning model's thinking comes before the constrained answer, free (the server's
  // --reasoning-parser sets this; vLLM likewise constrains only the part after reasoning ends).
  // kOpen: the output starts inside the reasoning (the prompt opened it), so it is free text up to
  // `end`, then the answer. kOptional: the output may start with `start` ... `end`, or be the
  // answer directly. JSON form: "reasoning": {"start": S, "end": E, "open": bool}.
  struct Reasoning {
    std::string start, end;
    bool open = false;
  };
  std::optional<Reasoning> reasoning;

  // From the engine's JSON form: {"json": SCHEMA or its text} | {"regex": R} | {"choice": [..]}
  // | {"grammar": G} | {"json_object": true} | {"structural_tag": TEXT}, with the options
  // beside. Throws vllm::Error (kInvalidArgument) with vLLM's messages: more or fewer than one
  // constraint, wrong types, an unreadable schema. Unknown keys are ignored (vLLM's
  // disable_fallback and backend knobs have no meaning here).
  static StructuredOutputsParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;

  // The constraint as GBNF text. Throws vllm::Error (kInvalidArgument) naming what is wrong:
  // JsonSchemaError (keyword and pointer), RegexError (position), GrammarError (line, column).
  // The returned text has been parsed once, so a request that gets it through here compiles.
  std::string to_gbnf() const;
};

}  // namespace vllm::structured
