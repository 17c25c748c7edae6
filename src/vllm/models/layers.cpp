#include "vllm/models/layers.h"

#include <cmath>
#include <cstring>

#include "vllm/core/error.h"
#include "vllm/loader/fp8_weights.h"
#include "vllm/loader/quantization_config.h"

namespace vllm {

Tensor WeightLoader::concat_rows(const std::vector<std::pair<std::string, Shape>>& parts) const {
  std::vector<Tensor> ts;
  int64_t rows = 0;
  for (const auto& [name, shape] : parts) {
    ts.push_back(store_.get(name, shape));
    rows += shape[0];
  }
  if (ts.size() == 1) return ts[0];
  Shape out_shape = parts[0].second;
  out_shape[0] = rows;
  DType dt = ts[0].dtype();
  for (auto& t : ts)
    if (t.dtype() != dt) t = t.to_dtype(DType::F32), dt = DType::F32;
  for (auto& t : ts)
    if (t.dtype() != dt) t = t.to_dtype(dt);
  Tensor out = Tensor::empty(out_shape, dt);
  size_t off = 0;
  for (const auto& t : ts) {
    std::memcpy(static_cast<char*>(out.raw()) + off, t.raw(), t.nbytes());
    off += t.nbytes();
  }
  return out;
}

std::shared_ptr<LinearWeight> WeightLoader::linear(const std::vector<std::pair<std::string, Shape>>& weights,
                                                   const std::vector<std::pair<std::string, Shape>>& biases) {
  Tensor b = biases.empty() ? Tensor() : concat_rows(biases);
  // GGUF weights of quantized types stay quantized: the backend gets every part as GGUF rows.
  bool quantized = false;
  for (const auto& [name, _] : weights) quantized = quantized || store_.is_quantized(name);
  if (quantized) {
    std::vector<gguf::QuantizedMatrix> parts;
    for (const auto& [name, shape] : weights) parts.push_back(store_.get_quantized(name, shape));
    auto lw = backend_.prepare_quantized_linear(parts, b);
    bytes_ += lw->bytes();
    return lw;
  }
  // An FP8 checkpoint's float8 weights go to the backend as stored, each part with its own scales
  // (a backend without FP8 products dequantizes them; a layer mixing float8 and float parts, which
  // checkpoints do not write, is dequantized here as before).
  bool all_fp8 = true;
  for (const auto& [name, _] : weights) all_fp8 = all_fp8 && store_.is_fp8(name);
  if (all_fp8) {
    std::vector<Fp8Matrix> parts;
    for (const auto& [name, shape] : weights) parts.push_back(store_.get_fp8(name, shape));
    auto lw = backend_.prepare_fp8_linear(parts, b);
    bytes_ += lw->bytes();
    return lw;
  }
  Tensor w = concat_rows(weights);
  // --quantization fp8: the fused weight (q, k and v together, as vLLM's merged layers) gets one
  // per-tensor scale; the backend gets its e4m3 bytes and scale (the CPU computes with their
  // dequantized values, what fp8_round_trip_per_tensor gives).
  if (store_.online_quantization() == "fp8" && !fp8_leaves_unquantized(weights[0].first)) {
    Fp8Quantized q = quantize_fp8(w, Fp8WeightLayout{});
    auto lw = backend_.prepare_fp8_linear({Fp8Matrix{std::move(q.weight), std::move(q.scale), Fp8WeightLayout{}}}, b);
    bytes_ += lw->bytes();
    return lw;
  }
  auto lw = backend_.prepare_linear(w, b);
  bytes_ += lw->bytes();
  return lw;
}

namespace {
std::vector<std::pair<std::string, Shape>> names_and_shapes(const std::vector<ParamSpec>& specs) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& s : specs) out.emplace_back(s.name, s.shape);
  return out;
}
}  // namespace

std::shared_ptr<LinearWeight> WeightLoader::linear_from(const std::vector<ParamSpec>& weights,
                                                        const std::vector<ParamSpec>& biases) {
  return linear(names_and_shapes(weights), names_and_shapes(biases));
}

