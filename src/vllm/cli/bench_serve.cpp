// vllm bench serve: a load generator for any OpenAI-compatible server, with vLLM's flags and its
// metric definitions. All requests stream; one thread runs a curl multi event loop, so hundreds of
// concurrent streams cost no threads.
//
// Definitions (as vLLM's benchmark_serving):
//   TTFT  time from sending a request to its first chunk with content;
//   ITL   the gaps between successive content chunks of a request (all requests pooled);
//   TPOT  per request, (e2e latency - TTFT) / (output tokens - 1), for requests of 2+ tokens;
//   E2EL  time from sending a request to the end of its stream.
// Token counts come from the server's usage (stream_options.include_usage).
//
// Prompts of the random dataset: with a tokenizer (--tokenizer, or --model when it names a local
// model folder) random non-special token ids of exactly the drawn length, sent as a token-id
// prompt to /v1/completions and decoded to text for /v1/chat/completions; without one, that many
// random common English words (about one token each; the exact counts come back in usage).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

#include "vllm/cli/commands.h"
#include "vllm/cli/openai_client.h"
#include "vllm/core/error.h"
#include "vllm/tokenizer/tokenizer.h"

namespace vllm::cli {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct BenchServeArgs {
  std::string base_url;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string endpoint = "/v1/completions";
  std::string model;
  std::string tokenizer;
  std::string dataset_name = "random";
  std::string dataset_path;
  int random_input_len = 1024;
  int random_output_len = 128;
  double random_range_ratio = 0.0;
  int custom_output_len = 256;
  int num_prompts = 1000;
  std::string request_rate = "inf";
  int max_concurrency = 0;  // 0: unlimited
  uint64_t seed = 0;
  bool ignore_eos = false;
  double temperature = 0.0;  // greedy, as vLLM's benchmark sends
  std::string api_key;
  std::string percentile_metrics = "ttft,tpot,itl";
  std::string metric_percentiles = "99";
  bool save_result = false;
  std::string result_dir;
  std::string result_filename;
  std::string command_line;
};

// One request to send: the prompt as text, or as token ids (completions only).
struct PromptSpec {
  std::string text;
  std::vector<int32_t> ids;  // non-empty: send these instead of text
  int output_len = 0;
};

// What one request measured.
struct RequestResult {
  bool success = false;
  std::string error;
  double ttft = 0;     // s
  double latency = 0;  // s
  std::vector<double> itl;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  std::string generated_text;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool is_chat_endpoint(const std::string& endpoint) { return endpoint.find("chat/completions") != std::string::npos; }

// ---- prompts ----

// Common short English words: nearly every one is a single token in BPE vocabularies.
const char* const kWords[] = {
    "the",   "of",    "and",   "to",    "in",    "is",    "you",   "that",  "it",    "he",    "was",   "for",
    "on",    "are",   "as",    "with",  "his",   "they",  "at",    "be",    "this",  "have",  "from",  "or",
    "one",   "had",   "by",    "word",  "but",   "not",   "what",  "all",   "were",  "we",    "when",  "your",
    "can",   "said",  "there", "use",   "an",    "each",  "which", "she",   "do",    "how",   "their", "if",
    "will",  "up",    "other", "about", "out",   "many",  "then",  "them",  "these", "so",    "some",  "her",
    "would", "make",  "like",  "him",   "into",  "time",  "has",   "look",  "two",   "more",  "write", "go",
    "see",   "number", "no",   "way",   "could", "people", "my",   "than",  "first", "water", "been",  "call",
    "who",   "oil",   "its",   "now",   "find",  "long",  "down",  "day",   "did",   "get",   "come",  "made",
    "may",   "part",  "over",  "new",   "sound", "take",  "only",  "little", "work", "know",  "place", "year"};

int draw_len(std::mt19937_64& rng, int len, double ratio) {
  const int lo = std::max(1, static_cast<int>(std::floor(len * (1.0 - ratio))));
  const int hi = std::max(lo, static_cast<int>(std::ceil(len * (1.0 + ratio))));
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// The tokenizer to draw prompt ids from, or null (random words).
std::shared_ptr<const Tokenizer> find_tokenizer(const BenchServeArgs& a) {
  if (!a.tokenizer.empty()) return Tokenizer::from_folder(a.tokenizer);  // asked for: errors are errors
  if (!a.model.empty() && fs::is_directory(a.model)) {
    try {
      return Tokenizer::from_folder(a.model);
    } catch (const std::exception&) {
      return nullptr;  // a folder without tokenizer files: fall back to words
    }
  }
  return nullptr;
}

std::vector<PromptSpec> random_prompts(const BenchServeArgs& a, const Tokenizer* tok, bool chat) {
  std::mt19937_64 rng(a.seed);
  std::vector<int32_t> pool;  // token ids a prompt may use: real, non-special vocabulary entries
  if (tok) {
    for (int32_t id = 0; id < tok->vocab_size(); ++id)
      if (!tok->is_special(id) && !tok->is_added_token(id) && !tok->id_to_token(id).empty()) pool.push_back(id);
    if (pool.empty()) throw Error("the tokenizer has no ordinary tokens to draw prompts from");
  }
  std::vector<PromptSpec> prompts(static_cast<size_t>(a.num_prompts));
  for (auto& p : prompts) {
    const int in_len = draw_len(rng, a.random_input_len, a.random_range_ratio);
    p.output_len = draw_len(rng, a.random_output_len, a.random_range_ratio);
    if (tok) {
      std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
      for (int i = 0; i < in_len; ++i) p.ids.push_back(pool[pick(rng)]);
      if (chat) {
        p.text = tok->decode(p.ids);
        p.ids.clear();
      }
    } else {
      std::uniform_int_distribution<size_t> pick(0, std::size(kWords) - 1);
      for (int i = 0; i < in_len; ++i) {
        if (i) p.text += ' ';
        p.text += kWords[pick(rng)];
      }
    }
  }
  return prompts;
}

// A JSON array (of strings or of {"prompt", "output_tokens"?} objects) or JSON lines of such
// objects, as vLLM's custom dataset. Fewer prompts than --num-prompts: they are used again in order.
std::vector<PromptSpec> custom_prompts(const BenchServeArgs& a) {
  if (a.dataset_path.empty()) throw Error("--dataset-name custom needs --dataset-path");
  std::ifstream in(a.dataset_path);
  if (!in) throw Error("cannot read --dataset-path " + a.dataset_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string content = ss.str();
  std::vector<json> items;
  json whole = json::parse(content, nullptr, false);
  if (whole.is_array()) {
    items.assign(whole.begin(), whole.end());
  } else {
    std::istringstream lines(content);
    std::string line;
    int line_no = 0;
    while (std::getline(lines, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json item = json::parse(line, nullptr, false);
      if (item.is_discarded())
        throw Error(a.dataset_path + ":" + std::to_string(line_no) + ": not JSON (expected a JSON array or JSON lines)");
      items.push_back(std::move(item));
    }
  }
  std::vector<PromptSpec> base;
  for (size_t i = 0; i < items.size(); ++i) {
    PromptSpec p;
    p.output_len = a.custom_output_len;
    if (items[i].is_string()) {
      p.text = items[i].get<std::string>();
    } else if (items[i].is_object() && items[i].contains("prompt") && items[i]["prompt"].is_string()) {
      p.text = items[i]["prompt"].get<std::string>();
      if (items[i].contains("output_tokens") && items[i]["output_tokens"].is_number_integer())
        p.output_len = items[i]["output_tokens"].get<int>();
    } else {
      throw Error(a.dataset_path + ": item " + std::to_string(i) + " is neither a string nor {\"prompt\": string}");
    }
    if (p.output_len < 1) throw Error(a.dataset_path + ": item " + std::to_string(i) + ": output_tokens must be >= 1");
    base.push_back(std::move(p));
  }
  if (base.empty()) throw Error(a.dataset_path + " holds no prompts");
  std::vector<PromptSpec> prompts;
  for (int i = 0; i < a.num_prompts; ++i) prompts.push_back(base[static_cast<size_t>(i) % base.size()]);
  return prompts;
}

std::string request_body(const BenchServeArgs& a, const std::string& model, const PromptSpec& p, bool chat) {
  json body = {{"model", model},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"temperature", a.temperature}};
  if (chat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", p.text}}});
    body["max_completion_tokens"] = p.output_len;
  } else {
    body["prompt"] = p.ids.empty() ? json(p.text) : json(p.ids);
    body["max_tokens"] = p.output_len;
  }
  if (a.ignore_eos) body["ignore_eos"] = true;
  return body.dump();
}

// ---- the event loop ----

// One request on the wire: its curl handle, its SSE parser and what it measured so far.
struct Flight {
  EasyRequest req;
  OnBytes on_bytes;
  std::unique_ptr<SseParser> parser;
  RequestResult result;
  std::string error_body;  // the body of a non-200 answer
  double start = 0, last_chunk = 0;
  bool first_content = false, saw_done = false;
  int64_t content_chunks = 0;
};

void on_event(Flight& f, std::string_view data, bool chat) {
  if (data == "[DONE]") {
    f.saw_done = true;
    return;
  }
  json j = json::parse(data, nullptr, false);
  if (!j.is_object()) return;
  if (j.contains("error")) {
    f.result.error = error_message_of({200, std::string(data)});
    return;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const json& u = j["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number()) f.result.prompt_tokens = u["prompt_tokens"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number())
      f.result.output_tokens = u["completion_tokens"];
  }
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
  const json& c = j["choices"][0];
  const json* holder = chat ? (c.contains("delta") ? &c["delta"] : nullptr) : &c;
  const char* key = chat ? "content" : "text";
  if (!holder || !holder->contains(key) || !(*holder)[key].is_string()) return;
  const std::string text = (*holder)[key].get<std::string>();
  if (text.empty()) return;  // a role-only or finish-only chunk carries no token
  const double t = now_s();
  if (!f.first_content) {
    f.first_content = true;
    f.result.ttft = t - f.start;
  } else {
    f.result.itl.push_back(t - f.last_chunk);
  }
  f.last_chunk = t;
  ++f.content_chunks;
  f.result.generated_text += text;
}

void finish(Flight& f, CURLcode rc) {
  RequestResult& r = f.result;
  r.latency = now_s() - f.start;
  long status = 0;
  curl_easy_getinfo(f.req.easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 && status != 0) {
    r.error = "HTTP " + std::to_string(status) + ": " + error_message_of({status, f.error_body});
  } else if (rc != CURLE_OK) {
    if (r.error.empty()) r.error = curl_easy_strerror(rc);
  } else if (r.error.empty() && !f.saw_done) {
    r.error = "the stream ended without [DONE]";
  }
  // A server without usage in its stream: count content chunks (a lower bound of the tokens).
  if (r.output_tokens == 0) r.output_tokens = f.content_chunks;
  r.success = r.error.empty();
  if (!r.success) r.ttft = 0;
}

// Sends `bodies[i]` at `offsets[i]` seconds after the start (never more than max_concurrency at
// once, when set); returns each request's result and the whole run's duration.
std::vector<RequestResult> run_requests(const std::string& url, const std::string& api_key,
                                        const std::vector<std::string>& bodies, const std::vector<double>& offsets,
                                        int max_concurrency, bool chat, double* duration) {
  CURLM* multi = curl_multi_init();
  if (!multi) throw Error("curl_multi_init failed", ErrorKind::kInternal);
  std::vector<std::unique_ptr<Flight>> flights(bodies.size());
  std::vector<RequestResult> results(bodies.size());
  size_t next = 0, done = 0;
  int in_flight = 0;
  const double t0 = now_s();
  try {
    while (done < bodies.size()) {
      const double t = now_s() - t0;
      while (next < bodies.size() && offsets[next] <= t && (max_concurrency <= 0 || in_flight < max_concurrency)) {
        auto f = std::make_unique<Flight>();
        Flight* fp = f.get();
        fp->parser = std::make_unique<SseParser>([fp, chat](std::string_view d) { on_event(*fp, d, chat); });
        fp->on_bytes = [fp](const char* d, size_t n) {
          long status = 0;
          curl_easy_getinfo(fp->req.easy, CURLINFO_RESPONSE_CODE, &status);
          if (status != 200) {
            fp->error_body.append(d, n);
            return fp->error_body.size() < (1 << 20);
          }
          try {
            fp->parser->feed(d, n);
          } catch (const std::exception& e) {  // never let an exception unwind through libcurl
            fp->result.error = e.what();
            return false;
          }
          return true;
        };
        setup_request(fp->req, url, &bodies[next], api_key, &fp->on_bytes);
        curl_easy_setopt(fp->req.easy, CURLOPT_PRIVATE, reinterpret_cast<char*>(next));
        fp->start = now_s();
        curl_multi_add_handle(multi, fp->req.easy);
        flights[next++] = std::move(f);
        ++in_flight;
      }
      int running = 0;
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        char* priv = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        const size_t i = reinterpret_cast<size_t>(priv);
        Flight& f = *flights[i];
        finish(f, msg->data.result);
        curl_multi_remove_handle(multi, f.req.easy);
        cleanup_request(f.req);
        results[i] = std::move(f.result);
        flights[i].reset();
        --in_flight;
        ++done;
      }
      if (done == bodies.size()) break;
      // Sleep until a socket is ready or the next request is due (at most 100 ms).
      int wait_ms = 100;
      if (next < bodies.size() && (max_concurrency <= 0 || in_flight < max_concurrency))
        wait_ms = std::clamp(static_cast<int>((offsets[next] - (now_s() - t0)) * 1000.0), 0, 100);
      curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
    }
  } catch (...) {
    for (auto& f : flights)
      if (f) {
        curl_multi_remove_handle(multi, f->req.easy);
        cleanup_request(f->req);
      }
    curl_multi_cleanup(multi);
    throw;
  }
  *duration = now_s() - t0;
  curl_multi_cleanup(multi);
  return results;
}

// ---- statistics and the report ----

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// numpy.percentile's default (linear interpolation between closest ranks); 0 for no data.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string percent_word(double p) {
  char buf[32];
  if (p == std::floor(p)) std::snprintf(buf, sizeof buf, "%d", static_cast<int>(p));
  else std::snprintf(buf, sizeof buf, "%g", p);
  return buf;
}

void line_int(const char* label, long long v) { std::printf("%-40s %-10lld\n", label, v); }
void line_float(const std::string& label, double v) { std::printf("%-40s %-10.2f\n", label.c_str(), v); }
void header_line(const std::string& title, char fill) {
  const size_t n = 50;
  const size_t pad = title.size() >= n ? 0 : n - title.size();
  std::printf("%s%s%s\n", std::string(pad / 2, fill).c_str(), title.c_str(), std::string(pad - pad / 2, fill).c_str());
}

double parse_rate(const std::string& s) {
  if (s == "inf" || s == "Inf" || s == "INF") return std::numeric_limits<double>::infinity();
  try {
    size_t used = 0;
    const double r = std::stod(s, &used);
    if (used == s.size() && r > 0) return r;
  } catch (const std::exception&) {
  }
  throw Error("--request-rate must be a positive number or inf, got '" + s + "'");
}

std::string timestamp_name() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

int run_bench_serve(BenchServeArgs& a) {
  if (a.num_prompts < 1) throw Error("--num-prompts must be >= 1");
  if (a.random_input_len < 1 || a.random_output_len < 1) throw Error("--random-input-len and --random-output-len must be >= 1");
  if (a.random_range_ratio < 0 || a.random_range_ratio >= 1) throw Error("--random-range-ratio must be in [0, 1)");
  if (a.max_concurrency < 0) throw Error("--max-concurrency must be >= 1");
  const double rate = parse_rate(a.request_rate);
  if (a.api_key.empty())
    if (const char* k = std::getenv("OPENAI_API_KEY")) a.api_key = k;
  const std::string base = a.base_url.empty() ? "http://" + a.host + ":" + std::to_string(a.port) : a.base_url;
  const std::string url = join_url(base, a.endpoint);
  const bool chat = is_chat_endpoint(a.endpoint);
  const std::string model = a.model.empty() ? first_model_id(join_url(base, "/v1"), a.api_key) : a.model;

  std::vector<PromptSpec> prompts;
  std::string prompt_kind;
  if (a.dataset_name == "random") {
    auto tok = find_tokenizer(a);
    prompts = random_prompts(a, tok.get(), chat);
    prompt_kind = tok ? (chat ? "random token ids of the tokenizer, decoded to text" : "random token ids of the tokenizer")
                      : "random words (no tokenizer: pass --tokenizer for exact input lengths)";
  } else if (a.dataset_name == "custom") {
    prompts = custom_prompts(a);
    prompt_kind = "prompts of " + a.dataset_path;
  } else {
    throw Error("--dataset-name must be random or custom, got '" + a.dataset_name + "'");
  }
  std::vector<std::string> bodies;
  for (const auto& p : prompts) bodies.push_back(request_body(a, model, p, chat));

  std::printf("# %s\n", a.command_line.c_str());
  std::printf("# %s, model %s, %d prompts: %s\n", url.c_str(), model.c_str(), a.num_prompts, prompt_kind.c_str());
  std::fflush(stdout);

  // One request first, as vLLM does: a wrong URL, model or key stops here with the server's words.
  double unused = 0;
  RequestResult probe = run_requests(url, a.api_key, {bodies[0]}, {0.0}, 0, chat, &unused)[0];
  if (!probe.success) throw Error("the initial test request to " + url + " failed: " + probe.error);

  // Arrival times: all at once for an infinite rate, else a Poisson process (exponential gaps).
  std::vector<double> offsets(bodies.size(), 0.0);
  std::mt19937_64 arrivals(a.seed ^ 0x9e3779b97f4a7c15ULL);
  if (std::isfinite(rate)) {
    std::exponential_distribution<double> gap(rate);
    for (size_t i = 1; i < offsets.size(); ++i) offsets[i] = offsets[i - 1] + gap(arrivals);
  }
  double duration = 0;
  std::vector<RequestResult> results = run_requests(url, a.api_key, bodies, offsets, a.max_concurrency, chat, &duration);

  long long completed = 0, failed = 0, input_tokens = 0, output_tokens = 0;
  std::vector<double> ttft, tpot, itl, e2el;
  std::string first_error;
  for (const auto& r : results) {
    if (!r.success) {
      ++failed;
      if (first_error.empty()) first_error = r.error;
      continue;
    }
    ++completed;
    input_tokens += r.prompt_tokens;
    output_tokens += r.output_tokens;
    ttft.push_back(r.ttft);
    e2el.push_back(r.latency);
    if (r.output_tokens > 1) tpot.push_back((r.latency - r.ttft) / static_cast<double>(r.output_tokens - 1));
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
  }
  std::vector<double> percentiles;
  for (const auto& p : split_commas(a.metric_percentiles)) {
    try {
      percentiles.push_back(std::stod(p));
    } catch (const std::exception&) {
      throw Error("--metric-percentiles: '" + p + "' is not a number");
    }
    if (percentiles.back() < 0 || percentiles.back() > 100) throw Error("--metric-percentiles must be within 0..100");
  }

  header_line(" Serving Benchmark Result ", '=');
  line_int("Successful requests:", completed);
  line_int("Failed requests:", failed);
  if (a.max_concurrency > 0) line_int("Maximum request concurrency:", a.max_concurrency);
  if (std::isfinite(rate)) line_float("Request rate configured (RPS):", rate);
  else std::printf("%-40s %-10s\n", "Request rate configured (RPS):", "inf");
  line_float("Benchmark duration (s):", duration);
  line_int("Total input tokens:", input_tokens);
  line_int("Total generated tokens:", output_tokens);
  line_float("Request throughput (req/s):", static_cast<double>(completed) / duration);
  line_float("Output token throughput (tok/s):", static_cast<double>(output_tokens) / duration);
  line_float("Total Token throughput (tok/s):", static_cast<double>(input_tokens + output_tokens) / duration);

  json saved = {{"date", timestamp_name()},
                {"endpoint", a.endpoint},
                {"model_id", model},
                {"num_prompts", a.num_prompts},
                {"request_rate", std::isfinite(rate) ? json(rate) : json("inf")},
                {"max_concurrency", a.max_concurrency > 0 ? json(a.max_concurrency) : json(nullptr)},
                {"duration", duration},
                {"completed", completed},
                {"failed", failed},
                {"total_input_tokens", input_tokens},
                {"total_output_tokens", output_tokens},
                {"request_throughput", static_cast<double>(completed) / duration},
                {"output_throughput", static_cast<double>(output_tokens) / duration},
                {"total_token_throughput", static_cast<double>(input_tokens + output_tokens) / duration}};
  struct Metric {
    const char* key;
    const char* name;
    const char* header;
    const std::vector<double>* values;
  };
  const Metric metrics[] = {{"ttft", "TTFT", "Time to First Token", &ttft},
                            {"tpot", "TPOT", "Time per Output Token (excl. 1st token)", &tpot},
                            {"itl", "ITL", "Inter-token Latency", &itl},
                            {"e2el", "E2EL", "End-to-end Latency", &e2el}};
  const auto selected = split_commas(a.percentile_metrics);
  for (const auto& s : selected)
    if (std::none_of(std::begin(metrics), std::end(metrics), [&](const Metric& m) { return s == m.key; }))
      throw Error("--percentile-metrics: unknown metric '" + s + "' (ttft, tpot, itl, e2el)");
  for (const Metric& m : metrics) {
    std::vector<double> ms;
    for (double v : *m.values) ms.push_back(v * 1000.0);
    const std::string k = m.key;
    saved["mean_" + k + "_ms"] = mean_of(ms);
    saved["median_" + k + "_ms"] = percentile(ms, 50);
    for (double p : percentiles) saved["p" + percent_word(p) + "_" + k + "_ms"] = percentile(ms, p);
    if (std::find(selected.begin(), selected.end(), k) == selected.end()) continue;
    header_line(m.header, '-');
    line_float(std::string("Mean ") + m.name + " (ms):", mean_of(ms));
    line_float(std::string("Median ") + m.name + " (ms):", percentile(ms, 50));
    for (double p : percentiles) line_float("P" + percent_word(p) + " " + m.name + " (ms):", percentile(ms, p));
  }
  header_line("", '=');
  if (!first_error.empty()) std::printf("First error: %s\n", first_error.c_str());
  std::fflush(stdout);

  if (a.save_result) {
    json input_lens = json::array(), output_lens = json::array(), ttfts = json::array(), e2els = json::array(),
         itls = json::array(), errors = json::array();
    for (const auto& r : results) {
      input_lens.push_back(r.prompt_tokens);
      output_lens.push_back(r.output_tokens);
      ttfts.push_back(r.ttft);
      e2els.push_back(r.latency);
      itls.push_back(r.itl);
      errors.push_back(r.error);
    }
    saved["input_lens"] = input_lens;
    saved["output_lens"] = output_lens;
    saved["ttfts"] = ttfts;
    saved["e2els"] = e2els;
    saved["itls"] = itls;
    saved["errors"] = errors;
    saved["command_line"] = a.command_line;
    std::string name = a.result_filename;
    if (name.empty()) {
      std::string rate_s = std::isfinite(rate) ? percent_word(rate) : "inf";
      std::string base_model = fs::path(model).filename().string();
      if (base_model.empty()) base_model = "model";
      name = "openai-" + rate_s + "qps" + (a.max_concurrency > 0 ? "-concurrency" + std::to_string(a.max_concurrency) : "") +
             "-" + base_model + "-" + timestamp_name() + ".json";
    }
    const fs::path path = a.result_dir.empty() ? fs::path(name) : fs::path(a.result_dir) / name;
    if (!a.result_dir.empty()) fs::create_directories(a.result_dir);
    std::ofstream out(path);
    if (!out) throw Error("cannot write " + path.string());
    out << saved.dump(2) << "\n";
    std::printf("Results saved to %s\n", path.string().c_str());
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

CLI::App* add_bench_serve(CLI::App* bench, Runner* runner) {
  auto a = std::make_shared<BenchServeArgs>();
  CLI::App* sub = bench->add_subcommand("serve", "Load-test a running OpenAI-compatible server");
  sub->add_option("--base-url", a->base_url, "Server URL, e.g. http://localhost:8000 (instead of --host/--port)");
  sub->add_option("--host", a->host, "Server host")->capture_default_str();
  sub->add_option("--port", a->port, "Server port")->capture_default_str();
  sub->add_option("--endpoint", a->endpoint, "API path: /v1/completions or /v1/chat/completions")->capture_default_str();
  sub->add_option("--model", a->model, "Model name to request (default: the first from GET /v1/models)");
  sub->add_option("--tokenizer", a->tokenizer, "Local tokenizer folder for random prompts (default: --model if a folder)");
  sub->add_option("--dataset-name", a->dataset_name, "random or custom")->capture_default_str();
  sub->add_option("--dataset-path", a->dataset_path, "custom: JSON array of prompts, or JSON lines {\"prompt\": ...}");
  sub->add_option("--random-input-len", a->random_input_len, "random: prompt tokens")->capture_default_str();
  sub->add_option("--random-output-len", a->random_output_len, "random: output tokens")->capture_default_str();
  sub->add_option("--random-range-ratio", a->random_range_ratio,
                  "random: lengths drawn from [len*(1-r), len*(1+r)]")->capture_default_str();
  sub->add_option("--custom-output-len", a->custom_output_len, "custom: output tokens per prompt")->capture_default_str();
  sub->add_option("--num-prompts", a->num_prompts, "Requests to send")->capture_default_str();
  sub->add_option("--request-rate", a->request_rate, "Requests per second (Poisson arrivals), or inf: all at once")
      ->capture_default_str();
  sub->add_option("--max-concurrency", a->max_concurrency, "Most requests in flight at once (default: no limit)");
  sub->add_option("--seed", a->seed, "Seed of the prompts and arrival times")->capture_default_str();
  sub->add_flag("--ignore-eos", a->ignore_eos, "Send ignore_eos, so every output has exactly its length");
  sub->add_option("--temperature", a->temperature, "Sampling temperature sent with each request")->capture_default_str();
  sub->add_option("--api-key", a->api_key, "API key (default: env OPENAI_API_KEY)");
  sub->add_option("--percentile-metrics", a->percentile_metrics, "Metrics to report: ttft,tpot,itl,e2el")
      ->capture_default_str();
  sub->add_option("--metric-percentiles", a->metric_percentiles, "Percentiles to report, e.g. 25,50,99")
      ->capture_default_str();
  sub->add_flag("--save-result", a->save_result, "Write the results as JSON");
  sub->add_option("--result-dir", a->result_dir, "Folder of the JSON results (default: the current one)");
  sub->add_option("--result-filename", a->result_filename, "File name of the JSON results");
  *runner = [a, sub] {
    a->command_line = "vllm bench serve";
    for (const auto& opt : sub->get_options())
      if (opt->count() > 0 && !opt->get_lnames().empty())
        a->command_line += " --" + opt->get_lnames()[0] + (opt->get_expected_min() > 0 ? " " + opt->as<std::string>() : "");
    return run_bench_serve(*a);
  };
  return sub;
}

}  // namespace vllm::cli
