#include "vllm/models/layers.h"

#include <cmath>
#include <cstring>

#include "vllm/core/error.h"

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
  Tensor w = concat_rows(weights);
  auto lw = backend_.prepare_linear(w, b);
  bytes_ += lw->bytes();
  return lw;
}

std::shared_ptr<LinearWeight> WeightLoader::linear_from(const std::vector<ParamSpec>& weights,
                                                        const std::vector<ParamSpec>& biases) {
  auto pairs = [](const std::vector<ParamSpec>& specs) {
    std::vector<std::pair<std::string, Shape>> out;
    for (const auto& s : specs) out.emplace_back(s.name, s.shape);
    return out;
  };
  return linear(pairs(weights), pairs(biases));
}

std::shared_ptr<ExpertWeights> WeightLoader::experts(const ParamSpec& gate_up, const ParamSpec& down) {
  auto e = backend_.prepare_experts(store_.get(gate_up.name, gate_up.shape), store_.get(down.name, down.shape));
  bytes_ += e->bytes();
  return e;
}

Tensor WeightLoader::vector(const std::string& name, int64_t size) {
  Tensor t = backend_.prepare_vector(store_.get(name, {size}));
  bytes_ += t.nbytes();
  return t;
}

Tensor WeightLoader::embedding(const std::string& name, const Shape& shape) {
  Tensor t = backend_.prepare_embedding(store_.get(name, shape));
  bytes_ += t.nbytes();
  return t;
}

std::vector<float> rotary_inv_freq(const ModelConfig& config) {
  const RopeConfig& rope = config.rope;
  int64_t dim = config.rotary_dim();
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
  std::vector<float> inv = rotary_inv_freq(config);
  RotaryEmbedding r;
  r.rotary_dim = config.rotary_dim();
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
