#include "vllm/models/llama_like.h"

#include <algorithm>
#include <cmath>

#include "vllm/core/error.h"

namespace vllm {

bool MoeOptions::sparse(int64_t layer) const {
  return num_experts > 0 && std::find(dense_layers.begin(), dense_layers.end(), layer) == dense_layers.end();
}

bool LlamaLikeOptions::sliding(int64_t layer) const {
  return layer < static_cast<int64_t>(sliding_layers.size()) && sliding_layers[static_cast<size_t>(layer)];
}

std::vector<bool> sliding_layer_pattern(const ModelConfig& c, int64_t pattern) {
  std::vector<bool> out;
  if (c.raw.contains("layer_types") && !c.raw.at("layer_types").is_null()) {
    const auto& types = c.raw.at("layer_types");
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_hidden_layers)
      throw Error("config.json: key 'layer_types' must list one type per layer (" + std::to_string(c.num_hidden_layers) +
                      ")",
                  ErrorKind::kModelLoad);
    for (const auto& t : types) {
      const std::string name = t.is_string() ? t.get<std::string>() : t.dump();
      if (name != "sliding_attention" && name != "full_attention")
        throw Error("config.json: layer type '" + name + "' is not supported for " + c.architecture +
                        " (supported: sliding_attention, full_attention)",
                    ErrorKind::kUnsupported);
      out.push_back(name == "sliding_attention");
    }
    return out;
  }
  if (pattern <= 0) throw Error("config.json: key 'sliding_window_pattern' must be positive", ErrorKind::kModelLoad);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) out.push_back((i + 1) % pattern != 0);
  return out;
}

int64_t sliding_window_size(const ModelConfig& c) {
  const auto it = c.raw.find("sliding_window");
  if (it == c.raw.end() || !it->is_number_integer() || it->get<int64_t>() <= 0)
    throw Error("config.json: key 'sliding_window' must be a positive integer for " + c.architecture +
                    " (it has sliding-window layers)",
                ErrorKind::kModelLoad);
  return it->get<int64_t>();
}

// The one table of checkpoint names of the llama-like families.
LlamaLikeLayerTensors llama_like_layer(const ModelConfig& c, const LlamaLikeOptions& o, int64_t layer) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  LlamaLikeLayerTensors t;
  t.input_norm = {{p + "input_layernorm.weight", {H}}};
  if (o.sandwich_norms) {
    t.attn_out_norm = {{p + "post_attention_layernorm.weight", {H}}};
    t.post_norm = {{p + "pre_feedforward_layernorm.weight", {H}}};
    t.mlp_out_norm = {{p + "post_feedforward_layernorm.weight", {H}}};
  } else {
    t.post_norm = {{p + "post_attention_layernorm.weight", {H}}};
  }
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
  if (o.attention_sinks) t.sinks = {{p + "self_attn.sinks", {c.num_attention_heads}}};
  if (o.moe.sparse(layer) && o.moe.gpt_oss_layout) {
    const int64_t E = o.moe.num_experts, EI = o.moe.intermediate_size;
    t.router = {{p + "mlp.router.weight", {E, H}}};
    t.router_bias = {{p + "mlp.router.bias", {E}}};
    t.experts_gate_up = {{p + "mlp.experts.gate_up_proj", {E, H, 2 * EI}}};
    t.experts_gate_up_bias = {{p + "mlp.experts.gate_up_proj_bias", {E, 2 * EI}}};
    t.experts_down = {{p + "mlp.experts.down_proj", {E, EI, H}}};
    t.experts_down_bias = {{p + "mlp.experts.down_proj_bias", {E, H}}};
  } else if (o.moe.sparse(layer)) {
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

// GPT-OSS stores its experts as x · W ([E, in, out]) with gate and up interleaved column by column
// (gate i at column 2i, up i at 2i + 1). ExpertWeights takes nn.Linear rows ([E, out, in], gate
// rows then up rows): t [E, R, C] becomes [E, C, R], column c landing on row c, or with
// `deinterleave` on row c / 2 (even c) or C / 2 + c / 2 (odd c). Element moves only: the values
// stay bit for bit.
template <typename T>
void columns_to_rows(const T* src, T* dst, int64_t E, int64_t R, int64_t C, bool deinterleave) {
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t row = deinterleave ? (c % 2 == 0 ? 0 : C / 2) + c / 2 : c;
        dst[(e * C + row) * R + r] = src[(e * R + r) * C + c];
      }
}

