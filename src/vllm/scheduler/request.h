// A request as the engine core sees it: token ids in, token ids out, with its scheduling state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "vllm/sampling/sampling_params.h"
#include "vllm/structured/matcher.h"

namespace vllm {

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished };

enum class FinishReason { kStop, kLength, kAbort };
std::string_view finish_reason_name(FinishReason r);  // "stop", "length", "abort"

// What made a request stop: the matched stop string or stop token id (vLLM's stop_reason).
using StopReason = std::variant<std::monostate, int32_t, std::string>;

// A sequence to fork from a request once its prompt is computed, at its first sampled token
// (n > 1 sampling: the prompt is prefilled once, every branch shares its blocks).
struct PendingBranch {
  uint64_t seq_id = 0;
  std::string request_id;
  SamplingParams params;  // the branch's own (its seed)
};

struct Request {
  uint64_t seq_id = 0;         // the engine's handle (KV cache, ordering)
  std::string request_id;      // the caller's name for it
  int64_t num_prompt_tokens = 0;
  std::vector<int32_t> token_ids;  // prompt, then every generated token
  SamplingParams params;
  int64_t max_tokens = 0;      // resolved: params.max_tokens, capped by the model length
  int priority = 0;            // lower runs first (vLLM's convention)
  double arrival_time = 0;
  uint64_t cache_salt = 0;     // separates this request's prefix-cache entries (0: shared)

  RequestStatus status = RequestStatus::kWaiting;
  int64_t num_computed_tokens = 0;  // tokens whose K/V are in the cache
  int64_t num_cached_tokens = -1;   // prefix-cache hit at first scheduling (-1: not yet)
  int num_preemptions = 0;
  int64_t next_prompt_logprob_pos = 1;  // the prompt position whose log-prob is due next
  std::optional<FinishReason> finish_reason;
  StopReason stop_reason;
  std::vector<PendingBranch> pending_branches;  // forked at the first sampled token
  // A paused request keeps its blocks but is not scheduled (a beam waiting for the others of its
  // step); it may still be preempted.
  bool paused = false;
  // Backpressure: the consumer of this request's output (an HTTP client) is not reading it, so
  // it is not scheduled either, until it is resumed. It keeps its blocks, but gives them and
  // its sequence slot up (preemption) when a waiting request needs them.
  bool output_paused = false;

  // Not schedulable now (for either reason above).
  bool idle() const { return paused || output_paused; }
  // Structured outputs: the state of this sequence under its constraint (a fork copies it).
  std::optional<structured::GrammarMatcher> matcher;
  // The token sampled last under the constraint that the matcher has not taken yet (-1: none).
  // The engine knows from the step's mask that the matcher will take it, so it defers the accept
  // to the next mask's fill, which runs beside the forward pass instead of on the engine thread.
  int32_t pending_accept = -1;

  // Gives the matcher its pending token. False: the matcher refused it (state unchanged).
  bool accept_pending_token() {
    if (pending_accept < 0) return true;
    const int32_t token = std::exchange(pending_accept, -1);
    return matcher->accept_token(token);
  }

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  bool finished() const { return status == RequestStatus::kFinished; }
};

}  // namespace vllm
