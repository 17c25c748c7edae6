#include "vllm/structured/structured_outputs_params.h"

#include "vllm/core/error.h"
#include "vllm/structured/builtin_grammars.h"
#include "vllm/structured/gbnf_writer.h"
#include "vllm/structured/grammar.h"
#include "vllm/structured/json_schema.h"
#include "vllm/structured/regex.h"
#include "vllm/structured/structural_tag.h"

namespace vllm::structured {

namespace {

constexpr const char* kConstraintKeys[] = {"json", "regex", "choice", "grammar", "json_object", "structural_tag"};

// vLLM prints the dataclass's __dict__; the request's own JSON says the same thing.
std::string describe(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 200) s = s.substr(0, 197) + "...";
  return s;
}

const std::string& string_field(const nlohmann::json& v, const char* name) {
  if (!v.is_string()) throw Error(std::string("structured outputs '") + name + "' must be a string, got " + describe(v));
  return v.get_ref<const std::string&>();
}

bool bool_field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Error(std::string("structured outputs '") + name + "' must be a boolean, got " + describe(*it));
  return it->get<bool>();
}

}  // namespace

const char* constraint_kind_name(ConstraintKind kind) {
  switch (kind) {
    case ConstraintKind::kJson: return "json";
    case ConstraintKind::kRegex: return "regex";
    case ConstraintKind::kChoice: return "choice";
    case ConstraintKind::kGrammar: return "grammar";
    case ConstraintKind::kJsonObject: return "json_object";
    case ConstraintKind::kStructuralTag: return "structural_tag";
  }
  return "?";
}

StructuredOutputsParams StructuredOutputsParams::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("structured_outputs must be an object, got " + describe(j));
  int count = 0;
  for (const char* k : kConstraintKeys) {
    auto it = j.find(k);
    count += it != j.end() && !it->is_null();
  }
  if (count > 1)
    throw Error("You can only use one kind of structured outputs constraint but multiple are specified: " + describe(j));
  if (count < 1)
    throw Error("You must use one kind of structured outputs constraint but none are specified: " + describe(j));

  StructuredOutputsParams p;
  if (auto it = j.find("json"); it != j.end() && !it->is_null()) {
    p.kind = ConstraintKind::kJson;
    // A schema arrives as an object (kept as text, since nlohmann::json would sort its keys and
    // the grammar follows the schema's property order) or already as its JSON text.
    if (it->is_string()) {
      p.text = it->get<std::string>();
      if (!nlohmann::ordered_json::accept(p.text))
        throw Error("structured outputs 'json' is not a valid JSON schema: its text does not parse as JSON");
    } else if (it->is_object() || it->is_boolean()) {
      p.text = it->dump();
    } else {
      throw Error("structured outputs 'json' must be a JSON schema (an object or its JSON text), got " + describe(*it));
    }
  } else if (auto it = j.find("regex"); it != j.end() && !it->is_null()) {
    p.kind = ConstraintKind::kRegex;
    p.text = string_field(*it, "regex");
  } else if (auto it = j.find("choice"); it != j.end() && !it->is_null()) {
    p.kind = ConstraintKind::kChoice;
    if (!it->is_array()) throw Error("structured outputs 'choice' must be a list of strings, got " + describe(*it));
    for (const auto& c : *it) p.choice.push_back(string_field(c, "choice"));
    if (p.choice.empty()) throw Error("structured outputs 'choice' must not be empty");
  } else if (auto it = j.find("grammar"); it != j.end() && !it->is_null()) {
    p.kind = ConstraintKind::kGrammar;
    p.text = string_field(*it, "grammar");
  } else if (auto it = j.find("json_object"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) throw Error("structured outputs 'json_object' must be a boolean, got " + describe(*it));
    // vLLM counts json_object=false as a constraint too, and then builds the JSON-object grammar.
    p.kind = ConstraintKind::kJsonObject;
  } else if (auto it = j.find("structural_tag"); it != j.end() && !it->is_null()) {
    p.kind = ConstraintKind::kStructuralTag;
    p.text = it->is_string() ? it->get<std::string>() : it->dump();
  }
  p.disable_any_whitespace = bool_field(j, "disable_any_whitespace");
  p.disable_additional_properties = bool_field(j, "disable_additional_properties");
  if (auto it = j.find("whitespace_pattern"); it != j.end() && !it->is_null())
    p.whitespace_pattern = string_field(*it, "whitespace_pattern");
  if (auto it = j.find("reasoning"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw Error("structured outputs 'reasoning' must be an object, got " + describe(*it));
    Reasoning r;
    if (auto s = it->find("start"); s != it->end()) r.start = string_field(*s, "reasoning.start");
    auto e = it->find("end");
    if (e == it->end()) throw Error("structured outputs 'reasoning' needs its 'end' marker");
    r.end = string_field(*e, "reasoning.end");
    r.open = bool_field(*it, "open");
    if (r.end.empty() || (!r.open && r.start.empty()))
      throw Error("structured outputs 'reasoning' needs a non-empty 'end' marker, and a 'start' marker unless 'open'");
    p.reasoning = std::move(r);
  }
  return p;
}

