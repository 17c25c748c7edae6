// The engine as Python sees it: engine arguments in as a dict, requests in as prompt text or
// token ids with sampling parameters as JSON (or a dict), outputs back as plain dicts, lists and
// tuples that python/vllm/ turns into vLLM's RequestOutput / CompletionOutput / Logprob.
#include <pybind11/stl.h>

#include <limits>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bindings.h"
#include "convert.h"
#include "vllm/cli/commands.h"
#include "vllm/core/dtype.h"
#include "vllm/core/error.h"
#include "vllm/engine/llm_engine.h"

namespace vllm::python {

namespace {

using json = nlohmann::json;

template <typename T>
void read_arg(const json& args, const char* key, T& out) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    throw Error(std::string("engine argument ") + key + " has the wrong type: " + it->dump());
  }
}

template <typename T>
void read_opt(const json& args, const char* key, std::optional<T>& out) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return;
  T value{};
  read_arg(args, key, value);
  out = value;
}

// vLLM's engine-argument names (as the LLM class passes them) -> EngineConfig.
EngineConfig config_from_args(const json& args) {
  static const char* kKnown[] = {"model", "tokenizer", "dtype", "device", "block_size", "kv_cache_space",
                                 "gpu_memory_utilization", "num_gpu_blocks_override", "max_num_seqs",
                                 "max_num_batched_tokens", "max_model_len", "enable_chunked_prefill",
                                 "enable_prefix_caching", "scheduling_policy", "seed", "max_logprobs",
                                 "generation_config", "enforce_eager", "load_format", "quantization",
                                 "kv_cache_dtype", "kv_events_config", "tensor_parallel_size"};
  for (const auto& [key, value] : args.items()) {
    bool known = false;
    for (const char* k : kKnown) known |= key == k;
    if (!known) throw Error("unknown engine argument '" + key + "'");
  }
  EngineConfig c;
  std::string model;
  read_arg(args, "model", model);
  c.model = cli::resolve_model_folder(model);
  std::string tokenizer;
  read_arg(args, "tokenizer", tokenizer);
  if (!tokenizer.empty()) c.tokenizer = cli::resolve_model_folder(tokenizer);
  read_arg(args, "dtype", c.dtype);
  read_arg(args, "device", c.device);
  read_arg(args, "tensor_parallel_size", c.tensor_parallel_size);
  read_arg(args, "block_size", c.block_size);
  read_arg(args, "kv_cache_space", c.kv_cache_space_gib);
  read_arg(args, "gpu_memory_utilization", c.gpu_memory_utilization);
  read_opt(args, "num_gpu_blocks_override", c.num_kv_blocks);
  read_arg(args, "max_num_seqs", c.max_num_seqs);
  read_opt(args, "max_num_batched_tokens", c.max_num_batched_tokens);
  read_opt(args, "max_model_len", c.max_model_len);
  read_arg(args, "enable_chunked_prefill", c.enable_chunked_prefill);
  read_arg(args, "enable_prefix_caching", c.enable_prefix_caching);
  read_arg(args, "scheduling_policy", c.scheduling_policy);
  read_arg(args, "seed", c.seed);
  read_arg(args, "max_logprobs", c.max_logprobs);
  read_arg(args, "generation_config", c.generation_config);
  read_arg(args, "enforce_eager", c.enforce_eager);
  read_arg(args, "load_format", c.load_format);
  read_arg(args, "quantization", c.quantization);
  read_arg(args, "kv_cache_dtype", c.kv_cache_dtype);
  // vLLM takes a KVEventsConfig, a dict or its JSON text; the Python side passes a dict or text.
  if (auto it = args.find("kv_events_config"); it != args.end() && !it->is_null())
    c.kv_events_config = it->is_string() ? it->get<std::string>() : it->dump();
  return c;
}

py::object stop_reason_to_py(const StopReason& r) {
  if (std::holds_alternative<int32_t>(r)) return py::int_(std::get<int32_t>(r));
  if (std::holds_alternative<std::string>(r)) return py::str(std::get<std::string>(r));
  return py::none();
}