std::shared_ptr<ExpertWeights> WeightLoader::experts(const std::vector<ParamSpec>& gate_up,
                                                     const std::vector<ParamSpec>& down, int64_t num_experts) {
  // Per-expert matrices stacked by rows are the fused [E, rows, cols] tensor's bytes.
  auto stacked = [&](const std::vector<ParamSpec>& parts) {
    Tensor t = concat_rows(names_and_shapes(parts));
    if (t.shape().size() == 2) t = t.view({num_experts, t.shape()[0] / num_experts, t.shape()[1]});
    return t;
  };
  return experts(stacked(gate_up), stacked(down), ExpertOptions{});
}

namespace {
// vLLM's online FP8 for mixture-of-experts layers: one per-tensor scale per expert's gate_up
// ([2I, H], gate and up together) and per expert's down.
Tensor fp8_round_trip_per_expert(const Tensor& experts) {
  Tensor out = Tensor::empty(experts.shape(), DType::F32);
  const int64_t E = experts.size(0);
  const size_t per_expert = static_cast<size_t>(experts.numel() / std::max<int64_t>(E, 1)) * sizeof(float);
  for (int64_t e = 0; e < E; ++e) {
    const Tensor q = fp8_round_trip_per_tensor(experts.slice_rows(e, e + 1));
    std::memcpy(out.data<float>() + static_cast<size_t>(e) * per_expert / sizeof(float), q.raw(), per_expert);
  }
  return out;
}
}  // namespace

std::shared_ptr<ExpertWeights> WeightLoader::experts(const Tensor& gate_up, const Tensor& down,
                                                     const ExpertOptions& options) {
  const bool fp8 = store_.online_quantization() == "fp8";
  auto e = backend_.prepare_experts(fp8 ? fp8_round_trip_per_expert(gate_up) : gate_up,
                                    fp8 ? fp8_round_trip_per_expert(down) : down, options);
  bytes_ += e->bytes();
  return e;
}

Tensor WeightLoader::vector(const std::string& name, int64_t size) {
  Tensor t = backend_.prepare_vector(store_.get(name, {size}));
  bytes_ += t.nbytes();
  return t;
}

Tensor WeightLoader::vector(const std::string& name, int64_t size, float offset) {
  if (offset == 0.0f) return vector(name, size);
  Tensor v = store_.get(name, {size}).to_dtype(DType::F32);
  for (int64_t i = 0; i < size; ++i) v.data<float>()[i] += offset;
  Tensor t = backend_.prepare_vector(v);
  bytes_ += t.nbytes();
  return t;
}

Tensor WeightLoader::embedding(const std::string& name, const Shape& shape) {
  // A quantized GGUF table goes to the backend in its blocks (the CPU gathers from them).
  Tensor t = store_.is_quantized(name) ? backend_.prepare_quantized_embedding(store_.get_quantized(name, shape))
                                       : backend_.prepare_embedding(store_.get(name, shape));
  bytes_ += t.nbytes();
  return t;
}

std::vector<float> rotary_inv_freq(const ModelConfig& config) { return rotary_inv_freq(config.rope, config.rotary_dim()); }

namespace {
// yarn: each frequency blends its interpolated (divided by factor) and extrapolated (kept)
// values, by a linear ramp over the dimensions between the ones that turn beta_fast and
// beta_slow times over the original context (transformers' _compute_yarn_parameters; the bounds
// in double as Python's math, the ramp and blend in float32 as torch).
std::vector<float> yarn_inv_freq(const RopeConfig& rope, int64_t dim) {
  const double base = rope.theta, orig = static_cast<double>(rope.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return (static_cast<double>(dim) * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(base));
  };
  double low = correction_dim(rope.beta_fast), high = correction_dim(rope.beta_slow);
  if (rope.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float pos_freq = std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(dim));
    const float extrapolation = 1.0f / pos_freq;
    const float interpolation = 1.0f / (static_cast<float>(rope.factor) * pos_freq);
    float ramp = (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low);
    ramp = std::min(1.0f, std::max(0.0f, ramp));
    const float extrapolation_weight = 1.0f - ramp;
    inv[static_cast<size_t>(i)] = interpolation * (1.0f - extrapolation_weight) + extrapolation * extrapolation_weight;
  }
  return inv;
}
}  // namespace

