// vLLM's ZmqEventPublisher: KV cache event batches to a ZeroMQ PUB socket, one message per engine
// step that changed the prefix cache, as three frames [topic, sequence number (8 bytes,
// big-endian), MessagePack batch (event_batch.h)]. With a replay endpoint, a ROUTER socket
// answers a subscriber that missed messages: it sends the starting sequence number (8 bytes,
// big-endian) and gets back [sequence, batch] for each batch still buffered from there on,
// then [-1 (8 bytes of 0xff), empty] (several messages: a DEALER client gets them all, a REQ
// client, as in vLLM's example, only the first).
//
// The engine thread only queues (publish never blocks); encoding and sending run on the
// publisher's own thread. Nothing a subscriber does can stall the engine or grow memory without
// bound: the queue holds at most max_queue_size batches (past it the oldest is dropped and
// counted), the PUB socket drops at its high-water mark (hwm), and the replay buffer keeps the
// last buffer_steps batches. Sequence numbers are taken when a batch is queued, so a dropped
// batch shows as a gap, which a subscriber can notice (vLLM's subscribers count gaps as missed
// messages).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vllm/kv_cache/kv_cache_events.h"
#include "vllm/kv_events/kv_events_config.h"

namespace vllm::kv_events {

class ZmqEventPublisher {
 public:
  // Binds the PUB socket when the endpoint has a wildcard ('*' or '::') or is ipc:// or
  // inproc://, else connects to it (vLLM's rule: bind the stable side); binds the replay socket.
  // Throws vllm::Error if an endpoint cannot be bound or connected.
  explicit ZmqEventPublisher(const KVEventsConfig& config, int64_t data_parallel_rank = 0);
  // Sends what is queued (the sockets linger at most 100 ms for slow peers), then closes.
  ~ZmqEventPublisher();
  ZmqEventPublisher(const ZmqEventPublisher&) = delete;
  ZmqEventPublisher& operator=(const ZmqEventPublisher&) = delete;

  // Queues one batch taken at `ts` (seconds since the epoch). Never blocks.
  void publish(std::vector<KVCacheEvent> events, double ts);

  struct Stats {
    uint64_t queued = 0;   // batches given to publish (= the next sequence number)
    uint64_t sent = 0;     // batches handed to the PUB socket
    uint64_t dropped = 0;  // batches dropped because the queue was full
  };
  Stats stats() const;
  // The PUB socket's endpoint as bound or connected (a wildcard port resolved).
  const std::string& endpoint() const { return endpoint_; }
  const std::string& replay_endpoint() const { return replay_endpoint_; }

 private:
  struct Pending {
    uint64_t seq;
    double ts;
    std::vector<KVCacheEvent> events;
  };
  struct Sockets;  // the ZeroMQ context and sockets, used by the thread only once it runs
  void run() noexcept;
  void send(const Pending& batch);
  void serve_replay();

  KVEventsConfig config_;
  int64_t dp_rank_;
  std::string endpoint_, replay_endpoint_;
  std::unique_ptr<Sockets> sockets_;
  std::deque<std::pair<uint64_t, std::string>> replay_buffer_;  // (seq, payload), thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;
};

// Current time as Python's time.time(): seconds since the epoch.
double unix_time_seconds();

}  // namespace vllm::kv_events