nlohmann::json StructuredOutputsParams::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  switch (kind) {
    case ConstraintKind::kJson: j["json"] = text; break;
    case ConstraintKind::kChoice: j["choice"] = choice; break;
    case ConstraintKind::kJsonObject: j["json_object"] = true; break;
    default: j[constraint_kind_name(kind)] = text; break;
  }
  if (disable_any_whitespace) j["disable_any_whitespace"] = true;
  if (disable_additional_properties) j["disable_additional_properties"] = true;
  if (whitespace_pattern) j["whitespace_pattern"] = *whitespace_pattern;
  if (reasoning) j["reasoning"] = {{"start", reasoning->start}, {"end", reasoning->end}, {"open", reasoning->open}};
  return j;
}

std::string StructuredOutputsParams::to_gbnf() const {
  std::string gbnf;
  switch (kind) {
    case ConstraintKind::kJson: {
      JsonSchemaOptions o;
      o.disable_any_whitespace = disable_any_whitespace;
      o.disable_additional_properties = disable_additional_properties;
      o.whitespace_pattern = whitespace_pattern.value_or("");
      gbnf = json_schema_to_gbnf(nlohmann::ordered_json::parse(text), o);
      break;
    }
    case ConstraintKind::kRegex: gbnf = regex_to_gbnf(text); break;
    case ConstraintKind::kChoice: gbnf = choice_to_gbnf(choice); break;
    case ConstraintKind::kGrammar: gbnf = text; break;
    case ConstraintKind::kJsonObject: {
      JsonObjectOptions o;
      o.whitespace = !disable_any_whitespace;
      gbnf = json_object_gbnf(o);
      break;
    }
    case ConstraintKind::kStructuralTag: gbnf = structural_tag_to_gbnf(text); break;
  }
  if (reasoning) {
    // The answer's grammar under its own names; before it, the reasoning as free text. The model
    // may put a little whitespace between the end marker and the answer ("</think>\n\n").
    std::string wrapped = "root ::= " + std::string(reasoning->open ? "think-0" : "think-open | think-answer") + "\n";
    if (!reasoning->open) wrapped += "think-open ::= " + gbnf_ascii_literal(reasoning->start) + " think-0\n";
    wrapped += "think-answer ::= [ \\t\\r\\n]{0,4} answer-root\n";
    wrapped += text_until_gbnf(reasoning->end, "think-", "think-answer");
    wrapped += prefix_gbnf_rules(gbnf, "answer-");
    gbnf = std::move(wrapped);
  }
  // Parsing here reports a user's grammar error with its line and column before anything is
  // queued; the front ends' own output parses by construction, and this keeps it honest.
  (void)Grammar::from_gbnf(gbnf);
  return gbnf;
}

}  // namespace vllm::structured
