#include "vllm/engine/engine_core.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"
#include "vllm/core/thread_pool.h"
#include "vllm/distributed/in_process_group.h"
#include "vllm/gguf/gguf_model.h"
#include "vllm/kv_events/kv_events_config.h"
#include "vllm/kv_events/publisher.h"
#include "vllm/loader/quantization_config.h"
#include "vllm/loader/safetensors.h"
#include "vllm/models/gguf_loader.h"
#include "vllm/models/random_weights.h"

namespace vllm {

DType resolve_compute_dtype(const std::string& dtype, const ModelConfig& config, Device device) {
  if (dtype == "auto") {
    DType d = config.torch_dtype.value_or(DType::BF16);
    // CPUs have no fast float16 arithmetic; vLLM's CPU backend runs such models in bfloat16 too.
    if (d == DType::F16 && device == Device::kCPU) {
      VLLM_LOG_INFO("float16 is slow on the CPU; running the model in bfloat16 (pass --dtype float16 to keep it)");
      return DType::BF16;
    }
    return d;
  }
  DType d = parse_dtype(dtype);
  if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
    throw Error("--dtype must be auto, float32, bfloat16 or float16, not '" + dtype + "'");
  return d;
}

void check_kv_cache_dtype(const std::string& kv_cache_dtype, Device device) {
  if (kv_cache_dtype == "auto") return;
  if (kv_cache_dtype != "fp8" && kv_cache_dtype != "fp8_e4m3")
    throw Error("--kv-cache-dtype '" + kv_cache_dtype + "' is not supported (accepted values: auto, fp8, fp8_e4m3)");
  if (device == Device::kCPU)
    throw Error("--kv-cache-dtype " + kv_cache_dtype + ": the CPU backend supports --kv-cache-dtype auto only",
                ErrorKind::kUnsupported);
  // CUDA: e4m3 K/V with per-layer scales (Backend::use_fp8_kv_cache).
}

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One forward pass of the largest step the scheduler may form (`tokens` tokens of one sequence,
// `rows` logits rows) on a scratch KV cache, so that activations reach their peak size before the
// KV cache is sized from the memory left.
void profile_forward(Backend& b, CausalLM& model, int64_t tokens, int64_t rows, int block_size) {
  const ModelConfig& c = model.config();
  tokens = std::max<int64_t>(1, tokens);
  rows = std::clamp<int64_t>(rows, 1, tokens);
  const int64_t blocks = (tokens + block_size - 1) / block_size;
  std::vector<KVCacheLayer> kv;
  const Shape shape{blocks, c.num_key_value_heads, block_size, c.head_dim};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    kv.push_back({b.empty(shape, b.kv_cache_dtype()), b.empty(shape, b.kv_cache_dtype())});
  Tensor ids = Tensor::zeros({tokens}, DType::I32), pos = Tensor::empty({tokens}, DType::I32);
  Tensor slots = Tensor::empty({tokens}, DType::I64), table = Tensor::empty({1, blocks}, DType::I32);
  Tensor idx = Tensor::empty({rows}, DType::I32);
  for (int64_t t = 0; t < tokens; ++t) pos.data<int32_t>()[t] = static_cast<int32_t>(t), slots.data<int64_t>()[t] = t;
  for (int64_t i = 0; i < blocks; ++i) table.data<int32_t>()[i] = static_cast<int32_t>(i);
  for (int64_t r = 0; r < rows; ++r) idx.data<int32_t>()[r] = static_cast<int32_t>(tokens - rows + r);
  ForwardInputs in;
  in.num_tokens = tokens;
  in.num_seqs = 1;
  in.max_query_len = tokens;
  in.max_seq_len = tokens;
  in.max_blocks_per_seq = blocks;
  in.block_size = block_size;
  in.host_query_start_loc = {0, static_cast<int32_t>(tokens)};
  in.host_seq_lens = {static_cast<int32_t>(tokens)};
  in.token_ids = b.upload(ids, DType::I32);
  in.positions = b.upload(pos, DType::I32);
  in.slot_mapping = b.upload(slots, DType::I64);
  in.query_start_loc = b.upload(Tensor::from_floats({0.0f, static_cast<float>(tokens)}, {2}, DType::I32), DType::I32);
  in.seq_lens = b.upload(Tensor::from_floats({static_cast<float>(tokens)}, {1}, DType::I32), DType::I32);
  in.block_tables = b.upload(table, DType::I32);
  in.logits_indices = b.upload(idx, DType::I32);
  model.forward(in, kv);
  b.synchronize();
}

// The blocks one sequence of `tokens` tokens takes: all of them in full-attention groups, a
// window's worth (and the block it is writing) in sliding ones.
int64_t blocks_to_hold(const KVCacheLayout& layout, int block_size, int64_t tokens) {
  int64_t blocks = 0;
  for (int64_t window : layout.group_windows) {
    const int64_t held = window == 0 ? tokens : std::min<int64_t>(tokens, window + block_size);
    blocks += (held + block_size - 1) / block_size;
  }
  return blocks;
}

}  // namespace

EngineCore::EngineCore(const EngineConfig& config) : config_(config), sampler_(config.seed) {
  if (const char* e = std::getenv("VLLM_STEP_TIMING"); e && *e && std::string(e) != "0") log_step_times_ = time_steps_ = true;
  // --kv-events-config first: a bad config or an endpoint that cannot be bound fails before the
  // weights are read.
  const kv_events::KVEventsConfig kv_events_config =
      kv_events::parse_kv_events_config(config.kv_events_config).for_data_parallel_rank(config.data_parallel_rank);
  if (kv_events_config.publishes()) {
    kv_event_publisher_ = std::make_unique<kv_events::ZmqEventPublisher>(kv_events_config, config.data_parallel_rank);
    if (!config.enable_prefix_caching)
      VLLM_LOG_WARN("--kv-events-config: prefix caching is off (--no-enable-prefix-caching), so no block enters "
                    "the cache and no KV cache event will be published");
  }
  // A GGUF file holds the config in its metadata (and no generation_config.json); a folder has
  // config.json and the safetensors weights.
  std::optional<gguf::GgufFile> gguf_file;
  if (is_gguf_file(config.model)) {
    gguf_file = gguf::GgufFile::open(config.model);
    model_config_ = gguf::model_config(*gguf_file);
  } else {
    model_config_ = ModelConfig::from_folder(config.model);
    generation_config_ = config.generation_config == "vllm" ? GenerationConfig{} : GenerationConfig::from_folder(config.model);
  }
  const bool on_gpu = config.device == "cuda" || (config.device == "auto" && auto_device_is_cuda());
  compute_dtype_ = resolve_compute_dtype(config.dtype, model_config_, on_gpu ? Device::kCUDA : Device::kCPU);
  check_kv_cache_dtype(config.kv_cache_dtype, on_gpu ? Device::kCUDA : Device::kCPU);
  // --quantization against the checkpoint's quantization_config (vLLM's rules), before any weight is read.
  std::string quantization;
  if (gguf_file) {
    if (!config.quantization.empty() && config.quantization != "gguf")
      throw Error("--quantization " + config.quantization + " does not apply to a GGUF file, whose weights are "
                  "already quantized (its quantization method is gguf)");
  } else {
    quantization = resolve_quantization(model_config_.raw, config.quantization, config.model + "/config.json");
    model_config_.quantization = config.quantization;
  }
  if (config.block_size <= 0 || config.block_size > 1024)
    throw Error("--block-size must be between 1 and 1024, not " + std::to_string(config.block_size));
  if (config.max_num_seqs <= 0) throw Error("--max-num-seqs must be positive");

  max_model_len_ = model_config_.max_position_embeddings;
  if (config.max_model_len) {
    if (*config.max_model_len <= 0) throw Error("--max-model-len must be positive");
    if (*config.max_model_len > model_config_.max_position_embeddings)
      throw Error("User-specified max_model_len (" + std::to_string(*config.max_model_len) +
                  ") is greater than the derived max_model_len (max_position_embeddings=" +
                  std::to_string(model_config_.max_position_embeddings) + " in model's config.json).");
    max_model_len_ = *config.max_model_len;
  }
  if (!generation_config_.eos_token_ids.empty()) eos_token_id_ = generation_config_.eos_token_ids[0];
  else if (!model_config_.eos_token_ids.empty()) eos_token_id_ = model_config_.eos_token_ids[0];

  if (config.load_format != "auto" && config.load_format != "safetensors" && config.load_format != "dummy")
    throw Error("--load-format '" + config.load_format + "' is not supported (choose auto, safetensors or dummy)",
                ErrorKind::kUnsupported);
  // --tensor-parallel-size N: N ranks, each a backend with its share of the threads and of every
  // layer, meeting in the all-reduces of an in-process group (distributed/).
  const int tp = config.tensor_parallel_size;
  if (tp < 1) throw Error("--tensor-parallel-size must be at least 1, not " + std::to_string(tp));
  int rank_threads = config.cpu_threads;
  std::shared_ptr<InProcessGroup> group;
  if (tp > 1) {
    if (config.device == "cuda" || (config.device == "auto" && auto_device_is_cuda()))
      throw Error("--tensor-parallel-size " + std::to_string(tp) +
                      " runs on the CPU backend for now (--device cpu: its ranks are threads sharing memory); "
                      "GPU ranks over NCCL are not built yet",
                  ErrorKind::kUnsupported);
    if (gguf_file)
      throw Error("--tensor-parallel-size > 1 is not supported for GGUF files yet (their weights stay in "
                  "quantized blocks, which are not split)",
                  ErrorKind::kUnsupported);
    const int total = config.cpu_threads > 0 ? config.cpu_threads : ThreadPool::default_num_threads();
    rank_threads = std::max(1, total / tp);
    group = InProcessGroup::create(tp);
    VLLM_LOG_INFO("tensor parallelism: {} ranks of {} threads each", tp, rank_threads);
  }
  std::vector<ModelRunner::Rank> ranks;
  for (int r = 0; r < tp; ++r) {
    std::unique_ptr<Backend> rank_backend = make_backend(config.device, compute_dtype_, rank_threads);
    if (group) rank_backend->set_communicator(group->communicator(r));
    if (config.kv_cache_dtype != "auto") {  // fp8 / fp8_e4m3 on CUDA (check_kv_cache_dtype)
      rank_backend->use_fp8_kv_cache();
      if (r == 0)
        VLLM_LOG_INFO("--kv-cache-dtype {}: KV cache in e4m3 (1 byte per element), scaled per layer", config.kv_cache_dtype);
    }
    std::unique_ptr<CausalLM> rank_model;
    if (config.load_format == "dummy") {
      if (r == 0)
        VLLM_LOG_INFO("--load-format dummy: random weights from the recipe (seed 0, {}), made in memory",
                      dtype_name(compute_dtype_));
      rank_model = load_model(recipe_weight_store(model_config_, 0, compute_dtype_), model_config_, *rank_backend);
    } else {
      rank_model = gguf_file ? load_gguf_model(*gguf_file, model_config_, *rank_backend)
                             : load_model(config.model, model_config_, *rank_backend);
    }
    ranks.push_back({std::move(rank_backend), std::move(rank_model)});
  }
  Backend* backend = ranks[0].backend.get();  // rank 0's: it samples, and sizes the KV cache on a GPU
  CausalLM* model = ranks[0].model.get();
  size_t weight_bytes = 0;
  for (const ModelRunner::Rank& r : ranks) weight_bytes += r.model->weight_bytes();
  gguf_file.reset();  // the weights keep the mapping alive as long as they need it
  const std::string products = backend->keeps_fp8_weights()
                                   ? "kept in e4m3, products in FP8"
                                   : "dequantized to " + std::string(dtype_name(compute_dtype_)) + " at load";
  if (quantization == "fp8" && config.quantization == "fp8" && !model_config_.raw.contains("quantization_config"))
    VLLM_LOG_INFO("--quantization fp8: each linear layer's weight quantized to e4m3 with a per-tensor scale, {}",
                  products);
  else if (!quantization.empty())
    VLLM_LOG_INFO("{} checkpoint: FP8 weights {}", quantization, products);

  int64_t num_blocks;
  // Layers with a sliding window keep block tables of their own, so their blocks can go back to
  // the pool once the window has passed them; a block spans one layer of each group's size.
  const KVCacheLayout layout = plan_kv_cache_layout(layer_sliding_windows(model_config_));
  size_t per_block = 0;  // a block spans every rank's share of the KV heads
  for (const ModelRunner::Rank& r : ranks)
    per_block += ModelRunner::block_bytes(r.model->shard_config(), layout.group_size, config.block_size,
                                          r.backend->kv_cache_dtype());
  if (backend->device() == Device::kCUDA) backend->configure_graphs(!config.enforce_eager, max_model_len_, config.max_num_seqs);
  if (config.num_kv_blocks) {
    num_blocks = *config.num_kv_blocks;
  } else if (backend->device() == Device::kCUDA) {
    // --gpu-memory-utilization: the KV cache gets what is left after the weights and the peak
    // activations of the largest step.
    if (config.gpu_memory_utilization <= 0 || config.gpu_memory_utilization > 1)
      throw Error("--gpu-memory-utilization must be in (0, 1]");
    const int64_t step_tokens = config.max_num_batched_tokens.value_or(
        config.enable_chunked_prefill ? 2048 : std::max<int64_t>(2048, max_model_len_));
    profile_forward(*backend, *model, step_tokens, config.max_num_seqs, config.block_size);
    num_blocks = static_cast<int64_t>(backend->available_kv_bytes(config.gpu_memory_utilization) / per_block);
    // Small models would get millions of blocks: no more than every sequence at full length, 4 times.
    const int64_t full = static_cast<int64_t>(config.max_num_seqs) * ((max_model_len_ + config.block_size - 1) / config.block_size);
    num_blocks = std::min<int64_t>(num_blocks, std::min<int64_t>(4 * full, int64_t{1} << 30));
  } else {
    if (config.kv_cache_space_gib <= 0) throw Error("--kv-cache-space must be positive");
    num_blocks = static_cast<int64_t>(config.kv_cache_space_gib * 1024 * 1024 * 1024 / static_cast<double>(per_block));
  }
  if (num_blocks <= 0) throw Error("the KV cache has room for no block; raise --kv-cache-space");
  const int64_t needed = blocks_to_hold(layout, config.block_size, max_model_len_);
  if (num_blocks < needed && !config.num_kv_blocks)
    VLLM_LOG_WARN("the KV cache ({} blocks) cannot hold one sequence of max_model_len {}", num_blocks, max_model_len_);

  SchedulerConfig sc;
  sc.max_num_seqs = config.max_num_seqs;
  sc.max_model_len = max_model_len_;
  sc.enable_chunked_prefill = config.enable_chunked_prefill;
  sc.max_num_batched_tokens = config.max_num_batched_tokens.value_or(
      config.enable_chunked_prefill ? 2048 : std::max<int64_t>(2048, max_model_len_));
  if (sc.max_num_batched_tokens <= 0) throw Error("--max-num-batched-tokens must be positive");
  if (!config.enable_chunked_prefill && sc.max_num_batched_tokens < max_model_len_)
    throw Error("max_num_batched_tokens (" + std::to_string(sc.max_num_batched_tokens) +
                ") is smaller than max_model_len (" + std::to_string(max_model_len_) +
                "). This effectively limits the maximum sequence length to max_num_batched_tokens and makes "
                "vLLM reject longer sequences. Please increase max_num_batched_tokens or decrease max_model_len.");
  sc.policy = parse_scheduling_policy(config.scheduling_policy);

  kv_ = std::make_unique<KVCacheManager>(static_cast<int32_t>(num_blocks), config.block_size, config.enable_prefix_caching,
                                         layout.group_windows);
  if (kv_event_publisher_) kv_->enable_events();
  scheduler_ = std::make_unique<Scheduler>(sc, *kv_);
  VLLM_LOG_INFO("model {} ({}), {} on {}: weights {:.1f} MiB, KV cache {} blocks of {} tokens ({:.1f} MiB)",
                config.model, model_config_.architecture, dtype_name(compute_dtype_), backend->name(),
                static_cast<double>(weight_bytes) / (1 << 20), num_blocks, config.block_size,
                static_cast<double>(per_block) * static_cast<double>(num_blocks) / (1 << 20));
  if (layout.num_groups() > 1) {
    std::string windows;
    for (int64_t w : layout.group_windows) windows += (windows.empty() ? "" : ", ") + (w ? std::to_string(w) : "full");
    VLLM_LOG_INFO("KV cache: {} groups of {} layers, each with its own block tables (windows: {})", layout.num_groups(),
                  layout.group_size, windows);
  }
  runner_ = std::make_unique<ModelRunner>(std::move(ranks), num_blocks, config.block_size, layout);
  step_masks_ = std::make_unique<StepMasks>(runner_->backend().device() != Device::kCPU, &runner_->backend());
  const char* env_sampler = std::getenv("VLLM_BACKEND_SAMPLER");
  backend_sampler_ = runner_->backend().has_sampler() && !(env_sampler && std::string(env_sampler) == "0");
}

void EngineCore::set_kv_event_observer(std::function<void(const std::vector<KVCacheEvent>&)> observer) {
  kv_event_observer_ = std::move(observer);
  if (kv_event_observer_) kv_->enable_events();
}

void EngineCore::publish_kv_events() {
  if (!kv_event_publisher_ && !kv_event_observer_) return;
  std::vector<KVCacheEvent> events = kv_->take_events();
  if (events.empty()) return;
  if (kv_event_observer_) kv_event_observer_(events);
  if (kv_event_publisher_) kv_event_publisher_->publish(std::move(events), kv_events::unix_time_seconds());
}

void EngineCore::reset_prefix_cache() {
  kv_->reset_prefix_cache();
  publish_kv_events();
}

EngineCore::~EngineCore() {
  if (log_step_times_ && step_times_.steps > 0) {
    const StepTimes& t = step_times_;
    const double us = 1e6 / static_cast<double>(t.steps);
    VLLM_LOG_INFO("step times over {} steps (VLLM_STEP_TIMING): schedule {:.1f} us, inputs {:.1f} us, forward {:.1f} us "
                  "(on a GPU its launch), masks wait {:.1f} us, device wait {:.1f} us (on a GPU the forward's rest), "
                  "sample {:.1f} us, whole step {:.1f} us",
                  t.steps, us * t.schedule, us * t.inputs, us * t.forward, us * t.masks_wait, us * t.device_wait,
                  us * t.sample, us * t.total);
  }
}

uint64_t EngineCore::add_request(EngineCoreRequest req, std::vector<uint64_t>* branch_seq_ids) {
  const int64_t n = static_cast<int64_t>(req.prompt_token_ids.size());
  if (n == 0) throw Error("The decoder prompt cannot be empty");
  for (int32_t id : req.prompt_token_ids)
    if (id < 0 || id >= model_config_.vocab_size) throw Error("Token id " + std::to_string(id) + " is out of vocabulary");
  if (n > max_model_len_)
    throw Error("The decoder prompt (length " + std::to_string(n) + ") is longer than the maximum model length of " +
                std::to_string(max_model_len_) + ". Make sure that `max_model_len` is no smaller than the number of text tokens.");
  if (const int64_t need = blocks_to_hold(runner_->kv_layout(), config_.block_size, n); need > runner_->num_blocks())
    throw Error("The decoder prompt (length " + std::to_string(n) + ") needs " + std::to_string(need) +
                " KV cache blocks and the whole cache has " + std::to_string(runner_->num_blocks()) +
                ". Raise --kv-cache-space (--gpu-memory-utilization on a GPU) or shorten the prompt.");
  auto validate = [&](SamplingParams& p) {
    p.validate(config_.max_logprobs, model_config_.vocab_size);
    if (p.n != 1 || (p.best_of && *p.best_of != 1))
      throw Error("the engine core runs one sequence per request; give n > 1 as branches", ErrorKind::kInternal);
  };
  validate(req.params);
  for (PendingBranch& b : req.branches) validate(b.params);

  auto r = std::make_unique<Request>();
  r->seq_id = next_seq_id_++;
  r->request_id = std::move(req.request_id);
  r->num_prompt_tokens = n;
  r->token_ids = std::move(req.prompt_token_ids);
  r->params = std::move(req.params);
  const int64_t room = max_model_len_ - n;
  r->max_tokens = r->params.max_tokens ? std::min<int64_t>(*r->params.max_tokens, room) : room;
  r->priority = req.priority;
  r->arrival_time = req.arrival_time > 0 ? req.arrival_time : now_seconds();
  r->cache_salt = cache_salt_key(req.cache_salt);
  if (req.grammar) {
    // Every stop token of the request ends a complete output (EOS ids, stop_token_ids).
    structured::MatcherOptions mo;
    mo.stop_token_ids = r->params.all_stop_token_ids;
    if (r->params.eos_token_id) mo.stop_token_ids->push_back(*r->params.eos_token_id);
    r->matcher.emplace(std::move(req.grammar), std::move(mo));
  }
  uint64_t id = r->seq_id;
  r->pending_branches = std::move(req.branches);
  for (PendingBranch& b : r->pending_branches) {
    b.seq_id = next_seq_id_++;
    parent_of_pending_branch_[b.seq_id] = id;
    if (branch_seq_ids) branch_seq_ids->push_back(b.seq_id);
  }
  scheduler_->add_request(std::move(r));
  return id;
}

std::optional<EngineCoreOutput> EngineCore::abort_request(uint64_t seq_id) {
  if (auto p = parent_of_pending_branch_.find(seq_id); p != parent_of_pending_branch_.end()) {
    // A branch not forked yet: it only exists in its parent's list.
    Request* parent = scheduler_->find(p->second);
    parent_of_pending_branch_.erase(p);
    VLLM_CHECK(parent, "a pending branch outlived its parent");
    auto& branches = parent->pending_branches;
    auto b = std::find_if(branches.begin(), branches.end(), [&](const PendingBranch& x) { return x.seq_id == seq_id; });
    VLLM_CHECK(b != branches.end(), "a pending branch is missing from its parent");
    EngineCoreOutput out;
    out.seq_id = seq_id;
    out.request_id = b->request_id;
    out.finished = true;
    out.finish_reason = FinishReason::kAbort;
    out.num_prompt_tokens = parent->num_prompt_tokens;
    branches.erase(b);
    return out;
  }
  auto r = scheduler_->finish(seq_id, FinishReason::kAbort);
  if (!r) return std::nullopt;
  for (const PendingBranch& b : r->pending_branches) parent_of_pending_branch_.erase(b.seq_id);
  EngineCoreOutput out;
  out.seq_id = seq_id;
  out.request_id = r->request_id;
  out.finished = true;
  out.finish_reason = FinishReason::kAbort;
  out.num_cached_tokens = std::max<int64_t>(0, r->num_cached_tokens);
  out.num_prompt_tokens = r->num_prompt_tokens;
  return out;
}

void EngineCore::finish_unschedulable(Request& r, std::vector<EngineCoreOutput>* outputs) {
  VLLM_LOG_WARN("request {} needs more KV cache than the whole pool holds ({} tokens; {} blocks of {}): it ends "
                "here with finish_reason length",
                r.request_id, r.num_tokens(), runner_->num_blocks(), config_.block_size);
  auto ended = [&](uint64_t seq_id, std::string request_id) {
    EngineCoreOutput out;
    out.seq_id = seq_id;
    out.request_id = std::move(request_id);
    out.finished = true;
    out.finish_reason = FinishReason::kLength;
    out.num_prompt_tokens = r.num_prompt_tokens;
    out.num_cached_tokens = std::max<int64_t>(0, r.num_cached_tokens);
    outputs->push_back(std::move(out));
  };
  ended(r.seq_id, r.request_id);
  // Branches not forked yet (n > 1, the prompt never finished) end with it.
  for (const PendingBranch& b : r.pending_branches) {
    parent_of_pending_branch_.erase(b.seq_id);
    ended(b.seq_id, b.request_id);
  }
  scheduler_->finish(r.seq_id, FinishReason::kLength);  // frees r
}

Request& EngineCore::fork(Request& parent, uint64_t child_seq_id, std::string request_id, SamplingParams params,
                          const Request& after) {
  auto child = std::make_unique<Request>(parent);
  child->seq_id = child_seq_id;
  child->request_id = std::move(request_id);
  child->params = std::move(params);
  child->pending_branches.clear();
  const int64_t room = max_model_len_ - child->num_prompt_tokens;
  child->max_tokens = child->params.max_tokens ? std::min<int64_t>(*child->params.max_tokens, room) : room;
  if (kv_->has(parent.seq_id)) kv_->fork(parent.seq_id, child_seq_id);
  Request& ref = *child;
  scheduler_->add_forked(std::move(child), after);
  return ref;
}

Request& EngineCore::running_request(uint64_t seq_id) {
  Request* r = scheduler_->find(seq_id);
  if (!r) throw Error("no unfinished request with sequence id " + std::to_string(seq_id), ErrorKind::kInternal);
  return *r;
}

uint64_t EngineCore::fork_request(uint64_t seq_id) {
  Request& parent = running_request(seq_id);
  const uint64_t child = next_seq_id_++;
  Request& c = fork(parent, child, parent.request_id, parent.params, parent);
  // A seeded child takes the same draws as its parent would from here (the same seed and output
  // position); an unseeded one draws on its own stream.
  c.paused = parent.paused;
  return child;
}

void EngineCore::replace_last_token(uint64_t seq_id, int32_t token) {
  Request& r = running_request(seq_id);
  if (r.num_output_tokens() == 0 || r.num_computed_tokens >= r.num_tokens())
    throw Error("only a sampled token whose K/V are not computed yet can be replaced", ErrorKind::kInternal);
  if (token < 0 || token >= model_config_.vocab_size) throw Error("Token id " + std::to_string(token) + " is out of vocabulary");
  if (r.matcher) {
    // The matcher took the token being replaced (or is about to): take the new one in its place.
    if (!r.accept_pending_token())
      throw Error("the request's structured-outputs grammar refused its last token", ErrorKind::kInternal);
    r.matcher->rollback(1);
    if (!r.matcher->accept_token(token))
      throw Error("token " + std::to_string(token) + " is not allowed by the request's structured-outputs grammar");
  }
  r.token_ids.back() = token;
}

void EngineCore::set_paused(uint64_t seq_id, bool paused) { running_request(seq_id).paused = paused; }

void EngineCore::set_output_paused(uint64_t seq_id, bool paused) {
  if (Request* r = scheduler_->find(seq_id)) r->output_paused = paused;
}

bool EngineCore::append_and_check_stop(Request& r, int32_t token, const uint32_t* mask) {
  r.token_ids.push_back(token);
  const SamplingParams& p = r.params;
  // Structured outputs: the matcher takes a token exactly when the mask it was drawn under allows
  // it, so the mask decides here, and the accept itself waits for the next mask's fill (beside
  // the next forward pass, in parallel over the requests) instead of costing the engine thread
  // about a microsecond a row between the GPU's steps.
  bool allowed = true, terminates = false;
  if (r.matcher) {
    VLLM_CHECK(mask != nullptr, "a constrained row is sampled under its step's mask");
    // (A mask's fill took the last pending token; a request sampled only under a fresh mask.)
    allowed = r.accept_pending_token() && ((mask[token >> 5] >> (token & 31)) & 1u) != 0;
    if (allowed) {
      r.pending_accept = token;
      terminates = r.matcher->is_stop_token(token);
    }
  }
  if (!allowed) {
    // The sampler only draws allowed tokens; an empty mask (no token of this vocabulary can
    // continue the grammar) is the one way here. The output so far is all there is.
    VLLM_LOG_WARN("request {}: no token of the vocabulary continues its structured-outputs grammar", r.request_id);
    r.finish_reason = FinishReason::kAbort;
    return true;
  }
  if (r.num_output_tokens() >= p.min_tokens) {
    if (!p.ignore_eos && eos_token_id_ && token == *eos_token_id_) {
      r.finish_reason = FinishReason::kStop;
      return true;
    }
    if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end()) {
      r.finish_reason = FinishReason::kStop;
      r.stop_reason = token;
      return true;
    }
  }
  if (r.num_output_tokens() >= r.max_tokens || r.num_tokens() >= max_model_len_) {
    r.finish_reason = FinishReason::kLength;
    return true;
  }
  // A grammar that took its stop token is complete even where EOS does not stop (ignore_eos):
  // nothing but stop tokens could follow.
  if (terminates) {
    r.finish_reason = FinishReason::kStop;
    return true;
  }
  return false;
}