Tensor experts_columns_to_rows(const Tensor& t, bool deinterleave) {
  const int64_t E = t.size(0), R = t.size(1), C = t.size(2);
  Tensor out = Tensor::empty({E, C, R}, t.dtype());
  if (dtype_size(t.dtype()) == 2) {
    columns_to_rows(t.data<uint16_t>(), out.data<uint16_t>(), E, R, C, deinterleave);
  } else {
    VLLM_CHECK(dtype_size(t.dtype()) == 4, "expert weights must be 16- or 32-bit floats");
    columns_to_rows(t.data<uint32_t>(), out.data<uint32_t>(), E, R, C, deinterleave);
  }
  return out;
}

// The compute-dtype value of x, as transformers' tensor(x).to(weight.dtype).
float round_to(DType dtype, float x) {
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(x));
  return x;
}

class LlamaLikeModel final : public CausalLM {
 public:
  LlamaLikeModel(const ModelConfig& c, const WeightStore& store, Backend& backend, const LlamaLikeOptions& o)
      : CausalLM(c, backend), opts_(o), acts_(backend) {
    if (c.hidden_act != "silu" && c.hidden_act != "gelu_pytorch_tanh")
      throw Error("config.json: hidden_act '" + c.hidden_act + "' is not supported for " + c.architecture +
                      " (supported: silu, gelu_pytorch_tanh)",
                  ErrorKind::kUnsupported);
    gelu_mlp_ = c.hidden_act == "gelu_pytorch_tanh";
    if (gelu_mlp_ && o.moe.num_experts > 0)
      throw Error("config.json: hidden_act '" + c.hidden_act + "' is not supported for the experts of " + c.architecture +
                      " (supported: silu)",
                  ErrorKind::kUnsupported);
    WeightLoader w(store, backend);
    const int64_t H = c.hidden_size, hd = c.head_dim;
    // This rank's share of the layers' tensors: the table at the rank's dimensions names the same
    // tensors with the shapes of the slices the store hands out (llama_like_shard_rules).
    const ModelConfig& s = shard_;
    LlamaLikeOptions so = o;
    if (o.moe.num_experts > 0)
      so.moe.intermediate_size = shard_units(o.moe.intermediate_size, backend.tp_rank(), backend.tp_size(),
                                             "the experts' intermediate size");
    // Gemma's (1 + w) norms are stored as w; the 1 is added once here, in float32.
    const float norm_offset = o.norm_plus_one ? 1.0f : 0.0f;
    auto norm = [&](const std::vector<ParamSpec>& t) { return w.vector(t[0].name, t[0].shape[0], norm_offset); };
    embed_ = w.embedding(kEmbed, {s.vocab_size, H});
    // (A quantized GGUF table is U8, which round_to leaves unrounded: Gemma GGUFs are not read yet;
    // when they are, this must round to the backend's compute dtype.)
    if (o.scale_embeddings) embed_scale_ = round_to(embed_.dtype(), std::sqrt(static_cast<float>(H)));
    rope_ = make_rotary(c, backend);
    if (o.sliding_rope) sliding_rope_ = make_rotary(*o.sliding_rope, c.rotary_dim(), backend);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const LlamaLikeLayerTensors t = llama_like_layer(s, so, i);
      Layer L;
      L.input_norm = norm(t.input_norm);
      L.post_norm = norm(t.post_norm);
      if (o.sandwich_norms) {
        L.attn_out_norm = norm(t.attn_out_norm);
        L.mlp_out_norm = norm(t.mlp_out_norm);
      }
      L.qkv = w.linear_from(t.qkv, t.qkv_bias);
      L.o = w.linear_from(t.o, t.o_bias);
      if (o.qk_norm) {
        L.q_norm = w.vector(t.q_norm[0].name, hd, norm_offset);
        L.k_norm = w.vector(t.k_norm[0].name, hd, norm_offset);
      }
      // The layer's attention: window and rope (Gemma 3's sliding layers have their own), soft-cap,
      // sinks; a rope attention factor (longrope, yarn) scales cos and sin, so q·k by its square.
      L.shape = attention_shape();
      const bool sliding = o.sliding(i);
      if (sliding) L.shape.sliding_window = o.sliding_window;
      L.shape.logit_softcap = o.attn_logit_softcap;
      if (o.attention_sinks) L.shape.sinks = w.vector(t.sinks[0].name, s.num_attention_heads);
      backend.check_attention(L.shape);
      L.sliding_rope = sliding && o.sliding_rope.has_value();
      const float af = static_cast<float>(L.sliding_rope ? o.sliding_rope->attention_factor : c.rope.attention_factor);
      L.scale = o.attention_scale > 0 ? af * af * static_cast<float>(o.attention_scale)
                                      : af * af / std::sqrt(static_cast<float>(hd));
      if (!t.router.empty()) {
        // Experts fused in one tensor each (transformers 5, our weight tool, GPT-OSS) or stored one
        // matrix each (the Hub's Mixtral and Qwen3-MoE checkpoints).
        const bool fused = store.contains(t.experts_gate_up[0].name);
        L.router = fused ? w.linear_from(t.router, t.router_bias) : w.linear_from(t.per_expert_router);
        if (o.moe.gpt_oss_layout) {
          auto host = [&](const std::vector<ParamSpec>& spec) { return w.host(spec[0].name, spec[0].shape); };
          const int64_t E = so.moe.num_experts, EI = so.moe.intermediate_size;
          ExpertOptions eo;
          eo.gate_up_bias = experts_columns_to_rows(host(t.experts_gate_up_bias).view({E, 1, 2 * EI}), true).view({E, 2 * EI});
          eo.down_bias = host(t.experts_down_bias);
          eo.swiglu_limit = o.moe.swiglu_limit;
          L.experts = w.experts(experts_columns_to_rows(host(t.experts_gate_up), true),
                                experts_columns_to_rows(host(t.experts_down), false), eo);
        } else if (fused) {
          L.experts = w.experts(t.experts_gate_up, t.experts_down, o.moe.num_experts);
        } else {
          L.experts = w.experts(t.per_expert_gate_up, t.per_expert_down, o.moe.num_experts);
        }
      } else {
        L.gate_up = w.linear_from(t.gate_up, t.gate_up_bias);
        L.down = w.linear_from(t.down, t.down_bias);
      }
      layers_.push_back(std::move(L));
    }
    final_norm_ = w.vector(kFinalNorm, H, norm_offset);
    lm_head_ = w.linear({{c.tie_word_embeddings ? kEmbed : kLmHead, {s.vocab_size, H}}});
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
    const ModelConfig& c = shard_;  // this rank's heads and MLP width (all of them with one rank)
    const int64_t T = in.num_tokens, H = c.hidden_size, I = c.intermediate_size;
    const float eps = static_cast<float>(c.norm_eps);
    Backend& b = backend_;
    const AttentionShape& shape = layers_[0].shape;  // the heads; the window etc. are per layer

