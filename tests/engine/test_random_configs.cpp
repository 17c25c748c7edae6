// Configs the test makes itself (odd hidden sizes, head counts, GQA ratios, head_dim unequal to
// hidden/heads, partial rotary, tied and untied heads) load, match a plain double-precision
// reference written here, and give identical outputs alone and batched.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "golden.h"
#include "vllm/loader/safetensors.h"
#include "vllm/models/random_weights.h"

using namespace vllm;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Vec = std::vector<double>;

// The plain reference: full recompute, no KV cache, double precision.
class Reference {
 public:
  Reference(const ModelConfig& c, const WeightStore& w) : c_(c), w_(w) {}

  // Log-softmax of the next-token distribution after `tokens`.
  Vec next_logprobs(const std::vector<int32_t>& tokens) const {
    const int64_t T = static_cast<int64_t>(tokens.size()), H = c_.hidden_size;
    const bool phi = c_.architecture == "PhiForCausalLM";
    std::vector<Vec> h(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) h[t] = row(get("model.embed_tokens.weight"), tokens[t], H);
    for (int64_t l = 0; l < c_.num_hidden_layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      std::vector<Vec> x(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t)
        x[t] = phi ? layer_norm(h[t], p + "input_layernorm") : rms_norm(h[t], get(p + "input_layernorm.weight"));
      std::vector<Vec> attn = attention(x, p, phi);
      if (phi) {
        for (int64_t t = 0; t < T; ++t) {
          Vec a = linear(attn[t], p + "self_attn.dense", true);
          Vec m = linear(gelu_new(linear(x[t], p + "mlp.fc1", true)), p + "mlp.fc2", true);
          for (int64_t i = 0; i < H; ++i) h[t][i] += a[i] + m[i];
        }
      } else {
        for (int64_t t = 0; t < T; ++t) {
          Vec a = linear(attn[t], p + "self_attn.o_proj", false);
          for (int64_t i = 0; i < H; ++i) h[t][i] += a[i];
          Vec y = rms_norm(h[t], get(p + "post_attention_layernorm.weight"));
          Vec g = linear(y, p + "mlp.gate_proj", false), u = linear(y, p + "mlp.up_proj", false);
          for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
          Vec d = linear(g, p + "mlp.down_proj", false);
          for (int64_t i = 0; i < H; ++i) h[t][i] += d[i];
        }
      }
    }
    Vec last = phi ? layer_norm(h[T - 1], "model.final_layernorm") : rms_norm(h[T - 1], get("model.norm.weight"));
    std::string head = c_.tie_word_embeddings ? "model.embed_tokens" : "lm_head";
    Vec logits = matvec(get(head + ".weight"), last);
    if (phi) add_bias(logits, "lm_head.bias");
    double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
    for (double v : logits) sum += std::exp(v - mx);
    for (double& v : logits) v = v - mx - std::log(sum);
    return logits;
  }

