// Random schemas from the supported keywords (random_schema.h) all compile; a sample of each
// grammar's short strings is checked to be valid JSON, so a compiled grammar never admits text
// that is not JSON.
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include "language_checker.h"
#include "random_schema.h"
#include "vllm/structured/json_schema.h"

namespace vllm::structured {
namespace {

TEST(RandomSchemas, TwoHundredCompile) {
  testing::RandomSchemaGenerator gen(20240611);
  size_t total_bytes = 0;
  for (int i = 0; i < 200; ++i) {
    nlohmann::ordered_json s = gen.schema();
    std::string g;
    ASSERT_NO_THROW(g = json_schema_to_gbnf(s)) << s.dump();
    ASSERT_NO_THROW(testing::LanguageChecker{g}) << s.dump() << "\n" << g;
    total_bytes += g.size();
    // Compact and whitespace-free forms compile too.
    JsonSchemaOptions o;
    o.disable_any_whitespace = true;
    o.disable_additional_properties = i % 2 == 0;
    ASSERT_NO_THROW(json_schema_to_gbnf(s, o)) << s.dump();
  }
  EXPECT_GT(total_bytes, 0u);
}

TEST(RandomSchemas, InstancesAccepted) {
  testing::RandomSchemaGenerator gen(99);
  int checked = 0;
  for (int i = 0; i < 200; ++i) {
    nlohmann::ordered_json s = gen.schema();
    testing::LanguageChecker g(json_schema_to_gbnf(s), /*with_oracle=*/false);
    for (int k = 0; k < 5; ++k) {
      nlohmann::ordered_json v = gen.instance(s);
      EXPECT_TRUE(g.accepts(v.dump())) << s.dump() << "\n" << v.dump();
      EXPECT_TRUE(g.accepts(v.dump(2))) << s.dump() << "\n" << v.dump(2);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 1000);
}

TEST(RandomSchemas, Deterministic) {
  testing::RandomSchemaGenerator a(7), b(7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.schema(), b.schema());
}

}  // namespace
}  // namespace vllm::structured
