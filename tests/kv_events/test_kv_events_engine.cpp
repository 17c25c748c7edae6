// KV cache events from a running engine (tiny-qwen2 on the CPU) to a real ZeroMQ SUB socket, as
// a router would receive them with --kv-events-config: BlockStored for a request's full blocks
// (hashes chained by parent, token ids equal to the request's blocks), BlockRemoved when another
// request evicts them, AllBlocksCleared at a prefix cache reset, sequence numbers one apart; and
// an engine whose publisher has no subscriber runs as usual.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <set>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "../engine/golden.h"
#include "msgpack_reader.h"
#include "vllm/engine/data_parallel_engine.h"
#include "vllm/engine/engine_core.h"
#include "vllm/kv_events/publisher.h"

using namespace vllm;
using vllm::kv_events::test::Value;

namespace {

EngineCoreRequest greedy(const std::vector<int32_t>& prompt, int max_tokens) {
  EngineCoreRequest r;
  r.prompt_token_ids = prompt;
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.finalize();
  return r;
}

// Runs the request to its end; returns its prompt and output tokens.
std::vector<int32_t> run(EngineCore& engine, const std::vector<int32_t>& prompt, int max_tokens) {
  const uint64_t id = engine.add_request(greedy(prompt, max_tokens));
  std::vector<int32_t> all = prompt;
  while (engine.has_unfinished())
    for (const auto& o : engine.step())
      if (o.seq_id == id) all.insert(all.end(), o.new_token_ids.begin(), o.new_token_ids.end());
  return all;
}

struct Message {
  uint64_t seq;
  Value batch;
};

// Every message that arrives until none has for `idle_ms`.
std::vector<Message> receive_all(zmq::socket_t& sub, int idle_ms = 300) {
  sub.set(zmq::sockopt::rcvtimeo, idle_ms);
  std::vector<Message> out;
  for (;;) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(sub, std::back_inserter(parts))) return out;
    EXPECT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0].to_string(), "kv-events");
    uint64_t seq = 0;
    for (size_t i = 0; i < 8; ++i) seq = (seq << 8) | static_cast<const unsigned char*>(parts[1].data())[i];
    out.push_back({seq, kv_events::test::decode(parts[2].to_string())});
  }
}

std::string ipc(const std::string& name) {
  return "ipc://" + (std::filesystem::temp_directory_path() / ("vllm-kvev-engine-" + std::to_string(getpid()) + "-" + name)).string();
}

EngineConfig tiny_config(const std::string& kv_events_config) {
  EngineConfig c;
  c.model = test::materialize_model("tiny-qwen2");
  c.dtype = "float32";
  c.block_size = 4;
  c.num_kv_blocks = 8;  // 32 tokens: a second long prompt evicts the first one's blocks
  c.kv_events_config = kv_events_config;
  return c;
}

}  // namespace

TEST(KVEventsEngine, StoredRemovedClearedReachASubscriber) {
  const std::string endpoint = ipc("pub");
  EngineCore engine(tiny_config(R"({"enable_kv_cache_events": true, "publisher": "zmq", "endpoint": ")" + endpoint +
                                R"(", "topic": "kv-events"})"));
  ASSERT_NE(engine.kv_event_publisher(), nullptr);
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "kv-events");
  sub.connect(endpoint);
  // The subscription reaches the publisher asynchronously: reset the (empty) cache until its
  // AllBlocksCleared arrives, so that nothing after it can be missed.
  std::vector<Message> sync;
  for (int attempt = 0; attempt < 100 && sync.empty(); ++attempt) {
    engine.reset_prefix_cache();
    sync = receive_all(sub, 100);
  }
  ASSERT_FALSE(sync.empty());
  EXPECT_EQ(sync[0].batch[1][0][0].s, "AllBlocksCleared");

  // Request A: 10 prompt tokens and 3 generated, block size 4: its first three blocks fill.
  const std::vector<int32_t> prompt_a = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  const std::vector<int32_t> all_a = run(engine, prompt_a, 3);
  ASSERT_EQ(all_a.size(), 13u);
  std::vector<Message> got = receive_all(sub);
  std::vector<uint64_t> stored_a;
  std::vector<int32_t> stored_tokens;
  std::optional<uint64_t> last_hash;
  for (const Message& m : got) {
    const double now = kv_events::unix_time_seconds();
    EXPECT_NEAR(m.batch[0].f, now, 60.0);
    EXPECT_EQ(m.batch[2].as_int(), 0);  // data_parallel_rank
    for (const Value& e : m.batch[1].items) {
      ASSERT_EQ(e[0].s, "BlockStored");
      ASSERT_EQ(e.items.size(), 8u);
      // Chained: the first block has no parent, each later run names the previous block.
      if (last_hash) {
        EXPECT_EQ(e[2].u, *last_hash);
      } else {
        EXPECT_TRUE(e[2].is_nil());
      }
      for (const Value& h : e[1].items) stored_a.push_back(h.u);
      for (const Value& t : e[3].items) stored_tokens.push_back(static_cast<int32_t>(t.as_int()));
      EXPECT_EQ(e[4].as_int(), 4);
      EXPECT_TRUE(e[5].is_nil());
      EXPECT_EQ(e[6].s, "GPU");
      last_hash = stored_a.back();
    }
  }
  ASSERT_EQ(stored_a.size(), 3u);
  EXPECT_EQ(stored_tokens, std::vector<int32_t>(all_a.begin(), all_a.begin() + 12));
  // The hashes are the prefix cache's own (the low 64 bits of its chain).
  BlockHash h{};
  for (size_t b = 0; b < 3; ++b) {
    h = hash_block(h, all_a.data() + 4 * b, 4, 0);
    EXPECT_EQ(stored_a[b], h.low);
  }

  // Request B needs all 8 blocks: A's cached blocks are evicted.
  std::vector<int32_t> prompt_b;
  for (int i = 0; i < 30; ++i) prompt_b.push_back(100 + i);
  run(engine, prompt_b, 1);
  std::vector<Message> got_b = receive_all(sub);
  std::set<uint64_t> removed;
  int stored_b = 0;
  for (const Message& m : got_b)
    for (const Value& e : m.batch[1].items) {
      if (e[0].s == "BlockRemoved") {
        EXPECT_EQ(e[2].s, "GPU");
        for (const Value& x : e[1].items) removed.insert(x.u);
      } else if (e[0].s == "BlockStored") {
        stored_b += static_cast<int>(e[1].items.size());
      }
    }
  EXPECT_EQ(removed, std::set<uint64_t>(stored_a.begin(), stored_a.end()));
  EXPECT_EQ(stored_b, 7);  // 30 tokens: 7 full blocks

  engine.reset_prefix_cache();
  std::vector<Message> got_c = receive_all(sub);
  ASSERT_EQ(got_c.size(), 1u);
  ASSERT_EQ(got_c[0].batch[1].items.size(), 1u);
  EXPECT_EQ(got_c[0].batch[1][0][0].s, "AllBlocksCleared");

  // One batch per step, numbered one after another from the first message received.
  std::vector<Message> all = sync;
  for (auto* part : {&got, &got_b, &got_c}) all.insert(all.end(), part->begin(), part->end());
  for (size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i].seq, all[i - 1].seq + 1);
  EXPECT_EQ(engine.kv_event_publisher()->stats().dropped, 0u);
}