 private:
  Vec get(const std::string& name) const {
    Tensor t = w_.get(name);
    std::vector<float> f = t.to_floats();
    return Vec(f.begin(), f.end());
  }
  static Vec row(const Vec& m, int64_t r, int64_t cols) { return Vec(m.begin() + r * cols, m.begin() + (r + 1) * cols); }
  static Vec matvec(const Vec& w, const Vec& x) {
    const size_t n = w.size() / x.size();
    Vec y(n, 0.0);
    for (size_t o = 0; o < n; ++o)
      for (size_t i = 0; i < x.size(); ++i) y[o] += w[o * x.size() + i] * x[i];
    return y;
  }
  void add_bias(Vec& y, const std::string& name) const {
    Vec b = get(name);
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
  }
  Vec linear(const Vec& x, const std::string& name, bool bias) const {
    Vec y = matvec(get(name + ".weight"), x);
    if (bias || w_.contains(name + ".bias")) add_bias(y, name + ".bias");
    return y;
  }
  Vec rms_norm(const Vec& x, const Vec& w) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    double inv = 1 / std::sqrt(ss / static_cast<double>(x.size()) + c_.norm_eps);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
    return y;
  }
  Vec layer_norm(const Vec& x, const std::string& name) const {
    Vec w = get(name + ".weight"), b = get(name + ".bias");
    double mean = 0, var = 0;
    for (double v : x) mean += v;
    mean /= static_cast<double>(x.size());
    for (double v : x) var += (v - mean) * (v - mean);
    var /= static_cast<double>(x.size());
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + c_.norm_eps) * w[i] + b[i];
    return y;
  }
  static Vec gelu_new(Vec x) {
    for (double& v : x) v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    return x;
  }
  // Rotary ("rotate half") on the first rotary_dim features of a head, plain (no scaling).
  void rope(double* x, int64_t pos) const {
    const int64_t half = c_.rotary_dim() / 2;
    for (int64_t i = 0; i < half; ++i) {
      double inv = std::pow(c_.rope.theta, -2.0 * static_cast<double>(i) / static_cast<double>(c_.rotary_dim()));
      double a = static_cast<double>(pos) * inv, x1 = x[i], x2 = x[i + half];
      x[i] = x1 * std::cos(a) - x2 * std::sin(a);
      x[i + half] = x2 * std::cos(a) + x1 * std::sin(a);
    }
  }
  std::vector<Vec> attention(const std::vector<Vec>& x, const std::string& p, bool phi) const {
    const int64_t T = static_cast<int64_t>(x.size()), nh = c_.num_attention_heads, nkv = c_.num_key_value_heads,
                  hd = c_.head_dim;
    const bool qk_norm = w_.contains(p + "self_attn.q_norm.weight");
    std::vector<Vec> q(x.size()), k(x.size()), v(x.size());
    for (int64_t t = 0; t < T; ++t) {
      q[t] = linear(x[t], p + "self_attn.q_proj", phi);
      k[t] = linear(x[t], p + "self_attn.k_proj", phi);
      v[t] = linear(x[t], p + "self_attn.v_proj", phi);
      for (int64_t h = 0; h < nh; ++h) {
        if (qk_norm) {
          Vec n = rms_norm(Vec(q[t].begin() + h * hd, q[t].begin() + (h + 1) * hd), get(p + "self_attn.q_norm.weight"));
          std::copy(n.begin(), n.end(), q[t].begin() + h * hd);
        }
        rope(q[t].data() + h * hd, t);
      }
      for (int64_t h = 0; h < nkv; ++h) {
        if (qk_norm) {
          Vec n = rms_norm(Vec(k[t].begin() + h * hd, k[t].begin() + (h + 1) * hd), get(p + "self_attn.k_norm.weight"));
          std::copy(n.begin(), n.end(), k[t].begin() + h * hd);
        }
        rope(k[t].data() + h * hd, t);
      }
    }
    std::vector<Vec> out(x.size(), Vec(static_cast<size_t>(nh * hd), 0.0));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t g = h / (nh / nkv);
        Vec s(static_cast<size_t>(t + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[j][g * hd + i];
          s[j] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < hd; ++i) out[t][h * hd + i] += s[j] / sum * v[j][g * hd + i];
      }
    return out;
  }

  const ModelConfig& c_;
  const WeightStore& w_;
};

struct Case {
  std::string name;
  json config;
};

json base(const std::string& arch, const std::string& type, int64_t hidden, int64_t heads, int64_t kv_heads) {
  return {{"architectures", {arch}}, {"model_type", type}, {"vocab_size", 301}, {"hidden_size", hidden},
          {"intermediate_size", 3 * hidden + 5}, {"num_hidden_layers", 2}, {"num_attention_heads", heads},
          {"num_key_value_heads", kv_heads}, {"max_position_embeddings", 512}, {"rope_theta", 10000.0},
          {"rms_norm_eps", 1e-6}, {"layer_norm_eps", 1e-5}, {"tie_word_embeddings", false}, {"torch_dtype", "float32"},
          {"hidden_act", type == "phi" ? "gelu_new" : "silu"}};
}

