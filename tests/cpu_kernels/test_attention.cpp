// The CPU paged attention op (cpu_attention.cpp) against a plain reference in double precision:
// causal attention with grouped KV heads, a sliding window (a query at position p sees keys at
// positions > p - W), tanh soft-capping of the scores and per-head sinks in the softmax's
// denominator, alone and together. The K/V cache is paged through shuffled block tables with
// blocks smaller than the window; sequences are run in one prefill and in chunks (the rest of the
// prompt and decodes arriving step by step), which must give the same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "vllm/backends/cpu/cpu_backend.h"

using namespace vllm;

namespace {

struct Case {
  int64_t num_heads = 4, num_kv_heads = 2, head_dim = 32;
  int64_t window = 0;
  float softcap = 0;
  bool sinks = false;
  float scale = 0.25f;
};

// Random q, k, v for every position of every sequence: [seq][pos][heads * head_dim].
struct Data {
  std::vector<std::vector<std::vector<float>>> q, k, v;
  std::vector<float> sinks;
};

Data random_data(const Case& c, const std::vector<int64_t>& lens, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  Data d;
  auto vec = [&](int64_t size) {
    std::vector<float> out(static_cast<size_t>(size));
    for (float& x : out) x = n(rng);
    return out;
  };
  for (int64_t len : lens) {
    d.q.emplace_back(), d.k.emplace_back(), d.v.emplace_back();
    for (int64_t p = 0; p < len; ++p) {
      d.q.back().push_back(vec(c.num_heads * c.head_dim));
      d.k.back().push_back(vec(c.num_kv_heads * c.head_dim));
      d.v.back().push_back(vec(c.num_kv_heads * c.head_dim));
    }
  }
  // Sinks from well below to well above the scores, so that some heads put most weight on them.
  for (int64_t h = 0; h < c.num_heads; ++h) d.sinks.push_back(-4.0f + 3.0f * static_cast<float>(h));
  return d;
}

// The output of position p of sequence s, [num_heads * head_dim], in double.
std::vector<double> reference(const Case& c, const Data& d, size_t s, int64_t p) {
  const int64_t hd = c.head_dim, group = c.num_heads / c.num_kv_heads;
  const int64_t first = c.window > 0 ? std::max<int64_t>(0, p - c.window + 1) : 0;
  std::vector<double> out(static_cast<size_t>(c.num_heads * hd), 0.0);
  for (int64_t h = 0; h < c.num_heads; ++h) {
    const int64_t g = h / group;
    std::vector<double> sc;
    for (int64_t j = first; j <= p; ++j) {
      double dot = 0;
      for (int64_t i = 0; i < hd; ++i) dot += double(d.q[s][p][h * hd + i]) * d.k[s][j][g * hd + i];
      double x = dot * c.scale;
      if (c.softcap > 0) x = std::tanh(x / c.softcap) * c.softcap;
      sc.push_back(x);
    }
    double mx = *std::max_element(sc.begin(), sc.end());
    if (c.sinks) mx = std::max(mx, double(d.sinks[h]));
    double sum = c.sinks ? std::exp(d.sinks[h] - mx) : 0.0;
    for (double& x : sc) sum += (x = std::exp(x - mx));
    for (int64_t j = first; j <= p; ++j)
      for (int64_t i = 0; i < hd; ++i) out[h * hd + i] += sc[j - first] / sum * d.v[s][j][g * hd + i];
  }
  return out;
}

// Runs the sequences through attention in steps: at step i sequence s gets its tokens
// [done_s, done_s + chunks[s][i]). Returns each position's output, [seq][pos][heads * head_dim].
class Runner {
 public:
  Runner(const Case& c, const Data& d, DType kv_dtype, int64_t block_size)
      : c_(c), d_(d), backend_(kv_dtype == DType::F32 ? DType::F32 : DType::BF16), bs_(block_size) {
    int64_t total_blocks = 0;
    for (const auto& q : d.q) total_blocks += (static_cast<int64_t>(q.size()) + bs_ - 1) / bs_;
    // Every sequence's blocks, scattered over a shuffled pool (with spare blocks in between).
    std::vector<int32_t> pool(static_cast<size_t>(2 * total_blocks + 3));
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), std::mt19937(7));
    size_t next = 0;
    for (const auto& q : d.q) {
      tables_.emplace_back();
      for (int64_t b = 0; b < (static_cast<int64_t>(q.size()) + bs_ - 1) / bs_; ++b) tables_.back().push_back(pool[next++]);
      max_blocks_ = std::max<int64_t>(max_blocks_, static_cast<int64_t>(tables_.back().size()));
    }
    const Shape kv_shape{static_cast<int64_t>(pool.size()), c.num_kv_heads, bs_, c.head_dim};
    cache_.k = Tensor::zeros(kv_shape, kv_dtype);
    cache_.v = Tensor::zeros(kv_shape, kv_dtype);
    done_.assign(d.q.size(), 0);
    out_.resize(d.q.size());
  }

  // counts[s] new tokens of sequence s; sequences with none are left out of the batch.
  void step(const std::vector<int64_t>& counts) {
    std::vector<size_t> batch;
    for (size_t s = 0; s < counts.size(); ++s)
      if (counts[s] > 0) batch.push_back(s);
    const int64_t S = static_cast<int64_t>(batch.size());
    const int64_t width = (c_.num_heads + 2 * c_.num_kv_heads) * c_.head_dim;
    std::vector<float> qkv;
    std::vector<int64_t> slots;
    ForwardInputs in;
    in.host_query_start_loc.push_back(0);
    std::vector<int32_t> table(static_cast<size_t>(S * max_blocks_), 0);
    for (int64_t b = 0; b < S; ++b) {
      const size_t s = batch[b];
      for (int64_t p = done_[s]; p < done_[s] + counts[s]; ++p) {
        for (const auto* part : {&d_.q[s][p], &d_.k[s][p], &d_.v[s][p]}) qkv.insert(qkv.end(), part->begin(), part->end());
        slots.push_back(tables_[s][p / bs_] * bs_ + p % bs_);
      }
      in.host_query_start_loc.push_back(in.host_query_start_loc.back() + static_cast<int32_t>(counts[s]));
      in.host_seq_lens.push_back(static_cast<int32_t>(done_[s] + counts[s]));
      std::copy(tables_[s].begin(), tables_[s].end(), table.begin() + b * max_blocks_);
    }
    const int64_t T = static_cast<int64_t>(slots.size());
    in.num_tokens = T;
    in.num_seqs = S;
    in.block_size = bs_;
    in.max_blocks_per_seq = max_blocks_;
    in.max_query_len = *std::max_element(counts.begin(), counts.end());
    in.max_seq_len = *std::max_element(in.host_seq_lens.begin(), in.host_seq_lens.end());
    in.slot_mapping = Tensor::empty({T}, DType::I64);
    std::copy(slots.begin(), slots.end(), in.slot_mapping.data<int64_t>());
    in.query_start_loc = Tensor::empty({S + 1}, DType::I32);
    std::copy(in.host_query_start_loc.begin(), in.host_query_start_loc.end(), in.query_start_loc.data<int32_t>());
    in.seq_lens = Tensor::empty({S}, DType::I32);
    std::copy(in.host_seq_lens.begin(), in.host_seq_lens.end(), in.seq_lens.data<int32_t>());
    in.block_tables = Tensor::empty({S, max_blocks_}, DType::I32);
    std::copy(table.begin(), table.end(), in.block_tables.data<int32_t>());

    AttentionShape shape;
    shape.num_heads = c_.num_heads;
    shape.num_kv_heads = c_.num_kv_heads;
    shape.head_dim = c_.head_dim;
    shape.sliding_window = c_.window;
    shape.logit_softcap = c_.softcap;
    if (c_.sinks) shape.sinks = Tensor::from_floats(d_.sinks, {c_.num_heads});
    Tensor qkv_t = Tensor::from_floats(qkv, {T, width});
    Tensor out = Tensor::empty({T, c_.num_heads * c_.head_dim}, DType::F32);
    backend_.attention(out, qkv_t, cache_, in, shape, c_.scale);
    const std::vector<float> o = out.to_floats();
    const int64_t row_width = c_.num_heads * c_.head_dim;
    int64_t row = 0;
    for (size_t s : batch) {
      for (int64_t i = 0; i < counts[s]; ++i, ++row)
        out_[s].emplace_back(o.begin() + row * row_width, o.begin() + (row + 1) * row_width);
      done_[s] += counts[s];
    }
  }

  const std::vector<std::vector<std::vector<float>>>& outputs() const { return out_; }

 private:
  Case c_;
  const Data& d_;
  CpuBackend backend_;
  int64_t bs_;
  int64_t max_blocks_ = 0;
  std::vector<std::vector<int32_t>> tables_;
  KVCacheLayer cache_;
  std::vector<int64_t> done_;
  std::vector<std::vector<std::vector<float>>> out_;
};

