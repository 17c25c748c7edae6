// vllm-make-model: writes a model folder with the deterministic recipe weights of
// tests/data/WEIGHTS.md for any supported config.json (tests, and benchmarks at real shapes).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "vllm/core/error.h"
#include "vllm/models/random_weights.h"

int main(int argc, char** argv) {
  CLI::App app{"Write a model folder with recipe weights for a config.json", "vllm-make-model"};
  std::string config, out, dtype = "bfloat16";
  vllm::RandomModelOptions opts;
  std::vector<std::string> copies;
  app.add_option("--config", config, "config.json of the model")->required()->check(CLI::ExistingFile);
  app.add_option("--out", out, "Output folder")->required();
  app.add_option("--seed", opts.seed, "Recipe seed")->capture_default_str();
  app.add_option("--dtype", dtype, "float32, float16 or bfloat16")->capture_default_str();
  app.add_option("--shards", opts.num_shards, "Number of safetensors shards")->capture_default_str();
  app.add_option("--copy", copies, "Files to copy into the folder (tokenizer, generation config)");
  CLI11_PARSE(app, argc, argv);
  try {
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
