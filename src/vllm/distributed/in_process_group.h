// Tensor-parallel ranks as threads of one process on the CPU backend: each rank's collectives
// read the other ranks' buffers directly, between two barriers. This is how the sharding, the
// weight splitting and the placement of the all-reduces are run and tested on a CPU machine.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "vllm/distributed/communicator.h"

namespace vllm {

// A barrier for the ranks of one group that a failing rank can break: its waiters then throw
// instead of waiting forever for a rank that will not come. Spins briefly (a decode step's
// collectives are microseconds apart), then sleeps on the generation counter.
class RankBarrier {
 public:
  explicit RankBarrier(int count) : count_(count) {}
  void arrive_and_wait();
  void abort();

 private:
  const int count_;
  std::atomic<int> arrived_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> broken_{false};
};

class InProcessGroup : public std::enable_shared_from_this<InProcessGroup> {
 public:
  static std::shared_ptr<InProcessGroup> create(int world_size);
  int world_size() const { return world_size_; }
  // Rank `rank`'s communicator (one per rank; each must be called by one thread at a time, and
  // every rank must make the same sequence of calls, as with any collective library).
  std::shared_ptr<Communicator> communicator(int rank);
  // A rank failed mid-step: every collective in progress or to come throws.
  void abort() { barrier_.abort(); }

 private:
  explicit InProcessGroup(int world_size);
  friend class InProcessCommunicator;
  struct Posted {
    const float* in = nullptr;
    float* out = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;
  };
  int world_size_;
  std::vector<Posted> posted_;  // per rank, for the collective in progress
  RankBarrier barrier_;
};

}  // namespace vllm
