#include "vllm/models/llama_like.h"

#include <algorithm>
#include <cmath>

#include "vllm/core/error.h"

namespace vllm {

bool MoeOptions::sparse(int64_t layer) const {
  return num_experts > 0 && std::find(dense_layers.begin(), dense_layers.end(), layer) == dense_layers.end();
}

// The one table of checkpoint names of the llama-like families.
LlamaLikeLayerTensors llama_like_layer(const ModelConfig& c, const LlamaLikeOptions& o, int64_t layer) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  LlamaLikeLayerTensors t;
  t.input_norm = {{p + "input_layernorm.weight", {H}}};
  t.post_norm = {{p + "post_attention_layernorm.weight", {H}}};
  if (o.fused_qkv) {
    t.qkv = {{p + "self_attn.qkv_proj.weight", {q + 2 * kv, H}}};
    if (o.qkv_bias) t.qkv_bias = {{p + "self_attn.qkv_proj.bias", {q + 2 * kv}}};
  } else {
    t.qkv = {{p + "self_attn.q_proj.weight", {q, H}},
             {p + "self_attn.k_proj.weight", {kv, H}},
             {p + "self_attn.v_proj.weight", {kv, H}}};
    if (o.qkv_bias)
      t.qkv_bias = {{p + "self_attn.q_proj.bias", {q}}, {p + "self_attn.k_proj.bias", {kv}}, {p + "self_attn.v_proj.bias", {kv}}};
  }
  t.o = {{p + "self_attn.o_proj.weight", {H, q}}};
  if (o.o_bias) t.o_bias = {{p + "self_attn.o_proj.bias", {H}}};
  if (o.qk_norm) {
    t.q_norm = {{p + "self_attn.q_norm.weight", {hd}}};
    t.k_norm = {{p + "self_attn.k_norm.weight", {hd}}};
  }
  if (o.moe.sparse(layer)) {
    const int64_t E = o.moe.num_experts, EI = o.moe.intermediate_size;
    t.router = {{p + "mlp.gate.weight", {E, H}}};
    t.experts_gate_up = {{p + "mlp.experts.gate_up_proj", {E, 2 * EI, H}}};
    t.experts_down = {{p + "mlp.experts.down_proj", {E, H, EI}}};
    const MoeOptions::PerExpertNames& n = o.moe.per_expert;
    t.per_expert_router = {{p + n.router, {E, H}}};
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = p + n.expert_prefix + std::to_string(e) + ".";
      t.per_expert_gate_up.push_back({ep + n.gate + ".weight", {EI, H}});
      t.per_expert_gate_up.push_back({ep + n.up + ".weight", {EI, H}});
      t.per_expert_down.push_back({ep + n.down + ".weight", {H, EI}});
    }
  } else if (o.fused_gate_up) {
    t.gate_up = {{p + "mlp.gate_up_proj.weight", {2 * I, H}}};
    if (o.mlp_bias) t.gate_up_bias = {{p + "mlp.gate_up_proj.bias", {2 * I}}};
  } else {
    t.gate_up = {{p + "mlp.gate_proj.weight", {I, H}}, {p + "mlp.up_proj.weight", {I, H}}};
    if (o.mlp_bias) t.gate_up_bias = {{p + "mlp.gate_proj.bias", {I}}, {p + "mlp.up_proj.bias", {I}}};
  }
  if (!o.moe.sparse(layer)) {
    t.down = {{p + "mlp.down_proj.weight", {H, I}}};
    if (o.mlp_bias) t.down_bias = {{p + "mlp.down_proj.bias", {H}}};
  }
  return t;
}

namespace {

const char* kEmbed = "model.embed_tokens.weight";
const char* kFinalNorm = "model.norm.weight";
const char* kLmHead = "lm_head.weight";

class LlamaLikeModel final : public CausalLM {
 public:
  LlamaLikeModel(const ModelConfig& c, const WeightStore& store, Backend& backend, const LlamaLikeOptions& o)
      : CausalLM(c, backend), opts_(o), acts_(backend) {
    if (c.hidden_act != "silu")
      throw Error("config.json: hidden_act '" + c.hidden_act + "' is not supported for " + c.architecture +
                      " (supported: silu)",
                  ErrorKind::kUnsupported);
    WeightLoader w(store, backend);
    const int64_t H = c.hidden_size, hd = c.head_dim;
    embed_ = w.embedding(kEmbed, {c.vocab_size, H});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const LlamaLikeLayerTensors t = llama_like_layer(c, o, i);
      Layer L;
      L.input_norm = w.vector(t.input_norm[0].name, H);
      L.post_norm = w.vector(t.post_norm[0].name, H);
      L.qkv = w.linear_from(t.qkv, t.qkv_bias);
      L.o = w.linear_from(t.o, t.o_bias);
      if (o.qk_norm) {
        L.q_norm = w.vector(t.q_norm[0].name, hd);
        L.k_norm = w.vector(t.k_norm[0].name, hd);
      }
      if (!t.router.empty() && store.contains(t.experts_gate_up[0].name)) {
        L.router = w.linear_from(t.router);
        L.experts = w.experts(t.experts_gate_up, t.experts_down, o.moe.num_experts);
      } else if (!t.router.empty()) {
        L.router = w.linear_from(t.per_expert_router);
        L.experts = w.experts(t.per_expert_gate_up, t.per_expert_down, o.moe.num_experts);
      } else {
        L.gate_up = w.linear_from(t.gate_up, t.gate_up_bias);
        L.down = w.linear_from(t.down, t.down_bias);
      }
      layers_.push_back(std::move(L));
    }
    final_norm_ = w.vector(kFinalNorm, H);
    lm_head_ = w.linear({{c.tie_word_embeddings ? kEmbed : kLmHead, {c.vocab_size, H}}});
    rope_ = make_rotary(c, backend);
    // A rope attention factor (longrope, yarn) scales cos and sin, so q·k by its square.
    const float af = static_cast<float>(c.rope.attention_factor);
    scale_ = af * af / std::sqrt(static_cast<float>(hd));
    routing_.top_k = o.moe.top_k;
    routing_.renormalize = o.moe.renormalize;
    size_t unread = 0;  // a token reads top_k of the num_experts experts of each sparse layer
    for (const Layer& L : layers_)
      if (L.experts)
        unread += L.experts->bytes() / static_cast<size_t>(o.moe.num_experts) *
                  static_cast<size_t>(o.moe.num_experts - o.moe.top_k);
    set_weight_bytes(w.bytes(), embed_, unread);
  }

