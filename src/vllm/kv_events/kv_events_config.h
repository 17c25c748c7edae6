// vLLM's --kv-events-config (vllm/config/kv_events.py): whether the engine publishes its KV
// cache events, and where. The same JSON object on `vllm serve`, `vllm generate` and Python's
// LLM(kv_events_config=...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vllm::kv_events {

// How an event batch is laid out in MessagePack (ours; vLLM has one layout per version).
enum class WireFormat {
  // msgspec's array_like structs, as vLLM published them up to its switch to maps (and as its
  // examples/online_serving/kv_events_subscriber.py decodes): [ts, [events], dp_rank], each
  // event ["BlockStored", hashes, parent, token_ids, block_size, lora_id, medium, lora_name].
  kArray,
  // msgspec's plain structs, as vLLM publishes them since vllm-project/vllm#42892: maps by
  // field name, each event's tag under "type".
  kMap,
};

struct KVEventsConfig {
  bool enable_kv_cache_events = false;
  std::string publisher = "null";  // "null" or "zmq" (default: zmq when enabled, as vLLM)
  std::string endpoint = "tcp://*:5557";
  std::optional<std::string> replay_endpoint;
  int64_t buffer_steps = 10000;     // batches kept for the replay socket
  int64_t hwm = 100000;             // the PUB socket's send high-water mark (messages)
  int64_t max_queue_size = 100000;  // batches waiting for the publisher thread; past it the oldest is dropped
  std::string topic;
  WireFormat wire_format = WireFormat::kArray;  // "wire_format": "array" | "map" (ours)

  // Whether an engine with this config publishes anything.
  bool publishes() const { return enable_kv_cache_events && publisher == "zmq"; }
  // The config of data-parallel replica `rank`: its endpoints offset as vLLM offsets them
  // (offset_endpoint_port), so that every replica binds its own sockets.
  KVEventsConfig for_data_parallel_rank(int64_t rank) const;
};

// vLLM's ZmqEventPublisher.offset_endpoint_port: rank 0 keeps the endpoint; replica r > 0 takes a
// TCP port r above it (tcp://*:5557 -> tcp://*:5558 for rank 1) and an ipc:// or inproc:// name
// with "_dp<r>" appended. A TCP port of * (any free port) stays *; a port pushed past 65535 is an
// error naming the rank.
std::string offset_endpoint_port(const std::string& endpoint, int64_t data_parallel_rank);

// Parses the flag's JSON object (vLLM's field names; "" is the default config). Throws
// vllm::Error naming the flag and the problem: not JSON, an unknown key, a value of the wrong
// type or out of range, an unknown publisher, an endpoint that is not a ZeroMQ address.
KVEventsConfig parse_kv_events_config(const std::string& json_text);

}  // namespace vllm::kv_events
