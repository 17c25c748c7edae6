// Structured outputs: the next-token masks of a step's constrained rows. On a GPU the masks are
// filled on threads of their own while the device runs the forward (the host would otherwise
// wait idle for the logits, then fill the masks while the GPU idles: vLLM overlaps them the same
// way), so a constraint costs the step nothing while its masks take less than the forward. On
// the CPU the forward has every core, and the masks are filled when the sampler asks for them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "vllm/backends/backend.h"
#include "vllm/core/thread_pool.h"
#include "vllm/scheduler/request.h"

namespace vllm {

class StepMasks {
 public:
  // overlap: fill beside the forward, on a pool of its own (made at the first constrained step).
  // host_memory: where the masks live (its empty_host: page-locked on a GPU, so the sampler's
  // upload is one DMA); none: plain memory.
  explicit StepMasks(bool overlap, Backend* host_memory = nullptr);
  ~StepMasks();
  StepMasks(const StepMasks&) = delete;
  StepMasks& operator=(const StepMasks&) = delete;

  // Begins a step's masks: one for each request (each has a matcher, which is the fill's until
  // wait(): it first takes the request's pending token), each at least ceil(vocab / 32) words.
  // Nothing to do: no work at all.
  void start(std::vector<Request*> requests, int64_t vocab);
  // Waits for the masks (rethrowing what a fill threw). Safe to call twice, or with no start.
  void wait();
  // The mask of `r` (after wait()), or nullptr when r was not started.
  const uint32_t* mask_of(const Request* r) const;
  // All of the step's masks (after wait()), words() words each, in start()'s order: a sampler
  // takes them as they are, each row's mask at (mask_of(r) - all().data()) / words().
  std::span<const uint32_t> all() const { return {masks_, requests_.size() * words_}; }
  size_t words() const { return words_; }

 private:
  void fill_all();
  void drive();

  const bool overlap_;
  std::vector<Request*> requests_;
  size_t words_ = 0;
  std::vector<std::pair<const Request*, size_t>> index_;  // sorted: request -> its mask
  Backend* host_memory_;
  Tensor storage_;               // reused: grows, never shrinks, so no allocation per step
  uint32_t* masks_ = nullptr;    // storage_'s words
  std::exception_ptr error_;

  std::unique_ptr<ThreadPool> pool_;
  std::thread driver_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool work_ = false, busy_ = false, stopping_ = false;
};

}  // namespace vllm
