// The server's defensive JSON parsing (src/vllm/server/json_body.h): nesting limit, duplicate
// keys, big objects, out-of-range numbers, bounded error messages and excerpts.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "vllm/server/errors.h"
#include "vllm/server/json_body.h"

namespace vllm::server {
namespace {

std::string nested(int depth, const std::string& inner = "") {
  return std::string(static_cast<size_t>(depth), '[') + inner + std::string(static_cast<size_t>(depth), ']');
}

// The message of the ApiError that parsing `text` throws ("" when it parses).
std::string parse_error(const std::string& text, std::optional<std::string>* param = nullptr) {
  try {
    parse_request_json(text);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    if (param) *param = e.param();
    return e.what();
  }
  return "";
}

TEST(JsonBody, ParsesOrdinaryBodiesKeepingKeyOrder) {
  ojson j = parse_request_json(R"({"prompt": "hi", "max_tokens": 5, "stop": ["a", "b"], "x": {"z": 1, "a": 2}})");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["prompt"], "hi");
  EXPECT_EQ(j["max_tokens"], 5);
  EXPECT_EQ(j["stop"][1], "b");
  EXPECT_EQ(j.dump(), R"({"prompt":"hi","max_tokens":5,"stop":["a","b"],"x":{"z":1,"a":2}})");
  EXPECT_EQ(parse_request_json("[1, 2.5, -3, true, null]").dump(), "[1,2.5,-3,true,null]");
  EXPECT_EQ(parse_request_json("\"x\"").get<std::string>(), "x");
  EXPECT_EQ(parse_request_json("18446744073709551615").get<uint64_t>(), 18446744073709551615ull);
}

TEST(JsonBody, NestingUpToTheLimitParses) {
  ojson j = parse_request_json(nested(kMaxJsonDepth));
  int depth = 0;
  for (const ojson* v = &j; v->is_array(); v = v->empty() ? nullptr : &(*v)[0]) {
    ++depth;
    if (v->empty()) break;
  }
  EXPECT_EQ(depth, kMaxJsonDepth);
  EXPECT_EQ(parse_error(std::string("{\"a\": ") + nested(kMaxJsonDepth - 1) + "}"), "");
}

TEST(JsonBody, DeeperNestingIsRefusedWithoutRecursion) {
  const std::string expected =
      "JSON decode error: the body is nested too deeply (more than 1000 levels of arrays and objects)";
  EXPECT_EQ(parse_error(nested(kMaxJsonDepth + 1)), expected);
  EXPECT_EQ(parse_error(std::string("{\"a\": ") + nested(kMaxJsonDepth) + "}"), expected);
  // The crash: 70,000 levels (140 KB), whole or as a field's value, objects too.
  EXPECT_EQ(parse_error(nested(100000)), expected);
  EXPECT_EQ(parse_error(std::string("{\"max_tokens\": ") + nested(100000) + "}"), expected);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += std::string("1") + std::string(100000, '}');
  EXPECT_EQ(parse_error(objects), expected);
  // Unbalanced: still refused at the limit, before the end of input is noticed.
  EXPECT_EQ(parse_error(std::string(100000, '[')), expected);
}

TEST(JsonBody, DuplicateKeysKeepTheFirstPlaceAndTheLastValue) {
  EXPECT_EQ(parse_request_json(R"({"a": 1, "b": 2, "a": 3})").dump(), R"({"a":3,"b":2})");
  // Past the size where objects get a hash index.
  std::string text = "{";
  for (int i = 0; i < 100; ++i) text.append("\"k").append(std::to_string(i)).append("\": ").append(std::to_string(i)).append(", ");
  text += "\"k7\": \"again\", \"k99\": [1], \"last\": 0}";
  ojson j = parse_request_json(text);
  ASSERT_EQ(j.size(), 101u);
  EXPECT_EQ(j["k7"], "again");
  EXPECT_EQ(j["k99"], ojson::array({1}));
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys[0], "k0");
  EXPECT_EQ(keys[7], "k7");
  EXPECT_EQ(keys.back(), "last");
  // A container replaced by a later duplicate, inside a nested object.
  EXPECT_EQ(parse_request_json(R"({"o": {"x": {"deep": [1, 2]}, "y": 0, "x": [3]}})").dump(), R"({"o":{"x":[3],"y":0}})");
}

TEST(JsonBody, BigObjectsParseWithEveryKeyInOrder) {
  // 160,000 keys took 16-20 s with ordered_json's own parser (quadratic inserts).
  constexpr int kKeys = 160000;
  std::string text = "{";
  for (int i = 0; i < kKeys; ++i) {
    text.append(i ? ",\"" : "\"").append(std::to_string(i)).append("\":").append(std::to_string(i));
  }
  text += "}";
  ojson j = parse_request_json(text);
  ASSERT_EQ(j.size(), static_cast<size_t>(kKeys));
  int expect = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++expect) {
    ASSERT_EQ(it.key(), std::to_string(expect));
    ASSERT_EQ(it.value(), expect);
  }
}

