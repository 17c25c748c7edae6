// Test-only: membership of a string in a GBNF text's language, decided by the engine's
// GrammarMatcher (accept_bytes + can_terminate) and by the independent brute-force oracle
// (gbnf_oracle.h); a disagreement between the two is a test failure.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "gbnf_oracle.h"
#include "vllm/structured/compiled_grammar.h"
#include "vllm/structured/matcher.h"

namespace vllm::structured::testing {

class LanguageChecker {
 public:
  explicit LanguageChecker(const std::string& gbnf, bool with_oracle = true)
      : text_(gbnf), compiled_(CompiledGrammar::from_gbnf(gbnf, nullptr)) {
    if (with_oracle) oracle_ = std::make_unique<GbnfOracle>(gbnf);
  }

  bool accepts(std::string_view s) const {
    GrammarMatcher m(compiled_);
    bool core = m.accept_bytes(s) && m.can_terminate();
    if (oracle_) {
      bool brute = oracle_->accepts(s);
      EXPECT_EQ(core, brute) << "matcher and oracle disagree on '" << s << "'\n" << text_;
    }
    return core;
  }

 private:
  std::string text_;
  std::shared_ptr<const CompiledGrammar> compiled_;
  std::unique_ptr<GbnfOracle> oracle_;
};

}  // namespace vllm::structured::testing
