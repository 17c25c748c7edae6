// What a JSON-schema constraint costs the engine: N concurrent constrained requests against N
// unconstrained ones on the same model, same prompts, same lengths. The schema (an array of at
// least 40 records) cannot complete within a few hundred tokens, so both runs generate exactly
// N x output-len tokens at the same batch sizes and the difference is the constraint's work (masks, accepts, applying
// the mask in the sampler). Rounds alternate the two modes; the table keeps each mode's best.
//
//   structured_throughput --model DIR [--device cpu|cuda] [--dtype auto] [--num-seqs 32]
//                         [--input-len 64] [--output-len 128] [--rounds 3] [--load-format auto|dummy]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "vllm/core/error.h"
#include "vllm/engine/engine_core.h"
#include "vllm/engine/llm_engine.h"

using namespace vllm;

namespace {

const char* kSchema = R"({
  "type": "array",
  "minItems": 40,
  "items": {
    "type": "object",
    "properties": {
      "id": {"type": "integer", "minimum": 0},
      "name": {"type": "string"},
      "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}},
      "active": {"type": "boolean"}
    },
    "required": ["id", "name", "tags", "active"],
    "additionalProperties": false
  }
})";

struct Run {
  double seconds = 0;
  int64_t tokens = 0;
  int64_t finished_by_length = 0;
  double step_seconds = 0;  // inside LLMEngine::step (the engine core's step and output processing)
  EngineCore::StepTimes core;
};

Run run_once(LLMEngine& engine, int num_seqs, int input_len, int output_len, bool constrained, int round) {
  for (int i = 0; i < num_seqs; ++i) {
    // Distinct token prompts (no prefix-cache hits between the modes or rounds).
    std::vector<int32_t> prompt(static_cast<size_t>(input_len));
    for (int t = 0; t < input_len; ++t)
      prompt[static_cast<size_t>(t)] = static_cast<int32_t>(100 + (static_cast<uint32_t>(i) * 7919u + static_cast<uint32_t>(t) * 31u +
                                                               static_cast<uint32_t>(round + 1) * 104729u + (constrained ? 1u : 0u)) % 5000u);
    SamplingParams p;
    p.temperature = 0.8;
    p.seed = i;
    p.max_tokens = output_len;
    p.ignore_eos = true;
    p.detokenize = true;
    if (constrained) p.structured_outputs = nlohmann::json{{"json", kSchema}};
    engine.add_request(std::to_string(i), PromptInput::from_ids(std::move(prompt)), p);
  }
  Run r;
  engine.core().set_step_timing(true);
  const auto t0 = std::chrono::steady_clock::now();
  while (engine.has_unfinished()) {
    const auto step_started = std::chrono::steady_clock::now();
    std::vector<RequestOutput> outs = engine.step();
    r.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_started).count();
    for (auto& out : outs) {
      if (!out.finished) continue;
      r.tokens += static_cast<int64_t>(out.outputs[0].token_ids.size());
      r.finished_by_length += out.outputs[0].finish_reason == FinishReason::kLength;
    }
  }
  r.core = engine.core().step_times();
  engine.core().set_step_timing(false);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"--device", "cpu"}, {"--dtype", "auto"}, {"--num-seqs", "32"},
                                          {"--input-len", "64"}, {"--output-len", "128"}, {"--rounds", "3"},
                                          {"--load-format", "auto"}};
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  if (!a.count("--model")) {
    std::fprintf(stderr, "usage: structured_throughput --model DIR [--device cpu|cuda] [--num-seqs N] ...\n");
    return 2;
  }
  try {
    EngineConfig c;
    c.model = a["--model"];
    c.device = a["--device"];
    c.dtype = a["--dtype"];
    c.load_format = a["--load-format"];
    LLMEngine engine(c);
    const int n = std::stoi(a["--num-seqs"]), in = std::stoi(a["--input-len"]), out = std::stoi(a["--output-len"]);
    // Warm-up (and the one compile of the schema, which the cache keeps).
    run_once(engine, 2, in, 8, true, -1);
    run_once(engine, 2, in, 8, false, -1);
    Run best[2];
    for (int round = 0; round < std::stoi(a["--rounds"]); ++round)
      for (int constrained = 0; constrained < 2; ++constrained) {
        Run r = run_once(engine, n, in, out, constrained == 1, round);
        if (best[constrained].seconds == 0 || r.seconds < best[constrained].seconds) best[constrained] = r;
      }
    std::printf("| requests | tokens | seconds | output tok/s | finished by length |\n|---|---|---|---|---|\n");
    const char* names[2] = {"unconstrained", "JSON schema"};
    for (int m = 0; m < 2; ++m)
      std::printf("| %d %s | %lld | %.2f | %.1f | %lld |\n", n, names[m], static_cast<long long>(best[m].tokens),
                  best[m].seconds, best[m].tokens / best[m].seconds, static_cast<long long>(best[m].finished_by_length));
    // Where a step's time goes in each mode (per engine step, microseconds): the phases that grow
    // under the constraint are its cost. On a GPU "forward" is the launch and "device wait" the
    // rest of the forward and the sampler.
    std::printf("\n| per step (us) | steps | schedule | inputs | forward | masks wait | device wait | sample | output processing | whole step |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int m = 0; m < 2; ++m) {
      const EngineCore::StepTimes& t = best[m].core;
      const double us = 1e6 / static_cast<double>(std::max<int64_t>(1, t.steps));
      std::printf("| %s | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", names[m],
                  static_cast<long long>(t.steps), us * t.schedule, us * t.inputs, us * t.forward, us * t.masks_wait,
                  us * t.device_wait, us * t.sample, us * (best[m].step_seconds - t.total), us * best[m].step_seconds);
    }
    const double cost = 1.0 - (best[1].tokens / best[1].seconds) / (best[0].tokens / best[0].seconds);
    std::printf("\nthroughput cost of the constraint: %.1f%%\n", 100.0 * cost);
    std::printf("command: structured_throughput --model %s --device %s --dtype %s --num-seqs %d --input-len %d "
                "--output-len %d --rounds %s\n",
                a["--model"].c_str(), a["--device"].c_str(), a["--dtype"].c_str(), n, in, out, a["--rounds"].c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "structured_throughput: %s\n", e.what());
    return 1;
  }
  return 0;
}