    Tensor residual = acts_.get(0, T, H);
    Tensor x = acts_.get(1, T, H);
    Tensor qkv = acts_.get(2, T, shape.qkv_width());
    Tensor attn = acts_.get(3, T, c.num_attention_heads * c.head_dim);
    Tensor proj = acts_.get(4, T, H);
    Tensor normed = acts_.get(9, T, opts_.sandwich_norms ? H : 1);

    embed_tokens(residual, in.token_ids, embed_);
    if (opts_.scale_embeddings) b.scale(residual, embed_scale_);
    b.rms_norm(x, residual, layers_[0].input_norm, eps);
    // `branch` is what joins the residual next: a sublayer's output, or (sandwich norms) its norm.
    Tensor* branch = &proj;
    for (size_t li = 0; li < layers_.size(); ++li) {
      Layer& L = layers_[li];
      if (li > 0) b.add_rms_norm(x, residual, *branch, L.input_norm, eps);
      b.linear(qkv, x, *L.qkv);
      if (opts_.qk_norm) b.qk_rms_norm(qkv, L.q_norm, L.k_norm, L.shape, eps);
      b.rotary(qkv, in.positions, L.sliding_rope ? sliding_rope_ : rope_, L.shape);
      b.attention(attn, qkv, kv[li], in, L.shape, L.scale);
      b.linear(proj, attn, *L.o);
      b.all_reduce(proj);  // o is row-parallel: each rank holds a partial sum over its heads
      branch = sandwich(proj, normed, L.attn_out_norm, eps);
      b.add_rms_norm(x, residual, *branch, L.post_norm, eps);
      if (L.experts) {
        b.moe(proj, x, *L.router, *L.experts, routing_);
      } else {
        Tensor gate_up = acts_.get(5, T, 2 * I);
        Tensor act = acts_.get(6, T, I);
        b.linear(gate_up, x, *L.gate_up);
        if (gelu_mlp_) {
          b.gelu_tanh_and_mul(act, gate_up);
        } else {
          b.silu_and_mul(act, gate_up);
        }
        b.linear(proj, act, *L.down);
      }
      b.all_reduce(proj);  // down (and each expert's) is row-parallel over the intermediate features
      branch = sandwich(proj, normed, L.mlp_out_norm, eps);
    }
    b.add_rms_norm(x, residual, *branch, final_norm_, eps);
    const int64_t R = in.logits_indices.numel();
    Tensor selected = acts_.get(7, R, H);
    b.gather_rows(selected, x, in.logits_indices);
    Tensor logits = acts_.get(8, R, c.vocab_size);  // this rank's share of the vocabulary
    b.linear(logits, selected, *lm_head_);
    if (opts_.final_logit_softcap > 0) b.softcap(logits, opts_.final_logit_softcap);
    return gather_logits(logits, acts_.get(10, R, config_.vocab_size));
  }

 private:
  struct Layer {
    Tensor input_norm, post_norm, attn_out_norm, mlp_out_norm, q_norm, k_norm;
    std::shared_ptr<LinearWeight> qkv, o, gate_up, down, router;
    std::shared_ptr<ExpertWeights> experts;
    AttentionShape shape;
    bool sliding_rope = false;  // rotary with sliding_rope_ instead of rope_
    float scale = 1.0f;
  };

  // With sandwich norms, the sublayer output `out` normalised into `normed`; else `out` itself.
  Tensor* sandwich(Tensor& out, Tensor& normed, const Tensor& norm, float eps) {
    if (!opts_.sandwich_norms) return &out;
    backend_.rms_norm(normed, out, norm, eps);
    return &normed;
  }

  LlamaLikeOptions opts_;
  Activations acts_;
  bool gelu_mlp_ = false;
  Tensor embed_, final_norm_;
  float embed_scale_ = 1.0f;
  std::vector<Layer> layers_;
  std::shared_ptr<LinearWeight> lm_head_;
  RotaryEmbedding rope_, sliding_rope_;
  MoeRouting routing_;
};

}  // namespace

