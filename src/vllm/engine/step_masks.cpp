#include "vllm/engine/step_masks.h"

#include <algorithm>
#include <utility>

namespace vllm {

StepMasks::StepMasks(bool overlap, Backend* host_memory) : overlap_(overlap), host_memory_(host_memory) {}

StepMasks::~StepMasks() {
  if (!driver_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  driver_.join();
}

void StepMasks::start(std::vector<Request*> requests, int64_t vocab) {
  wait();
  requests_ = std::move(requests);
  index_.clear();
  error_ = nullptr;
  if (requests_.empty()) return;
  // A tokenizer may hold more tokens than the model has logits (Gemma 3's image token): masks
  // are as wide as the widest matcher's, and the sampler reads the model's vocab bits of them.
  words_ = static_cast<size_t>((vocab + 31) / 32);
  for (const Request* r : requests_) words_ = std::max(words_, r->matcher->mask_words());
  const int64_t needed = static_cast<int64_t>(requests_.size() * words_);
  if (!storage_.defined() || storage_.numel() < needed) {
    const int64_t n = std::max<int64_t>(needed, storage_.defined() ? 2 * storage_.numel() : 0);
    storage_ = host_memory_ ? host_memory_->empty_host({n}, DType::I32) : Tensor::empty({n}, DType::I32);
    masks_ = static_cast<uint32_t*>(storage_.raw());
  }
  for (size_t j = 0; j < requests_.size(); ++j) index_.emplace_back(requests_[j], j);
  std::sort(index_.begin(), index_.end());
  if (!overlap_) {
    fill_all();
    return;
  }
  if (!pool_) {
    // Half the cores: the other half keeps the forward's host work (and the driver) going.
    pool_ = std::make_unique<ThreadPool>(std::max(1, ThreadPool::default_num_threads() / 2));
    driver_ = std::thread([this] { drive(); });
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work_ = busy_ = true;
  }
  cv_.notify_all();
}

void StepMasks::fill_all() {
  ThreadPool& pool = pool_ ? *pool_ : ThreadPool::global();
  std::mutex error_mutex;
  auto fill = [&](int, int64_t begin, int64_t end) {
    // The pool's workers must not throw: the first error is kept for wait() to rethrow.
    try {
      for (int64_t j = begin; j < end; ++j) {
        Request& r = *requests_[static_cast<size_t>(j)];
        uint32_t* mask = masks_ + static_cast<size_t>(j) * words_;
        // First the token the engine deferred (its last step's mask allowed it, so the matcher
        // takes it); should the matcher refuse it, the empty mask aborts the request at its draw.
        if (r.accept_pending_token()) r.matcher->fill_next_token_bitmask(mask, words_);
        else std::fill(mask, mask + words_, 0u);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error_) error_ = std::current_exception();
    }
  };
  const int64_t n = static_cast<int64_t>(requests_.size());
  if (n > 1) pool.parallel_for(n, fill);
  else fill(0, 0, n);
}

void StepMasks::drive() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return work_ || stopping_; });
    if (stopping_) return;
    work_ = false;
    lock.unlock();
    fill_all();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

void StepMasks::wait() {
  if (pool_) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !busy_; });
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

const uint32_t* StepMasks::mask_of(const Request* r) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::pair<const Request*, size_t>(r, 0));
  return it != index_.end() && it->first == r ? masks_ + it->second * words_ : nullptr;
}

}  // namespace vllm
