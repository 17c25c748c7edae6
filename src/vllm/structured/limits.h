// Limits on what a request may ask of the structured-output engine. Each bounds the work or
// memory one request can cause; a grammar past one is rejected with a GrammarError (HTTP 400)
// that names the limit. tests/structured/test_gbnf_parser.cpp checks each one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vllm::structured::limits {

// Grammar text, in bytes. Grammars generated from large JSON schemas stay well below 100 KB;
// 1 MiB bounds the parser's work and the compiled grammar's size for one request.
inline constexpr size_t kMaxGrammarBytes = size_t{1} << 20;

// Rules after desugaring (each group, repetition and non-ASCII character class adds a helper
// rule). Rule ids are 32-bit, but the compile work grows with the rule count; 65536 leaves
// ample room for generated grammars.
inline constexpr size_t kMaxRules = size_t{1} << 16;

// Elements (byte sets and rule references) in all sequences after desugaring. Repetition copies
// its operand, so this is what bounds nested bounded repetitions such as ("a"{100}){100}.
inline constexpr size_t kMaxElements = size_t{1} << 20;

// Largest count in {m}, {m,} and {m,n}. X{m,n} becomes m copies of X plus a chain of n - m
// optional copies (one helper rule each), so the bound caps one repetition's size.
inline constexpr uint32_t kMaxRepetition = 4096;

// Nesting depth of parentheses. The parser is recursive descent; this bounds its stack.
inline constexpr int kMaxNesting = 128;

// Nodes of the compiled automaton (after helper rules are inlined into their parents). Each
// node may get a token classification at compile time, so this bounds compile time and memory.
inline constexpr size_t kMaxCompiledNodes = size_t{1} << 18;

// Parser moves (expansions of a node with a parent, repeats included, and parents gathered when
// stacks merge) for one byte. A JSON grammar makes a few dozen; only a very ambiguous grammar comes near this, and it would then take milliseconds per
// byte, so the request fails instead (at compile time or while matching) and the server stays
// responsive.
inline constexpr size_t kMaxExpansionsPerByte = size_t{1} << 16;

// Parser moves to compute a grammar's token classes (per compile thread). json_object takes
// about 0.4 million with a 128k vocabulary, a schema with two 64-character bounded strings 2.5
// million; an ambiguous recursive grammar can need billions, so compilation stops here (a few
// seconds of work) with a GrammarError rather than hold a compile thread for minutes.
inline constexpr uint64_t kMaxCompileMoves = uint64_t{1} << 26;

}  // namespace vllm::structured::limits
