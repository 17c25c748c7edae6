// KV cache events without a model: the MessagePack bytes of each event against hand-computed
// ones (vLLM's msgspec layouts), the --kv-events-config parser, the events the KV cache manager
// records, and the ZeroMQ publisher (a real SUB socket, the replay socket, no subscriber).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "msgpack_reader.h"
#include "vllm/core/error.h"
#include "vllm/kv_cache/kv_cache_manager.h"
#include "vllm/kv_events/event_batch.h"
#include "vllm/kv_events/kv_events_config.h"
#include "vllm/kv_events/msgpack.h"
#include "vllm/kv_events/publisher.h"

using namespace vllm;
using namespace vllm::kv_events;

namespace {

// Expected bytes: numbers are bytes, strings are appended as they are.
struct Bytes {
  std::string b;
  Bytes& operator()(std::initializer_list<int> bytes) {
    for (int x : bytes) b.push_back(static_cast<char>(x));
    return *this;
  }
  Bytes& operator()(const std::string& s) {
    b += s;
    return *this;
  }
};

std::string hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof(buf), "%02x ", c);
    out += buf;
  }
  return out;
}

KVCacheEvent stored(std::vector<uint64_t> hashes, std::optional<uint64_t> parent, std::vector<int32_t> tokens,
                    int32_t block_size) {
  KVCacheEvent e;
  e.kind = KVCacheEvent::Kind::kBlockStored;
  for (uint64_t h : hashes) e.block_hashes.push_back({h, 0x1234});
  if (parent) e.parent_block_hash = BlockHash{*parent, 0x5678};
  e.token_ids = std::move(tokens);
  e.block_size = block_size;
  return e;
}

KVCacheEvent removed(std::vector<uint64_t> hashes) {
  KVCacheEvent e;
  e.kind = KVCacheEvent::Kind::kBlockRemoved;
  for (uint64_t h : hashes) e.block_hashes.push_back({h, 0});
  return e;
}

KVCacheEvent cleared() {
  KVCacheEvent e;
  e.kind = KVCacheEvent::Kind::kAllBlocksCleared;
  return e;
}

// 1.5 as a msgpack float64.
const std::initializer_list<int> kTs = {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};

std::string unique_ipc(const std::string& name) {
  return "ipc://" + (std::filesystem::temp_directory_path() / ("vllm-kvev-" + std::to_string(getpid()) + "-" + name)).string();
}

}  // namespace

