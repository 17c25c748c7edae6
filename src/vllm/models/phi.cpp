// PhiForCausalLM (Phi-1, Phi-1.5, Phi-2): one LayerNorm per layer feeding attention and MLP in
// parallel, both added to the residual; partial rotary; biases everywhere; untied LM head with bias.
#include <cmath>

#include "vllm/core/error.h"
#include "vllm/models/architectures.h"
#include "vllm/models/layers.h"

namespace vllm {

namespace {

std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

void check_phi_config(const ModelConfig& c) {
  if (c.hidden_act != "gelu_new")
    throw Error("config.json: hidden_act '" + c.hidden_act + "' is not supported for PhiForCausalLM (supported: gelu_new)",
                ErrorKind::kUnsupported);
  if (c.raw.value("qk_layernorm", false))
    throw Error("config.json: qk_layernorm=true is not supported for PhiForCausalLM", ErrorKind::kUnsupported);
}

std::vector<ParamSpec> phi_parameters(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  std::vector<ParamSpec> out{{"model.embed_tokens.weight", {c.vocab_size, H}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string p = layer_prefix(i);
    auto add = [&](const std::string& n, Shape s) { out.push_back({p + n, std::move(s)}); };
    add("self_attn.q_proj.weight", {q, H});
    add("self_attn.q_proj.bias", {q});
    add("self_attn.k_proj.weight", {kv, H});
    add("self_attn.k_proj.bias", {kv});
    add("self_attn.v_proj.weight", {kv, H});
    add("self_attn.v_proj.bias", {kv});
    add("self_attn.dense.weight", {H, q});
    add("self_attn.dense.bias", {H});
    add("mlp.fc1.weight", {I, H});
    add("mlp.fc1.bias", {I});
    add("mlp.fc2.weight", {H, I});
    add("mlp.fc2.bias", {H});
    add("input_layernorm.weight", {H});
    add("input_layernorm.bias", {H});
  }
  out.push_back({"model.final_layernorm.weight", {H}});
  out.push_back({"model.final_layernorm.bias", {H}});
  if (c.tie_word_embeddings) {
    out.push_back({"lm_head.bias", {c.vocab_size}});
  } else {
    out.push_back({"lm_head.weight", {c.vocab_size, H}});
    out.push_back({"lm_head.bias", {c.vocab_size}});
  }
  return out;
}

// Megatron's split (distributed/tensor_shard.h): q/k/v and fc1 by output rows, dense and fc2 by
// input columns with their biases on rank 0, the embedding and the LM head (and its bias) by vocabulary.
std::map<std::string, ShardRule> phi_shard_rules(const ModelConfig& c) {
  const int64_t nh = c.num_attention_heads, kv = c.num_key_value_heads, hd = c.head_dim, I = c.intermediate_size;
  std::map<std::string, ShardRule> r;
  r["model.embed_tokens.weight"] = vocab_rule(c);
  if (!c.tie_word_embeddings) r["lm_head.weight"] = vocab_rule(c);
  r["lm_head.bias"] = vocab_rule(c);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = layer_prefix(i);
    for (const char* part : {"weight", "bias"}) {
      r[p + "self_attn.q_proj." + part] = split_rule(0, nh, hd);
      r[p + "self_attn.k_proj." + part] = split_rule(0, kv, hd);
      r[p + "self_attn.v_proj." + part] = split_rule(0, kv, hd);
      r[p + "mlp.fc1." + part] = split_rule(0, I);
    }
    r[p + "self_attn.dense.weight"] = split_rule(1, nh, hd);
    r[p + "self_attn.dense.bias"] = first_rank_rule();
    r[p + "mlp.fc2.weight"] = split_rule(1, I);
    r[p + "mlp.fc2.bias"] = first_rank_rule();
  }
  return r;
}

class PhiModel final : public CausalLM {
 public:
  PhiModel(const ModelConfig& c, const WeightStore& store, Backend& backend) : CausalLM(c, backend), acts_(backend) {
    check_phi_config(c);
    WeightLoader w(store, backend);
    const ModelConfig& s = shard_;  // this rank's heads, MLP width and vocabulary (phi_shard_rules)
    const int64_t H = s.hidden_size, I = s.intermediate_size, hd = s.head_dim;
    const int64_t q = s.num_attention_heads * hd, kv = s.num_key_value_heads * hd;
    embed_ = w.embedding("model.embed_tokens.weight", {s.vocab_size, H});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      std::string p = layer_prefix(i);
      Layer L;
      L.norm_w = w.vector(p + "input_layernorm.weight", H);
      L.norm_b = w.vector(p + "input_layernorm.bias", H);
      L.qkv = w.linear({{p + "self_attn.q_proj.weight", {q, H}},
                        {p + "self_attn.k_proj.weight", {kv, H}},
                        {p + "self_attn.v_proj.weight", {kv, H}}},
                       {{p + "self_attn.q_proj.bias", {q}},
                        {p + "self_attn.k_proj.bias", {kv}},
                        {p + "self_attn.v_proj.bias", {kv}}});
      L.dense = w.linear({{p + "self_attn.dense.weight", {H, q}}}, {{p + "self_attn.dense.bias", {H}}});
      L.fc1 = w.linear({{p + "mlp.fc1.weight", {I, H}}}, {{p + "mlp.fc1.bias", {I}}});
      L.fc2 = w.linear({{p + "mlp.fc2.weight", {H, I}}}, {{p + "mlp.fc2.bias", {H}}});
      layers_.push_back(std::move(L));
    }
    final_w_ = w.vector("model.final_layernorm.weight", H);
    final_b_ = w.vector("model.final_layernorm.bias", H);
    const char* head = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    lm_head_ = w.linear({{head, {s.vocab_size, H}}}, {{"lm_head.bias", {s.vocab_size}}});
    rope_ = make_rotary(c, backend);
    set_weight_bytes(w.bytes(), embed_);
  }

