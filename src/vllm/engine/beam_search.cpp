#include "vllm/engine/beam_search.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "vllm/core/error.h"

namespace vllm {

namespace {

// A live beam: its engine sequence and what it has generated so far.
struct Beam {
  uint64_t seq_id = 0;
  BeamSequence seq;
};

struct Instance {
  std::vector<Beam> live;
  std::vector<BeamSequence> completed;
};

// One proposed continuation of a live beam.
struct Candidate {
  size_t beam;  // index into Instance::live
  int32_t token;
  double cum_logprob;
  double score;
};

// The tokens a beam's step output proposes, in the order vLLM's logprobs dict holds them: the
// sampled token, then the best ones (each token once).
std::vector<TokenLogprob> proposals(const TokenLogprobs& step) {
  std::vector<TokenLogprob> out{{step.token, step.logprob}};
  for (const TokenLogprob& t : step.top)
    if (std::none_of(out.begin(), out.end(), [&](const TokenLogprob& o) { return o.token_id == t.token_id; }))
      out.push_back(t);
  return out;
}

BeamSequence extend(const BeamSequence& parent, int32_t token, double cum_logprob, const TokenLogprobs& step) {
  BeamSequence s = parent;
  s.tokens.push_back(token);
  s.logprobs.push_back(step);
  s.cum_logprob = cum_logprob;
  return s;
}

// Runs engine steps until every sequence in `pending` has sampled its next token; each one that
// has is paused so that it waits for the others. Returns the step output of each.
std::unordered_map<uint64_t, EngineCoreOutput> next_tokens(EngineCore& core, std::vector<uint64_t> pending) {
  std::unordered_map<uint64_t, EngineCoreOutput> got;
  for (uint64_t s : pending) core.set_paused(s, false);
  int idle_steps = 0;
  while (!pending.empty()) {
    std::vector<EngineCoreOutput> outs = core.step();
    idle_steps = outs.empty() ? idle_steps + 1 : 0;
    if (outs.empty() && (idle_steps > 1000 || !core.has_unfinished()))
      throw Error("beam search made no progress (the KV cache may be too small for one beam)", ErrorKind::kInternal);
    for (EngineCoreOutput& o : outs) {
      auto it = std::find(pending.begin(), pending.end(), o.seq_id);
      if (it == pending.end() || o.new_token_ids.empty()) continue;
      pending.erase(it);
      if (!o.finished) core.set_paused(o.seq_id, true);
      got.emplace(o.seq_id, std::move(o));
    }
  }
  return got;
}

}  // namespace

double beam_search_score(int64_t length, int32_t last_token, double cum_logprob, std::optional<int32_t> eos,
                         double length_penalty) {
  if (eos && length > 0 && last_token == *eos) --length;
  return cum_logprob / std::pow(static_cast<double>(length), length_penalty);
}

std::vector<BeamSearchResult> run_beam_search(EngineCore& core, const std::vector<std::vector<int32_t>>& prompts,
                                              const BeamSearchParams& params, std::optional<int32_t> eos) {
  params.validate();
  const size_t width = static_cast<size_t>(params.beam_width);
  const int64_t max_len = core.max_model_len();
  auto score = [&](const BeamSequence& s) {
    return beam_search_score(static_cast<int64_t>(s.tokens.size()), s.tokens.empty() ? -1 : s.tokens.back(),
                             s.cum_logprob, eos, params.length_penalty);
  };

  // Each beam asks for one token at a time with the 2 * width best log-probs; EOS and the
  // length limit are this loop's business, so the engine only stops a beam at max_tokens.
  SamplingParams step;
  step.temperature = params.temperature;
  step.logprobs = 2 * params.beam_width;
  step.max_tokens = params.max_tokens;
  step.ignore_eos = true;
  step.detokenize = false;
  step.finalize();

  std::vector<Instance> instances(prompts.size());
  auto end_all = [&] {
    for (Instance& in : instances)
      for (Beam& b : in.live) core.abort_request(b.seq_id);  // a no-op for those already done
  };
  try {
    for (size_t i = 0; i < prompts.size(); ++i) {
      EngineCoreRequest req;
      req.request_id = "beam-" + std::to_string(i);
      req.prompt_token_ids = prompts[i];
      req.params = step;
      Beam root;
      root.seq_id = core.add_request(std::move(req));
      root.seq.tokens = prompts[i];
      instances[i].live.push_back(std::move(root));
    }

    for (int t = 0; t < params.max_tokens; ++t) {
      std::vector<uint64_t> pending;
      for (const Instance& in : instances)
        for (const Beam& b : in.live) pending.push_back(b.seq_id);
      if (pending.empty()) break;
      const bool last_step = t + 1 == params.max_tokens;
      std::unordered_map<uint64_t, EngineCoreOutput> outs = next_tokens(core, pending);

      for (Instance& in : instances) {
        std::vector<Candidate> candidates;
        for (size_t bi = 0; bi < in.live.size(); ++bi) {
          const Beam& beam = in.live[bi];
          const EngineCoreOutput& o = outs.at(beam.seq_id);
          VLLM_CHECK(!o.new_logprobs.empty(), "a beam's step came without log-probs");
          const TokenLogprobs& dist = o.new_logprobs[0];
          const int64_t length = static_cast<int64_t>(beam.seq.tokens.size()) + 1;
          for (const TokenLogprob& p : proposals(dist)) {
            const double cum = beam.seq.cum_logprob + static_cast<double>(p.logprob);
            const bool ends_in_eos = eos && p.token_id == *eos && !params.ignore_eos;
            if (ends_in_eos || length >= max_len) {
              BeamSequence done = extend(beam.seq, p.token_id, cum, dist);
              done.finish_reason = ends_in_eos ? FinishReason::kStop : FinishReason::kLength;
              in.completed.push_back(std::move(done));
            } else {
              candidates.push_back({bi, p.token_id, cum, beam_search_score(length, p.token_id, cum, eos, params.length_penalty)});
            }
          }
        }
        // The best `width` live on (ties keep the proposal order, as Python's stable sort does).
        std::stable_sort(candidates.begin(), candidates.end(),
                         [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
        if (candidates.size() > width) candidates.resize(width);

        // A chosen beam continues in its own sequence once, in forks of it after that; beams
        // not chosen end. On the last step the engine has ended every beam already.
        std::vector<int> uses(in.live.size(), 0);
        std::vector<Beam> next;
        for (const Candidate& c : candidates) {
          const Beam& parent = in.live[c.beam];
          Beam b;
          b.seq = extend(parent.seq, c.token, c.cum_logprob, outs.at(parent.seq_id).new_logprobs[0]);
          if (!last_step) {
            b.seq_id = uses[c.beam]++ == 0 ? parent.seq_id : core.fork_request(parent.seq_id);
            core.replace_last_token(b.seq_id, c.token);
          }
          next.push_back(std::move(b));
        }
        for (size_t bi = 0; bi < in.live.size(); ++bi)
          if (uses[bi] == 0 || last_step) core.abort_request(in.live[bi].seq_id);
        in.live = std::move(next);
      }
    }
  } catch (...) {
    end_all();
    throw;
  }
  end_all();

  std::vector<BeamSearchResult> results;
  for (Instance& in : instances) {
    for (Beam& b : in.live) {
      if (!b.seq.finish_reason) b.seq.finish_reason = FinishReason::kLength;
      in.completed.push_back(std::move(b.seq));
    }
    std::stable_sort(in.completed.begin(), in.completed.end(),
                     [&](const BeamSequence& a, const BeamSequence& b) { return score(a) > score(b); });
    if (in.completed.size() > width) in.completed.resize(width);
    results.push_back({std::move(in.completed)});
  }
  return results;
}

}  // namespace vllm