std::vector<EngineCoreOutput> EngineCore::step() {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  std::vector<EngineCoreOutput> outputs;
  SchedulerOutput sched = scheduler_->schedule();
  for (Request* r : sched.unschedulable) finish_unschedulable(*r, &outputs);
  if (sched.empty()) {
    publish_kv_events();
    return outputs;
  }
  const auto t1 = clock::now();
  // Structured outputs: the masks of the constrained rows that sample this step (their prompts
  // complete with it), filled while a GPU runs the forward.
  std::vector<Request*> constrained;
  for (const ScheduledRequest& s : sched.scheduled)
    if (s.request->matcher && s.request->num_computed_tokens + s.num_new_tokens == s.request->num_tokens())
      constrained.push_back(s.request);
  step_masks_->start(std::move(constrained), model_config_.vocab_size);
  LogitsPlan plan;
  Tensor logits;
  const double prepare_before = runner_->prepare_seconds();
  auto t2 = t1;
  try {
    // On a GPU the forward may still run when execute returns (the masks fill meanwhile); the
    // sampler waits for it, so the step timing's "sample" holds the rest of the device work.
    logits = runner_->execute(sched, *kv_, &plan);
    t2 = clock::now();
    step_masks_->wait();
  } catch (...) {
    // The fill reads the requests' matchers: it must end before anything can free them.
    try {
      step_masks_->wait();
    } catch (...) {
    }
    throw;
  }
  const auto t3 = clock::now();
  scheduler_->update_computed(sched);
  const double device_wait_before = step_times_.device_wait;
  sample(plan, logits, &outputs);
  // The step's prefix cache changes (blocks cached by the scheduler's allocations, blocks they
  // evicted) go out as one batch, as vLLM's scheduler publishes them once per step.
  publish_kv_events();
  if (time_steps_) {
    const auto t4 = clock::now();
    auto secs = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
    const double inputs = runner_->prepare_seconds() - prepare_before;
    step_times_.schedule += secs(t1 - t0);
    step_times_.inputs += inputs;
    step_times_.forward += secs(t2 - t1) - inputs;
    step_times_.masks_wait += secs(t3 - t2);
    step_times_.sample += secs(t4 - t3) - (step_times_.device_wait - device_wait_before);
    step_times_.total += secs(t4 - t0);
    ++step_times_.steps;
  }
  return outputs;
}

}  // namespace vllm
