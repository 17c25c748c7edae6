// A fixed pool of worker threads for data-parallel loops. The calling thread takes part,
// so a pool of N threads has N-1 workers. Nested parallel_for calls run serially.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vllm {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(thread_index, begin, end) over [0, n) split into num_threads contiguous
  // chunks (aligned to `grain`), and returns when all are done.
  void parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn, int64_t grain = 1);

  // The process-wide pool, sized by VLLM_NUM_THREADS or the number of usable cores.
  static ThreadPool& global();
  static int default_num_threads();

 private:
  void worker_loop(int index);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int, int64_t, int64_t)>* task_ = nullptr;
  int64_t task_n_ = 0;
  int64_t task_grain_ = 1;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
  std::mutex run_mutex_;  // one parallel_for at a time
};

}  // namespace vllm
