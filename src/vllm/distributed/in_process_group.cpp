#include "vllm/distributed/in_process_group.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "vllm/core/error.h"

namespace vllm {

namespace {

void check_f32_matrix(const Tensor& t, const char* what) {
  VLLM_CHECK(t.defined() && t.dtype() == DType::F32 && t.dim() >= 1,
             std::string("in-process collectives take float32 host tensors: ") + what);
}

}  // namespace

void RankBarrier::arrive_and_wait() {
  if (broken_.load(std::memory_order_acquire))
    throw Error("a tensor-parallel rank failed; its group's collectives are broken", ErrorKind::kInternal);
  const uint64_t gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_) {
    arrived_.store(0, std::memory_order_relaxed);  // before the release below: no rank re-arrives earlier
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    return;
  }
  for (int spin = 0; spin < 4096 && generation_.load(std::memory_order_acquire) == gen; ++spin) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  while (generation_.load(std::memory_order_acquire) == gen) generation_.wait(gen, std::memory_order_acquire);
  if (broken_.load(std::memory_order_acquire))
    throw Error("a tensor-parallel rank failed; its group's collectives are broken", ErrorKind::kInternal);
}

void RankBarrier::abort() {
  broken_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
}

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<InProcessGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_->world_size_; }

  // Each rank sums one slice of the elements over all ranks (in rank order) and writes the sum
  // back into every rank's buffer: the slices are disjoint, so no element is read after another
  // rank wrote it, and the two barriers fence the whole exchange.
  void all_reduce_sum(Tensor& x) override {
    check_f32_matrix(x, "all_reduce_sum");
    InProcessGroup& g = *group_;
    const int n = g.world_size_;
    g.posted_[static_cast<size_t>(rank_)] = {nullptr, x.data<float>(), 1, x.numel()};
    g.barrier_.arrive_and_wait();
    const int64_t numel = x.numel();
    for (int r = 0; r < n; ++r)
      VLLM_CHECK(g.posted_[static_cast<size_t>(r)].cols == numel, "all_reduce_sum: the ranks' tensors differ in size");
    const int64_t begin = numel * rank_ / n, end = numel * (rank_ + 1) / n;
    for (int64_t i = begin; i < end; ++i) {
      float s = g.posted_[0].out[i];
      for (int r = 1; r < n; ++r) s += g.posted_[static_cast<size_t>(r)].out[i];
      for (int r = 0; r < n; ++r) g.posted_[static_cast<size_t>(r)].out[i] = s;
    }
    g.barrier_.arrive_and_wait();
  }

  void abort() override { group_->abort(); }

  void gather_columns(Tensor& out, const Tensor& local) override {
    check_f32_matrix(local, "gather_columns");
    InProcessGroup& g = *group_;
    const int n = g.world_size_;
    const int64_t rows = local.size(0), cols = local.numel() / std::max<int64_t>(rows, 1);
    g.posted_[static_cast<size_t>(rank_)] = {local.data<float>(), nullptr, rows, cols};
    g.barrier_.arrive_and_wait();
    if (rank_ == 0) {
      check_f32_matrix(out, "gather_columns (rank 0's output)");
      int64_t width = 0;
      for (int r = 0; r < n; ++r) {
        VLLM_CHECK(g.posted_[static_cast<size_t>(r)].rows == rows, "gather_columns: the ranks' row counts differ");
        width += g.posted_[static_cast<size_t>(r)].cols;
      }
      VLLM_CHECK(out.size(0) == rows && out.numel() == rows * width, "gather_columns: the output is not [rows, sum of widths]");
      float* dst = out.data<float>();
      for (int64_t i = 0; i < rows; ++i) {
        int64_t at = 0;
        for (int r = 0; r < n; ++r) {
          const InProcessGroup::Posted& p = g.posted_[static_cast<size_t>(r)];
          std::memcpy(dst + i * width + at, p.in + i * p.cols, static_cast<size_t>(p.cols) * sizeof(float));
          at += p.cols;
        }
      }
    }
    g.barrier_.arrive_and_wait();  // the other ranks may overwrite their logits only now
  }

 private:
  std::shared_ptr<InProcessGroup> group_;
  int rank_;
};

InProcessGroup::InProcessGroup(int world_size)
    : world_size_(world_size), posted_(static_cast<size_t>(world_size)), barrier_(world_size) {}

std::shared_ptr<InProcessGroup> InProcessGroup::create(int world_size) {
  VLLM_CHECK(world_size >= 1, "a process group has at least one rank");
  return std::shared_ptr<InProcessGroup>(new InProcessGroup(world_size));
}

std::shared_ptr<Communicator> InProcessGroup::communicator(int rank) {
  VLLM_CHECK(rank >= 0 && rank < world_size_, "rank out of range");
  return std::make_shared<InProcessCommunicator>(shared_from_this(), rank);
}

}  // namespace vllm