std::vector<float> rotary_inv_freq(const RopeConfig& rope, int64_t dim) {
  if (rope.type == "yarn") return yarn_inv_freq(rope, dim);
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    // transformers computes this in float32: base ** (2i / dim) then its reciprocal.
    float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    float f = 1.0f / std::pow(static_cast<float>(rope.theta), exponent);
    if (rope.type == "longrope") {
      // transformers: 1 / (ext_factor * base ** (2i / dim)) in float32, with the short factors for
      // sequences up to original_max_position_embeddings. (The long factors, which transformers
      // switches to for a whole sequence once it is longer than that, are not used: a KV cache
      // holds keys rotated with the short ones. Exact up to original_max_position_embeddings.)
      f = 1.0f / (static_cast<float>(rope.short_factor[static_cast<size_t>(i)]) *
                  std::pow(static_cast<float>(rope.theta), exponent));
    } else if (rope.type == "linear") {
      f = f / static_cast<float>(rope.factor);
    } else if (rope.type == "llama3") {
      // Long wavelengths are slowed by `factor`, short ones kept, and the band between blended.
      double low_wavelen = static_cast<double>(rope.original_max_position_embeddings) / rope.low_freq_factor;
      double high_wavelen = static_cast<double>(rope.original_max_position_embeddings) / rope.high_freq_factor;
      double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / rope.factor);
      } else if (wavelen >= high_wavelen) {
        double smooth = (static_cast<double>(rope.original_max_position_embeddings) / wavelen - rope.low_freq_factor) /
                        (rope.high_freq_factor - rope.low_freq_factor);
        f = static_cast<float>((1 - smooth) * f / rope.factor + smooth * f);
      }
    }
    if (!rope.freq_factors.empty()) f = f / static_cast<float>(rope.freq_factors[static_cast<size_t>(i)]);
    inv[static_cast<size_t>(i)] = f;
  }
  return inv;
}

RotaryEmbedding make_rotary(const ModelConfig& config, Backend& backend) {
  return make_rotary(config.rope, config.rotary_dim(), backend);
}

RotaryEmbedding make_rotary(const RopeConfig& rope, int64_t rotary_dim, Backend& backend) {
  std::vector<float> inv = rotary_inv_freq(rope, rotary_dim);
  RotaryEmbedding r;
  r.rotary_dim = rotary_dim;
  r.inv_freq = backend.upload(Tensor::from_floats(inv, {static_cast<int64_t>(inv.size())}), DType::F32);
  return r;
}

Tensor Activations::get(int slot, int64_t rows, int64_t cols) {
  if (static_cast<size_t>(slot) >= buffers_.size()) buffers_.resize(static_cast<size_t>(slot) + 1);
  Tensor& buf = buffers_[static_cast<size_t>(slot)];
  int64_t need = rows * cols;
  if (!buf.defined() || buf.numel() < need) {
    int64_t grow = std::max<int64_t>(need, buf.defined() ? buf.numel() * 2 : need);
    buf = backend_.empty({grow}, backend_.activation_dtype());
  }
  return Tensor(buf.buffer(), 0, buf.dtype(), {rows, cols});
}

}  // namespace vllm

namespace vllm {

void CausalLM::embed_tokens(Tensor& out, const Tensor& ids, const Tensor& table) {
  if (backend_.tp_size() == 1) {
    backend_.embedding(out, ids, table);
    return;
  }
  // Each rank writes its vocabulary's rows and zeros elsewhere; the sum adds exact zeros, so
  // every token's row comes out as the one rank holding it wrote it.
  backend_.vocab_parallel_embedding(out, ids, table, vocab_begin_);
  backend_.all_reduce(out);
}

Tensor CausalLM::gather_logits(const Tensor& local, Tensor full) {
  if (backend_.tp_size() == 1) return local;
  backend_.gather_columns(full, local);
  return backend_.tp_rank() == 0 ? full : local;
}

}  // namespace vllm
