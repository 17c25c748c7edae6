// FP8 checkpoints below the engine: e4m3 / e5m2 decoding of every bit pattern and e4m3 encoding
// against plain references written here; dequantization with per-tensor, per-channel and block
// scales (ragged blocks included) against a per-element reference; the quantizers; the
// quantization_config parser (each unsupported or malformed field named in the error); the
// ignore list (exact names and "re:" patterns anchored as Python's re.match); --quantization
// against the checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "vllm/core/error.h"
#include "vllm/core/float8.h"
#include "vllm/loader/fp8_weights.h"
#include "vllm/loader/quantization_config.h"

using namespace vllm;
using json = nlohmann::json;

namespace {

// The formats as their definitions read, in double: value = (-1)^s * 2^(e - bias) * (1 + m / 2^M),
// or 2^(1 - bias) * (m / 2^M) when e == 0.
double reference_e4m3(int bits) {
  const int s = bits >> 7, e = (bits >> 3) & 15, m = bits & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude = e == 0 ? std::pow(2.0, -6) * (m / 8.0) : std::pow(2.0, e - 7) * (1.0 + m / 8.0);
  return s ? -magnitude : magnitude;
}
double reference_e5m2(int bits) {
  const int s = bits >> 7, e = (bits >> 2) & 31, m = bits & 3;
  double magnitude;
  if (e == 31) {
    magnitude = m == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    magnitude = e == 0 ? std::pow(2.0, -14) * (m / 4.0) : std::pow(2.0, e - 15) * (1.0 + m / 4.0);
  }
  return s ? -magnitude : magnitude;
}

// Round to the nearest finite e4m3 value by search; ties to the even code (last mantissa bit 0);
// beyond 448 saturate.
uint8_t reference_encode_e4m3(float f) {
  if (std::isnan(f)) return std::signbit(f) ? 0xff : 0x7f;
  int best = -1;
  double best_d = 0;
  for (int b = 0; b < 0x7f; ++b) {  // non-negative finite codes
    const double d = std::fabs(std::fabs(static_cast<double>(f)) - reference_e4m3(b));
    if (best < 0 || d < best_d || (d == best_d && (b & 1) == 0)) best = b, best_d = d;
  }
  return static_cast<uint8_t>(best | (std::signbit(f) ? 0x80 : 0));
}

void expect_same_float(float got, double want, const std::string& where) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << where;
  } else {
    EXPECT_EQ(got, static_cast<float>(want)) << where;
    EXPECT_EQ(std::signbit(got), std::signbit(want)) << where;
  }
}

Tensor bytes(const std::vector<uint8_t>& v, Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::U8);
  std::memcpy(t.raw(), v.data(), v.size());
  return t;
}

std::vector<uint8_t> random_finite_e4m3(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) {
    do b = static_cast<uint8_t>(rng()); while ((b & 0x7f) == 0x7f);
  }
  return v;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The message of the vllm::Error `f` throws (a failure if it throws none), and its kind.
template <typename F>
std::string error_of(F&& f, ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

}  // namespace

TEST(Float8, DecodesEveryE4M3Pattern) {
  for (int b = 0; b < 256; ++b) expect_same_float(e4m3_to_f32(static_cast<uint8_t>(b)), reference_e4m3(b), "bits " + std::to_string(b));
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);              // the largest: S.1111.110
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9)); // the smallest subnormal
  EXPECT_EQ(e4m3_to_f32(0x08), std::ldexp(1.0f, -6)); // the smallest normal
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7f)) && std::isnan(e4m3_to_f32(0xff)));
  EXPECT_EQ(e4m3_to_f32(0x78), 256.0f);  // S.1111.000 is a number, not infinity
}

TEST(Float8, DecodesEveryE5M2Pattern) {
  for (int b = 0; b < 256; ++b) expect_same_float(e5m2_to_f32(static_cast<uint8_t>(b)), reference_e5m2(b), "bits " + std::to_string(b));
  EXPECT_EQ(e5m2_to_f32(0x7b), 57344.0f);
  EXPECT_TRUE(std::isinf(e5m2_to_f32(0x7c)));
}

