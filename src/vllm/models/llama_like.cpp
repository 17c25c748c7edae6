#include "vllm/models/llama_like.h"

#include <cmath>

#include "vllm/core/error.h"

namespace vllm {

namespace {

std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

class LlamaLikeModel final : public CausalLM {
 public:
  LlamaLikeModel(const ModelConfig& c, const WeightStore& store, Backend& backend, const LlamaLikeOptions& o)
      : CausalLM(c, backend), opts_(o), acts_(backend) {
    if (c.hidden_act != "silu")
      throw Error("config.json: hidden_act '" + c.hidden_act + "' is not supported for " + c.architecture +
                      " (supported: silu)",
                  ErrorKind::kUnsupported);
    WeightLoader w(store, backend);
    const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
    const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
    embed_ = w.embedding("model.embed_tokens.weight", {c.vocab_size, H});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      std::string p = layer_prefix(i);
      Layer L;
      L.input_norm = w.vector(p + "input_layernorm.weight", H);
      L.post_norm = w.vector(p + "post_attention_layernorm.weight", H);
      std::vector<std::pair<std::string, Shape>> qkv_b;
      if (o.qkv_bias)
        qkv_b = {{p + "self_attn.q_proj.bias", {q}}, {p + "self_attn.k_proj.bias", {kv}}, {p + "self_attn.v_proj.bias", {kv}}};
      L.qkv = w.linear({{p + "self_attn.q_proj.weight", {q, H}},
                        {p + "self_attn.k_proj.weight", {kv, H}},
                        {p + "self_attn.v_proj.weight", {kv, H}}},
                       qkv_b);
      L.o = w.linear({{p + "self_attn.o_proj.weight", {H, q}}},
                     o.o_bias ? std::vector<std::pair<std::string, Shape>>{{p + "self_attn.o_proj.bias", {H}}}
                              : std::vector<std::pair<std::string, Shape>>{});
      if (o.qk_norm) {
        L.q_norm = w.vector(p + "self_attn.q_norm.weight", hd);
        L.k_norm = w.vector(p + "self_attn.k_norm.weight", hd);
      }
      std::vector<std::pair<std::string, Shape>> gu_b, down_b;
      if (o.mlp_bias) {
        gu_b = {{p + "mlp.gate_proj.bias", {I}}, {p + "mlp.up_proj.bias", {I}}};
        down_b = {{p + "mlp.down_proj.bias", {H}}};
      }
      L.gate_up = w.linear({{p + "mlp.gate_proj.weight", {I, H}}, {p + "mlp.up_proj.weight", {I, H}}}, gu_b);
      L.down = w.linear({{p + "mlp.down_proj.weight", {H, I}}}, down_b);
      layers_.push_back(std::move(L));
    }
    final_norm_ = w.vector("model.norm.weight", H);
    const char* head = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    lm_head_ = w.linear({{head, {c.vocab_size, H}}});
    rope_ = make_rotary(c, backend);
    weight_bytes_ = w.bytes();
  }

  Tensor forward(const ForwardInputs& in, std::vector<KVCacheLayer>& kv) override {
    const ModelConfig& c = config_;
    const int64_t T = in.num_tokens, H = c.hidden_size, I = c.intermediate_size;
    const AttentionShape shape = attention_shape();
    const float eps = static_cast<float>(c.norm_eps);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    Backend& b = backend_;

    Tensor residual = acts_.get(0, T, H);
    Tensor x = acts_.get(1, T, H);
    Tensor qkv = acts_.get(2, T, shape.qkv_width());
    Tensor attn = acts_.get(3, T, c.num_attention_heads * c.head_dim);
    Tensor proj = acts_.get(4, T, H);
    Tensor gate_up = acts_.get(5, T, 2 * I);
    Tensor act = acts_.get(6, T, I);

    b.embedding(residual, in.token_ids, embed_);
    b.rms_norm(x, residual, layers_[0].input_norm, eps);
    for (size_t li = 0; li < layers_.size(); ++li) {
      Layer& L = layers_[li];
      if (li > 0) b.add_rms_norm(x, residual, proj, L.input_norm, eps);
      b.linear(qkv, x, *L.qkv);
      if (opts_.qk_norm) b.qk_rms_norm(qkv, L.q_norm, L.k_norm, shape, eps);
      b.rotary(qkv, in.positions, rope_, shape);
      b.attention(attn, qkv, kv[li], in, shape, scale);
      b.linear(proj, attn, *L.o);
      b.add_rms_norm(x, residual, proj, L.post_norm, eps);
      b.linear(gate_up, x, *L.gate_up);
      b.silu_and_mul(act, gate_up);
      b.linear(proj, act, *L.down);
    }
    b.add_rms_norm(x, residual, proj, final_norm_, eps);
    const int64_t R = in.logits_indices.numel();
    Tensor selected = acts_.get(7, R, H);
    b.gather_rows(selected, x, in.logits_indices);
    Tensor logits = acts_.get(8, R, c.vocab_size);
    b.linear(logits, selected, *lm_head_);
    return b.download_f32(logits);
  }

 private:
  struct Layer {
    Tensor input_norm, post_norm, q_norm, k_norm;
    std::shared_ptr<LinearWeight> qkv, o, gate_up, down;
  };
  LlamaLikeOptions opts_;
  Activations acts_;
  Tensor embed_, final_norm_;
  std::vector<Layer> layers_;
  std::shared_ptr<LinearWeight> lm_head_;
  RotaryEmbedding rope_;
};

}  // namespace

std::vector<ParamSpec> llama_like_parameters(const ModelConfig& c, const LlamaLikeOptions& o) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  std::vector<ParamSpec> out{{"model.embed_tokens.weight", {c.vocab_size, H}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string p = layer_prefix(i);
    auto add = [&](const std::string& n, Shape s) { out.push_back({p + n, std::move(s)}); };
    add("self_attn.q_proj.weight", {q, H});
    if (o.qkv_bias) add("self_attn.q_proj.bias", {q});
    add("self_attn.k_proj.weight", {kv, H});
    if (o.qkv_bias) add("self_attn.k_proj.bias", {kv});
    add("self_attn.v_proj.weight", {kv, H});
    if (o.qkv_bias) add("self_attn.v_proj.bias", {kv});
    add("self_attn.o_proj.weight", {H, q});
    if (o.o_bias) add("self_attn.o_proj.bias", {H});
    if (o.qk_norm) {
      add("self_attn.q_norm.weight", {hd});
      add("self_attn.k_norm.weight", {hd});
    }
    add("mlp.gate_proj.weight", {I, H});
    if (o.mlp_bias) add("mlp.gate_proj.bias", {I});
    add("mlp.up_proj.weight", {I, H});
    if (o.mlp_bias) add("mlp.up_proj.bias", {I});
    add("mlp.down_proj.weight", {H, I});
    if (o.mlp_bias) add("mlp.down_proj.bias", {H});
    add("input_layernorm.weight", {H});
    add("post_attention_layernorm.weight", {H});
  }
  out.push_back({"model.norm.weight", {H}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, H}});
  return out;
}

std::unique_ptr<CausalLM> create_llama_like(const ModelConfig& c, const WeightStore& store, Backend& backend,
                                            const LlamaLikeOptions& o) {
  return std::make_unique<LlamaLikeModel>(c, store, backend, o);
}

}  // namespace vllm
