// vLLM's structural tags (xgrammar's StructuralTag, the form vLLM's tool calling sends):
//
//   {"type": "structural_tag",
//    "structures": [{"begin": "<function=get_weather>", "schema": {...}, "end": "</function>"}],
//    "triggers": ["<function="]}
//
// The output is free text, except that wherever a trigger appears, it must go on as one of the
// structures whose `begin` starts with that trigger: the rest of `begin`, then JSON matching
// `schema`, then `end`; then free text again. The output may end anywhere in free text, never
// inside a structure.
//
// Free text is "any text in which no trigger occurs": a regular language, written as one rule per
// state of the triggers' prefix automaton (the state is the longest suffix of the text so far that
// is a proper prefix of some trigger), so the grammar is exact, not a heuristic on tokens.
#pragma once

#include <string>
#include <string_view>

namespace vllm::structured {

// Limits: a tag past them is a vllm::Error (kInvalidArgument).
inline constexpr size_t kMaxStructuralTagStructures = 256;
inline constexpr size_t kMaxStructuralTagTriggers = 64;
inline constexpr size_t kMaxStructuralTagTriggerBytes = 256;

// The tag's JSON text -> GBNF. Throws vllm::Error (kInvalidArgument) for a malformed tag (naming
// the field), a structure whose begin starts with no trigger, and the schemas' own errors.
std::string structural_tag_to_gbnf(std::string_view tag_json);

// Rules named `<prefix>0`, `<prefix>1`, ...: free text in which `marker` does not occur, then
// `marker`, then the rule `then` (the output can't end before it). Exact in the same way as the
// structural tag's free text. Reasoning models' "<think> ... </think> answer" is built on this.
std::string text_until_gbnf(std::string_view marker, std::string_view prefix, std::string_view then);

// The GBNF text `gbnf` with every rule name prefixed by `prefix` (references included), so that
// several grammars can live in one. Literals, classes, comments and {m,n} bounds are untouched.
std::string prefix_gbnf_rules(std::string_view gbnf, std::string_view prefix);

}  // namespace vllm::structured
