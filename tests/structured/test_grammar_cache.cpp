// GrammarCache: sharing, keys, failures, LRU bounds, compiling off the caller's thread, and
// concurrent use; the built-in grammars (json_object, choice).
#include <atomic>
#include <condition_variable>
#include <thread>

#include "structured_test_util.h"
#include "vllm/structured/builtin_grammars.h"
#include "vllm/structured/grammar_cache.h"

namespace vllm::structured::test {
namespace {

std::shared_ptr<const TokenVocabulary> small_vocab() {
  return TokenVocabulary::from_token_bytes({"a", "b", "ab", "{", "}", "\"", " ", "<eos>"}, {}, {7});
}

TEST(GrammarCache, SharesCompilationsAndKeysByKindTextAndVocabulary) {
  GrammarCache cache;
  auto v1 = small_vocab(), v2 = small_vocab();
  std::atomic<int> conversions{0};
  auto to_gbnf = [&](std::string_view text) {
    ++conversions;
    return "root ::= " + std::string(text);
  };
  auto f1 = cache.get("test", "\"a\"+", v1, to_gbnf);
  auto f2 = cache.get("test", "\"a\"+", v1, to_gbnf);
  EXPECT_EQ(f1.get(), f2.get());  // one CompiledGrammar for both requests
  auto f3 = cache.get("test", "\"a\"+", v2, to_gbnf);  // another tokenizer: another grammar
  auto f4 = cache.get("other", "\"a\"+", v1, to_gbnf);  // another front end: another key
  EXPECT_NE(f3.get(), f1.get());
  EXPECT_NE(f4.get(), f1.get());
  EXPECT_EQ(f3.get()->vocabulary(), v2);
  EXPECT_EQ(conversions.load(), 3);
  const GrammarCacheStats s = cache.stats();
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_GT(s.bytes, 0u);
  EXPECT_EQ(s.compiling, 0u);
  // A compiled grammar from the cache works.
  GrammarMatcher m(f1.get());
  EXPECT_TRUE(m.accept_token(0));
  EXPECT_TRUE(m.accept_token(0));
  EXPECT_FALSE(m.accept_token(2));  // "ab": no b in "a"+
  EXPECT_TRUE(m.can_terminate());
}

TEST(GrammarCache, FailuresAreDeliveredAndNotKept) {
  GrammarCache cache;
  auto v = small_vocab();
  auto f = cache.get("gbnf", "root ::= valu", v);
  try {
    f.get();
    FAIL() << "expected a GrammarError";
  } catch (const GrammarError& e) {
    EXPECT_EQ(e.reason(), "undefined rule 'valu'");
  }
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().failures, 1u);
  // A front end's own error travels the same way.
  auto g = cache.get("schema", "{bad", v, [](std::string_view) -> std::string {
    throw Error("schema is not valid JSON", ErrorKind::kInvalidArgument);
  });
  EXPECT_THROW(g.get(), Error);
  // The same text again is compiled again (and fails again).
  auto f2 = cache.get("gbnf", "root ::= valu", v);
  EXPECT_THROW(f2.get(), GrammarError);
  EXPECT_EQ(cache.stats().misses, 3u);
}

TEST(GrammarCache, EvictsLeastRecentlyUsedByEntriesAndBytes) {
  GrammarCacheOptions o;
  o.max_entries = 2;
  GrammarCache cache(o);
  auto v = small_vocab();
  auto a = cache.get("gbnf", "root ::= \"a\"", v);
  a.wait();
  auto b = cache.get("gbnf", "root ::= \"b\"", v);
  b.wait();
  cache.get("gbnf", "root ::= \"a\"", v).wait();  // a is now the most recent
  auto c = cache.get("gbnf", "root ::= \"ab\"", v);
  c.wait();
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  const uint64_t misses = cache.stats().misses;
  cache.get("gbnf", "root ::= \"a\"", v).wait();  // kept
  EXPECT_EQ(cache.stats().misses, misses);
  cache.get("gbnf", "root ::= \"b\"", v).wait();  // was evicted
  EXPECT_EQ(cache.stats().misses, misses + 1);
  // An evicted grammar stays valid for whoever holds it.
  GrammarMatcher m(b.get());
  EXPECT_TRUE(m.accept_token(1));
  // A byte bound smaller than one grammar keeps none once compiled.
  GrammarCacheOptions tiny;
  tiny.max_bytes = 1;
  GrammarCache small(tiny);
  small.get("gbnf", "root ::= \"a\"", v).wait();
  EXPECT_EQ(small.stats().entries, 0u);
  EXPECT_EQ(small.stats().bytes, 0u);
  cache.clear();
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
}

TEST(GrammarCache, CompilesOffTheCallersThread) {
  GrammarCache cache;
  auto v = small_vocab();
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::thread::id compiled_on;
  auto f = cache.get("slow", "x", v, [&](std::string_view) {
    std::unique_lock<std::mutex> lock(mu);
    compiled_on = std::this_thread::get_id();
    cv.wait(lock, [&] { return release; });
    return std::string("root ::= \"a\"");
  });
  // The call returned while the front end is still blocked: the engine can poll.
  EXPECT_FALSE(GrammarCache::ready(f));
  EXPECT_EQ(cache.stats().compiling, 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  f.wait();
  EXPECT_TRUE(GrammarCache::ready(f));
  EXPECT_NE(compiled_on, std::this_thread::get_id());
  EXPECT_NE(f.get(), nullptr);
}

TEST(GrammarCache, ConcurrentRequestsCompileEachGrammarOnce) {
  GrammarCacheOptions o;
  o.compile_threads = 2;
  GrammarCache cache(o);
  auto v = small_vocab();
  std::atomic<int> conversions{0};
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<const CompiledGrammar>> seen(8 * 40);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const std::string text = "\"a\"{" + std::to_string(i % 5 + 1) + "}";
        seen[static_cast<size_t>(t * 40 + i)] = cache.get("test", text, v, [&](std::string_view s) {
          ++conversions;
          return "root ::= " + std::string(s);
        }).get();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(conversions.load(), 5);
  for (size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], seen[k % 40 % 5]) << k;
}

TEST(GrammarCache, ClosingFailsQueuedCompilations) {
  auto v = small_vocab();
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  auto cache = std::make_unique<GrammarCache>();  // one compile thread
  auto running = cache->get("slow", "x", v, [&](std::string_view) {
    std::unique_lock<std::mutex> lock(mu);
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return std::string("root ::= \"a\"");
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started; });  // the one thread is busy
  }
  auto queued = cache->get("gbnf", "root ::= \"b\"", v);
  // Closing fails the queued request at once, then waits for the running one.
  std::thread closer([&] { cache.reset(); });
  queued.wait();
  EXPECT_THROW(queued.get(), Error);
  EXPECT_FALSE(GrammarCache::ready(running));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  closer.join();
  EXPECT_NE(running.get(), nullptr);  // finished before the cache went
}