TEST(Float8, EncodesE4M3ToNearestEven) {
  // Every code round-trips.
  for (int b = 0; b < 256; ++b)
    if ((b & 0x7f) != 0x7f) {
      EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(b))), b) << "bits " << b;
    }
  // Midpoints between neighbours go to the even code; values around them go to the nearer one.
  for (int b = 0; b < 0x7e; ++b) {
    const float lo = e4m3_to_f32(static_cast<uint8_t>(b)), hi = e4m3_to_f32(static_cast<uint8_t>(b + 1));
    const float mid = (lo + hi) / 2;
    for (float x : {mid, std::nextafter(mid, lo), std::nextafter(mid, hi), -mid})
      EXPECT_EQ(f32_to_e4m3(x), reference_encode_e4m3(x)) << "x " << x;
  }
  // Random values over the whole range, and saturation and the specials.
  for (float x : random_floats(20000, 7, 60.0f)) ASSERT_EQ(f32_to_e4m3(x), reference_encode_e4m3(x)) << x;
  for (float x : random_floats(20000, 8, 0.01f)) ASSERT_EQ(f32_to_e4m3(x), reference_encode_e4m3(x)) << x;
  EXPECT_EQ(f32_to_e4m3(460.0f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(1e9f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(-std::numeric_limits<float>::infinity()), 0xfe);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7f);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -11)), 0x00);  // below half the smallest subnormal
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
}

// dequantize_fp8 against w[r][c] = decode(bits) * scale(group of (r, c)), per element.
TEST(Fp8Dequantize, PerTensorPerChannelAndRaggedBlocks) {
  struct Case {
    int64_t out, in;
    Fp8WeightLayout layout;
  };
  const Fp8WeightLayout tensor{Fp8ScaleLayout::kPerTensor, 128, 128};
  const Fp8WeightLayout channel{Fp8ScaleLayout::kPerChannel, 128, 128};
  const Fp8WeightLayout block{Fp8ScaleLayout::kBlock, 128, 128};
  const Fp8WeightLayout small_block{Fp8ScaleLayout::kBlock, 16, 32};
  for (const Case& c : {Case{7, 5, tensor}, Case{200, 300, tensor}, Case{200, 300, channel}, Case{3, 1, channel},
                        Case{200, 300, block}, Case{128, 256, block}, Case{1, 1, block}, Case{50, 70, small_block}}) {
    const std::vector<uint8_t> w = random_finite_e4m3(static_cast<size_t>(c.out * c.in), static_cast<uint32_t>(c.out * 31 + c.in));
    const Shape sshape = fp8_scale_shape(c.layout, c.out, c.in);
    std::vector<float> scales = random_floats(static_cast<size_t>(shape_numel(sshape)), 5, 0.01f);
    for (auto& s : scales) s = std::fabs(s) + 1e-4f;
    for (DType sdt : {DType::F32, DType::BF16}) {
      const Tensor scale = Tensor::from_floats(scales, sshape, DType::F32).to_dtype(sdt);
      const std::vector<float> sv = scale.to_floats();  // the scales as stored (bf16-rounded)
      const Tensor got = dequantize_fp8(bytes(w, {c.out, c.in}), Float8Format::kE4M3, scale, c.layout, "s");
      ASSERT_EQ(got.shape(), (Shape{c.out, c.in}));
      ASSERT_EQ(got.dtype(), DType::F32);
      const int64_t bcols = (c.in + c.layout.block_cols - 1) / c.layout.block_cols;
      for (int64_t r = 0; r < c.out; ++r)
        for (int64_t col = 0; col < c.in; ++col) {
          float s = sv[0];
          if (c.layout.scales == Fp8ScaleLayout::kPerChannel) s = sv[static_cast<size_t>(r)];
          if (c.layout.scales == Fp8ScaleLayout::kBlock)
            s = sv[static_cast<size_t>((r / c.layout.block_rows) * bcols + col / c.layout.block_cols)];
          const float want = static_cast<float>(reference_e4m3(w[static_cast<size_t>(r * c.in + col)])) * s;
          ASSERT_EQ(got.data<float>()[r * c.in + col], want) << c.out << "x" << c.in << " at " << r << "," << col;
        }
    }
  }
  // Scale shapes written other ways: per-tensor [] and per-channel [out].
  const std::vector<uint8_t> w = random_finite_e4m3(6, 1);
  const Tensor scalar = Tensor::from_floats({0.5f}, {}, DType::F32);
  EXPECT_EQ(dequantize_fp8(bytes(w, {2, 3}), Float8Format::kE4M3, scalar, tensor, "s").data<float>()[4],
            static_cast<float>(reference_e4m3(w[4])) * 0.5f);
  const Tensor rows = Tensor::from_floats({0.5f, 2.0f}, {2}, DType::F32);
  EXPECT_EQ(dequantize_fp8(bytes(w, {2, 3}), Float8Format::kE4M3, rows, channel, "s").data<float>()[4],
            static_cast<float>(reference_e4m3(w[4])) * 2.0f);
}