// vllm serve --data-parallel-size 2 --kv-events-config ...: replica r publishes on its own socket
// (the endpoint offset by r, as vLLM's), and its batches carry r as their data_parallel_rank, so a
// router subscribed to both knows which replica holds which blocks.
TEST(KVEventsEngine, EachDataParallelReplicaPublishesOnItsOwnSocketWithItsRank) {
  const std::string endpoint = ipc("dp");
  EngineConfig c = tiny_config(R"({"enable_kv_cache_events": true, "endpoint": ")" + endpoint + R"(", "topic": "kv-events"})");
  c.num_kv_blocks = 64;
  c.data_parallel_size = 2;
  DataParallelEngine dp(c, 0);
  zmq::context_t ctx;
  std::vector<zmq::socket_t> subs;
  for (const std::string& e : {endpoint, endpoint + "_dp1"}) {
    subs.emplace_back(ctx, zmq::socket_type::sub);
    subs.back().set(zmq::sockopt::subscribe, "kv-events");
    subs.back().connect(e);
  }
  // Wait until both subscriptions are live: a (tiny) request on each replica until both report.
  // Two requests in flight at once go to different replicas (the router counts load as it routes).
  std::vector<std::vector<Message>> got(2);
  for (int attempt = 0; attempt < 50 && (got[0].empty() || got[1].empty()); ++attempt) {
    std::vector<std::future<void>> done;
    for (int r = 0; r < 2; ++r) {
      auto finished = std::make_shared<std::promise<void>>();
      done.push_back(finished->get_future());
      std::vector<int32_t> prompt;
      for (int i = 0; i < 9; ++i) prompt.push_back(1000 * (attempt + 1) + 100 * r + i);  // new blocks every time
      SamplingParams p;
      p.max_tokens = 8;
      p.ignore_eos = true;
      dp.add_request("r" + std::to_string(attempt) + "-" + std::to_string(r), PromptInput::from_ids(prompt), p, {},
                     [finished](RequestOutput&& o) {
                       if (o.finished) finished->set_value();
                     },
                     [finished](const Error&) { finished->set_value(); });
    }
    for (auto& f : done) f.wait();
    for (int r = 0; r < 2; ++r) {
      std::vector<Message> m = receive_all(subs[static_cast<size_t>(r)], 100);
      got[static_cast<size_t>(r)].insert(got[static_cast<size_t>(r)].end(), m.begin(), m.end());
    }
  }
  for (int r = 0; r < 2; ++r) {
    ASSERT_FALSE(got[static_cast<size_t>(r)].empty()) << "replica " << r << " published nothing on its socket";
    int stored = 0;
    for (const Message& m : got[static_cast<size_t>(r)]) {
      EXPECT_EQ(m.batch[2].as_int(), r);  // data_parallel_rank
      for (const Value& e : m.batch[1].items) stored += e[0].s == "BlockStored" ? 1 : 0;
    }
    EXPECT_GT(stored, 0) << "replica " << r;
  }
  dp.shutdown(false);
}

TEST(KVEventsEngine, NoSubscriberDoesNotBlockTheEngine) {
  // Connect mode to a port nobody listens on: the PUB socket drops what it cannot send.
  EngineCore engine(tiny_config(R"({"enable_kv_cache_events": true, "endpoint": "tcp://127.0.0.1:1", "max_queue_size": 4})"));
  for (int r = 0; r < 4; ++r) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < 20; ++i) prompt.push_back(50 * r + i);
    EXPECT_EQ(run(engine, prompt, 4).size(), 24u);
  }
  EXPECT_GT(engine.kv_event_publisher()->stats().queued, 0u);
}

TEST(KVEventsEngine, DisabledMeansNoPublisherAndNoEvents) {
  EngineCore engine(tiny_config(R"({"enable_kv_cache_events": false, "endpoint": "tcp://*:5557"})"));
  EXPECT_EQ(engine.kv_event_publisher(), nullptr);
  EXPECT_FALSE(engine.kv_cache().events_enabled());
  run(engine, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 2);
  EXPECT_TRUE(engine.kv_cache().take_events().empty());
}