const std::vector<int64_t> kLens = {1, 7, 23, 40};

// All of every sequence in one step.
std::vector<std::vector<std::vector<float>>> one_prefill(const Case& c, const Data& d, DType kv, int64_t bs) {
  Runner r(c, d, kv, bs);
  r.step(kLens);
  return r.outputs();
}

// Three chunks of up to 5 tokens, then one token a step (decodes), the sequences batched together
// until each runs out.
std::vector<std::vector<std::vector<float>>> chunked(const Case& c, const Data& d, DType kv, int64_t bs) {
  Runner r(c, d, kv, bs);
  std::vector<int64_t> done(kLens.size(), 0);
  for (int step = 0;; ++step) {
    std::vector<int64_t> counts;
    for (size_t s = 0; s < kLens.size(); ++s) counts.push_back(std::min<int64_t>(kLens[s] - done[s], step < 3 ? 5 : 1));
    if (std::all_of(counts.begin(), counts.end(), [](int64_t n) { return n == 0; })) break;
    r.step(counts);
    for (size_t s = 0; s < kLens.size(); ++s) done[s] += counts[s];
  }
  return r.outputs();
}

void expect_matches_reference(const Case& c, const Data& d, const std::vector<std::vector<std::vector<float>>>& got,
                              double tol, const std::string& label) {
  for (size_t s = 0; s < kLens.size(); ++s) {
    ASSERT_EQ(static_cast<int64_t>(got[s].size()), kLens[s]) << label;
    for (int64_t p = 0; p < kLens[s]; ++p) {
      const std::vector<double> want = reference(c, d, s, p);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got[s][p][i], want[i], tol) << label << ": seq " << s << " pos " << p << " element " << i;
    }
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  out.push_back(Case{});  // plain causal attention
  for (int64_t w : {1, 5, 8, 12, 64}) {  // 64: wider than every sequence
    Case c;
    c.window = w;
    out.push_back(c);
  }
  Case cap;
  cap.softcap = 2.0f;  // scores of several units: tanh bends them
  cap.scale = 1.0f;
  out.push_back(cap);
  Case sinks;
  sinks.sinks = true;
  out.push_back(sinks);
  Case all;  // GPT-OSS-like: 3 query heads per KV head, window and sinks; and a soft-cap too
  all.num_heads = 6, all.num_kv_heads = 2, all.head_dim = 16;
  all.window = 6, all.softcap = 3.0f, all.sinks = true, all.scale = 0.5f;
  out.push_back(all);
  return out;
}