TEST(Fp8Dequantize, BadScalesAreErrorsNamingTheTensor) {
  const Tensor w = bytes(random_finite_e4m3(200 * 300, 3), {200, 300});
  const Fp8WeightLayout block{Fp8ScaleLayout::kBlock, 128, 128};
  std::string e = error_of([&] {
    dequantize_fp8(w, Float8Format::kE4M3, Tensor::zeros({1, 2}, DType::F32), block, "layer.weight_scale_inv");
  });
  EXPECT_NE(e.find("layer.weight_scale_inv"), std::string::npos) << e;
  EXPECT_NE(e.find("[2, 3]"), std::string::npos) << e;  // what 200x300 in 128x128 blocks needs
  e = error_of([&] {
    dequantize_fp8(w, Float8Format::kE4M3, Tensor::zeros({200}, DType::I32), Fp8WeightLayout{Fp8ScaleLayout::kPerChannel},
                   "x.weight_scale");
  });
  EXPECT_NE(e.find("x.weight_scale"), std::string::npos) << e;
  EXPECT_NE(e.find("int32"), std::string::npos) << e;
  e = error_of([&] {
    dequantize_fp8(w, Float8Format::kE4M3, Tensor::from_floats({NAN}, {1}), Fp8WeightLayout{}, "y.weight_scale");
  });
  EXPECT_NE(e.find("non-finite"), std::string::npos) << e;
  e = error_of([&] {
    dequantize_fp8(w, Float8Format::kE4M3, Tensor::zeros({300, 1}, DType::F32), Fp8WeightLayout{Fp8ScaleLayout::kPerChannel},
                   "z.weight_scale");
  });
  EXPECT_NE(e.find("[200, 1]"), std::string::npos) << e;
}

// quantize_fp8: scale = amax / 448 per group, each value the nearest e4m3 of x / scale (within
// half a step of e4m3's 3-bit mantissa: relative error <= 1/16, plus the subnormal step).
TEST(Fp8Quantize, ScalesAndRoundTripError) {
  for (auto layout : {Fp8WeightLayout{Fp8ScaleLayout::kPerTensor}, Fp8WeightLayout{Fp8ScaleLayout::kPerChannel},
                      Fp8WeightLayout{Fp8ScaleLayout::kBlock, 128, 128}}) {
    const int64_t out = 200, in = 300;
    std::vector<float> x = random_floats(static_cast<size_t>(out * in), 11, 0.1f);
    x[17] = 3.0f;  // an outlier in the first row / block
    const Tensor w = Tensor::from_floats(x, {out, in});
    const Fp8Quantized q = quantize_fp8(w, layout);
    ASSERT_EQ(q.scale.shape(), fp8_scale_shape(layout, out, in));
    const Tensor back = dequantize_fp8(q.weight, Float8Format::kE4M3, q.scale, layout, "s");
    const std::vector<float> s = q.scale.to_floats();
    const int64_t bcols = (in + 127) / 128;
    std::vector<float> amax(s.size(), 0.0f);
    for (int64_t r = 0; r < out; ++r)
      for (int64_t c = 0; c < in; ++c) {
        size_t g = 0;
        if (layout.scales == Fp8ScaleLayout::kPerChannel) g = static_cast<size_t>(r);
        if (layout.scales == Fp8ScaleLayout::kBlock) g = static_cast<size_t>((r / 128) * bcols + c / 128);
        const float v = x[static_cast<size_t>(r * in + c)];
        amax[g] = std::max(amax[g], std::fabs(v));
        const float got = back.data<float>()[r * in + c];
        ASSERT_LE(std::fabs(got - v), std::fabs(v) / 16 + s[g] * std::ldexp(1.0f, -10)) << r << "," << c;
        // Bit-exact against the reference quantizer.
        ASSERT_EQ(q.weight.data<uint8_t>()[r * in + c], reference_encode_e4m3(v * (1.0f / s[g])));
      }
    for (size_t g = 0; g < s.size(); ++g) EXPECT_EQ(s[g], amax[g] / 448.0f) << g;
  }
  // Online --quantization fp8: one scale for the whole tensor, leading dimensions as rows.
  const Tensor w3 = Tensor::from_floats(random_floats(2 * 6 * 4, 2), {2, 6, 4});
  const Tensor rt = fp8_round_trip_per_tensor(w3);
  const Fp8Quantized q = quantize_fp8(w3.view({12, 4}), Fp8WeightLayout{});
  const Tensor want = dequantize_fp8(q.weight, Float8Format::kE4M3, q.scale, Fp8WeightLayout{}, "s");
  ASSERT_EQ(rt.shape(), w3.shape());
  for (int64_t i = 0; i < w3.numel(); ++i) EXPECT_EQ(rt.data<float>()[i], want.data<float>()[i]);
  // An all-zero weight stays zero (scale 1, not 0 / 0).
  const Tensor zeros = fp8_round_trip_per_tensor(Tensor::zeros({3, 3}, DType::F32));
  for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(zeros.data<float>()[i], 0.0f);
}

