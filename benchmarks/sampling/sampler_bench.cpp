// Time per Sampler::sample step on a decode-sized batch: by default 256 rows over Qwen2's
// 151,936-token vocabulary, random logits, every row with a prompt and a few hundred
// generated tokens of history (what the penalties walk), on a pool of 2 threads.
//
//   sampler_bench [--rows 256] [--vocab 151936] [--threads 2] [--iters 20] [--warmup 3]
//                 [--prompt-len 512] [--output-len 300] [--only NAME]
//
// Each step gets fresh logits (copied from a pristine matrix outside the timed region, since
// the sampler rewrites them in place); the table gives the median and best step time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vllm/core/thread_pool.h"
#include "vllm/sampling/sampler.h"

namespace {

struct Config {
  std::string name;
  vllm::SamplingParams params;
  bool seeded = false;
};

vllm::SamplingParams params(double temperature, int top_k, double top_p, double min_p, bool penalties,
                            std::optional<int> logprobs = std::nullopt) {
  vllm::SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  if (penalties) {
    p.repetition_penalty = 1.1;
    p.frequency_penalty = 0.5;
    p.presence_penalty = 0.5;
  }
  p.logprobs = logprobs;
  p.finalize();
  return p;
}

int64_t arg(int argc, char** argv, const char* name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  return fallback;
}

std::string arg_str(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t rows = arg(argc, argv, "--rows", 256);
  const int64_t vocab = arg(argc, argv, "--vocab", 151936);
  const int threads = static_cast<int>(arg(argc, argv, "--threads", 2));
  const int iters = static_cast<int>(arg(argc, argv, "--iters", 20));
  const int warmup = static_cast<int>(arg(argc, argv, "--warmup", 3));
  const int64_t prompt_len = arg(argc, argv, "--prompt-len", 512);
  const int64_t output_len = arg(argc, argv, "--output-len", 300);
  const std::string only = arg_str(argc, argv, "--only");

  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\nrows=%lld vocab=%lld threads=%d iters=%d warmup=%d prompt_len=%lld output_len=%lld\n",
              static_cast<long long>(rows), static_cast<long long>(vocab), threads, iters, warmup,
              static_cast<long long>(prompt_len), static_cast<long long>(output_len));

  // Logits ~ N(0, 2^2), a plausible spread for a language model's last layer.
  std::mt19937 rng(12345);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> pristine(static_cast<size_t>(rows * vocab));
  for (auto& v : pristine) v = normal(rng);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(rows)), outputs(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < prompt_len; ++i) prompts[static_cast<size_t>(r)].push_back(token(rng));
    // Real outputs repeat themselves; draw from a narrower range so counts exceed 1.
    std::uniform_int_distribution<int32_t> narrow(0, static_cast<int32_t>(std::min<int64_t>(vocab - 1, 2000)));
    for (int64_t i = 0; i < output_len; ++i) outputs[static_cast<size_t>(r)].push_back(narrow(rng));
  }

  std::vector<Config> configs = {
      {"top-k 50 + top-p 0.9 + penalties, T=0.8", params(0.8, 50, 0.9, 0.0, true)},
      {"greedy only", params(0.0, 0, 1.0, 0.0, false)},
      {"greedy + penalties", params(0.0, 0, 1.0, 0.0, true)},
      {"top-k 50 + top-p 0.9 + penalties, seeded", params(0.8, 50, 0.9, 0.0, true), true},
      {"top-k 50 + top-p 0.9 + penalties + logprobs 5", params(0.8, 50, 0.9, 0.0, true, 5)},
      {"top-p 0.9 only (no top-k), T=0.8", params(0.8, 0, 0.9, 0.0, false)},
      {"min-p 0.05 + top-p 0.9, T=1", params(1.0, 0, 0.9, 0.05, false)},
      {"plain T=1 (full-vocab draw)", params(1.0, 0, 1.0, 0.0, false)},
  };

  vllm::ThreadPool pool(threads);
  vllm::Sampler sampler(0, &pool);
  std::vector<float> logits(pristine.size());

  std::printf("\n| %-48s | %12s | %12s | %10s |\n", "configuration", "median ms", "best ms", "us/row");
  std::printf("|%s|%s|%s|%s|\n", std::string(50, '-').c_str(), std::string(14, '-').c_str(),
              std::string(14, '-').c_str(), std::string(12, '-').c_str());
  for (const auto& config : configs) {
    if (!only.empty() && config.name.find(only) == std::string::npos) continue;
    // Seeded configurations: every row a request of its own seed.
    std::vector<vllm::SamplingParams> seeded(static_cast<size_t>(rows), config.params);
    for (int64_t r = 0; r < rows; ++r) seeded[static_cast<size_t>(r)].seed = r;
    std::vector<vllm::SamplingRow> batch(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      auto& row = batch[static_cast<size_t>(r)];
      row.params = config.seeded ? &seeded[static_cast<size_t>(r)] : &config.params;
      row.sequence_id = static_cast<uint64_t>(r);
      row.prompt_token_ids = prompts[static_cast<size_t>(r)];
      row.output_token_ids = outputs[static_cast<size_t>(r)];
    }
    std::vector<double> times;
    int64_t checksum = 0;
    for (int it = 0; it < warmup + iters; ++it) {
      std::memcpy(logits.data(), pristine.data(), pristine.size() * sizeof(float));
      auto t0 = std::chrono::steady_clock::now();
      auto res = sampler.sample(logits.data(), rows, vocab, batch);
      auto t1 = std::chrono::steady_clock::now();
      for (const auto& x : res) checksum += x.token_id;
      if (it >= warmup) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    std::printf("| %-48s | %12.2f | %12.2f | %10.1f |\n", config.name.c_str(), median, times.front(),
                median * 1000.0 / static_cast<double>(rows));
    if (checksum == 42) std::printf(" ");  // keeps the results observable
  }
  return 0;
}
