#include "vllm/sampling/sampling_params.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_set>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"
#include "vllm/sampling/py_format.h"

namespace vllm {

namespace {

using json = nlohmann::json;
using pyfmt::float_repr;

[[noreturn]] void fail(const std::string& message, ErrorKind kind = ErrorKind::kInvalidArgument) {
  throw Error(message, kind);
}

// A JSON value quoted in a type error, cut short so a huge body does not flood the message.
std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Integers may arrive as integral floats ("max_tokens": 100.0), which pydantic's lax mode
// also accepts; fractions, strings and booleans are type errors naming the field.
int64_t get_int(const json& v, const std::string& field, int64_t lo, int64_t hi) {
  int64_t value = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(field + " is out of range, got " + describe(v));
    value = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    value = v.get<int64_t>();
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) fail(field + " must be an integer, got " + describe(v));
    if (d < -9.2e18 || d > 9.2e18) fail(field + " is out of range, got " + describe(v));
    value = static_cast<int64_t>(d);
  } else {
    fail(field + " must be an integer, got " + describe(v));
  }
  if (value < lo || value > hi) fail(field + " is out of range, got " + describe(v));
  return value;
}

int get_int32(const json& v, const std::string& field) {
  return static_cast<int>(get_int(v, field, std::numeric_limits<int32_t>::min(),
                                  std::numeric_limits<int32_t>::max()));
}

double get_number(const json& v, const std::string& field) {
  if (!v.is_number()) fail(field + " must be a number, got " + describe(v));
  return v.get<double>();
}

bool get_bool(const json& v, const std::string& field) {
  if (!v.is_boolean()) fail(field + " must be a boolean, got " + describe(v));
  return v.get<bool>();
}

std::vector<int32_t> get_token_ids(const json& v, const std::string& field) {
  if (!v.is_array()) fail(field + " must be a list of integers, got " + describe(v));
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_number_integer()) {
      // vLLM's own wording for stop_token_ids; the same shape for the other id lists.
      fail(field + " must contain only integers, got " + describe(v) + ".");
    }
    out.push_back(get_int32(e, field));
  }
  return out;
}