std::vector<ParamSpec> llama_like_parameters(const ModelConfig& c, const LlamaLikeOptions& o) {
  std::vector<ParamSpec> out{{kEmbed, {c.vocab_size, c.hidden_size}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    LlamaLikeLayerTensors t = llama_like_layer(c, o, i);
    for (auto* group : {&t.sinks, &t.qkv, &t.qkv_bias, &t.o, &t.o_bias, &t.q_norm, &t.k_norm, &t.router, &t.router_bias,
                        &t.experts_gate_up, &t.experts_gate_up_bias, &t.experts_down, &t.experts_down_bias, &t.gate_up,
                        &t.gate_up_bias, &t.down, &t.down_bias, &t.input_norm, &t.attn_out_norm, &t.post_norm,
                        &t.mlp_out_norm})
      out.insert(out.end(), group->begin(), group->end());
  }
  out.push_back({kFinalNorm, {c.hidden_size}});
  if (!c.tie_word_embeddings) out.push_back({kLmHead, {c.vocab_size, c.hidden_size}});
  return out;
}

std::map<std::string, ShardRule> llama_like_shard_rules(const ModelConfig& c, const LlamaLikeOptions& o) {
  const int64_t nh = c.num_attention_heads, kv = c.num_key_value_heads, hd = c.head_dim, I = c.intermediate_size;
  const int64_t EI = o.moe.intermediate_size;
  std::map<std::string, ShardRule> r;
  r[kEmbed] = vocab_rule(c);
  if (!c.tie_word_embeddings) r[kLmHead] = vocab_rule(c);
  auto each = [&](const std::vector<ParamSpec>& specs, const ShardRule& rule) {
    for (const ParamSpec& p : specs) r[p.name] = rule;
  };
  const ShardRule halves{ShardRule::Kind::kSplit, 0, {{I, 1}, {I, 1}}};  // [gate; up] rows
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const LlamaLikeLayerTensors t = llama_like_layer(c, o, i);
    // Column-parallel: the rank's query heads and the KV heads they read, the rank's MLP features.
    if (o.fused_qkv) {
      each(t.qkv, qkv_rule(c));
      each(t.qkv_bias, qkv_rule(c));
    } else {
      for (const auto* group : {&t.qkv, &t.qkv_bias})
        if (!group->empty()) {
          r[(*group)[0].name] = split_rule(0, nh, hd);
          r[(*group)[1].name] = split_rule(0, kv, hd);
          r[(*group)[2].name] = split_rule(0, kv, hd);
        }
    }
    each(t.sinks, split_rule(0, nh));
    each(t.gate_up, o.fused_gate_up ? halves : split_rule(0, I));
    each(t.gate_up_bias, o.fused_gate_up ? halves : split_rule(0, I));
    // Row-parallel: the rank's input columns; the bias once, on rank 0, joins the all-reduce.
    each(t.o, split_rule(1, nh, hd));
    each(t.o_bias, first_rank_rule());
    each(t.down, split_rule(1, I));
    each(t.down_bias, first_rank_rule());
    // Experts: each expert's intermediate features split as a dense MLP's (the router is whole, so
    // every rank routes alike).
    if (o.moe.gpt_oss_layout) {
      each(t.experts_gate_up, split_rule(2, EI, 2));  // [E, H, 2I], gate and up interleaved
      each(t.experts_gate_up_bias, split_rule(1, EI, 2));
      each(t.experts_down, split_rule(1, EI));         // [E, I, H]
    } else {
      each(t.experts_gate_up, ShardRule{ShardRule::Kind::kSplit, 1, {{EI, 1}, {EI, 1}}});  // [E, 2I, H]
      each(t.experts_down, split_rule(2, EI));                                              // [E, H, I]
      each(t.per_expert_gate_up, split_rule(0, EI));
      each(t.per_expert_down, split_rule(1, EI));
    }
    each(t.experts_down_bias, first_rank_rule());
  }
  return r;
}

std::unique_ptr<CausalLM> create_llama_like(const ModelConfig& c, const WeightStore& store, Backend& backend,
                                            const LlamaLikeOptions& o) {
  return std::make_unique<LlamaLikeModel>(c, store, backend, o);
}

Architecture llama_like_architecture(const std::string& name, LlamaLikeOptionsFn options) {
  return {name, [options](const ModelConfig& c) { return llama_like_parameters(c, options(c)); },
          [options](const ModelConfig& c, const WeightStore& s, Backend& b) {
            return create_llama_like(c, s, b, options(c));
          },
          [options](const ModelConfig& c) {
            const LlamaLikeOptions o = options(c);
            std::vector<int64_t> windows;
            for (int64_t i = 0; i < c.num_hidden_layers; ++i) windows.push_back(o.sliding(i) ? o.sliding_window : 0);
            return windows;
          },
          [options](const ModelConfig& c) { return llama_like_shard_rules(c, options(c)); }};
}

}  // namespace vllm
