// vllm-make-model: writes a model folder with the deterministic recipe weights of
// tests/data/WEIGHTS.md for any supported config.json (tests, and benchmarks at real shapes), or
// with --quantize a GGUF file of those weights as llama.cpp's converter and quantizer would write it,
// or (--quantize fp8, fp8-channel, fp8-block) an FP8 checkpoint folder as llm-compressor or the
// native fp8 method would.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "vllm/core/error.h"
#include "vllm/core/files.h"
#include "vllm/models/fp8_export.h"
#include "vllm/models/gguf_export.h"
#include "vllm/models/random_weights.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"Write a model folder (or a GGUF file) with recipe weights for a config.json", "vllm-make-model"};
  std::string config, out, dtype = "bfloat16", quantize;
  vllm::RandomModelOptions opts;
  vllm::GgufExportOptions gguf_opts;
  vllm::Fp8ExportOptions fp8_opts;
  std::vector<std::string> copies;
  app.add_option("--config", config, "config.json of the model")->required()->check(CLI::ExistingFile);
  app.add_option("--out", out, "Output folder (a .gguf file with --quantize)")->required();
  app.add_option("--seed", opts.seed, "Recipe seed")->capture_default_str();
  auto* dtype_opt = app.add_option("--dtype", dtype,
                                   "float32, float16 or bfloat16 (with --quantize: the precision of the values "
                                   "before quantizing; default the config's torch_dtype)")
                        ->capture_default_str();
  app.add_option("--shards", opts.num_shards, "Number of safetensors shards")->capture_default_str();
  app.add_option("--copy", copies, "Files to copy into the folder (tokenizer, generation config)");
  app.add_option("--quantize", quantize,
                 "Write a GGUF file instead: f32, f16, bf16, q8_0, q4_0, q4_k, q4_k_m, q5_k, q5_k_m or q6_k; or an FP8 "
                 "checkpoint folder: fp8 (compressed-tensors, per-tensor scales), fp8-channel (per-channel) or "
                 "fp8-block (native fp8, 128x128 blocks)");
  app.add_option("--dequantized-out", fp8_opts.dequantized_out,
                 "FP8: also write a float32 folder with the dequantized weights (the reference the engine must match)");
  app.add_option("--tokenizer", gguf_opts.tokenizer.dir,
                 "GGUF: folder with the tokenizer (tokenizer.json, or vocab.json and merges.txt) to store as "
                 "tokenizer.ggml.* metadata");
  app.add_option("--tokenizer-config", gguf_opts.tokenizer.config_path,
                 "GGUF: tokenizer_config.json (default: the tokenizer folder's, else the config's folder's)");
  app.add_option("--tokenizer-pre", gguf_opts.tokenizer.pre,
                 "GGUF: tokenizer.ggml.pre (default: recognised from the pre-tokenizer)");
  app.add_option("--name", gguf_opts.name, "GGUF: general.name");
  CLI11_PARSE(app, argc, argv);
  try {
    if (vllm::is_fp8_export_scheme(quantize)) {
      fp8_opts.quantize = quantize;
      fp8_opts.seed = opts.seed;
      if (dtype_opt->count() > 0) fp8_opts.dtype = vllm::parse_dtype(dtype);
      vllm::write_recipe_fp8(config, out, fp8_opts);
      for (const auto& f : copies)
        for (const std::string& dir : {out, fp8_opts.dequantized_out})
          if (!dir.empty())
            fs::copy_file(f, fs::path(dir) / fs::path(f).filename(), fs::copy_options::overwrite_existing);
      return 0;
    }
    if (!fp8_opts.dequantized_out.empty()) throw vllm::Error("--dequantized-out goes with --quantize fp8, fp8-channel or fp8-block");
    if (!quantize.empty()) {
      gguf_opts.quantize = quantize;
      gguf_opts.seed = opts.seed;
      if (dtype_opt->count() > 0) gguf_opts.dtype = vllm::parse_dtype(dtype);
      if (!gguf_opts.tokenizer.dir.empty() && gguf_opts.tokenizer.config_path.empty() &&
          vllm::path_type((fs::path(gguf_opts.tokenizer.dir) / "tokenizer_config.json").string()) !=
              vllm::PathType::kRegular) {
        const fs::path beside = fs::path(config).parent_path() / "tokenizer_config.json";
        if (vllm::path_type(beside.string()) == vllm::PathType::kRegular) gguf_opts.tokenizer.config_path = beside.string();
      }
      vllm::write_recipe_gguf(config, out, gguf_opts);
      return 0;
    }
    opts.dtype = vllm::parse_dtype(dtype);
    vllm::write_random_model(config, out, opts);
    for (const auto& f : copies) {
      std::filesystem::path p(f);
      std::filesystem::copy_file(p, std::filesystem::path(out) / p.filename(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vllm-make-model: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