namespace {

json compressed_tensors_config(const std::string& strategy = "tensor") {
  return json::parse(R"({
    "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
    "config_groups": {"group_0": {"targets": ["Linear"],
      "weights": {"num_bits": 8, "type": "float", "strategy": ")" + strategy + R"(", "symmetric": true, "dynamic": false,
                  "group_size": null, "block_structure": null, "actorder": null},
      "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "symmetric": true, "dynamic": true},
      "output_activations": null}},
    "ignore": ["lm_head", "re:.*mlp\\.gate$"], "kv_cache_scheme": null, "sparsity_config": {}})");
}
json native_fp8_config() {
  return json::parse(R"({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                         "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"]})");
}
json with_config(json q) { return json{{"architectures", json::array({"LlamaForCausalLM"})}, {"quantization_config", std::move(q)}}; }

// The parser's error for `q` must name every string in `names`, with `kind`.
void expect_config_error(const json& q, const std::vector<std::string>& names, ErrorKind kind = ErrorKind::kUnsupported) {
  ErrorKind got = ErrorKind::kInternal;
  const std::string e = error_of([&] { parse_quantization_config(with_config(q), "config.json"); }, &got);
  for (const auto& n : names) EXPECT_NE(e.find(n), std::string::npos) << "'" << n << "' not in: " << e;
  EXPECT_EQ(static_cast<int>(got), static_cast<int>(kind)) << e;
}

}  // namespace

TEST(QuantizationConfig, ParsesCompressedTensorsAndNativeFp8) {
  EXPECT_FALSE(parse_quantization_config(json{{"architectures", json::array({"X"})}}, "config.json").has_value());
  for (const auto& [strategy, layout] : {std::pair{"tensor", Fp8ScaleLayout::kPerTensor}, std::pair{"channel", Fp8ScaleLayout::kPerChannel}}) {
    const auto c = parse_quantization_config(with_config(compressed_tensors_config(strategy)), "config.json");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->method, "compressed-tensors");
    ASSERT_EQ(c->schemes.size(), 1u);
    EXPECT_EQ(c->schemes[0].weights.scales, layout);
    EXPECT_EQ(c->schemes[0].activations, Fp8ActivationScheme::kDynamicPerToken);
    EXPECT_EQ(c->weight_scale_suffix, "weight_scale");
  }
  json q = compressed_tensors_config();
  q["config_groups"]["group_0"]["input_activations"] = json::parse(R"({"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": false})");
  EXPECT_EQ(parse_quantization_config(with_config(q), "c")->schemes[0].activations, Fp8ActivationScheme::kStaticPerTensor);
  q["config_groups"]["group_0"]["input_activations"] = nullptr;
  q["format"] = "naive-quantized";
  EXPECT_EQ(parse_quantization_config(with_config(q), "c")->schemes[0].activations, Fp8ActivationScheme::kNone);

  const auto n = parse_quantization_config(with_config(native_fp8_config()), "config.json");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->method, "fp8");
  EXPECT_EQ(n->schemes[0].weights.scales, Fp8ScaleLayout::kBlock);
  EXPECT_EQ(n->schemes[0].weights.block_rows, 128);
  EXPECT_EQ(n->weight_scale_suffix, "weight_scale_inv");
  EXPECT_TRUE(n->ignored("lm_head"));
  json per_tensor = json{{"quant_method", "fp8"}, {"activation_scheme", "static"}, {"ignored_layers", json::array({"model.layers.0.mlp.down_proj"})}};
  const auto p = parse_quantization_config(with_config(per_tensor), "config.json");
  EXPECT_EQ(p->schemes[0].weights.scales, Fp8ScaleLayout::kPerTensor);
  EXPECT_EQ(p->schemes[0].activations, Fp8ActivationScheme::kStaticPerTensor);
  EXPECT_EQ(p->weight_scale_suffix, "weight_scale");
  EXPECT_TRUE(p->ignored("model.layers.0.mlp.down_proj"));
  EXPECT_FALSE(p->ignored("model.layers.1.mlp.down_proj"));
}

