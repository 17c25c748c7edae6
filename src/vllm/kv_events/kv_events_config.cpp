#include "vllm/kv_events/kv_events_config.h"

#include <nlohmann/json.hpp>

#include "vllm/core/error.h"

namespace vllm::kv_events {

namespace {

constexpr const char* kFlag = "--kv-events-config";

[[noreturn]] void fail(const std::string& what) { throw Error(std::string(kFlag) + ": " + what); }

// ZeroMQ's transports; anything else would fail at bind/connect with a less helpful message.
void check_endpoint(const std::string& key, const std::string& endpoint) {
  static const char* kTransports[] = {"tcp://", "ipc://", "inproc://", "pgm://", "epgm://", "vmci://"};
  for (const char* t : kTransports) {
    const std::string prefix = t;
    if (endpoint.rfind(prefix, 0) == 0 && endpoint.size() > prefix.size()) {
      if (prefix == "tcp://") {
        const size_t colon = endpoint.rfind(':');
        if (colon < prefix.size()) fail(key + " '" + endpoint + "' has no port (e.g. tcp://*:5557)");
        // ZeroMQ itself would take a port past 65535 modulo 65536.
        const std::string port = endpoint.substr(colon + 1);
        bool ok = port == "*" || (!port.empty() && port.size() <= 5 &&
                                  port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) <= 65535);
        if (!ok) fail(key + " '" + endpoint + "' has no valid port (0 to 65535, or *)");
      }
      return;
    }
  }
  fail(key + " '" + endpoint + "' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)");
}

int64_t positive_int(const nlohmann::json& v, const std::string& key) {
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(key + " must be a positive integer, not " + v.dump());
  return v.get<int64_t>();
}

std::string string_value(const nlohmann::json& v, const std::string& key) {
  if (!v.is_string()) fail(key + " must be a string, not " + v.dump());
  return v.get<std::string>();
}

}  // namespace

std::string offset_endpoint_port(const std::string& endpoint, int64_t data_parallel_rank) {
  if (data_parallel_rank == 0 || endpoint.empty()) return endpoint;
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0)
    return endpoint + "_dp" + std::to_string(data_parallel_rank);
  if (endpoint.rfind("tcp://", 0) == 0) {
    const size_t colon = endpoint.rfind(':');
    const std::string port = endpoint.substr(colon + 1);
    if (port == "*") return endpoint;
    const int64_t offset = std::stoll(port) + data_parallel_rank;  // checked digits (check_endpoint)
    if (offset > 65535)
      fail("endpoint '" + endpoint + "' offset by data-parallel rank " + std::to_string(data_parallel_rank) +
           " passes port 65535");
    return endpoint.substr(0, colon + 1) + std::to_string(offset);
  }
  fail("endpoint '" + endpoint + "' cannot be offset for data-parallel rank " + std::to_string(data_parallel_rank) +
       " (tcp://, ipc:// or inproc:// can)");
}

KVEventsConfig KVEventsConfig::for_data_parallel_rank(int64_t rank) const {
  KVEventsConfig c = *this;
  c.endpoint = offset_endpoint_port(endpoint, rank);
  if (replay_endpoint) c.replay_endpoint = offset_endpoint_port(*replay_endpoint, rank);
  return c;
}

KVEventsConfig parse_kv_events_config(const std::string& json_text) {
  KVEventsConfig c;
  if (json_text.empty()) return c;
  if (!nlohmann::json::accept(json_text)) fail("not valid JSON: " + json_text.substr(0, 200));
  const nlohmann::json j = nlohmann::json::parse(json_text);
  if (!j.is_object()) fail("expected a JSON object, got " + j.dump().substr(0, 200));
  std::optional<std::string> publisher;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    if (k == "enable_kv_cache_events") {
      if (!v.is_boolean()) fail("enable_kv_cache_events must be true or false, not " + v.dump());
      c.enable_kv_cache_events = v.get<bool>();
    } else if (k == "publisher") {
      if (!v.is_null()) publisher = string_value(v, k);
    } else if (k == "endpoint") {
      c.endpoint = string_value(v, k);
    } else if (k == "replay_endpoint") {
      if (!v.is_null()) c.replay_endpoint = string_value(v, k);
    } else if (k == "buffer_steps") {
      c.buffer_steps = positive_int(v, k);
    } else if (k == "hwm") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
        fail("hwm must be an integer from 0 (no limit) to 2147483647, not " + v.dump());
      c.hwm = v.get<int64_t>();
    } else if (k == "max_queue_size") {
      c.max_queue_size = positive_int(v, k);
    } else if (k == "topic") {
      c.topic = string_value(v, k);
    } else if (k == "wire_format") {
      const std::string f = string_value(v, k);
      if (f == "array") c.wire_format = WireFormat::kArray;
      else if (f == "map") c.wire_format = WireFormat::kMap;
      else fail("wire_format must be \"array\" or \"map\", not " + v.dump());
    } else {
      fail("unknown key '" + k + "' (known: enable_kv_cache_events, publisher, endpoint, replay_endpoint, "
           "buffer_steps, hwm, max_queue_size, topic, wire_format)");
    }
  }
  // vLLM's default: zmq when events are enabled, null otherwise.
  c.publisher = publisher.value_or(c.enable_kv_cache_events ? "zmq" : "null");
  if (c.publisher != "zmq" && c.publisher != "null")
    fail("unknown publisher '" + c.publisher + "' (choose zmq or null)");
  if (c.publishes()) {
    check_endpoint("endpoint", c.endpoint);
    if (c.replay_endpoint) check_endpoint("replay_endpoint", *c.replay_endpoint);
  }
  return c;
}

}  // namespace vllm::kv_events
