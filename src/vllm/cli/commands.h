// The `vllm` command line: one binary, vLLM's subcommands and flag names.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "vllm/engine/engine_config.h"

namespace vllm::cli {

// Adds vLLM's engine flags (--dtype, --block-size, --max-model-len, ...) bound to `config`.
void add_engine_args(CLI::App* app, EngineConfig& config);
// Resolves the model argument to a folder: a local folder, a Hub model id (org/name, from the cache
// or downloaded at `revision` into `download_dir`; "" means main and the default cache), or the
// built-in default when empty.
std::string resolve_model_folder(const std::string& model, const std::string& revision = "",
                                 const std::string& download_dir = "");

// Each subcommand registers itself and returns the function that runs it.
using Runner = std::function<int()>;
Runner add_generate(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_serve(CLI::App& app);
Runner add_tokenize(CLI::App& app);    // tokenize.cpp: also detokenize, render-chat
Runner add_detokenize(CLI::App& app);
Runner add_render_chat(CLI::App& app);
Runner add_chat(CLI::App& app);       // chat.cpp: also complete (clients of a running server)
Runner add_complete(CLI::App& app);
// bench_serve.cpp: `vllm bench serve` under `bench`; sets *runner to the function that runs it.
CLI::App* add_bench_serve(CLI::App* bench, Runner* runner);

// The known flag closest to `unknown` (edit distance), or "" if none is close.
std::string closest_flag(const CLI::App& app, const std::string& unknown);

}  // namespace vllm::cli
