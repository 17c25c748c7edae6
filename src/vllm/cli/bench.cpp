// vllm bench latency | throughput: the offline engine on random prompts of given lengths.
// Each prints a table and the command line that made it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/core/thread_pool.h"
#include "vllm/engine/engine_core.h"

namespace vllm::cli {

namespace {

struct BenchArgs {
  EngineConfig engine;
  int input_len = 32;
  int output_len = 128;
  int batch_size = 1;
  int num_prompts = 100;
  int warmup = 1;
  int iters = 3;
  uint64_t prompt_seed = 0;
  std::string command_line;
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<int32_t> random_prompt(std::mt19937_64& rng, int64_t vocab, int len) {
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(len));
  for (auto& id : ids) id = d(rng);
  return ids;
}

void add_random_requests(EngineCore& engine, std::mt19937_64& rng, int count, const BenchArgs& a) {
  for (int i = 0; i < count; ++i) {
    EngineCoreRequest req;
    req.request_id = std::to_string(i);
    req.prompt_token_ids = random_prompt(rng, engine.model_config().vocab_size, a.input_len);
    req.params.temperature = 0;
    req.params.max_tokens = a.output_len;
    req.params.ignore_eos = true;
    req.params.finalize();
    engine.add_request(std::move(req));
  }
}

// Runs until idle; returns (seconds until every request had its first token, total seconds).
std::pair<double, double> drain(EngineCore& engine, int num_requests) {
  const double t0 = now();
  double first_tokens_done = 0;
  int have_first = 0;
  while (engine.has_unfinished()) {
    for (const auto& out : engine.step())
      if (!out.new_token_ids.empty() && out.num_prompt_tokens > 0 && ++have_first == num_requests) first_tokens_done = now() - t0;
    (void)num_requests;
  }
  return {first_tokens_done, now() - t0};
}

void print_header(const BenchArgs& a, const EngineCore& engine) {
  const auto& c = engine.model_config();
  std::printf("# %s\n", a.command_line.c_str());
  std::printf("# model %s (%s, hidden %lld, layers %lld), dtype %s, %d threads\n", a.engine.model.c_str(),
              c.architecture.c_str(), static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_hidden_layers),
              std::string(dtype_name(engine.compute_dtype())).c_str(), ThreadPool::global().num_threads());
}

int run_latency(BenchArgs& a) {
  a.engine.model = resolve_model_folder(a.engine.model);
  EngineCore engine(a.engine);
  print_header(a, engine);
  std::mt19937_64 rng(a.prompt_seed);
  std::vector<double> totals, prefills;
  for (int it = 0; it < a.warmup + a.iters; ++it) {
    add_random_requests(engine, rng, a.batch_size, a);  // fresh prompts: no prefix-cache hits
    auto [first, total] = drain(engine, a.batch_size);
    if (it >= a.warmup) totals.push_back(total), prefills.push_back(first);
  }
  std::sort(totals.begin(), totals.end());
  double avg = 0, avg_prefill = 0;
  for (size_t i = 0; i < totals.size(); ++i) avg += totals[i], avg_prefill += prefills[i];
  avg /= static_cast<double>(totals.size());
  avg_prefill /= static_cast<double>(prefills.size());
  const double decode_tps = a.batch_size * (a.output_len - 1) / std::max(1e-9, avg - avg_prefill);
  std::printf("| batch | input | output | avg latency (s) | p50 (s) | p90 (s) | prefill (s) | prompt tok/s | decode tok/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %d | %d | %d | %.3f | %.3f | %.3f | %.3f | %.1f | %.1f |\n", a.batch_size, a.input_len, a.output_len, avg,
              totals[totals.size() / 2], totals[std::min(totals.size() - 1, totals.size() * 9 / 10)], avg_prefill,
              a.batch_size * a.input_len / std::max(1e-9, avg_prefill), decode_tps);
  return 0;
}

int run_throughput(BenchArgs& a) {
  a.engine.model = resolve_model_folder(a.engine.model);
  EngineCore engine(a.engine);
  print_header(a, engine);
  std::mt19937_64 rng(a.prompt_seed);
  add_random_requests(engine, rng, a.num_prompts, a);
  auto [first, total] = drain(engine, a.num_prompts);
  (void)first;
  const double out_tokens = static_cast<double>(a.num_prompts) * a.output_len;
  const double all_tokens = static_cast<double>(a.num_prompts) * (a.input_len + a.output_len);
  std::printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n", a.num_prompts / total,
              all_tokens / total, out_tokens / total);
  std::printf("| prompts | input | output | seconds | requests/s | total tokens/s | output tokens/s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::printf("| %d | %d | %d | %.2f | %.2f | %.1f | %.1f |\n", a.num_prompts, a.input_len, a.output_len, total,
              a.num_prompts / total, all_tokens / total, out_tokens / total);
  return 0;
}

CLI::App* add_common(CLI::App* bench, const char* name, const char* help, BenchArgs& a) {
  CLI::App* sub = bench->add_subcommand(name, help);
  sub->add_option("--model,-m", a.engine.model, "Model folder (default: models/default)");
  sub->add_option("--input-len", a.input_len, "Prompt tokens per request")->capture_default_str();
  sub->add_option("--output-len", a.output_len, "Generated tokens per request")->capture_default_str();
  sub->add_option("--prompt-seed", a.prompt_seed, "Seed of the random prompts")->capture_default_str();
  add_engine_args(sub, a.engine);
  return sub;
}

}  // namespace

Runner add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks: latency, throughput, serve");
  bench->require_subcommand(1);
  CLI::App* lat = add_common(bench, "latency", "Latency of one batch of requests", *a);
  lat->add_option("--batch-size", a->batch_size, "Requests per batch")->capture_default_str();
  lat->add_option("--num-iters-warmup", a->warmup, "Warm-up iterations")->capture_default_str();
  lat->add_option("--num-iters", a->iters, "Measured iterations")->capture_default_str();
  CLI::App* thr = add_common(bench, "throughput", "Offline throughput of many requests", *a);
  thr->add_option("--num-prompts", a->num_prompts, "Requests")->capture_default_str();
  auto serve_runner = std::make_shared<Runner>();
  CLI::App* srv = add_bench_serve(bench, serve_runner.get());
  return [a, lat, thr, bench, srv, serve_runner]() {
    if (srv->parsed()) return (*serve_runner)();
    a->command_line = "vllm bench";
    for (CLI::App* s : {lat, thr})
      if (s->parsed()) {
        a->command_line += " " + s->get_name();
        for (const auto& opt : s->get_options())
          if (opt->count() > 0 && !opt->get_lnames().empty())
            a->command_line += " --" + opt->get_lnames()[0] + (opt->get_expected_min() > 0 ? " " + opt->as<std::string>() : "");
      }
    if (lat->parsed()) return run_latency(*a);
    if (thr->parsed()) return run_throughput(*a);
    (void)bench;
    return 1;
  };
}

}  // namespace vllm::cli
