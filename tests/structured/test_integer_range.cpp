// integer_range_gbnf against the arithmetic, for ranges around digit-count boundaries.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include "language_checker.h"
#include "vllm/structured/integer_range.h"

namespace vllm::structured {
namespace {

TEST(IntegerRange, ExactAroundDigitBoundaries) {
  const std::vector<std::optional<int64_t>> bounds = {std::nullopt, -101, -100, -99, -10, -9, -1, 0, 1, 9, 10, 11, 99, 100, 105};
  for (auto lo : bounds) {
    for (auto hi : bounds) {
      auto expr = integer_range_gbnf(lo, hi);
      if (lo && hi && *lo > *hi) {
        EXPECT_FALSE(expr);
        continue;
      }
      ASSERT_TRUE(expr);
      testing::LanguageChecker g("root ::= " + *expr + "\n");
      for (int64_t v = -130; v <= 130; ++v) {
        bool want = (!lo || v >= *lo) && (!hi || v <= *hi);
        EXPECT_EQ(g.accepts(std::to_string(v)), want) << v << " in [" << (lo ? *lo : -999) << ", " << (hi ? *hi : 999) << "]: " << *expr;
      }
      EXPECT_FALSE(g.accepts("-0"));
      EXPECT_FALSE(g.accepts("007"));
      if (!hi) {
        EXPECT_TRUE(g.accepts("123456789012"));
      }
      if (!lo) {
        EXPECT_TRUE(g.accepts("-123456789012"));
      }
    }
  }
}

TEST(IntegerRange, LargeBounds) {
  auto expr = integer_range_gbnf(-kMaxIntegerRangeBound, kMaxIntegerRangeBound);
  ASSERT_TRUE(expr);
  testing::LanguageChecker g("root ::= " + *expr + "\n");
  EXPECT_TRUE(g.accepts("1000000000000000000"));
  EXPECT_TRUE(g.accepts("-1000000000000000000"));
  EXPECT_TRUE(g.accepts("999999999999999999"));
  EXPECT_FALSE(g.accepts("1000000000000000001"));
  EXPECT_FALSE(g.accepts("-1000000000000000001"));
  auto mid = integer_range_gbnf(123456, 987654);
  testing::LanguageChecker m("root ::= " + *mid + "\n");
  for (int64_t v : {123455, 123456, 500000, 987654, 987655, 99999, 1000000})
    EXPECT_EQ(m.accepts(std::to_string(v)), v >= 123456 && v <= 987654) << v;
}

}  // namespace
}  // namespace vllm::structured
