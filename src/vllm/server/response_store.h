// The Responses API's store: finished responses kept in memory (store: true, the default), so
// that GET /v1/responses/{id} can return one and previous_response_id can continue its
// conversation. vLLM keeps them in a dict that never forgets (and only with
// VLLM_ENABLE_RESPONSES_API_STORE=1); here the store is on by default and bounded: at most
// --max-stored-responses entries and --max-stored-response-bytes bytes (their JSON size), the
// least recently used (stored, retrieved or continued) evicted first. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace vllm::server {

class ResponseStore {
 public:
  struct Entry {
    nlohmann::ordered_json response;  // the response object, as GET /v1/responses/{id} returns it
    // The chat messages the response's prompt was rendered from (the conversation so far,
    // instructions first, then its own input): what a continuation starts from.
    nlohmann::ordered_json messages;
  };

  // max_entries 0: nothing is stored. max_bytes 0: no byte bound.
  ResponseStore(size_t max_entries, size_t max_bytes);

  bool enabled() const { return max_entries_ > 0; }
  // Keeps a finished response under `id` (replacing one already there) as the most recently
  // used, then evicts the least recently used past the bounds. An entry larger than the byte
  // bound alone is not kept (false).
  bool put(const std::string& id, std::shared_ptr<const Entry> entry);
  // The entry, marked most recently used; null when unknown or evicted.
  std::shared_ptr<const Entry> get(const std::string& id);
  bool erase(const std::string& id);

  size_t size() const;
  size_t bytes() const;

 private:
  struct Slot {
    std::shared_ptr<const Entry> entry;
    size_t bytes = 0;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recently used)
  };
  void evict_locked();

  const size_t max_entries_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, Slot> slots_;
  size_t bytes_ = 0;
};

}  // namespace vllm::server