std::vector<std::string> get_strings(const json& v, const std::string& field, bool allow_single) {
  std::vector<std::string> out;
  if (allow_single && v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  std::string expected = allow_single ? "a string or a list of strings" : "a list of strings";
  if (!v.is_array()) fail(field + " must be " + expected + ", got " + describe(v));
  for (const auto& e : v) {
    if (!e.is_string()) fail(field + " must be " + expected + ", got " + describe(v));
    out.push_back(e.get<std::string>());
  }
  return out;
}

// Python's int(str): optional surrounding whitespace, an optional sign, decimal digits
// (underscores between digits are also accepted by Python, and here).
std::optional<int64_t> parse_python_int(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  if (b == e) return std::nullopt;
  bool negative = false;
  if (s[b] == '+' || s[b] == '-') {
    negative = s[b] == '-';
    ++b;
  }
  if (b == e) return std::nullopt;
  int64_t value = 0;
  bool last_digit = false;
  for (size_t i = b; i < e; ++i) {
    char c = s[i];
    if (c == '_' && last_digit && i + 1 < e && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      last_digit = false;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
    last_digit = true;
  }
  return negative ? -value : value;
}

RequestOutputKind get_output_kind(const json& v) {
  if (v.is_number_integer()) {
    int64_t k = v.get<int64_t>();
    if (k >= 0 && k <= 2) return static_cast<RequestOutputKind>(k);
  } else if (v.is_string()) {
    std::string s = v.get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    if (s.rfind("REQUESTOUTPUTKIND.", 0) == 0) s = s.substr(18);
    if (s == "CUMULATIVE") return RequestOutputKind::kCumulative;
    if (s == "DELTA") return RequestOutputKind::kDelta;
    if (s == "FINAL_ONLY") return RequestOutputKind::kFinalOnly;
  }
  fail("output_kind must be one of 'CUMULATIVE', 'DELTA', 'FINAL_ONLY' (or 0, 1, 2), got " + describe(v));
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

template <typename T>
void drop_duplicates(std::vector<T>& v) {
  // Keeps the first occurrence of each value, in order (Python's list(dict.fromkeys(v))).
  std::vector<T> out;
  out.reserve(v.size());
  std::set<T> seen;
  for (auto& x : v)
    if (seen.insert(x).second) out.push_back(x);
  v = std::move(out);
}

std::string int_str(int64_t v) { return std::to_string(v); }

}  // namespace

std::string_view output_kind_name(RequestOutputKind kind) {
  switch (kind) {
    case RequestOutputKind::kCumulative: return "CUMULATIVE";
    case RequestOutputKind::kDelta: return "DELTA";
    case RequestOutputKind::kFinalOnly: return "FINAL_ONLY";
  }
  return "CUMULATIVE";
}

SamplingType SamplingParams::sampling_type() const {
  if (is_greedy()) return SamplingType::kGreedy;
  return seed ? SamplingType::kRandomSeed : SamplingType::kRandom;
}

void SamplingParams::finalize() {
  if (temperature > 0.0 && temperature < kMinPositiveTemperature) {
    VLLM_LOG_WARN(
        "temperature {} is less than {}, which may cause numerical errors nan or inf in tensors. We "
        "have maxed it out to {}.",
        float_repr(temperature), float_repr(kMinPositiveTemperature), float_repr(kMinPositiveTemperature));
    temperature = kMinPositiveTemperature;
  }
  if (seed && *seed == -1) seed.reset();
  drop_duplicates(stop_token_ids);
  drop_duplicates(bad_words);

  // Characters to hold back from streamed text while a stop string may still be forming.
  output_text_buffer_length = 0;
  if (!stop.empty() && !include_stop_str_in_output) {
    size_t longest = 0;
    for (const auto& s : stop) longest = std::max(longest, utf8_length(s));
    output_text_buffer_length = longest > 0 ? static_cast<int>(longest) - 1 : 0;
  }

  verify_args();

  if (top_k == -1) top_k = 0;  // vLLM quietly accepts -1 for "off" but prefers 0
  if (is_greedy()) {
    top_p = 1.0;
    top_k = 0;
    min_p = 0.0;
  }
  for (int32_t id : stop_token_ids)
    if (std::find(all_stop_token_ids.begin(), all_stop_token_ids.end(), id) == all_stop_token_ids.end())
      all_stop_token_ids.push_back(id);
}

void SamplingParams::verify_args() const {
  if (n < 1) fail("n must be at least 1, got " + int_str(n) + ".");
  if (best_of) {
    if (*best_of < 1) fail("best_of must be at least 1, got " + int_str(*best_of));
    if (*best_of < n)
      fail("best_of must be greater than or equal to n, got n=" + int_str(n) + " and best_of=" +
           int_str(*best_of) + ".");
  }
  if (!(presence_penalty >= -2.0 && presence_penalty <= 2.0))
    fail("presence_penalty must be in [-2, 2], got " + float_repr(presence_penalty) + ".");
  if (!(frequency_penalty >= -2.0 && frequency_penalty <= 2.0))
    fail("frequency_penalty must be in [-2, 2], got " + float_repr(frequency_penalty) + ".");
  if (!std::isfinite(repetition_penalty))
    fail("repetition_penalty must be a finite number, got " + float_repr(repetition_penalty) + ".");
  if (repetition_penalty <= 0.0)
    fail("repetition_penalty must be greater than zero, got " + float_repr(repetition_penalty) + ".");
  if (!std::isfinite(temperature))
    fail("temperature must be a finite number, got " + float_repr(temperature) + ".");
  if (temperature < 0.0) fail("temperature must be non-negative, got " + float_repr(temperature) + ".");
  if (!(top_p > 0.0 && top_p <= 1.0)) fail("top_p must be in (0, 1], got " + float_repr(top_p) + ".");
  if (top_k < -1) fail("top_k must be 0 (disable), or at least 1, got " + int_str(top_k) + ".");
  if (!(min_p >= 0.0 && min_p <= 1.0)) fail("min_p must be in [0, 1], got " + float_repr(min_p) + ".");
  if (max_tokens && *max_tokens < 1) fail("max_tokens must be at least 1, got " + int_str(*max_tokens) + ".");
  if (min_tokens < 0)
    fail("min_tokens must be greater than or equal to 0, got " + int_str(min_tokens) + ".");
  if (max_tokens && min_tokens > *max_tokens)
    fail("min_tokens must be less than or equal to max_tokens=" + int_str(*max_tokens) + ", got " +
         int_str(min_tokens) + ".");
  if (stream_interval && *stream_interval < 1)
    fail("stream_interval must be at least 1, got " + int_str(*stream_interval) + ".");
  if (logprobs && *logprobs != -1 && *logprobs < 0)
    fail("logprobs must be non-negative or -1, got " + int_str(*logprobs) + ".");
  if (prompt_logprobs && *prompt_logprobs != -1 && *prompt_logprobs < 0)
    fail("prompt_logprobs must be non-negative or -1, got " + int_str(*prompt_logprobs) + ".");
  if (truncate_prompt_tokens && (*truncate_prompt_tokens == 0 || *truncate_prompt_tokens < -1))
    fail("truncate_prompt_tokens must be an integer >= 1 or -1, got " + int_str(*truncate_prompt_tokens));
  {
    // vLLM checks the range against the vocabulary in verify(); a negative id is wrong
    // whatever the model, so it is caught here already, in the same words.
    std::vector<int32_t> negative;
    for (int32_t id : stop_token_ids)
      if (id < 0) negative.push_back(id);
    if (!negative.empty())
      fail("token_id(s) " + pyfmt::int_list(negative) + " in stop_token_ids contain out-of-vocab token ids.");
  }
  for (const auto& s : stop)
    if (s.empty()) fail("stop cannot contain an empty string.");
  if (!stop.empty() && !detokenize)
    fail("stop strings are only supported when detokenize is True. Set detokenize=True to use stop.");
  for (const auto& w : bad_words)
    if (w.empty()) fail("bad_words cannot contain an empty string. Got bad_words=" + pyfmt::str_list(bad_words));
  if (best_of && *best_of != n && output_kind == RequestOutputKind::kDelta)
    fail("best_of must equal n to use output_kind=DELTA");
  if (is_greedy()) {
    // vLLM (which turns best_of into n before this check) allows one sequence only.
    int sequences = std::max(n, best_of.value_or(n));
    if (sequences > 1) fail("n must be 1 when using greedy sampling, got " + int_str(sequences) + ".");
  }
}

void SamplingParams::validate(int max_logprobs, int64_t vocab_size) const {
  verify_args();

  // vLLM's _validate_logprobs: -1 means the whole vocabulary, for the limit and the request.
  auto check_logprobs = [&](std::optional<int> requested, const char* what) {
    if (!requested || *requested == 0) return;
    if (max_logprobs == -1 && vocab_size <= 0) return;  // no limit and nothing to compare with
    int64_t limit = max_logprobs == -1 ? vocab_size : max_logprobs;
    if (*requested == -1) {
      if (vocab_size > 0) {
        if (vocab_size > limit)
          fail(std::string("Requested ") + what + " logprobs of " + int_str(vocab_size) +
               ", which is greater than max allowed: " + int_str(limit));
      } else {
        fail(std::string("Requested ") + what + " logprobs of -1 (the whole vocabulary), which is greater than max allowed: " +
             int_str(limit));
      }
      return;
    }
    if (*requested > limit)
      fail(std::string("Requested ") + what + " logprobs of " + int_str(*requested) +
           ", which is greater than max allowed: " + int_str(limit));
  };
  check_logprobs(logprobs, "sample");
  check_logprobs(prompt_logprobs, "prompt");

  if (allowed_token_ids && allowed_token_ids->empty()) fail("allowed_token_ids is not None and empty!");
  if (vocab_size <= 0) return;

  auto out_of_vocab = [&](auto begin, auto end) {
    std::vector<int32_t> bad;
    for (auto it = begin; it != end; ++it)
      if (*it < 0 || *it >= vocab_size) bad.push_back(*it);
    return bad;
  };
  if (auto bad = out_of_vocab(stop_token_ids.begin(), stop_token_ids.end()); !bad.empty())
    fail("token_id(s) " + pyfmt::int_list(bad) + " in stop_token_ids contain out-of-vocab token ids. Vocabulary size: " +
         int_str(vocab_size));
  {
    std::vector<int32_t> ids;
    for (const auto& [id, bias] : logit_bias) ids.push_back(id);
    if (auto bad = out_of_vocab(ids.begin(), ids.end()); !bad.empty())
      fail("token_id(s) " + pyfmt::int_list(bad) + " in logit_bias contain out-of-vocab token ids. Vocabulary size: " +
           int_str(vocab_size));
  }
  if (allowed_token_ids && !out_of_vocab(allowed_token_ids->begin(), allowed_token_ids->end()).empty())
    fail("allowed_token_ids contains out-of-vocab token id!");
  {
    std::vector<int32_t> bad;
    for (const auto& seq : bad_words_token_ids)
      for (int32_t id : seq)
        if (id < 0 || id >= vocab_size) bad.push_back(id);
    if (!bad.empty())
      fail("The model vocabulary size is " + int_str(vocab_size) + ", but the following tokens were specified as bad: " +
           pyfmt::int_list(bad) + ". All token id values should be integers satisfying: 0 <= token_id <= " +
           int_str(vocab_size - 1) + ".");
  }
}

void SamplingParams::update_from_generation_config(const std::vector<int32_t>& generation_eos_ids,
                                                   std::optional<int32_t> model_eos_token_id) {
  if (!ignore_eos) eos_token_id = model_eos_token_id;
  auto add_stop = [this](int32_t id) {
    if (std::find(all_stop_token_ids.begin(), all_stop_token_ids.end(), id) == all_stop_token_ids.end())
      all_stop_token_ids.push_back(id);
  };
  if (model_eos_token_id) add_stop(*model_eos_token_id);
  std::vector<int32_t> extra;
  for (int32_t id : generation_eos_ids)
    if (!(model_eos_token_id && id == *model_eos_token_id) &&
        std::find(extra.begin(), extra.end(), id) == extra.end())
      extra.push_back(id);
  if (extra.empty()) return;
  for (int32_t id : extra) add_stop(id);
  if (!ignore_eos) {
    for (int32_t id : extra)
      if (std::find(stop_token_ids.begin(), stop_token_ids.end(), id) == stop_token_ids.end())
        stop_token_ids.push_back(id);
  }
}

SamplingParams SamplingParams::from_json(const json& j, const json& defaults) {
  if (!j.is_object() && !j.is_null()) fail("sampling parameters must be a JSON object, got " + describe(j));
  if (!defaults.is_object() && !defaults.is_null())
    fail("default sampling parameters must be a JSON object, got " + describe(defaults), ErrorKind::kInternal);
  json merged = j.is_null() ? json::object() : j;
  if (defaults.is_object()) {
    for (const auto& [key, value] : defaults.items())
      if (!merged.contains(key) || merged[key].is_null()) merged[key] = value;
  }

  // vLLM fields vllm-cpp does not implement: a non-null value is refused, not ignored.
  static const std::unordered_set<std::string> kUnsupported = {
      "logits_processors", "logprob_token_ids", "prompt_logprob_token_ids", "prompt_logprob_start",
      "thinking_token_budget", "repetition_detection", "trace_decode_token_ids", "guided_decoding"};
  // Internal vLLM flags that change nothing observable here: accepted and dropped.
  static const std::unordered_set<std::string> kIgnored = {"skip_clone", "flat_logprobs",
                                                           "skip_reading_prefix_cache"};

  SamplingParams p;
  for (const auto& [key, v] : merged.items()) {
    const std::string& k = key;
    if (k == "n") {
      if (!v.is_null()) p.n = get_int32(v, k);
    } else if (k == "best_of") {
      p.best_of = v.is_null() ? std::nullopt : std::optional<int>(get_int32(v, k));
    } else if (k == "presence_penalty") {
      if (!v.is_null()) p.presence_penalty = get_number(v, k);
    } else if (k == "frequency_penalty") {
      if (!v.is_null()) p.frequency_penalty = get_number(v, k);
    } else if (k == "repetition_penalty") {
      if (!v.is_null()) p.repetition_penalty = get_number(v, k);
    } else if (k == "temperature") {
      if (!v.is_null()) p.temperature = get_number(v, k);
    } else if (k == "top_p") {
      if (!v.is_null()) p.top_p = get_number(v, k);
    } else if (k == "top_k") {
      if (!v.is_null()) p.top_k = get_int32(v, k);
    } else if (k == "min_p") {
      if (!v.is_null()) p.min_p = get_number(v, k);
    } else if (k == "seed") {
      p.seed = v.is_null() ? std::nullopt
                           : std::optional<int64_t>(get_int(v, k, std::numeric_limits<int64_t>::min(),
                                                            std::numeric_limits<int64_t>::max()));
    } else if (k == "stop") {
      p.stop = v.is_null() ? std::vector<std::string>{} : get_strings(v, k, /*allow_single=*/true);
    } else if (k == "stop_token_ids") {
      p.stop_token_ids = v.is_null() ? std::vector<int32_t>{} : get_token_ids(v, k);
    } else if (k == "bad_words") {
      p.bad_words = v.is_null() ? std::vector<std::string>{} : get_strings(v, k, /*allow_single=*/false);
    } else if (k == "include_stop_str_in_output") {
      if (!v.is_null()) p.include_stop_str_in_output = get_bool(v, k);
    } else if (k == "ignore_eos") {
      if (!v.is_null()) p.ignore_eos = get_bool(v, k);
    } else if (k == "max_tokens") {
      p.max_tokens = v.is_null() ? std::nullopt : std::optional<int>(get_int32(v, k));
    } else if (k == "min_tokens") {
      if (!v.is_null()) p.min_tokens = get_int32(v, k);
    } else if (k == "logprobs" || k == "prompt_logprobs") {
      std::optional<int> value;
      if (v.is_boolean()) value = v.get<bool>() ? 1 : 0;  // Python: True -> 1, False == 0
      else if (!v.is_null()) value = get_int32(v, k);
      (k == "logprobs" ? p.logprobs : p.prompt_logprobs) = value;
    } else if (k == "detokenize") {
      if (!v.is_null()) p.detokenize = get_bool(v, k);
    } else if (k == "skip_special_tokens") {
      if (!v.is_null()) p.skip_special_tokens = get_bool(v, k);
    } else if (k == "spaces_between_special_tokens") {
      if (!v.is_null()) p.spaces_between_special_tokens = get_bool(v, k);
    } else if (k == "truncate_prompt_tokens") {
      p.truncate_prompt_tokens = v.is_null() ? std::nullopt : std::optional<int>(get_int32(v, k));
    } else if (k == "output_kind") {
      if (!v.is_null()) p.output_kind = get_output_kind(v);
    } else if (k == "stream_interval") {
      p.stream_interval = v.is_null() ? std::nullopt : std::optional<int>(get_int32(v, k));
    } else if (k == "logit_bias") {
      p.logit_bias.clear();
      if (v.is_null()) continue;
      if (!v.is_object()) fail("logit_bias must be an object mapping token ids to biases, got " + describe(v));
      std::vector<std::string> invalid_keys;
      for (const auto& [token, bias] : v.items()) {
        auto id = parse_python_int(token);
        if (!id || *id < std::numeric_limits<int32_t>::min() || *id > std::numeric_limits<int32_t>::max()) {
          invalid_keys.push_back(token);
          continue;
        }
        double b = get_number(bias, "logit_bias[" + token + "]");
        p.logit_bias[static_cast<int32_t>(*id)] = static_cast<float>(std::min(100.0, std::max(-100.0, b)));
      }
      if (!invalid_keys.empty())
        fail("logit_bias contains key(s) that cannot be converted to integer token IDs: " +
             pyfmt::str_list(invalid_keys));
    } else if (k == "allowed_token_ids") {
      p.allowed_token_ids = v.is_null() ? std::nullopt : std::optional<std::vector<int32_t>>(get_token_ids(v, k));
    } else if (k == "structured_outputs") {
      p.structured_outputs = v.is_null() ? std::nullopt : std::optional<json>(v);
    } else if (k == "extra_args") {
      if (!v.is_null() && !v.is_object()) fail("extra_args must be an object, got " + describe(v));
      p.extra_args = v.is_null() ? std::nullopt : std::optional<json>(v);
    } else if (kUnsupported.count(k)) {
      if (!v.is_null()) fail("sampling parameter '" + k + "' is not supported by vllm-cpp", ErrorKind::kUnsupported);
    } else if (kIgnored.count(k)) {
      continue;
    } else {
      fail("unknown sampling parameter '" + k + "'");
    }
  }
  p.finalize();
  return p;
}

json SamplingParams::to_json() const {
  auto opt = [](const auto& o) { return o ? json(*o) : json(nullptr); };
  json bias = json::object();
  for (const auto& [id, b] : logit_bias) bias[std::to_string(id)] = b;
  json j = json::object();
  j["n"] = n;
  j["best_of"] = opt(best_of);
  j["presence_penalty"] = presence_penalty;
  j["frequency_penalty"] = frequency_penalty;
  j["repetition_penalty"] = repetition_penalty;
  j["temperature"] = temperature;
  j["top_p"] = top_p;
  j["top_k"] = top_k;
  j["min_p"] = min_p;
  j["seed"] = opt(seed);
  j["stop"] = stop;
  j["stop_token_ids"] = stop_token_ids;
  j["bad_words"] = bad_words;
  j["include_stop_str_in_output"] = include_stop_str_in_output;
  j["ignore_eos"] = ignore_eos;
  j["max_tokens"] = opt(max_tokens);
  j["min_tokens"] = min_tokens;
  j["logprobs"] = opt(logprobs);
  j["prompt_logprobs"] = opt(prompt_logprobs);
  j["detokenize"] = detokenize;
  j["skip_special_tokens"] = skip_special_tokens;
  j["spaces_between_special_tokens"] = spaces_between_special_tokens;
  j["truncate_prompt_tokens"] = opt(truncate_prompt_tokens);
  j["output_kind"] = std::string(output_kind_name(output_kind));
  j["stream_interval"] = opt(stream_interval);
  j["logit_bias"] = bias;
  j["allowed_token_ids"] = opt(allowed_token_ids);
  j["structured_outputs"] = opt(structured_outputs);
  j["extra_args"] = opt(extra_args);
  return j;
}

void BeamSearchParams::validate() const {
  if (beam_width < 1) fail("beam_width must be at least 1, got " + int_str(beam_width) + ".");
  if (max_tokens < 1) fail("max_tokens must be at least 1, got " + int_str(max_tokens) + ".");
  if (!std::isfinite(temperature))
    fail("temperature must be a finite number, got " + float_repr(temperature) + ".");
  if (temperature < 0.0) fail("temperature must be non-negative, got " + float_repr(temperature) + ".");
  if (!std::isfinite(length_penalty))
    fail("length_penalty must be a finite number, got " + float_repr(length_penalty) + ".");
}

BeamSearchParams BeamSearchParams::from_json(const json& j) {
  if (!j.is_object()) fail("beam search parameters must be a JSON object, got " + describe(j));
  BeamSearchParams p;
  bool has_width = false, has_max = false;
  for (const auto& [key, v] : j.items()) {
    const std::string& k = key;
    if (k == "beam_width") {
      p.beam_width = get_int32(v, k);
      has_width = true;
    } else if (k == "max_tokens") {
      p.max_tokens = get_int32(v, k);
      has_max = true;
    } else if (k == "ignore_eos") {
      if (!v.is_null()) p.ignore_eos = get_bool(v, k);
    } else if (k == "temperature") {
      if (!v.is_null()) p.temperature = get_number(v, k);
    } else if (k == "length_penalty") {
      if (!v.is_null()) p.length_penalty = get_number(v, k);
    } else if (k == "include_stop_str_in_output") {
      if (!v.is_null()) p.include_stop_str_in_output = get_bool(v, k);
    } else {
      fail("unknown beam search parameter '" + k + "'");
    }
  }
  // Both have no default in vLLM's BeamSearchParams.
  if (!has_width) fail("beam_width is required");
  if (!has_max) fail("max_tokens is required");
  p.validate();
  return p;
}

json BeamSearchParams::to_json() const {
  return json{{"beam_width", beam_width},
              {"max_tokens", max_tokens},
              {"ignore_eos", ignore_eos},
              {"temperature", temperature},
              {"length_penalty", length_penalty},
              {"include_stop_str_in_output", include_stop_str_in_output}};
}

}  // namespace vllm
