// Runs one function per tensor-parallel rank at the same time: rank 0 on the calling thread,
// the others on threads of their own that live as long as this object (a step's ranks meet in
// their collectives, so they must all run at once; a thread pool, which runs nested work
// serially, cannot host them).
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vllm {

class RankThreads {
 public:
  explicit RankThreads(int num_ranks);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  // fn(rank) for every rank at once; returns when all have returned. If any throws, `on_error` is
  // called at once from its thread (to break the collectives the others wait in), and the first
  // error by rank is rethrown here after every rank has finished.
  void run(const std::function<void(int)>& fn, const std::function<void()>& on_error);

 private:
  void worker(int rank);
  void call(int rank);

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  const std::function<void()>* on_error_ = nullptr;
  std::vector<std::exception_ptr> errors_;
  unsigned long generation_ = 0;
  int running_ = 0;
  bool stopping_ = false;
};

}  // namespace vllm
