// Builds a Grammar and runs the checks the matcher relies on (internal to the structured
// library; the GBNF parser is its user).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vllm/structured/grammar.h"

namespace vllm::structured {

// Line and column (1-based; the column counts code points) of a byte offset in `text`.
struct TextPosition {
  int line = 1, column = 1;
};
TextPosition text_position(std::string_view text, size_t offset);

class GrammarBuilder {
 public:
  // `text` is the grammar source, for the positions in error messages.
  explicit GrammarBuilder(std::string_view text) : text_(text) {}

  [[noreturn]] void fail(size_t offset, const std::string& message) const;

  // Adds a rule (without alternatives yet); `offset` is where it is defined. A helper rule's
  // owner is the user rule it appears in. Throws when the rule limit is passed.
  uint32_t add_rule(std::string name, bool helper, uint32_t owner, size_t offset);
  GrammarRule& rule(uint32_t index) { return rules_[index]; }
  void set_offset(uint32_t index, size_t offset) { offsets_[index] = offset; }
  size_t num_rules() const { return rules_.size(); }
  // The index of a byte set, equal sets sharing one.
  uint32_t byte_set(const ByteSet& set);
  GrammarElement bytes_element(const ByteSet& set) {
    return {GrammarElement::Kind::kBytes, byte_set(set)};
  }
  static GrammarElement rule_element(uint32_t rule) { return {GrammarElement::Kind::kRule, rule}; }

  // Counts elements written into sequences (repetition copies included) and throws at `offset`
  // once the total passes limits::kMaxElements.
  void count_elements(size_t n, size_t offset);

  // Checks the grammar from `root` (left recursion, rules that match nothing), drops the rules
  // it cannot reach, renames helper rules whose generated name a user rule has, and returns it.
  Grammar finish(uint32_t root);

 private:
  void check_left_recursion(const std::vector<uint32_t>& reachable) const;
  void check_productive(const std::vector<uint32_t>& reachable) const;

  std::string_view text_;
  std::vector<GrammarRule> rules_;
  std::vector<size_t> offsets_;  // where each rule is defined
  std::vector<ByteSet> byte_sets_;
  std::map<ByteSet, uint32_t> byte_set_index_;
  size_t elements_ = 0;
};

}  // namespace vllm::structured
