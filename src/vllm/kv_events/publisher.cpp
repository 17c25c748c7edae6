#include "vllm/kv_events/publisher.h"

#include <zmq.hpp>

#include <chrono>
#include <optional>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"
#include "vllm/kv_events/event_batch.h"

namespace vllm::kv_events {

namespace {

std::string seq_bytes(int64_t seq) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((static_cast<uint64_t>(seq) >> (8 * (7 - i))) & 0xff);
  return out;
}

bool should_bind(const std::string& endpoint) {
  return endpoint.find('*') != std::string::npos || endpoint.find("::") != std::string::npos ||
         endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0;
}

constexpr int kLingerMs = 100;

}  // namespace

double unix_time_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct ZmqEventPublisher::Sockets {
  zmq::context_t context{1};
  zmq::socket_t pub{context, zmq::socket_type::pub};
  std::optional<zmq::socket_t> replay;
};

ZmqEventPublisher::ZmqEventPublisher(const KVEventsConfig& config, int64_t data_parallel_rank)
    : config_(config), dp_rank_(data_parallel_rank), sockets_(std::make_unique<Sockets>()) {
  auto open = [](zmq::socket_t& s, const std::string& endpoint, bool bind, const char* what) {
    try {
      if (bind) s.bind(endpoint);
      else s.connect(endpoint);
      return s.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      throw Error(std::string("--kv-events-config: cannot ") + (bind ? "bind" : "connect") + " the " + what + " '" +
                  endpoint + "': " + e.what());
    }
  };
  Sockets& s = *sockets_;
  s.pub.set(zmq::sockopt::sndhwm, static_cast<int>(config.hwm));
  s.pub.set(zmq::sockopt::linger, kLingerMs);
  endpoint_ = open(s.pub, config.endpoint, should_bind(config.endpoint), "endpoint");
  if (config.replay_endpoint) {
    s.replay.emplace(s.context, zmq::socket_type::router);
    s.replay->set(zmq::sockopt::linger, kLingerMs);
    replay_endpoint_ = open(*s.replay, *config.replay_endpoint, true, "replay_endpoint");
  }
  VLLM_LOG_INFO("KV cache events: publishing on {}{}{}", endpoint_,
                config.topic.empty() ? "" : " (topic '" + config.topic + "')",
                replay_endpoint_.empty() ? "" : ", replay on " + replay_endpoint_);
  // The sockets move to the thread: from here on only it touches them.
  thread_ = std::thread([this] { run(); });
}

ZmqEventPublisher::~ZmqEventPublisher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  sockets_.reset();  // closes the sockets (lingering at most kLingerMs) and the context
}

void ZmqEventPublisher::publish(std::vector<KVCacheEvent> events, double ts) {
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int64_t>(queue_.size()) >= config_.max_queue_size) {
      queue_.pop_front();  // the oldest goes: a subscriber sees its sequence number missing
      dropped = ++stats_.dropped;
    }
    queue_.push_back({stats_.queued++, ts, std::move(events)});
  }
  cv_.notify_one();
  // Say so at the first drop and then at every power of two, so a stuck publisher cannot flood the log.
  if (dropped && (dropped & (dropped - 1)) == 0)
    VLLM_LOG_WARN("KV cache events: the publisher's queue is full (max_queue_size {}); {} batches dropped so far",
                  config_.max_queue_size, dropped);
}

ZmqEventPublisher::Stats ZmqEventPublisher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ZmqEventPublisher::send(const Pending& batch) {
  std::string payload = encode_event_batch(batch.ts, batch.events, dp_rank_, config_.wire_format);
  const std::string seq = seq_bytes(static_cast<int64_t>(batch.seq));
  zmq::socket_t& pub = sockets_->pub;
  // PUB never blocks: with no subscriber, or one at the high-water mark, the message is dropped.
  pub.send(zmq::buffer(config_.topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  pub.send(zmq::buffer(seq), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  pub.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  if (sockets_->replay) {
    replay_buffer_.emplace_back(batch.seq, std::move(payload));
    while (static_cast<int64_t>(replay_buffer_.size()) > config_.buffer_steps) replay_buffer_.pop_front();
  }
}

void ZmqEventPublisher::serve_replay() {
  zmq::socket_t& router = *sockets_->replay;
  for (;;) {
    std::vector<zmq::message_t> frames;
    for (bool more = true; more;) {
      zmq::message_t m;
      if (!router.recv(m, zmq::recv_flags::dontwait)) break;
      more = m.more();
      frames.push_back(std::move(m));
    }
    if (frames.empty()) return;
    // [identity, empty delimiter (a REQ client's), start sequence (8 bytes, big-endian)]
    if (frames.size() != 3 || frames[2].size() != 8) {
      VLLM_LOG_WARN("KV cache events: ignoring a replay request of {} frames", frames.size());
      continue;
    }
    uint64_t start = 0;
    for (size_t i = 0; i < 8; ++i) start = (start << 8) | static_cast<const unsigned char*>(frames[2].data())[i];
    const std::string identity = frames[0].to_string();
    auto reply = [&](const std::string& seq, const std::string& payload) {
      router.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router.send(zmq::str_buffer(""), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router.send(zmq::buffer(seq), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router.send(zmq::buffer(payload), zmq::send_flags::dontwait);
    };
    for (const auto& [seq, payload] : replay_buffer_)
      if (seq >= start) reply(seq_bytes(static_cast<int64_t>(seq)), payload);
    reply(seq_bytes(-1), "");  // end of the replay
  }
}

void ZmqEventPublisher::run() noexcept {
  for (;;) {
    std::deque<Pending> batches;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [this] { return stop_ || !queue_.empty(); };
      // With a replay socket the thread also wakes to answer requests.
      if (sockets_->replay) cv_.wait_for(lock, std::chrono::milliseconds(10), ready);
      else cv_.wait(lock, ready);
      batches.swap(queue_);
      stop = stop_;
    }
    for (const Pending& b : batches) {
      try {
        send(b);
      } catch (const std::exception& e) {
        VLLM_LOG_ERROR("KV cache events: sending batch {} failed: {}", b.seq, e.what());
      }
    }
    if (!batches.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.sent += batches.size();
    }
    if (sockets_->replay) {
      try {
        serve_replay();
      } catch (const std::exception& e) {
        VLLM_LOG_ERROR("KV cache events: replay failed: {}", e.what());
      }
    }
    if (stop) return;
  }
}

}  // namespace vllm::kv_events
