// Tensor parallelism's parts against plain references: the shard rules cut each tensor as a
// direct index computation says; the in-process collectives give every rank the same bits, the
// rank-order sum; a failing rank breaks its group's collectives instead of hanging them; and a
// GPT-OSS config whose heads split (the golden tiny-gptoss has 3) gives tp=2 the tokens of tp=1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "golden.h"
#include "vllm/distributed/in_process_group.h"
#include "vllm/distributed/rank_threads.h"
#include "vllm/distributed/tensor_shard.h"

using namespace vllm;
using json = nlohmann::json;

namespace {

Tensor iota(Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

// The reference: element (i0, i1, i2) of the shard is element (i0, src(i1), i2) of the full
// tensor, for a rule on dimension 1 of a 3-d tensor, where src lists the kept rows in order.
void expect_rows(const Tensor& full, const Tensor& shard, const std::vector<int64_t>& src) {
  const int64_t A = full.size(0), B = full.size(1), C = full.size(2);
  ASSERT_EQ(shard.shape(), (Shape{A, static_cast<int64_t>(src.size()), C}));
  for (int64_t a = 0; a < A; ++a)
    for (size_t j = 0; j < src.size(); ++j)
      for (int64_t c = 0; c < C; ++c) {
        ASSERT_EQ(shard.data<float>()[(a * static_cast<int64_t>(src.size()) + static_cast<int64_t>(j)) * C + c],
                  full.data<float>()[(a * B + src[j]) * C + c]);
      }
}

TEST(TensorShard, SegmentsSplitPerRankWithKvHeadsReplicatedAndAnUnevenVocabulary) {
  // q: 4 heads of 2 rows, k and v: 1 head of 2 rows each (fewer KV heads than ranks), along dim 1.
  const Tensor full = iota({2, 12, 3});
  TensorShard s;
  s.world_size = 2;
  s.rules["qkv"] = {ShardRule::Kind::kSplit, 1, {{4, 2}, {1, 2}, {1, 2}}};
  s.rank = 0;
  expect_rows(full, s.apply("qkv", full), {0, 1, 2, 3, 8, 9, 10, 11});
  s.rank = 1;
  expect_rows(full, s.apply("qkv", full), {4, 5, 6, 7, 8, 9, 10, 11});
  // Units of 2 (GPT-OSS's interleaved gate/up columns stay in pairs), over 3 ranks.
  const Tensor pairs = iota({1, 6, 2});
  TensorShard three;
  three.world_size = 3;
  three.rules["pairs"] = split_rule(1, 3, 2);
  for (int r = 0; r < 3; ++r) {
    three.rank = r;
    expect_rows(pairs, three.apply("pairs", pairs), {2 * r, 2 * r + 1});
  }
  // The vocabulary: ceil(5 / 3) = 2 rows per rank, the last rank one.
  const Tensor vocab = iota({1, 5, 4});
  three.rules["vocab"] = {ShardRule::Kind::kSplit, 1, {{5, 1, true}}};
  three.rank = 2;
  expect_rows(vocab, three.apply("vocab", vocab), {4});
  // A row-parallel bias: whole on rank 0, zeros elsewhere; a tensor without a rule: whole.
  three.rules["bias"] = first_rank_rule();
  const Tensor zeros = three.apply("bias", vocab);
  for (int64_t i = 0; i < zeros.numel(); ++i) ASSERT_EQ(zeros.data<float>()[i], 0.0f);
  EXPECT_EQ(three.apply("norm", vocab).data<float>(), vocab.data<float>());
}

TEST(TensorShard, WhatDoesNotSplitIsAnErrorNamingIt) {
  TensorShard s;
  s.world_size = 2;
  s.rules["w"] = split_rule(0, 3, 4);
  try {
    s.apply("w", iota({12, 2}));
    FAIL() << "3 units were split over 2 ranks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'w': 3 cannot be split over --tensor-parallel-size 2"), std::string::npos)
        << e.what();
  }
  s.rules["w"] = split_rule(0, 4, 4);
  EXPECT_THROW(s.apply("w", iota({12, 2})), Error);  // the checkpoint's shape is not the config's
  ModelConfig c;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.intermediate_size = 8;
  c.vocab_size = 11;
  EXPECT_THROW(shard_config(c, 0, 4), Error);  // 6 heads over 4 ranks
  EXPECT_THROW(shard_config(c, 0, 3), Error);  // 2 KV heads over 3 ranks: divides neither way
  c.num_key_value_heads = 1;
  c.intermediate_size = 9;
  const ModelConfig r3 = shard_config(c, 2, 3);
  EXPECT_EQ(r3.num_attention_heads, 2);
  EXPECT_EQ(r3.num_key_value_heads, 1);  // the one KV head on every rank
  EXPECT_EQ(r3.intermediate_size, 3);
  EXPECT_EQ(r3.vocab_size, 3);  // ceil(11 / 3) = 4, 4, then 3
  EXPECT_EQ(shard_vocab_begin(c, 2, 3), 8);
}

// Runs fn(rank) on `n` threads at once (a group's ranks must all be in their collectives).
void on_ranks(int n, const std::function<void(int)>& fn) {
  RankThreads threads(n);
  threads.run(fn, [] {});
}

