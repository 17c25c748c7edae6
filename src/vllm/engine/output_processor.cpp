#include "vllm/engine/output_processor.h"

#include <algorithm>
#include <chrono>

#include "vllm/core/error.h"

namespace vllm {

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

void OutputProcessor::add_request(const std::string& request_id, std::optional<std::string> prompt,
                                  std::vector<int32_t> prompt_ids, const SamplingParams& params,
                                  const std::vector<uint64_t>& seq_ids, double arrival_time) {
  auto state = std::make_unique<RequestState>();
  state->request_id = request_id;
  state->prompt = std::move(prompt);
  state->prompt_ids = std::move(prompt_ids);
  state->params = params;
  state->metrics.arrival_time = arrival_time;
  state->seqs.resize(seq_ids.size());
  for (size_t i = 0; i < seq_ids.size(); ++i) {
    Sequence& s = state->seqs[i];
    s.index = static_cast<int>(i);
    if (tokenizer_ && params.detokenize)
      s.detok = std::make_unique<IncrementalDetokenizer>(tokenizer_, state->prompt_ids, params.skip_special_tokens,
                                                         params.spaces_between_special_tokens);
    s.stop = std::make_unique<StopChecker>(params.stop, params.include_stop_str_in_output);
    by_seq_[seq_ids[i]] = {state.get(), static_cast<int>(i)};
  }
  requests_[request_id] = std::move(state);
}

std::vector<RequestOutput> OutputProcessor::process(const std::vector<EngineCoreOutput>& outputs,
                                                    std::vector<uint64_t>* to_abort) {
  std::vector<RequestState*> touched;
  const double now = now_seconds();
  for (const EngineCoreOutput& o : outputs) {
    auto it = by_seq_.find(o.seq_id);
    if (it == by_seq_.end()) continue;  // aborted meanwhile
    RequestState& r = *it->second.first;
    Sequence& s = r.seqs[static_cast<size_t>(it->second.second)];
    if (std::find(touched.begin(), touched.end(), &r) == touched.end()) touched.push_back(&r);
    if (s.index == 0) {
      r.num_cached_tokens = o.num_cached_tokens;
      if (!o.new_prompt_logprobs.empty()) {
        r.prompt_logprobs.resize(r.prompt_ids.size());
        for (size_t i = 0; i < o.new_prompt_logprobs.size(); ++i)
          r.prompt_logprobs[static_cast<size_t>(o.first_prompt_logprob_pos) + i] = o.new_prompt_logprobs[i];
      }
    }
    if (!o.new_token_ids.empty()) {
      if (r.metrics.first_token_time == 0) r.metrics.first_token_time = now;
      r.metrics.last_token_time = now;
    }
    if (s.finish_reason) continue;
    bool stopped = false;
    for (size_t k = 0; k < o.new_token_ids.size() && !stopped; ++k) {
      s.token_ids.push_back(o.new_token_ids[k]);
      if (k < o.new_logprobs.size()) {
        s.cumulative_logprob += o.new_logprobs[k].logprob;
        s.logprobs.push_back(o.new_logprobs[k]);
      }
      if (s.detok) {
        std::string delta = s.detok->add(o.new_token_ids[k]);
        if (o.finished && k + 1 == o.new_token_ids.size()) delta += s.detok->flush();
        // vLLM checks stop strings only once more than min_tokens tokens exist.
        const bool check = static_cast<int64_t>(s.token_ids.size()) > r.params.min_tokens;
        if (s.stop->append(delta, check)) {
          stopped = true;
          s.finish_reason = FinishReason::kStop;
          s.stop_reason = *s.stop->stop_reason();
          if (!o.finished) to_abort->push_back(o.seq_id);
        }
      }
    }
    if (!s.finish_reason && o.finished) {
      s.finish_reason = o.finish_reason;
      s.stop_reason = o.stop_reason;
    }
    if (s.finish_reason) {
      ++r.num_finished;
      by_seq_.erase(it);
    }
  }

  std::vector<RequestOutput> result;
  for (RequestState* r : touched) {
    const bool done = r->num_finished == static_cast<int>(r->seqs.size());
    const bool best_of = r->params.best_of && *r->params.best_of > r->params.n;
    if (done) r->metrics.finished_time = now;
    if (done || (r->params.output_kind != RequestOutputKind::kFinalOnly && !best_of))
      result.push_back(make_output(*r, done));
    if (done) requests_.erase(r->request_id);
  }
  return result;
}

RequestOutput OutputProcessor::make_output(RequestState& r, bool final) {
  RequestOutput out;
  out.request_id = r.request_id;
  out.prompt = r.prompt;
  out.prompt_token_ids = r.prompt_ids;
  out.finished = final;
  out.num_cached_tokens = r.num_cached_tokens;
  out.metrics = r.metrics;
  const bool delta = r.params.output_kind == RequestOutputKind::kDelta;
  if (r.params.prompt_logprobs) {
    if (!delta) {
      out.prompt_logprobs = r.prompt_logprobs;
    } else if (r.sent_prompt_logprobs == 0 && !r.prompt_logprobs.empty()) {
      out.prompt_logprobs = r.prompt_logprobs;
      r.sent_prompt_logprobs = r.prompt_logprobs.size();
    }
  }
  std::vector<Sequence*> order;
  for (auto& s : r.seqs) order.push_back(&s);
  const bool best_of = r.params.best_of && *r.params.best_of > r.params.n;
  if (best_of && final) {
    // Keep the n sequences with the highest cumulative log-probability.
    std::stable_sort(order.begin(), order.end(),
                     [](const Sequence* a, const Sequence* b) { return a->cumulative_logprob > b->cumulative_logprob; });
    order.resize(static_cast<size_t>(r.params.n));
  }
  const bool want_logprobs = r.params.logprobs.has_value();
  for (size_t i = 0; i < order.size(); ++i) {
    Sequence& s = *order[i];
    CompletionOutput c;
    c.index = best_of ? static_cast<int>(i) : s.index;
    const bool finished = s.finish_reason.has_value();
    if (delta) {
      c.text = s.stop->next_delta(finished);
      c.token_ids.assign(s.token_ids.begin() + static_cast<std::ptrdiff_t>(s.sent_tokens), s.token_ids.end());
      if (want_logprobs)
        c.logprobs.assign(s.logprobs.begin() + static_cast<std::ptrdiff_t>(std::min(s.sent_tokens, s.logprobs.size())),
                          s.logprobs.end());
      s.sent_tokens = s.token_ids.size();
    } else {
      c.text = std::string(s.stop->visible_text(finished));
      c.token_ids = s.token_ids;
      if (want_logprobs) c.logprobs = s.logprobs;
    }
    if (want_logprobs) c.cumulative_logprob = s.cumulative_logprob;
    c.finish_reason = s.finish_reason;
    c.stop_reason = s.stop_reason;
    out.outputs.push_back(std::move(c));
  }
  return out;
}

std::optional<RequestOutput> OutputProcessor::abort(const std::string& request_id, std::vector<uint64_t>* seq_ids) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return std::nullopt;
  RequestState& r = *it->second;
  for (auto bit = by_seq_.begin(); bit != by_seq_.end();) {
    if (bit->second.first == &r) {
      seq_ids->push_back(bit->first);
      r.seqs[static_cast<size_t>(bit->second.second)].finish_reason = FinishReason::kAbort;
      bit = by_seq_.erase(bit);
    } else {
      ++bit;
    }
  }
  RequestOutput out = make_output(r, true);
  requests_.erase(it);
  return out;
}

}  // namespace vllm
