// The Responses API's pieces that need no engine: the bounded response store
// (src/vllm/server/response_store.h) and the event stream of streamed responses
// (ResponseEventStream in src/vllm/server/responses.h), with reasoning, message and
// function-call items in one stream as output parsers will produce them.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "vllm/server/response_store.h"
#include "vllm/server/responses.h"

namespace vllm::server {
namespace {

std::shared_ptr<const ResponseStore::Entry> entry(const std::string& text) {
  auto e = std::make_shared<ResponseStore::Entry>();
  e->response = {{"id", "x"}, {"text", text}};
  e->messages = ojson::array({{{"role", "user"}, {"content", text}}});
  return e;
}

TEST(ResponseStore, EvictsTheLeastRecentlyUsedPastTheCount) {
  ResponseStore store(2, 0);
  EXPECT_TRUE(store.put("a", entry("1")));
  EXPECT_TRUE(store.put("b", entry("2")));
  ASSERT_NE(store.get("a"), nullptr);  // a is used: b is now the least recently used
  EXPECT_TRUE(store.put("c", entry("3")));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_NE(store.get("a"), nullptr);
  EXPECT_EQ(store.get("b"), nullptr);
  EXPECT_NE(store.get("c"), nullptr);
  EXPECT_TRUE(store.erase("a"));
  EXPECT_FALSE(store.erase("a"));
  EXPECT_EQ(store.size(), 1u);
}

TEST(ResponseStore, EvictsPastTheByteBoundAndRefusesAnEntryLargerThanIt) {
  ResponseStore probe(10, 0);
  probe.put("a", entry(std::string(100, 'x')));
  const size_t size = probe.bytes();  // one such entry, as the store measures it
  ASSERT_GT(size, 200u);

  ResponseStore store(10, 2 * size + size / 2);
  store.put("a", entry(std::string(100, 'x')));
  store.put("b", entry(std::string(100, 'y')));
  EXPECT_EQ(store.size(), 2u);
  store.put("c", entry(std::string(100, 'z')));  // three do not fit: a goes
  EXPECT_EQ(store.size(), 2u);
  EXPECT_LE(store.bytes(), 2 * size + size / 2);
  EXPECT_EQ(store.get("a"), nullptr);
  EXPECT_FALSE(store.put("big", entry(std::string(10 * size, 'w'))));
  EXPECT_EQ(store.get("big"), nullptr);
  EXPECT_EQ(store.size(), 2u);
  // Replacing an entry counts it once.
  store.put("b", entry(std::string(100, 'q')));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.get("b")->response["text"], std::string(100, 'q'));
}

TEST(ResponseStore, ZeroEntriesStoresNothing) {
  ResponseStore store(0, 0);
  EXPECT_FALSE(store.enabled());
  EXPECT_FALSE(store.put("a", entry("1")));
  EXPECT_EQ(store.get("a"), nullptr);
}

// "event: t\ndata: {...}\n\n" blocks -> their JSON payloads, checking the event line.
std::vector<ojson> parse_events(const std::string& sse) {
  std::vector<ojson> out;
  size_t pos = 0;
  while (pos < sse.size()) {
    const size_t end = sse.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos);
    const std::string block = sse.substr(pos, end - pos);
    const size_t nl = block.find('\n');
    EXPECT_EQ(block.rfind("event: ", 0), 0u);
    EXPECT_EQ(block.compare(nl + 1, 6, "data: "), 0);
    ojson e = ojson::parse(block.substr(nl + 7));
    EXPECT_EQ(e["type"], block.substr(7, nl - 7));
    out.push_back(std::move(e));
    pos = end + 2;
  }
  return out;
}

TEST(ResponseEventStream, ReasoningThenMessageThenFunctionCalls) {
  ResponseEventStream s;
  std::string sse;
  sse += s.reasoning_text_delta("Let me ");
  sse += s.reasoning_text_delta("think.");
  sse += s.output_text_delta("Checking", ojson::array());
  sse += s.output_text_delta(" now.", ojson::array());
  sse += s.function_call_arguments_delta("call_1", "get_weather", "{\"city\": ");
  sse += s.function_call_arguments_delta("call_1", "get_weather", "\"Paris\"}");
  sse += s.function_call_arguments_delta("call_2", "get_time", "{}");
  sse += s.close_item("completed");
  sse += s.close_item("completed");  // nothing open: nothing sent

  const std::vector<ojson> events = parse_events(sse);
  std::vector<std::string> types;
  for (size_t i = 0; i < events.size(); ++i) {
    types.push_back(events[i]["type"]);
    EXPECT_EQ(events[i]["sequence_number"], static_cast<int64_t>(i));
  }
  const std::vector<std::string> expected = {
      "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
      "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added", "response.content_part.added", "response.output_text.delta",
      "response.output_text.delta", "response.output_text.done", "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta",
      "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta",
      "response.function_call_arguments.done", "response.output_item.done"};
  EXPECT_EQ(types, expected);

  const ojson& out = s.output();
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["type"], "reasoning");
  EXPECT_EQ(out[0]["content"][0]["text"], "Let me think.");
  EXPECT_EQ(out[1]["type"], "message");
  EXPECT_EQ(out[1]["content"][0]["text"], "Checking now.");
  EXPECT_EQ(out[2]["type"], "function_call");
  EXPECT_EQ(out[2]["call_id"], "call_1");
  EXPECT_EQ(out[2]["name"], "get_weather");
  EXPECT_EQ(out[2]["arguments"], "{\"city\": \"Paris\"}");
  EXPECT_EQ(out[2]["status"], "completed");
  EXPECT_EQ(out[3]["call_id"], "call_2");
  // Every event of an item names its id and output index; the done item is the listed one.
  for (const ojson& e : events) {
    const int64_t index = e["output_index"];
    const ojson& item = out[static_cast<size_t>(index)];
    if (e.contains("item_id")) {
      EXPECT_EQ(e["item_id"], item["id"]) << e.dump();
    }
    if (e["type"] == "response.output_item.done") {
      EXPECT_EQ(e["item"], item);
    }
    if (e["type"] == "response.output_item.added") {
      EXPECT_EQ(e["item"]["status"], "in_progress");
      EXPECT_EQ(e["item"]["id"], item["id"]);
    }
  }
  EXPECT_EQ(std::string(out[1]["id"]).rfind("msg_", 0), 0u);
  EXPECT_EQ(std::string(out[2]["id"]).rfind("fc_", 0), 0u);
  EXPECT_EQ(std::string(out[0]["id"]).rfind("rs_", 0), 0u);
}

TEST(ResponseEventStream, AnIncompleteMessageKeepsItsLogprobs) {
  ResponseEventStream s;
  const ojson lp = ojson::array({{{"token", "Hi"}, {"logprob", -0.5}, {"bytes", {72, 105}}, {"top_logprobs", ojson::array()}}});
  std::string sse = s.output_text_delta("Hi", lp);
  sse += s.close_item("incomplete");
  const std::vector<ojson> events = parse_events(sse);
  EXPECT_EQ(events[2]["logprobs"], lp);  // the delta carries its tokens' logprobs
  ASSERT_EQ(s.output().size(), 1u);
  EXPECT_EQ(s.output()[0]["status"], "incomplete");
  EXPECT_EQ(s.output()[0]["content"][0]["logprobs"], lp);
}

}  // namespace
}  // namespace vllm::server
