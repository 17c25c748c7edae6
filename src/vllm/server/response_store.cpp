#include "vllm/server/response_store.h"

#include "vllm/core/logging.h"
#include "vllm/server/sse.h"

namespace vllm::server {

ResponseStore::ResponseStore(size_t max_entries, size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

bool ResponseStore::put(const std::string& id, std::shared_ptr<const Entry> entry) {
  if (!enabled() || !entry) return false;
  // What the entry holds, as JSON text: a fair measure of its memory, computed once, outside
  // the lock.
  const size_t size = id.size() + dump_json(entry->response).size() + dump_json(entry->messages).size();
  if (max_bytes_ > 0 && size > max_bytes_) {
    VLLM_LOG_WARN("response {} ({} bytes) is larger than --max-stored-response-bytes ({}): not stored", id, size,
                  max_bytes_);
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = slots_.find(id); it != slots_.end()) {
    bytes_ -= it->second.bytes;
    lru_.erase(it->second.lru);
    slots_.erase(it);
  }
  lru_.push_front(id);
  slots_.emplace(id, Slot{std::move(entry), size, lru_.begin()});
  bytes_ += size;
  evict_locked();
  return true;
}

std::shared_ptr<const ResponseStore::Entry> ResponseStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(id);
  if (it == slots_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.entry;
}

bool ResponseStore::erase(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(id);
  if (it == slots_.end()) return false;
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  slots_.erase(it);
  return true;
}

size_t ResponseStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.size();
}

size_t ResponseStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void ResponseStore::evict_locked() {
  while (!lru_.empty() && (slots_.size() > max_entries_ || (max_bytes_ > 0 && bytes_ > max_bytes_))) {
    auto it = slots_.find(lru_.back());
    bytes_ -= it->second.bytes;
    slots_.erase(it);
    lru_.pop_back();
  }
}

}  // namespace vllm::server