std::vector<Case> cases() {
  std::vector<Case> out;
  out.push_back({"llama_gqa_6_2", base("LlamaForCausalLM", "llama", 48, 6, 2)});
  json tied = base("LlamaForCausalLM", "llama", 40, 4, 1);
  tied["tie_word_embeddings"] = true;
  tied["head_dim"] = 24;  // != 40 / 4
  out.push_back({"llama_tied_headdim24_mqa", tied});
  json mistral = base("MistralForCausalLM", "mistral", 36, 3, 3);
  out.push_back({"mistral_3_heads", mistral});
  json qwen2 = base("Qwen2ForCausalLM", "qwen2", 56, 7, 1);
  qwen2["tie_word_embeddings"] = true;
  out.push_back({"qwen2_7_heads_bias", qwen2});
  json qwen3 = base("Qwen3ForCausalLM", "qwen3", 32, 4, 2);
  qwen3["head_dim"] = 20;
  out.push_back({"qwen3_headdim20", qwen3});
  for (double f : {0.25, 0.5, 0.75}) {
    json phi = base("PhiForCausalLM", "phi", 64, 2, 2);
    phi["partial_rotary_factor"] = f;
    phi.erase("rms_norm_eps");
    out.push_back({"phi_rotary_" + std::to_string(static_cast<int>(f * 100)), phi});
  }
  json phi_gqa = base("PhiForCausalLM", "phi", 96, 6, 3);
  phi_gqa["partial_rotary_factor"] = 0.5;
  out.push_back({"phi_gqa", phi_gqa});
  return out;
}

class RandomConfig : public ::testing::TestWithParam<Case> {};

TEST_P(RandomConfig, MatchesReferenceAloneAndBatched) {
  const Case& cs = GetParam();
  fs::path dir = fs::temp_directory_path() / ("vllm-random-config-" + std::to_string(getpid()) + "-" + cs.name);
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << cs.config.dump(2);
  RandomModelOptions opts;
  opts.seed = 1234;
  opts.dtype = DType::F32;
  opts.num_shards = 2;
  write_random_model((dir / "config.json").string(), dir.string(), opts);

  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> prompts;
  for (int len : {1, 5, 17, 40}) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(rng() % 301));
    prompts.push_back(p);
  }
  EngineConfig ec;
  ec.model = dir.string();
  ec.dtype = "float32";
  ec.num_kv_blocks = 256;
  ec.block_size = 4;
  const int steps = 6;
  auto batched = test::run_greedy(ec, prompts, steps, 5, 0);

  ModelConfig config = ModelConfig::from_folder(dir.string());
  WeightStore store = WeightStore::open_folder(dir.string());
  Reference ref(config, store);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto alone = test::run_greedy(ec, {prompts[i]}, steps, 5, 0)[0];
    EXPECT_EQ(alone.ids, batched[i].ids) << "prompt " << i;
    for (size_t s = 0; s < alone.logprobs.size(); ++s)
      EXPECT_EQ(alone.logprobs[s].top, batched[i].logprobs[s].top) << "prompt " << i << " step " << s;
    // Against the reference, step by step along our own greedy path.
    std::vector<int32_t> seq = prompts[i];
    for (int s = 0; s < steps; ++s) {
      Vec lp = ref.next_logprobs(seq);
      const auto& ours = alone.logprobs[static_cast<size_t>(s)];
      for (const auto& t : ours.top) EXPECT_NEAR(t.logprob, lp[static_cast<size_t>(t.token_id)], 2e-4) << cs.name << " step " << s;
      int32_t ref_best = static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());
      if (ref_best != alone.ids[static_cast<size_t>(s)]) {
        EXPECT_NEAR(lp[static_cast<size_t>(ref_best)], lp[static_cast<size_t>(alone.ids[static_cast<size_t>(s)])], 1e-4);
      }
      seq.push_back(alone.ids[static_cast<size_t>(s)]);
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RandomConfig, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
