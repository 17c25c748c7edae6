// Building blocks shared by the architecture files: weight loading helpers and the attention
// block (fused QKV projection, optional per-head norm, rotary, paged attention, output projection).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vllm/models/model.h"

namespace vllm {

// Loads named tensors, checks shapes against the config, and concatenates along rows
// (q/k/v into one QKV matrix, gate/up into one), then hands them to the backend.
class WeightLoader {
 public:
  WeightLoader(const WeightStore& store, Backend& backend) : store_(store), backend_(backend) {}

  Tensor host(const std::string& name, const Shape& shape) const { return store_.get(name, shape); }
  // Concatenation of several [rows_i, cols] tensors along rows, as one host tensor.
  Tensor concat_rows(const std::vector<std::pair<std::string, Shape>>& parts) const;
  std::shared_ptr<LinearWeight> linear(const std::vector<std::pair<std::string, Shape>>& weights,
                                       const std::vector<std::pair<std::string, Shape>>& biases = {});
  // The same, from a table of parameter specs (names and shapes as the architecture lists them).
  std::shared_ptr<LinearWeight> linear_from(const std::vector<ParamSpec>& weights, const std::vector<ParamSpec>& biases = {});
  // A mixture-of-experts layer's E experts: gate_up [E, 2I, H] and down [E, H, I], each either one
  // fused tensor or the per-expert matrices in order (gate_0, up_0, gate_1, ... and down_0, ...).
  std::shared_ptr<ExpertWeights> experts(const std::vector<ParamSpec>& gate_up, const std::vector<ParamSpec>& down,
                                         int64_t num_experts);
  // The same from host tensors already in that layout, with biases and activation in `options`.
  std::shared_ptr<ExpertWeights> experts(const Tensor& gate_up, const Tensor& down, const ExpertOptions& options);
  Tensor vector(const std::string& name, int64_t size);
  // The same plus `offset` on every element, added in float32 (Gemma's (1 + w) norm scales).
  Tensor vector(const std::string& name, int64_t size, float offset);
  Tensor embedding(const std::string& name, const Shape& shape);
  size_t bytes() const { return bytes_; }

 private:
  const WeightStore& store_;
  Backend& backend_;
  size_t bytes_ = 0;
};

// inv_freq for the rotary embedding, with linear, llama3, longrope or yarn scaling folded in (the
// attention factor of longrope and yarn is the caller's: it scales q·k by its square).
std::vector<float> rotary_inv_freq(const ModelConfig& config);
std::vector<float> rotary_inv_freq(const RopeConfig& rope, int64_t rotary_dim);
RotaryEmbedding make_rotary(const ModelConfig& config, Backend& backend);
// The rotary embedding of one rope (Gemma 3's local layers have their own).
RotaryEmbedding make_rotary(const RopeConfig& rope, int64_t rotary_dim, Backend& backend);

// Per-step scratch activations, reallocated only when a step has more tokens than any before.
class Activations {
 public:
  explicit Activations(Backend& backend) : backend_(backend) {}
  // A [rows, cols] tensor for `slot`, valid until the next call with the same slot.
  Tensor get(int slot, int64_t rows, int64_t cols);

 private:
  Backend& backend_;
  std::vector<Tensor> buffers_;
};

}  // namespace vllm