TEST(QuantizationConfig, UnsupportedMethodsAndFieldsAreNamed) {
  for (const char* m : {"awq", "gptq", "bitsandbytes", "gguf", "mxfp4"})
    expect_config_error(json{{"quant_method", m}, {"bits", 4}}, {"quantization_config.quant_method", m});
  auto ct = [](const std::string& path, const json& value) {
    json q = compressed_tensors_config();
    q[json::json_pointer(path)] = value;
    return q;
  };
  expect_config_error(ct("/format", "pack-quantized"), {"quantization_config.format", "pack-quantized"});
  expect_config_error(ct("/format", "int-quantized"), {"quantization_config.format", "int-quantized"});
  expect_config_error(ct("/config_groups/group_0/weights/num_bits", 4),
                      {"quantization_config.config_groups.group_0.weights.num_bits", "4"});
  expect_config_error(ct("/config_groups/group_0/weights/type", "int"),
                      {"quantization_config.config_groups.group_0.weights.type", "\"int\""});
  expect_config_error(ct("/config_groups/group_0/weights/symmetric", false), {"weights.symmetric", "asymmetric"});
  expect_config_error(ct("/config_groups/group_0/weights/dynamic", true), {"weights.dynamic", "true"});
  expect_config_error(ct("/config_groups/group_0/weights/strategy", "group"), {"weights.strategy", "\"group\""});
  expect_config_error(ct("/config_groups/group_0/input_activations/strategy", "channel"),
                      {"input_activations.strategy", "\"channel\""});
  expect_config_error(ct("/config_groups/group_0/input_activations/type", "int"), {"input_activations.type", "\"int\""});
  expect_config_error(ct("/config_groups/group_0/output_activations", json{{"num_bits", 8}}), {"output_activations"});
  expect_config_error(ct("/sparsity_config", json{{"format", "sparse-24-bitmask"}}), {"sparsity_config.format", "sparse-24-bitmask"});
  // naive-quantized int8 weights: the format is accepted, the weights' type is not.
  json naive_int = ct("/config_groups/group_0/weights/type", "int");
  naive_int["format"] = "naive-quantized";
  expect_config_error(naive_int, {"weights.type", "\"int\""});
  // Malformed (not merely unsupported) entries are model-load errors naming the field.
  expect_config_error(ct("/config_groups/group_0/weights/num_bits", "eight"), {"weights.num_bits", "integer"}, ErrorKind::kModelLoad);
  expect_config_error(ct("/config_groups", json::object()), {"quantization_config.config_groups"}, ErrorKind::kModelLoad);
  expect_config_error(ct("/ignore", "lm_head"), {"quantization_config.ignore"}, ErrorKind::kModelLoad);
  expect_config_error(ct("/ignore", json::array({"re:(unclosed"})), {"quantization_config.ignore", "re:(unclosed"}, ErrorKind::kModelLoad);
  expect_config_error(ct("/config_groups/group_0/targets", json::array({"re:[a-"})), {"group_0.targets", "re:[a-"}, ErrorKind::kModelLoad);
  expect_config_error(json{{"format", "float-quantized"}}, {"quantization_config.quant_method", "missing"}, ErrorKind::kModelLoad);

  auto fp8 = [](const std::string& key, const json& value) {
    json q = native_fp8_config();
    q[key] = value;
    return q;
  };
  expect_config_error(fp8("fmt", "e5m2"), {"quantization_config.fmt", "e5m2"});
  expect_config_error(fp8("activation_scheme", "static"), {"quantization_config.activation_scheme", "static"});
  expect_config_error(fp8("activation_scheme", "weird"), {"quantization_config.activation_scheme", "weird"});
  expect_config_error(fp8("weight_block_size", json::array({128})), {"quantization_config.weight_block_size"}, ErrorKind::kModelLoad);
}