TEST(InProcessGroup, AllReduceGivesEveryRankTheRankOrderSumBitForBit) {
  constexpr int kRanks = 3;
  constexpr int64_t kN = 1001;  // not a multiple of the rank count
  auto group = InProcessGroup::create(kRanks);
  std::vector<Tensor> xs;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1e3f, 1e3f);
  for (int r = 0; r < kRanks; ++r) {
    xs.push_back(Tensor::empty({7, kN / 7 + 1}, DType::F32));
    for (int64_t i = 0; i < xs.back().numel(); ++i) xs.back().data<float>()[i] = dist(rng);
  }
  std::vector<float> expected(static_cast<size_t>(xs[0].numel()));
  for (size_t i = 0; i < expected.size(); ++i) {
    float s = xs[0].data<float>()[i];
    for (int r = 1; r < kRanks; ++r) s += xs[static_cast<size_t>(r)].data<float>()[i];
    expected[i] = s;
  }
  on_ranks(kRanks, [&](int r) {
    auto comm = group->communicator(r);
    for (int round = 0; round < 3; ++round) {  // back-to-back collectives reuse the group's slots
      comm->all_reduce_sum(xs[static_cast<size_t>(r)]);  // after the first, sums of equal values
      if (round == 0) {
        for (size_t i = 0; i < expected.size(); ++i) {
          ASSERT_EQ(xs[static_cast<size_t>(r)].data<float>()[i], expected[i]) << "rank " << r << " element " << i;
        }
      }
    }
  });
  for (int r = 1; r < kRanks; ++r)
    for (int64_t i = 0; i < xs[0].numel(); ++i) {
      ASSERT_EQ(xs[static_cast<size_t>(r)].data<float>()[i], xs[0].data<float>()[i]);
    }
}

TEST(InProcessGroup, GatherColumnsPutsEachRanksColumnsSideBySideOnRankZero) {
  auto group = InProcessGroup::create(2);
  const std::vector<int64_t> widths{3, 2};
  Tensor out = Tensor::zeros({4, 5}, DType::F32);
  on_ranks(2, [&](int r) {
    Tensor local = Tensor::empty({4, widths[static_cast<size_t>(r)]}, DType::F32);
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < local.size(1); ++j) local.data<float>()[i * local.size(1) + j] = static_cast<float>(100 * r + 10 * i + j);
    Tensor mine = r == 0 ? out : Tensor();
    group->communicator(r)->gather_columns(mine, local);
  });
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const float want = j < 3 ? static_cast<float>(10 * i + j) : static_cast<float>(100 + 10 * i + (j - 3));
      EXPECT_EQ(out.data<float>()[i * 5 + j], want) << i << "," << j;
    }
}

TEST(InProcessGroup, AFailingRankBreaksTheCollectivesTheOthersWaitIn) {
  auto group = InProcessGroup::create(2);
  RankThreads threads(2);
  bool rank0_threw = false;
  EXPECT_THROW(threads.run(
                   [&](int r) {
                     Tensor x = Tensor::zeros({4}, DType::F32);
                     if (r == 1) throw Error("rank 1 fails before its collective");
                     try {
                       group->communicator(0)->all_reduce_sum(x);  // would wait for rank 1 forever
                     } catch (const Error&) {
                       rank0_threw = true;
                       throw;
                     }
                   },
                   [&] { group->abort(); }),
               Error);
  EXPECT_TRUE(rank0_threw);
}

// GPT-OSS's rules (attention sinks per head, interleaved gate/up experts, biases on rank 0, the
// sliding window, an untied LM head), at 4 heads and 2 KV heads so that they split over 2 ranks.
TEST(TensorParallel, GptOssWithHeadsThatSplitGivesTheTokensOfOneRank) {
  std::ifstream in(test::data_dir() + "/models/tiny-gptoss/config.json");
  json config = json::parse(in);
  config["num_attention_heads"] = 4;
  config["num_key_value_heads"] = 2;
  config["vocab_size"] = 512;  // the recipe's weights made in memory: a small vocabulary keeps it quick
  const std::filesystem::path dir = test::scratch_dir("tp-gptoss");
  std::ofstream(dir / "config.json") << config.dump(2);
  EngineConfig one;
  one.model = dir.string();
  one.device = "cpu";
  one.dtype = "float32";
  one.load_format = "dummy";
  one.num_kv_blocks = 256;
  EngineConfig two = one;
  two.tensor_parallel_size = 2;
  const std::vector<std::vector<int32_t>> prompts{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
                                                  {400, 17, 96, 5}};
  const auto ref = test::run_greedy_on(one, prompts, 24, 5, 0);
  const auto split = test::run_greedy_on(two, prompts, 24, 5, 0);
  for (size_t p = 0; p < prompts.size(); ++p) {
    ASSERT_EQ(split[p].ids, ref[p].ids) << "prompt " << p;
    for (size_t s = 0; s < ref[p].logprobs.size(); ++s) {
      EXPECT_NEAR(split[p].logprobs[s].logprob, ref[p].logprobs[s].logprob, 1e-4) << "prompt " << p << " step " << s;
    }
  }
}

TEST(TensorParallel, ConfigurationsItCannotRunAreRefusedClearly) {
  EngineConfig c;
  c.model = test::materialize_model("tiny-llama2");
  c.device = "cpu";
  c.tensor_parallel_size = 0;
  try {
    EngineCore engine(c);
    FAIL() << "tensor_parallel_size 0 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--tensor-parallel-size must be at least 1, not 0");
  }
  c.tensor_parallel_size = 4;  // 2 heads
  try {
    EngineCore engine(c);
    FAIL() << "2 heads were split over 4 ranks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_attention_heads (2) must be divisible by --tensor-parallel-size 4"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