  Tensor forward(const ForwardInputs& in, std::vector<KVCacheLayer>& kv) override {
    const ModelConfig& c = config_;
    const int64_t T = in.num_tokens, H = c.hidden_size, I = c.intermediate_size;
    const AttentionShape shape = attention_shape();
    const float eps = static_cast<float>(c.norm_eps);
    Backend& b = backend_;

    Tensor residual = acts_.get(0, T, H);
    Tensor x = acts_.get(1, T, H);
    Tensor qkv = acts_.get(2, T, shape.qkv_width());
    Tensor attn = acts_.get(3, T, c.num_attention_heads * c.head_dim);
    Tensor proj = acts_.get(4, T, H);

    b.embedding(residual, in.token_ids, embed_);
    b.rms_norm(x, residual, layers_[0].input_norm, eps);
    for (size_t li = 0; li < layers_.size(); ++li) {
      Layer& L = layers_[li];
      if (li > 0) b.add_rms_norm(x, residual, proj, L.input_norm, eps);
      b.linear(qkv, x, *L.qkv);
      if (opts_.qk_norm) b.qk_rms_norm(qkv, L.q_norm, L.k_norm, shape, eps);
      b.rotary(qkv, in.positions, rope_, shape);
      b.attention(attn, qkv, kv[li], in, shape, scale_);
      b.linear(proj, attn, *L.o);
      b.add_rms_norm(x, residual, proj, L.post_norm, eps);
      if (L.experts) {
        b.moe(proj, x, *L.router, *L.experts, routing_);
      } else {
        Tensor gate_up = acts_.get(5, T, 2 * I);
        Tensor act = acts_.get(6, T, I);
        b.linear(gate_up, x, *L.gate_up);
        b.silu_and_mul(act, gate_up);
        b.linear(proj, act, *L.down);
      }
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
    std::shared_ptr<LinearWeight> qkv, o, gate_up, down, router;
    std::shared_ptr<ExpertWeights> experts;
  };
  LlamaLikeOptions opts_;
  Activations acts_;
  Tensor embed_, final_norm_;
  std::vector<Layer> layers_;
  std::shared_ptr<LinearWeight> lm_head_;
  RotaryEmbedding rope_;
  float scale_ = 1.0f;
  MoeRouting routing_;
};

}  // namespace

std::vector<ParamSpec> llama_like_parameters(const ModelConfig& c, const LlamaLikeOptions& o) {
  std::vector<ParamSpec> out{{kEmbed, {c.vocab_size, c.hidden_size}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    LlamaLikeLayerTensors t = llama_like_layer(c, o, i);
    for (auto* group : {&t.qkv, &t.qkv_bias, &t.o, &t.o_bias, &t.q_norm, &t.k_norm, &t.router, &t.experts_gate_up,
                        &t.experts_down, &t.gate_up, &t.gate_up_bias, &t.down, &t.down_bias, &t.input_norm,
                        &t.post_norm})
      out.insert(out.end(), group->begin(), group->end());
  }
  out.push_back({kFinalNorm, {c.hidden_size}});
  if (!c.tie_word_embeddings) out.push_back({kLmHead, {c.vocab_size, c.hidden_size}});
  return out;
}

std::unique_ptr<CausalLM> create_llama_like(const ModelConfig& c, const WeightStore& store, Backend& backend,
                                            const LlamaLikeOptions& o) {
  return std::make_unique<LlamaLikeModel>(c, store, backend, o);
}

Architecture llama_like_architecture(const std::string& name, LlamaLikeOptionsFn options) {
  return {name, [options](const ModelConfig& c) { return llama_like_parameters(c, options(c)); },
          [options](const ModelConfig& c, const WeightStore& s, Backend& b) {
            return create_llama_like(c, s, b, options(c));
          }};
}

}  // namespace vllm