TEST(QuantizationConfig, IgnoreListMatchesExactNamesAndAnchoredPatterns) {
  const auto c = parse_quantization_config(with_config(compressed_tensors_config()), "config.json");
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->ignored("lm_head"));
  EXPECT_FALSE(c->ignored("model.lm_head"));  // exact names are exact
  EXPECT_TRUE(c->ignored("model.layers.0.mlp.gate"));
  EXPECT_TRUE(c->ignored("model.layers.11.mlp.gate"));
  EXPECT_FALSE(c->ignored("model.layers.0.mlp.gate_proj"));  // "$" ends the pattern
  EXPECT_FALSE(c->ignored("model.layers.0.self_attn.q_proj"));
  // re.match anchors at the start only.
  EXPECT_TRUE(quantization_target_matches("re:model\\.layers\\.1", "model.layers.12.mlp.down_proj"));
  EXPECT_FALSE(quantization_target_matches("re:layers\\.1", "model.layers.12.mlp.down_proj"));
  EXPECT_TRUE(quantization_target_matches("re:.*layers\\.1", "model.layers.12.mlp.down_proj"));
  EXPECT_TRUE(quantization_target_matches("re:.*(q|k|v)_proj$", "model.layers.0.self_attn.k_proj"));
  EXPECT_FALSE(quantization_target_matches("re:.*(q|k|v)_proj$", "model.layers.0.self_attn.o_proj"));
  EXPECT_TRUE(quantization_target_matches("lm_head", "lm_head"));
  // A group targets modules: "Linear" every one, else names or patterns.
  json q = compressed_tensors_config();
  q["config_groups"]["group_0"]["targets"] = json::array({"re:.*self_attn.*"});
  const auto attn_only = parse_quantization_config(with_config(q), "c");
  EXPECT_NE(attn_only->scheme_for("model.layers.0.self_attn.q_proj"), nullptr);
  EXPECT_EQ(attn_only->scheme_for("model.layers.0.mlp.up_proj"), nullptr);
  // The layers vLLM's FP8 methods leave in float.
  EXPECT_TRUE(fp8_leaves_unquantized("lm_head.weight"));
  EXPECT_TRUE(fp8_leaves_unquantized("model.embed_tokens.weight"));
  EXPECT_TRUE(fp8_leaves_unquantized("model.layers.3.mlp.gate.weight"));
  EXPECT_TRUE(fp8_leaves_unquantized("model.layers.3.block_sparse_moe.gate.weight"));
  EXPECT_TRUE(fp8_leaves_unquantized("model.layers.3.mlp.router.weight"));
  EXPECT_FALSE(fp8_leaves_unquantized("model.layers.3.mlp.gate_proj.weight"));
  EXPECT_FALSE(fp8_leaves_unquantized("model.layers.3.self_attn.qkv_proj.weight"));
}

TEST(QuantizationConfig, QuantizationFlagAgainstTheCheckpoint) {
  const json plain{{"architectures", json::array({"LlamaForCausalLM"})}};
  EXPECT_EQ(resolve_quantization(plain, "", "config.json"), "");
  EXPECT_EQ(resolve_quantization(plain, "fp8", "config.json"), "fp8");
  EXPECT_EQ(resolve_quantization(with_config(compressed_tensors_config()), "", "c"), "compressed-tensors");
  EXPECT_EQ(resolve_quantization(with_config(compressed_tensors_config()), "compressed-tensors", "c"), "compressed-tensors");
  EXPECT_EQ(resolve_quantization(with_config(native_fp8_config()), "fp8", "c"), "fp8");
  ErrorKind kind = ErrorKind::kInternal;
  std::string e = error_of([&] { resolve_quantization(plain, "awq", "config.json"); }, &kind);
  EXPECT_NE(e.find("'awq'"), std::string::npos) << e;
  EXPECT_NE(e.find("fp8, compressed-tensors"), std::string::npos) << e;
  EXPECT_EQ(static_cast<int>(kind), static_cast<int>(ErrorKind::kUnsupported));
  e = error_of([&] { resolve_quantization(with_config(compressed_tensors_config()), "fp8", "c"); });
  EXPECT_NE(e.find("(compressed-tensors) does not match"), std::string::npos) << e;
  EXPECT_NE(e.find("(fp8)"), std::string::npos) << e;
  e = error_of([&] { resolve_quantization(plain, "compressed-tensors", "m/config.json"); });
  EXPECT_NE(e.find("m/config.json has none"), std::string::npos) << e;
}