TEST(Msgpack, IntegersTakeTheirShortestForm) {
  MsgpackWriter w;
  w.uint(0);
  w.uint(127);
  w.uint(128);
  w.uint(255);
  w.uint(256);
  w.uint(65536);
  w.uint(0x100000000ull);
  w.integer(-1);
  w.integer(-32);
  w.integer(-33);
  w.integer(-129);
  w.integer(-40000);
  w.integer(INT64_MIN);
  Bytes e;
  e({0x00, 0x7f, 0xcc, 0x80, 0xcc, 0xff, 0xcd, 0x01, 0x00, 0xce, 0, 1, 0, 0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0});
  e({0xff, 0xe0, 0xd0, 0xdf, 0xd1, 0xff, 0x7f, 0xd2, 0xff, 0xff, 0x63, 0xc0, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(hex(w.bytes()), hex(e.b));
}

TEST(Msgpack, StringsArraysMapsFloats) {
  MsgpackWriter w;
  w.str("");
  w.str(std::string(31, 'a'));
  w.str(std::string(32, 'b'));
  w.str(std::string(256, 'c'));
  w.array(15);
  w.array(16);
  w.map(15);
  w.map(16);
  w.float64(-2.0);
  w.nil();
  w.boolean(true);
  Bytes e;
  e({0xa0, 0xbf})(std::string(31, 'a'))({0xd9, 32})(std::string(32, 'b'))({0xda, 1, 0})(std::string(256, 'c'));
  e({0x9f, 0xdc, 0, 16, 0x8f, 0xde, 0, 16, 0xcb, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xc3});
  EXPECT_EQ(hex(w.bytes()), hex(e.b));
}

TEST(EventBatch, BlockStoredArrayLayout) {
  const std::string got = encode_event_batch(1.5, {stored({1}, std::nullopt, {1, 2}, 2)}, 0, WireFormat::kArray);
  Bytes e;
  e({0x93})(kTs)({0x91});
  e({0x98, 0xab})("BlockStored")({0x91, 0x01, 0xc0, 0x92, 0x01, 0x02, 0x02, 0xc0, 0xa3})("GPU")({0xc0});
  e({0x00});
  EXPECT_EQ(hex(got), hex(e.b));
}

TEST(EventBatch, BlockStoredWithParentAndLargeValues) {
  // The low 64 bits of each hash go out as an unsigned integer.
  const std::string got = encode_event_batch(
      1.5, {stored({0xffffffffffffffffull, 7}, 300, {200, 70000, 3, 4}, 2)}, 0, WireFormat::kArray);
  Bytes e;
  e({0x93})(kTs)({0x91});
  e({0x98, 0xab})("BlockStored");
  e({0x92, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07});
  e({0xcd, 0x01, 0x2c});
  e({0x94, 0xcc, 0xc8, 0xce, 0x00, 0x01, 0x11, 0x70, 0x03, 0x04});
  e({0x02, 0xc0, 0xa3})("GPU")({0xc0});
  e({0x00});
  EXPECT_EQ(hex(got), hex(e.b));
}

TEST(EventBatch, BlockRemovedAndAllBlocksClearedArrayLayout) {
  const std::string got = encode_event_batch(1.5, {removed({5, 6}), cleared()}, 0, WireFormat::kArray);
  Bytes e;
  e({0x93})(kTs)({0x92});
  e({0x93, 0xac})("BlockRemoved")({0x92, 0x05, 0x06, 0xa3})("GPU");
  e({0x91, 0xb0})("AllBlocksCleared");
  e({0x00});
  EXPECT_EQ(hex(got), hex(e.b));
}

TEST(EventBatch, MapLayout) {
  const std::string got =
      encode_event_batch(1.5, {stored({1}, 2, {9}, 1), removed({3}), cleared()}, 0, WireFormat::kMap);
  Bytes e;
  e({0x83, 0xa2})("ts")(kTs)({0xa6})("events")({0x93});
  e({0x88, 0xa4})("type")({0xab})("BlockStored")({0xac})("block_hashes")({0x91, 0x01});
  e({0xb1})("parent_block_hash")({0x02})({0xa9})("token_ids")({0x91, 0x09})({0xaa})("block_size")({0x01});
  e({0xa7})("lora_id")({0xc0})({0xa6})("medium")({0xa3})("GPU")({0xa9})("lora_name")({0xc0});
  e({0x83, 0xa4})("type")({0xac})("BlockRemoved")({0xac})("block_hashes")({0x91, 0x03})({0xa6})("medium")({0xa3})("GPU");
  e({0x81, 0xa4})("type")({0xb0})("AllBlocksCleared");
  e({0xb2})("data_parallel_rank")({0x00});
  EXPECT_EQ(hex(got), hex(e.b));
}

TEST(KVEventsConfig, DefaultsAndVllmFields) {
  KVEventsConfig none = parse_kv_events_config("");
  EXPECT_FALSE(none.publishes());
  EXPECT_EQ(none.publisher, "null");
  KVEventsConfig c = parse_kv_events_config(
      R"({"enable_kv_cache_events": true, "endpoint": "tcp://*:6000", "replay_endpoint": "tcp://*:6001",
          "buffer_steps": 5, "hwm": 7, "max_queue_size": 9, "topic": "kv-events"})");
  EXPECT_TRUE(c.publishes());
  EXPECT_EQ(c.publisher, "zmq");  // vLLM's default once enabled
  EXPECT_EQ(c.endpoint, "tcp://*:6000");
  EXPECT_EQ(c.replay_endpoint.value_or(""), "tcp://*:6001");
  EXPECT_EQ(c.buffer_steps, 5);
  EXPECT_EQ(c.hwm, 7);
  EXPECT_EQ(c.max_queue_size, 9);
  EXPECT_EQ(c.topic, "kv-events");
  EXPECT_EQ(c.wire_format, WireFormat::kArray);
  EXPECT_FALSE(parse_kv_events_config(R"({"enable_kv_cache_events": true, "publisher": "null"})").publishes());
  EXPECT_EQ(parse_kv_events_config(R"({"wire_format": "map"})").wire_format, WireFormat::kMap);
}

TEST(KVEventsConfig, DataParallelRanksGetTheirOwnEndpointsAsVllmOffsetsThem) {
  EXPECT_EQ(offset_endpoint_port("tcp://*:5557", 0), "tcp://*:5557");
  EXPECT_EQ(offset_endpoint_port("tcp://*:5557", 1), "tcp://*:5558");
  EXPECT_EQ(offset_endpoint_port("tcp://127.0.0.1:6000", 3), "tcp://127.0.0.1:6003");
  EXPECT_EQ(offset_endpoint_port("tcp://[::1]:6000", 2), "tcp://[::1]:6002");
  EXPECT_EQ(offset_endpoint_port("tcp://*:*", 2), "tcp://*:*");
  EXPECT_EQ(offset_endpoint_port("ipc:///tmp/kv", 1), "ipc:///tmp/kv_dp1");
  EXPECT_EQ(offset_endpoint_port("inproc://cache", 2), "inproc://cache_dp2");
  EXPECT_THROW(offset_endpoint_port("tcp://*:65535", 1), Error);
  const KVEventsConfig c = parse_kv_events_config(
      R"({"enable_kv_cache_events": true, "endpoint": "tcp://*:6000", "replay_endpoint": "tcp://*:7000"})");
  const KVEventsConfig r1 = c.for_data_parallel_rank(1);
  EXPECT_EQ(r1.endpoint, "tcp://*:6001");
  EXPECT_EQ(r1.replay_endpoint.value_or(""), "tcp://*:7001");
  EXPECT_EQ(c.for_data_parallel_rank(0).endpoint, "tcp://*:6000");
}

TEST(KVEventsConfig, ErrorsNameTheProblem) {
  auto message = [](const std::string& text) -> std::string {
    try {
      parse_kv_events_config(text);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message("{not json"), "--kv-events-config: not valid JSON: {not json");
  EXPECT_EQ(message("[1]"), "--kv-events-config: expected a JSON object, got [1]");
  EXPECT_EQ(message(R"({"enable_kv_cache_events": true, "publisher": "kafka"})"),
            "--kv-events-config: unknown publisher 'kafka' (choose zmq or null)");
  EXPECT_EQ(message(R"({"enable_kv_cache_events": true, "endpoint": "localhost:5557"})"),
            "--kv-events-config: endpoint 'localhost:5557' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH "
            "or inproc://NAME)");
  EXPECT_EQ(message(R"({"enable_kv_cache_events": true, "endpoint": "tcp://*"})"),
            "--kv-events-config: endpoint 'tcp://*' has no port (e.g. tcp://*:5557)");
  EXPECT_EQ(message(R"({"enable_kv_cache_events": true, "endpoint": "tcp://*:99999"})"),
            "--kv-events-config: endpoint 'tcp://*:99999' has no valid port (0 to 65535, or *)");
  EXPECT_EQ(message(R"({"max_queue_size": 0})"), "--kv-events-config: max_queue_size must be a positive integer, not 0");
  EXPECT_EQ(message(R"({"enable_kv_cache_events": "yes"})"),
            "--kv-events-config: enable_kv_cache_events must be true or false, not \"yes\"");
  EXPECT_NE(message(R"({"enable_kv_events": true})").find("unknown key 'enable_kv_events'"), std::string::npos);
}

TEST(KVCacheManagerEvents, StoredRemovedCleared) {
  KVCacheManager kv(/*num_blocks=*/4, /*block_size=*/2, /*enable_prefix_caching=*/true);
  kv.enable_events();
  // 5 tokens: two full blocks enter the cache, as one BlockStored chain.
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};
  ASSERT_TRUE(kv.allocate_slots(1, a, 0, 0, 5));
  std::vector<KVCacheEvent> ev = kv.take_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, KVCacheEvent::Kind::kBlockStored);
  ASSERT_EQ(ev[0].block_hashes.size(), 2u);
  EXPECT_FALSE(ev[0].parent_block_hash.has_value());
  EXPECT_EQ(ev[0].token_ids, (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(ev[0].block_size, 2);
  const BlockHash h0 = ev[0].block_hashes[0], h1 = ev[0].block_hashes[1];
  EXPECT_EQ(h0, hash_block(BlockHash{}, a.data(), 2, 0));
  EXPECT_EQ(h1, hash_block(h0, a.data() + 2, 2, 0));
  // A decode step that fills the third block: its parent is the second.
  std::vector<int32_t> a2 = a;
  a2.push_back(6);
  ASSERT_TRUE(kv.allocate_slots(1, a2, 0, 5, 1));
  ev = kv.take_events();
  ASSERT_EQ(ev.size(), 1u);
  ASSERT_TRUE(ev[0].parent_block_hash.has_value());
  EXPECT_EQ(*ev[0].parent_block_hash, h1);
  EXPECT_EQ(ev[0].token_ids, (std::vector<int32_t>{5, 6}));
  const BlockHash h2 = ev[0].block_hashes.at(0);
  kv.free(1);
  EXPECT_TRUE(kv.take_events().empty());  // freed blocks stay cached
  // Another prompt takes all four blocks: the three cached ones are evicted first.
  const std::vector<int32_t> b = {9, 9, 8, 8, 7, 7, 6};
  ASSERT_TRUE(kv.allocate_slots(2, b, 0, 0, 7));
  ev = kv.take_events();
  ASSERT_EQ(ev.size(), 4u);
  std::vector<BlockHash> gone;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ev[static_cast<size_t>(i)].kind, KVCacheEvent::Kind::kBlockRemoved);
    gone.push_back(ev[static_cast<size_t>(i)].block_hashes.at(0));
  }
  for (const BlockHash& h : {h0, h1, h2}) EXPECT_NE(std::find(gone.begin(), gone.end(), h), gone.end());
  EXPECT_EQ(ev[3].kind, KVCacheEvent::Kind::kBlockStored);
  EXPECT_EQ(ev[3].block_hashes.size(), 3u);
  kv.reset_prefix_cache();
  ev = kv.take_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, KVCacheEvent::Kind::kAllBlocksCleared);
  // Blocks uncached by the reset are not reported again when reused.
  kv.free(2);
  ASSERT_TRUE(kv.allocate_slots(3, {1, 1, 1}, 0, 0, 3));
  ev = kv.take_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, KVCacheEvent::Kind::kBlockStored);
}

TEST(KVCacheManagerEvents, NothingRecordedUnlessEnabled) {
  KVCacheManager kv(4, 2, true);
  ASSERT_TRUE(kv.allocate_slots(1, {1, 2, 3, 4, 5}, 0, 0, 5));
  kv.free(1);
  ASSERT_TRUE(kv.allocate_slots(2, {6, 7, 8, 9, 10, 11, 12}, 0, 0, 7));
  kv.reset_prefix_cache();
  EXPECT_TRUE(kv.take_events().empty());
}

TEST(KVCacheManagerEvents, AMovedManagerKeepsItsEvents) {
  KVCacheManager kv(4, 2, true);
  kv.enable_events();
  ASSERT_TRUE(kv.allocate_slots(1, {1, 2, 3}, 0, 0, 3));
  KVCacheManager moved = std::move(kv);  // the events live in the pool, not behind a pointer
  ASSERT_TRUE(moved.allocate_slots(2, {4, 5, 6}, 0, 0, 3));
  const std::vector<KVCacheEvent> ev = moved.take_events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(ev[1].token_ids, (std::vector<int32_t>{4, 5}));
}

TEST(ZmqEventPublisher, SubscriberGetsTopicSequenceAndBatch) {
  KVEventsConfig c = parse_kv_events_config(R"({"enable_kv_cache_events": true, "topic": "kv-events"})");
  c.endpoint = unique_ipc("pub");
  c.replay_endpoint = unique_ipc("replay");
  ZmqEventPublisher pub(c);
  zmq::context_t ctx;
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "kv-events");
  sub.set(zmq::sockopt::rcvtimeo, 100);
  sub.connect(pub.endpoint());
  // A SUB socket joins asynchronously: publish until the first batch arrives.
  std::vector<zmq::message_t> msg;
  uint64_t first = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    pub.publish({cleared()}, 1.5);
    msg.clear();
    if (zmq::recv_multipart(sub, std::back_inserter(msg))) break;
  }
  ASSERT_EQ(msg.size(), 3u);
  EXPECT_EQ(msg[0].to_string(), "kv-events");
  ASSERT_EQ(msg[1].size(), 8u);
  for (size_t i = 0; i < 8; ++i) first = (first << 8) | static_cast<const unsigned char*>(msg[1].data())[i];
  EXPECT_EQ(msg[2].to_string(), encode_event_batch(1.5, {cleared()}, 0, WireFormat::kArray));
  // Drain the other sync batches; then three more, numbered one after another.
  uint64_t last = first;
  for (;;) {
    msg.clear();
    if (!zmq::recv_multipart(sub, std::back_inserter(msg))) break;
    ++last;
  }
  pub.publish({stored({1}, std::nullopt, {1, 2}, 2)}, 2.0);
  pub.publish({removed({1})}, 2.5);
  pub.publish({cleared()}, 3.0);
  std::vector<std::string> payloads;
  for (int i = 0; i < 3; ++i) {
    msg.clear();
    ASSERT_TRUE(zmq::recv_multipart(sub, std::back_inserter(msg)));
    uint64_t seq = 0;
    for (size_t k = 0; k < 8; ++k) seq = (seq << 8) | static_cast<const unsigned char*>(msg[1].data())[k];
    EXPECT_EQ(seq, last + 1 + static_cast<uint64_t>(i));
    payloads.push_back(msg[2].to_string());
  }
  const test::Value v = test::decode(payloads[0]);
  EXPECT_EQ(v[0].f, 2.0);
  EXPECT_EQ(v[1][0][0].s, "BlockStored");
  EXPECT_EQ(test::decode(payloads[1])[1][0][0].s, "BlockRemoved");

  // Replay from the first of the three: [seq, payload] for each, then [-1, ""] (vLLM's protocol).
  // A DEALER socket, with the empty delimiter a REQ socket would add: REQ takes one reply only.
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 2000);
  dealer.connect(pub.replay_endpoint());
  std::string start(8, '\0');
  for (int i = 0; i < 8; ++i) start[static_cast<size_t>(i)] = static_cast<char>(((last + 1) >> (8 * (7 - i))) & 0xff);
  dealer.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(start));
  std::vector<std::string> replayed;
  for (;;) {
    msg.clear();
    ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(msg)));
    ASSERT_EQ(msg.size(), 3u);
    EXPECT_EQ(msg[0].size(), 0u);
    if (msg[1].to_string() == std::string(8, '\xff')) {
      EXPECT_EQ(msg[2].size(), 0u);
      break;
    }
    replayed.push_back(msg[2].to_string());
    if (replayed.size() > 3) break;
  }
  EXPECT_EQ(replayed, payloads);
}

