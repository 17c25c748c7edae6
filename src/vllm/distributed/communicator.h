// The collectives that tensor parallelism needs between the ranks of one model, one Communicator
// per rank. Implementations: an in-process group of CPU ranks (threads sharing memory,
// in_process_group.h); NCCL for GPUs is the interface's other intended implementation.
#pragma once

#include "vllm/core/tensor.h"

namespace vllm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place, on every rank at once: x becomes the element-wise sum of every rank's x. Every rank
  // gets the same bits (the sum is taken in rank order, the same for all).
  virtual void all_reduce_sum(Tensor& x) = 0;
  // On every rank at once: rank 0's out [R, sum of widths] receives each rank's local [R, width_r]
  // side by side, in rank order (the vocabulary-parallel LM head's logits, which only rank 0
  // samples). Other ranks' out is not written and may be undefined.
  virtual void gather_columns(Tensor& out, const Tensor& local) = 0;
  // A rank failed mid-step: the other ranks' collectives in progress (and any later) throw rather
  // than wait for it forever.
  virtual void abort() = 0;
};

}  // namespace vllm