  Tensor forward(const ForwardInputs& in, std::vector<KVCacheLayer>& kv) override {
    const ModelConfig& c = shard_;
    const int64_t T = in.num_tokens, H = c.hidden_size, I = c.intermediate_size;
    const AttentionShape shape = attention_shape();
    const float eps = static_cast<float>(c.norm_eps);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    Backend& b = backend_;

    Tensor hidden = acts_.get(0, T, H);
    Tensor x = acts_.get(1, T, H);
    Tensor qkv = acts_.get(2, T, shape.qkv_width());
    Tensor attn = acts_.get(3, T, c.num_attention_heads * c.head_dim);
    Tensor attn_out = acts_.get(4, T, H);
    Tensor up = acts_.get(5, T, I);
    Tensor mlp_out = acts_.get(6, T, H);

    embed_tokens(hidden, in.token_ids, embed_);
    for (size_t li = 0; li < layers_.size(); ++li) {
      Layer& L = layers_[li];
      // x = LN(hidden) feeds both the attention (qkv) and the MLP (fc1): one fused op.
      b.layer_norm_qkv_mlp_up(x, qkv, up, hidden, L.norm_w, L.norm_b, eps, *L.qkv, *L.fc1);
      b.rotary(qkv, in.positions, rope_, shape);
      b.attention(attn, qkv, kv[li], in, shape, scale);
      b.linear(attn_out, attn, *L.dense);
      // hidden += attn_out + fc2(up): attention and MLP both read x, their outputs summed in.
      if (b.tp_size() == 1) {
        b.linear_add_residual(hidden, mlp_out, up, *L.fc2, attn_out);
      } else {  // dense and fc2 are row-parallel: one all-reduce of their summed partial outputs
        b.linear(mlp_out, up, *L.fc2);
        b.add(mlp_out, mlp_out, attn_out);
        b.all_reduce(mlp_out);
        b.add(hidden, hidden, mlp_out);
      }
    }
    const int64_t R = in.logits_indices.numel();
    Tensor selected = acts_.get(7, R, H);
    b.gather_rows(selected, hidden, in.logits_indices);
    Tensor normed = acts_.get(8, R, H);
    b.layer_norm(normed, selected, final_w_, final_b_, eps);
    Tensor logits = acts_.get(9, R, c.vocab_size);  // this rank's share of the vocabulary
    b.linear(logits, normed, *lm_head_);
    return gather_logits(logits, acts_.get(10, R, config_.vocab_size));
  }

 private:
  struct Layer {
    Tensor norm_w, norm_b;
    std::shared_ptr<LinearWeight> qkv, dense, fc1, fc2;
  };
  Activations acts_;
  Tensor embed_, final_w_, final_b_;
  std::vector<Layer> layers_;
  std::shared_ptr<LinearWeight> lm_head_;
  RotaryEmbedding rope_;
};

}  // namespace

std::vector<Architecture> phi_architectures() {
  return {{"PhiForCausalLM", phi_parameters, [](const ModelConfig& c, const WeightStore& s, Backend& b) {
             return std::unique_ptr<CausalLM>(std::make_unique<PhiModel>(c, s, b));
           },
           nullptr,  // every layer attends to the whole sequence
           phi_shard_rules}};
}

}  // namespace vllm