TEST(JsonBody, OutOfRangeNumbersNameTheirField) {
  std::optional<std::string> param;
  EXPECT_EQ(parse_error(R"({"model": "m", "max_tokens": 1e400})", &param),
            "max_tokens: Input should be a finite number, got 1e400");
  EXPECT_EQ(param, "max_tokens");
  EXPECT_EQ(parse_error(R"({"logit_bias": {"5": -1e999}})", &param),
            "logit_bias.5: Input should be a finite number, got -1e999");
  EXPECT_EQ(param, "logit_bias");
  EXPECT_EQ(parse_error(R"({"messages": [{"role": "user"}, {"content": 2e308}]})", &param),
            "messages[1].content: Input should be a finite number, got 2e308");
  EXPECT_EQ(param, "messages");
  EXPECT_EQ(parse_error(R"({"stop": [1, 2, 1e400]})"), "stop[2]: Input should be a finite number, got 1e400");
  EXPECT_EQ(parse_error("1e400", &param), "JSON decode error: the number 1e400 is out of range");
  EXPECT_EQ(param, std::nullopt);
  // 400 digits: an integer too big for any type becomes a double, then overflows too.
  const std::string huge = std::string("1") + std::string(400, '0');
  const std::string message = parse_error(std::string("{\"n\": ") + huge + "}");
  EXPECT_EQ(message.rfind("n: Input should be a finite number, got 1000000000", 0), 0u) << message;
  EXPECT_LT(message.size(), 120u);
  // Large but finite numbers are kept.
  EXPECT_EQ(parse_request_json(R"({"t": 1e300})")["t"].get<double>(), 1e300);
}

TEST(JsonBody, SyntaxErrorsAreShortDecodeErrors) {
  EXPECT_EQ(parse_error(R"({"prompt": "a", )").rfind("JSON decode error: parse error at line 1, column ", 0), 0u);
  EXPECT_EQ(parse_error("").rfind("JSON decode error: ", 0), 0u);
  EXPECT_EQ(parse_error("{} x").rfind("JSON decode error: ", 0), 0u);
  EXPECT_EQ(parse_error("{\"a\": \"\xff\"}").rfind("JSON decode error: ", 0), 0u);
  // The offending token is quoted, but not all of a huge one.
  const std::string message = parse_error(std::string("{\"a\": tru") + std::string(1000000, 'e') + "}");
  EXPECT_EQ(message.rfind("JSON decode error: ", 0), 0u);
  EXPECT_LE(message.size(), 330u);
}

TEST(JsonBody, ExcerptsAreShortAndNeverWalkTheWholeValue) {
  EXPECT_EQ(json_excerpt(ojson("ten")), "\"ten\"");
  EXPECT_EQ(json_excerpt(ojson(5)), "5");
  EXPECT_EQ(json_excerpt(parse_request_json(R"({"a": [1, {"b": null}], "c": "d"})")), R"({"a":[1,{"b":null}],"c":"d"})");
  EXPECT_EQ(json_excerpt(ojson::array()), "[]");
  EXPECT_EQ(json_excerpt(ojson::object()), "{}");
  const std::string deep = json_excerpt(parse_request_json(nested(kMaxJsonDepth)));
  EXPECT_EQ(deep, std::string(77, '[') + "...");
  ojson long_string = std::string(1000000, 'x');
  EXPECT_EQ(json_excerpt(long_string), std::string("\"") + std::string(76, 'x') + "...");
  ojson many = ojson::array();
  for (int i = 0; i < 100000; ++i) many.push_back(i);
  const std::string text = json_excerpt(many, 20);
  EXPECT_EQ(text, "[0,1,2,3,4,5,6,7,...");
  // A cut never splits a UTF-8 character.
  const std::string e_acute = json_excerpt(ojson("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"), 6);
  EXPECT_EQ(e_acute, "\"\xc3\xa9...");
}

TEST(JsonBody, AppendNewKeyKeepsOrder) {
  ojson o = ojson::object();
  for (int i = 0; i < 1000; ++i) {
    std::string key = "k";
    key.append(std::to_string(999 - i));
    append_new_key(o, std::move(key), i);
  }
  ASSERT_EQ(o.size(), 1000u);
  EXPECT_EQ(o.begin().key(), "k999");
  EXPECT_EQ(o["k0"], 999);
}

}  // namespace
}  // namespace vllm::server
