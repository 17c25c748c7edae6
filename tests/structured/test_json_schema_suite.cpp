// The official JSON-Schema-Test-Suite (scripts/fetch_json_schema_test_suite.sh; skipped when
// absent): every schema either compiles or is rejected with an error naming a keyword it holds;
// for compiled schemas every valid instance (compact and indent 2) is accepted, except the
// listed cases where our grammar is deliberately tighter; invalid instances are rejected
// (any accepted one is reported and fails the test).
#include <gtest/gtest.h>

// GCC 12 reports a false -Wrestrict for "literal" + std::string (GCC bug 105651).
#pragma GCC diagnostic ignored "-Wrestrict"

#include <filesystem>
#include <fstream>
#include <map>

#include "language_checker.h"
#include "vllm/structured/json_schema.h"

namespace vllm::structured {
namespace {

namespace fs = std::filesystem;

// Valid instances we reject on purpose, with the reason (group description / test description).
const std::map<std::string, std::string>& known_tighter() {
  static const std::map<std::string, std::string> k = {
      // Integers are written as plain integers.
      {"zeroTerminatedFloats.json/some languages do not distinguish between different types of numeric value/a float is not an integer even without fractional part", "1.0 for an integer"},
      {"bignum.json/integer/a bignum is an integer", "an integer written with an exponent (1.2e+52)"},
      {"bignum.json/integer/a negative bignum is an integer", "an integer written with an exponent (-1.2e+52)"},
      // format: tighter than the RFCs where noted in json_formats.h.
      {"format.json/validation of URIs/a valid protocol-relative URI", "a relative reference is not a URI"},
  };
  return k;
}

struct Counts {
  int schemas = 0, compiled = 0, unsupported = 0, other_errors = 0;
  int valid = 0, valid_accepted = 0, invalid = 0, invalid_rejected = 0;
  std::map<std::string, int> unsupported_keywords;
  std::vector<std::string> valid_rejected, invalid_accepted, errors;
};

void run_file(const fs::path& file, const std::string& draft, Counts& c) {
  std::ifstream in(file);
  nlohmann::json groups = nlohmann::json::parse(in);
  const std::string fname = file.filename().string();
  for (const auto& group : groups) {
    nlohmann::json schema = group["schema"];
    if (schema.is_object() && !schema.contains("$schema") && draft != "draft2019-09" && draft != "draft2020-12")
      schema["$schema"] = "http://json-schema.org/" + (draft == "draft4" ? std::string("draft-04") : draft == "draft6" ? "draft-06" : "draft-07") + "/schema#";
    const std::string gname = fname + "/" + group["description"].get<std::string>();
    ++c.schemas;
    std::string text;
    try {
      text = json_schema_to_gbnf(schema);
    } catch (const JsonSchemaError& e) {
      std::string msg = e.what();
      const std::string prefix = "unsupported JSON Schema keyword '";
      if (msg.rfind(prefix, 0) == 0) {
        std::string kw = msg.substr(prefix.size(), msg.find('\'', prefix.size()) - prefix.size());
        EXPECT_NE(schema.dump().find("\"" + kw + "\""), std::string::npos) << gname << ": " << msg;
        ++c.unsupported;
        ++c.unsupported_keywords[kw];
      } else {
        ++c.other_errors;
        c.errors.push_back(gname + ": " + msg);
      }
      continue;
    }
    ++c.compiled;
    testing::LanguageChecker g(text);
    for (const auto& t : group["tests"]) {
      const std::string tname = gname + "/" + t["description"].get<std::string>();
      const nlohmann::json& data = t["data"];
      if (t["valid"].get<bool>()) {
        ++c.valid;
        if (g.accepts(data.dump()) && g.accepts(data.dump(2))) ++c.valid_accepted;
        else c.valid_rejected.push_back(tname + " | " + data.dump());
      } else {
        ++c.invalid;
        if (!g.accepts(data.dump())) ++c.invalid_rejected;
        else c.invalid_accepted.push_back(tname + " | " + data.dump());
      }
    }
  }
}

TEST(JsonSchemaTestSuite, Drafts) {
  const fs::path root = fs::path(VLLM_TEST_DATA_DIR) / "json-schema-test-suite" / "tests";
  if (!fs::exists(root)) GTEST_SKIP() << "JSON-Schema-Test-Suite absent: run scripts/fetch_json_schema_test_suite.sh";
  Counts c;
  int drafts = 0;
  for (const std::string draft : {"draft4", "draft6", "draft7", "draft2019-09", "draft2020-12"}) {
    if (!fs::exists(root / draft)) continue;
    ++drafts;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(root / draft))
      if (e.path().extension() == ".json") files.push_back(e.path());
    if (fs::exists(root / draft / "optional"))
      for (const auto& e : fs::directory_iterator(root / draft / "optional"))
        if (e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) run_file(f, draft, c);
  }
  ASSERT_GT(drafts, 0);
  std::cout << "JSON-Schema-Test-Suite: " << c.schemas << " schemas, " << c.compiled << " compiled, "
            << c.unsupported << " rejected as unsupported, " << c.other_errors << " other errors\n"
            << "  valid instances accepted: " << c.valid_accepted << "/" << c.valid
            << "; invalid instances rejected: " << c.invalid_rejected << "/" << c.invalid << "\n  unsupported:";
  for (const auto& [k, n] : c.unsupported_keywords) std::cout << " " << k << "=" << n;
  std::cout << "\n";
  for (const auto& e : c.errors) std::cout << "  error: " << e << "\n";
  for (const auto& v : c.valid_rejected) {
    std::string key = v.substr(0, v.find(" | "));
    bool known = known_tighter().count(key) > 0;
    std::cout << "  valid rejected" << (known ? " (known: " + known_tighter().at(key) + ")" : "") << ": " << v << "\n";
    EXPECT_TRUE(known) << "valid instance rejected: " << v;
  }
  for (const auto& v : c.invalid_accepted) {
    std::cout << "  invalid accepted: " << v << "\n";
    ADD_FAILURE() << "invalid instance accepted: " << v;
  }
}

}  // namespace
}  // namespace vllm::structured
