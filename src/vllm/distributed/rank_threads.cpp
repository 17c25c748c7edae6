#include "vllm/distributed/rank_threads.h"

namespace vllm {

RankThreads::RankThreads(int num_ranks) : errors_(static_cast<size_t>(num_ranks > 0 ? num_ranks : 1)) {
  for (int r = 1; r < num_ranks; ++r) threads_.emplace_back([this, r] { worker(r); });
}

RankThreads::~RankThreads() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void RankThreads::call(int rank) {
  try {
    (*fn_)(rank);
  } catch (...) {
    errors_[static_cast<size_t>(rank)] = std::current_exception();
    try {
      (*on_error_)();
    } catch (...) {  // breaking the collectives must not fail; nothing more to do if it does
    }
  }
}

void RankThreads::worker(int rank) {
  unsigned long seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    call(rank);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--running_ == 0) done_cv_.notify_one();
    }
  }
}

void RankThreads::run(const std::function<void(int)>& fn, const std::function<void()>& on_error) {
  for (auto& e : errors_) e = nullptr;
  fn_ = &fn;
  on_error_ = &on_error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_ = static_cast<int>(threads_.size());
    ++generation_;
  }
  start_cv_.notify_all();
  call(0);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return running_ == 0; });
  }
  for (auto& e : errors_)
    if (e) std::rethrow_exception(e);
}

}  // namespace vllm