// Token ids from a list of Python ints; ids that do not fit the vocabulary's type get the
// engine's out-of-vocabulary message.
std::vector<int32_t> token_ids_arg(const py::handle& obj) {
  if (!PyList_Check(obj.ptr()) && !PyTuple_Check(obj.ptr())) throw py::type_error("prompt_token_ids must be a list of integers");
  std::vector<int32_t> ids;
  for (auto item : py::reinterpret_borrow<py::sequence>(obj)) {
    if (!PyLong_Check(item.ptr()) || PyBool_Check(item.ptr())) throw py::type_error("prompt_token_ids must be a list of integers");
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(item.ptr(), &overflow);
    if (overflow != 0 || v < 0 || v > std::numeric_limits<int32_t>::max())
      throw Error("Token id " + py::str(item).cast<std::string>() + " is out of vocabulary");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

class PyEngine {
 public:
  explicit PyEngine(const py::dict& args) {
    EngineConfig config = config_from_args(json::parse(to_json(args, "engine arguments").dump()));
    {
      py::gil_scoped_release release;  // loading weights can take a while
      engine_ = std::make_unique<LLMEngine>(config);
    }
    config_ = config;
    if (engine_->tokenizer()) tokenizer_ = PyTokenizer{engine_->tokenizer()};
  }

  void add_request(const std::string& request_id, const py::object& prompt, const py::object& prompt_token_ids,
                   const py::object& params, int priority, bool add_special_tokens, const py::object& cache_salt,
                   double arrival_time) {
    PromptInput input;
    if (!prompt.is_none()) {
      input.text = prompt.cast<std::string>();
    } else if (!prompt_token_ids.is_none()) {
      input.token_ids = token_ids_arg(prompt_token_ids);
    } else {
      throw Error("a request needs a prompt or prompt_token_ids");
    }
    input.add_special_tokens = add_special_tokens;
    SamplingParams sp = SamplingParams::from_json(params_json(params, "sampling params"));
    AddRequestOptions options;
    options.priority = priority;
    if (!cache_salt.is_none()) options.cache_salt = cache_salt.cast<std::string>();
    options.arrival_time = arrival_time;
    RequestInfo info{sp.logprobs, sp.prompt_logprobs, sp.detokenize};
    locked([&](LLMEngine& e) { e.add_request(request_id, input, std::move(sp), options); });
    info_[request_id] = info;
  }

  py::object abort_request(const std::string& request_id) {
    std::optional<RequestOutput> out = locked([&](LLMEngine& e) { return e.abort_request(request_id); });
    py::object result = py::none();
    if (out) result = convert(*out);
    info_.erase(request_id);
    return result;
  }

  py::list step() {
    std::vector<RequestOutput> outs = locked([](LLMEngine& e) { return e.step(); });
    py::list result;
    for (const auto& o : outs) {
      result.append(convert(o));
      if (o.finished) info_.erase(o.request_id);
    }
    return result;
  }

  bool has_unfinished() {
    return locked([](LLMEngine& e) { return e.has_unfinished(); });
  }

  // LLM.beam_search in the engine: token-id prompts in; per prompt, its best beams as dicts
  // (tokens, cum_logprob, finish_reason, logprobs as per-step entry lists like step()'s).
  py::list beam_search(const py::list& prompts, int beam_width, int max_tokens, bool ignore_eos, double temperature,
                       double length_penalty) {
    std::vector<PromptInput> inputs;
    for (auto p : prompts) inputs.push_back(PromptInput::from_ids(token_ids_arg(p)));
    BeamSearchParams params;
    params.beam_width = beam_width;
    params.max_tokens = max_tokens;
    params.ignore_eos = ignore_eos;
    params.temperature = temperature;
    params.length_penalty = length_penalty;
    std::vector<BeamSearchResult> results = locked([&](LLMEngine& e) { return e.beam_search(inputs, params); });
    py::list out;
    for (const BeamSearchResult& r : results) {
      py::list beams;
      for (const BeamSequence& b : r.sequences) {
        py::dict d;
        d["tokens"] = py::cast(b.tokens);
        d["cum_logprob"] = b.cum_logprob;
        d["finish_reason"] = b.finish_reason ? py::object(py::str(std::string(finish_reason_name(*b.finish_reason))))
                                             : py::none();
        py::list lps;
        for (const TokenLogprobs& t : b.logprobs) lps.append(logprob_entries(t, 2 * beam_width, false));
        d["logprobs"] = lps;
        beams.append(d);
      }
      out.append(beams);
    }
    return out;
  }

  bool has_request(const std::string& request_id) {
    return locked([&](LLMEngine& e) { return e.has_request(request_id); });
  }

  // vLLM's LLM.reset_prefix_cache (with --kv-events-config, AllBlocksCleared goes out at once).
  bool reset_prefix_cache() {
    return locked([&](LLMEngine& e) {
      e.core().reset_prefix_cache();
      return true;
    });
  }

  ~PyEngine() { close(); }

  // Releases the model, the KV cache and the tokenizer reference now rather than at garbage
  // collection. Later calls raise.
  void close() {
    if (engine_) {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);
      engine_.reset();
#if defined(__GLIBC__)
      // A model's weights and block tables are freed in pieces that glibc keeps in its heaps
      // (below its mmap threshold, which rises after the first large free): hand them back so
      // that creating and deleting LLM objects leaves resident memory flat.
      malloc_trim(0);
#endif
    }
    info_.clear();
    decoded_.clear();
  }

  py::object tokenizer() const {
    if (!tokenizer_) return py::none();
    return py::cast(*tokenizer_);
  }

  // The model's sampling defaults from generation_config.json (empty with generation_config "vllm").
  py::object generation_defaults() {
    return from_json(nlohmann::ordered_json(engine().core().generation_config().sampling_defaults));
  }

  py::dict config() {
    LLMEngine& e = engine();
    py::dict d;
    d["model"] = config_.model;
    d["tokenizer"] = config_.tokenizer.empty() ? config_.model : config_.tokenizer;
    d["dtype"] = std::string(dtype_name(e.core().compute_dtype()));
    d["device"] = config_.device;
    d["block_size"] = config_.block_size;
    d["num_kv_blocks"] = e.core().num_kv_blocks();
    d["max_model_len"] = e.max_model_len();
    d["max_num_seqs"] = config_.max_num_seqs;
    d["enable_prefix_caching"] = config_.enable_prefix_caching;
    d["enable_chunked_prefill"] = config_.enable_chunked_prefill;
    d["scheduling_policy"] = config_.scheduling_policy;
    d["seed"] = config_.seed;
    d["max_logprobs"] = config_.max_logprobs;
    d["vocab_size"] = e.model_config().vocab_size;
    d["architecture"] = e.model_config().architecture;
    auto eos = e.core().eos_token_id();
    d["eos_token_id"] = eos ? py::object(py::int_(*eos)) : py::none();
    return d;
  }

 private:
  struct RequestInfo {
    std::optional<int> logprobs;
    std::optional<int> prompt_logprobs;
    bool detokenize = true;
  };

  LLMEngine& engine() {
    if (!engine_) throw Error("this engine has been closed", ErrorKind::kInvalidArgument);
    return *engine_;
  }

  // Runs f(engine) without the GIL (other Python threads run meanwhile) and under the engine's
  // lock (one thread drives the engine at a time; close() waits for a step in progress).
  template <typename F>
  auto locked(F&& f) -> std::invoke_result_t<F&, LLMEngine&> {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    return f(engine());
  }

  py::object decoded_token(int32_t id, bool detokenize) {
    if (!detokenize || !tokenizer_) return py::none();
    auto it = decoded_.find(id);
    if (it == decoded_.end()) it = decoded_.emplace(id, py::str(tokenizer_->tok->decode(std::vector<int32_t>{id}))).first;
    return it->second;
  }

  // vLLM's per-position logprobs dict, as (token_id, logprob, rank, decoded_token) tuples in
  // vLLM's insertion order: the chosen token with its rank, then the `num` best with ranks 1..num
  // (a chosen token among them takes its place there, as in vLLM's dict).
  py::list logprob_entries(const TokenLogprobs& t, std::optional<int> num, bool detokenize) {
    py::list out;
    out.append(py::make_tuple(t.token, static_cast<double>(t.logprob), t.rank, decoded_token(t.token, detokenize)));
    size_t k = t.top.size();
    if (num && *num >= 0) k = std::min(k, static_cast<size_t>(*num));
    for (size_t i = 0; i < k; ++i) {
      const auto& e = t.top[i];
      out.append(py::make_tuple(e.token_id, static_cast<double>(e.logprob), static_cast<int64_t>(i + 1),
                                decoded_token(e.token_id, detokenize)));
    }
    return out;
  }

  py::dict convert(const RequestOutput& o) {
    RequestInfo info;
    if (auto it = info_.find(o.request_id); it != info_.end()) info = it->second;
    py::dict d;
    d["request_id"] = o.request_id;
    d["prompt"] = o.prompt ? py::object(py::str(*o.prompt)) : py::none();
    d["prompt_token_ids"] = py::cast(o.prompt_token_ids);
    if (info.prompt_logprobs) {
      py::list plp;
      for (const auto& p : o.prompt_logprobs) {
        if (p) plp.append(logprob_entries(*p, info.prompt_logprobs, info.detokenize));
        else plp.append(py::none());
      }
      d["prompt_logprobs"] = plp;
    } else {
      d["prompt_logprobs"] = py::none();
    }
    py::list outputs;
    for (const auto& c : o.outputs) {
      py::dict co;
      co["index"] = c.index;
      co["text"] = py::str(c.text);
      co["token_ids"] = py::cast(c.token_ids);
      co["cumulative_logprob"] = c.cumulative_logprob ? py::object(py::float_(*c.cumulative_logprob)) : py::none();
      if (info.logprobs) {
        py::list lps;
        for (const auto& t : c.logprobs) lps.append(logprob_entries(t, info.logprobs, info.detokenize));
        co["logprobs"] = lps;
      } else {
        co["logprobs"] = py::none();
      }
      co["finish_reason"] = c.finish_reason ? py::object(py::str(std::string(finish_reason_name(*c.finish_reason))))
                                            : py::none();
      co["stop_reason"] = stop_reason_to_py(c.stop_reason);
      outputs.append(co);
    }
    d["outputs"] = outputs;
    d["finished"] = o.finished;
    d["num_cached_tokens"] = o.num_cached_tokens;
    d["metrics"] = py::make_tuple(o.metrics.arrival_time, o.metrics.first_scheduled_time, o.metrics.first_token_time,
                                  o.metrics.last_token_time, o.metrics.finished_time);
    return d;
  }

  std::unique_ptr<LLMEngine> engine_;
  EngineConfig config_;
  std::optional<PyTokenizer> tokenizer_;
  std::mutex mu_;  // the engine is driven by one thread at a time
  std::unordered_map<std::string, RequestInfo> info_;  // guarded by the GIL
  std::unordered_map<int32_t, py::str> decoded_;       // guarded by the GIL
};

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<PyEngine>(m, "Engine", "The vllm-cpp engine (LLMEngine): requests in, RequestOutput dicts out.")
      .def(py::init<const py::dict&>(), py::arg("args"),
           "Loads a model. `args` uses vLLM's engine-argument names (model, dtype, block_size, kv_cache_space, ...).")
      .def("add_request", &PyEngine::add_request, py::arg("request_id"), py::arg("prompt") = py::none(),
           py::arg("prompt_token_ids") = py::none(), py::arg("params") = py::none(), py::arg("priority") = 0,
           py::arg("add_special_tokens") = true, py::arg("cache_salt") = py::none(), py::arg("arrival_time") = 0.0,
           "Queues a request; `params` is SamplingParams as a JSON string or dict (vLLM's field names).")
      .def("abort_request", &PyEngine::abort_request, py::arg("request_id"))
      .def("step", &PyEngine::step, "Runs one engine step; returns the RequestOutput dicts due now.")
      .def("has_unfinished", &PyEngine::has_unfinished)
      .def("beam_search", &PyEngine::beam_search, py::arg("prompts"), py::arg("beam_width"), py::arg("max_tokens"),
           py::arg("ignore_eos") = false, py::arg("temperature") = 0.0, py::arg("length_penalty") = 1.0,
           "Beam search in the engine (LLM.beam_search): token-id prompts in, each prompt's best beams out.")
      .def("has_request", &PyEngine::has_request, py::arg("request_id"))
      .def("reset_prefix_cache", &PyEngine::reset_prefix_cache, "Forgets the prefix cache; returns True.")
      .def("close", &PyEngine::close)
      .def("tokenizer", &PyEngine::tokenizer)
      .def("generation_defaults", &PyEngine::generation_defaults)
      .def("config", &PyEngine::config);

  m.def(
      "resolve_model_folder",
      [](const std::string& model, const std::string& revision, const std::string& download_dir) {
        py::gil_scoped_release release;  // a Hub download can take a while
        return cli::resolve_model_folder(model, revision, download_dir);
      },
      py::arg("model") = "", py::arg("revision") = "", py::arg("download_dir") = "",
      "A model argument as a folder: a local folder, a Hub model id (from the Hugging Face cache, or\n"
      "downloaded into it), or the default model for ''.");

  m.def(
      "sampling_params_from_json",
      [](const py::object& params) {
        SamplingParams sp = SamplingParams::from_json(params_json(params, "sampling params"));
        return from_json(nlohmann::ordered_json(sp.to_json()));
      },
      py::arg("params"),
      "Validates sampling parameters with the engine's own rules; returns them normalised (as a dict).");
}

}  // namespace vllm::python
