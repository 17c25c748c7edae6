// A request's sampling parameters: vLLM's SamplingParams and BeamSearchParams, with the same
// field names, defaults, normalisation (__post_init__) and error messages, so a request that
// vLLM accepts or rejects is accepted or rejected here with the same words.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vllm {

// How a request's outputs are reported (vLLM's RequestOutputKind; the values match).
enum class RequestOutputKind : uint8_t {
  kCumulative = 0,  // each output holds everything generated so far
  kDelta = 1,       // each output holds only what is new since the last one
  kFinalOnly = 2,   // a single output when the request finishes
};
std::string_view output_kind_name(RequestOutputKind kind);  // "CUMULATIVE", "DELTA", "FINAL_ONLY"

// vLLM's SamplingType: how the sampler draws a request's tokens.
enum class SamplingType : uint8_t { kGreedy = 0, kRandom = 1, kRandomSeed = 2 };

// vLLM's _SAMPLING_EPS: a temperature below it means greedy (argmax) sampling.
inline constexpr double kSamplingEps = 1e-5;
// vLLM's _MAX_TEMP: a positive temperature below it is raised to it, because dividing logits
// by a tinier one overflows float32 into inf/NaN.
inline constexpr double kMinPositiveTemperature = 1e-2;

struct SamplingParams {
  int n = 1;                      // outputs returned per prompt
  std::optional<int> best_of;     // outputs generated to pick the n best from (none: n)
  double presence_penalty = 0.0;  // subtracted once from every token already in the output
  double frequency_penalty = 0.0; // subtracted per occurrence of a token in the output
  double repetition_penalty = 1.0;  // >1 discourages tokens seen in prompt or output
  double temperature = 1.0;       // 0: greedy
  double top_p = 1.0;             // nucleus mass in (0, 1]; 1: off
  int top_k = 0;                  // 0 (or -1, normalised to 0): off
  double min_p = 0.0;             // keep tokens with prob >= min_p * max prob; 0: off
  std::optional<int64_t> seed;    // per-request generator seed (-1 normalised to none)
  std::vector<std::string> stop;  // stop strings (not included in the output by default)
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> bad_words;  // words never to complete (ids filled by the frontend)
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;
  std::optional<int> max_tokens = 16;  // none: up to the model's length
  int min_tokens = 0;                  // EOS / stop_token_ids are blocked until this many
  std::optional<int> logprobs;         // top logprobs per output token; -1: whole vocabulary
  std::optional<int> prompt_logprobs;  // same, per prompt token
  bool detokenize = true;
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
  std::optional<int> truncate_prompt_tokens;  // keep the last k prompt tokens; -1: model max
  RequestOutputKind output_kind = RequestOutputKind::kCumulative;
  std::optional<int> stream_interval;  // tokens batched into each streamed output
  std::map<int32_t, float> logit_bias;  // token id -> added to its logit (clamped to [-100, 100])
  std::optional<std::vector<int32_t>> allowed_token_ids;  // whitelist; none: all
  // Opaque to the sampler: read by the structured-output subsystem and by plugins.
  std::optional<nlohmann::json> structured_outputs;
  std::optional<nlohmann::json> extra_args;

  // Filled by the frontend and engine, not by the request (not in to_json):
  std::vector<std::vector<int32_t>> bad_words_token_ids;  // token sequences of bad_words
  std::optional<int32_t> eos_token_id;      // the model's EOS, unless ignore_eos
  std::vector<int32_t> all_stop_token_ids;  // stop_token_ids + every EOS: min_tokens blocks these
  int output_text_buffer_length = 0;  // chars held back for stop strings (vLLM's field)

  // vLLM's __post_init__: seed -1 -> none; 0 < temperature < 0.01 raised to 0.01 (with a
  // warning); duplicates dropped from stop_token_ids and bad_words; output_text_buffer_length;
  // verify_args(); then top_k -1 -> 0 and, when greedy, top_p = 1, top_k = 0, min_p = 0;
  // stop_token_ids added to all_stop_token_ids. from_json calls it; call it after building
  // one by hand. Throws vllm::Error(kInvalidArgument).
  void finalize();

  // vLLM's _verify_args and _verify_greedy_sampling: every range check that needs no model.
  void verify_args() const;

  // verify_args() plus the checks vLLM makes against the model config: logprobs and
  // prompt_logprobs against max_logprobs (-1: the vocabulary size), and, when vocab_size > 0,
  // every token id (stop_token_ids, logit_bias, allowed_token_ids, bad_words_token_ids).
  void validate(int max_logprobs = 20, int64_t vocab_size = 0) const;

  // vLLM's update_from_generation_config: generation_config's eos ids other than the model's
  // own become stop_token_ids (unless ignore_eos); all of them join all_stop_token_ids.
  void update_from_generation_config(const std::vector<int32_t>& generation_eos_ids,
                                     std::optional<int32_t> model_eos_token_id);

  bool is_greedy() const { return temperature < kSamplingEps; }
  SamplingType sampling_type() const;

  // From a request body (vLLM's field names). Types are checked per field and a wrong one
  // names the field; unknown fields are rejected. `defaults` (e.g. generation_config's
  // sampling defaults) fills fields the request leaves out or sets to null. As vLLM's
  // from_optional: null n/penalties/temperature/top_p mean their defaults, logit_bias keys
  // may be strings and biases are clamped to [-100, 100], logprobs=true means 1.
  // Calls finalize(). Throws vllm::Error(kInvalidArgument) (kUnsupported for vLLM fields
  // that vllm-cpp does not implement).
  static SamplingParams from_json(const nlohmann::json& j,
                                  const nlohmann::json& defaults = nlohmann::json());
  // The request fields (not the engine-filled ones), readable by from_json.
  nlohmann::json to_json() const;

  bool operator==(const SamplingParams&) const = default;
};

// vLLM's BeamSearchParams.
struct BeamSearchParams {
  int beam_width = 1;
  int max_tokens = 16;
  bool ignore_eos = false;
  double temperature = 0.0;
  double length_penalty = 1.0;
  bool include_stop_str_in_output = false;

  // vLLM does not check these itself; the messages follow SamplingParams' wording.
  void validate() const;
  static BeamSearchParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  bool operator==(const BeamSearchParams&) const = default;
};

}  // namespace vllm