TEST(ZmqEventPublisher, NoSubscriberNeverBlocksAndTheQueueStaysBounded) {
  KVEventsConfig c = parse_kv_events_config(R"({"enable_kv_cache_events": true, "max_queue_size": 2, "hwm": 1})");
  c.endpoint = "tcp://127.0.0.1:1";  // connect mode, to a port nobody listens on
  ZmqEventPublisher pub(c);
  const int n = 20000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) pub.publish({stored({static_cast<uint64_t>(i)}, std::nullopt, {1, 2, 3, 4}, 4)}, 1.0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 5.0);
  // Every batch is either sent (and dropped by the socket) or dropped from the full queue.
  ZmqEventPublisher::Stats s;
  for (int i = 0; i < 500; ++i) {
    s = pub.stats();
    if (s.sent + s.dropped == static_cast<uint64_t>(n)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(s.queued, static_cast<uint64_t>(n));
  EXPECT_EQ(s.sent + s.dropped, static_cast<uint64_t>(n));
}

TEST(ZmqEventPublisher, AnEndpointThatCannotBeBoundIsAnError) {
  KVEventsConfig c = parse_kv_events_config(R"({"enable_kv_cache_events": true, "endpoint": "tcp://*:*"})");
  ZmqEventPublisher first(c);  // any free port
  const std::string port = first.endpoint().substr(first.endpoint().rfind(':') + 1);
  c.endpoint = "tcp://*:" + port;
  try {
    ZmqEventPublisher second(c);
    FAIL() << "bound " << c.endpoint << " twice";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--kv-events-config: cannot bind the endpoint 'tcp://*:" + port + "': Address already in use");
  }
}
