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
};

// Parses the flag's JSON object (vLLM's field names; "" is the default config). Throws
// vllm::Error naming the flag and the problem: not JSON, an unknown key, a value of the wrong
// type or out of range, an unknown publisher, an endpoint that is not a ZeroMQ address.
KVEventsConfig parse_kv_events_config(const std::string& json_text);

}  // namespace vllm::kv_events