TEST(BuiltinGrammars, JsonObject) {
  const std::string g = json_object_gbnf();
  for (const char* ok : {"{}", "{\"a\":1}", " { \"a\" : [ 1 , -2.5e+3 , true , false , null , \"x\\n\\u00e9\" ] } ",
                         "{\"nested\": {\"deep\": [[{}], []]}, \"s\": \"caf\xC3\xA9 \xF0\x9F\x98\x80\"}"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {"[]", "1", "{", "{\"a\"}", "{\"a\":01}", "{\"a\":1,}", "{'a':1}", "{\"a\":\"\x01\"}",
                          "{\"a\":\"\\x\"}", "{\"a\":tru}", "{} {}"}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
  const std::string compact = json_object_gbnf({.whitespace = false});
  EXPECT_TRUE(matches(compact, "{\"a\":[1,2]}"));
  EXPECT_FALSE(matches(compact, "{\"a\": 1}"));
}

TEST(BuiltinGrammars, Choice) {
  const std::string g = choice_to_gbnf({"yes", "no", "a \"quoted\" \\ word\n", "", "\xE6\x97\xA5\xE6\x9C\xAC"});
  for (const char* ok : {"yes", "no", "a \"quoted\" \\ word\n", "", "\xE6\x97\xA5\xE6\x9C\xAC"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  EXPECT_FALSE(matches(g, "ye"));
  EXPECT_FALSE(matches(g, "yesno"));
  EXPECT_TRUE(viable(g, "ye"));
  EXPECT_EQ(gbnf_literal("a\"b\\c\td\x01"), "\"a\\\"b\\\\c\\td\\x01\"");
  EXPECT_THROW(choice_to_gbnf({}), Error);
  EXPECT_THROW(choice_to_gbnf({"ok", "\xFF"}), Error);
}

}  // namespace
}  // namespace vllm::structured::test