std::string describe(const Case& c) {
  return "window " + std::to_string(c.window) + ", softcap " + std::to_string(c.softcap) + ", sinks " +
         std::to_string(c.sinks);
}

TEST(CpuAttention, Float32MatchesPlainReference) {
  unsigned seed = 1;
  for (const Case& c : cases()) {
    Data d = random_data(c, kLens, seed++);
    for (int64_t bs : {1, 4, 16})
      expect_matches_reference(c, d, one_prefill(c, d, DType::F32, bs), 2e-5,
                               describe(c) + ", block size " + std::to_string(bs));
  }
}

// Chunked prefill and decodes read earlier steps' K/V through the block table: the same bits as
// one prefill (each token's result depends only on its own context).
TEST(CpuAttention, ChunkedPrefillAndDecodesEqualOnePrefill) {
  unsigned seed = 100;
  for (const Case& c : cases()) {
    Data d = random_data(c, kLens, seed++);
    for (DType kv : {DType::F32, DType::BF16}) {
      const auto whole = one_prefill(c, d, kv, 4);
      const auto steps = chunked(c, d, kv, 4);
      EXPECT_EQ(whole, steps) << describe(c) << (kv == DType::F32 ? ", float32" : ", bfloat16") << " cache";
    }
  }
}

// A bfloat16 cache rounds K and V (2^-9 relative): close to the reference, not equal.
TEST(CpuAttention, Bfloat16CacheCloseToPlainReference) {
  unsigned seed = 200;
  for (const Case& c : cases()) {
    Data d = random_data(c, kLens, seed++);
    expect_matches_reference(c, d, one_prefill(c, d, DType::BF16, 4), 3e-2, describe(c) + ", bfloat16 cache");
  }
}

// The window really narrows what a token sees: with a window of 1 each token attends to itself
// only, so its output is its own V row (times its weight against the sink, without sinks 1).
TEST(CpuAttention, WindowOfOneSeesOnlyItself) {
  Case c;
  c.window = 1;
  Data d = random_data(c, kLens, 9);
  const auto got = one_prefill(c, d, DType::F32, 4);
  const int64_t hd = c.head_dim, group = c.num_heads / c.num_kv_heads;
  for (size_t s = 0; s < kLens.size(); ++s)
    for (int64_t p = 0; p < kLens[s]; ++p)
      for (int64_t h = 0; h < c.num_heads; ++h)
        for (int64_t i = 0; i < hd; ++i) ASSERT_EQ(got[s][p][h * hd + i], d.v[s][p][(h / group) * hd + i]);
}

}  // namespace
