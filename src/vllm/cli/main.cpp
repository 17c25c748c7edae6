// vllm: entry point. Dispatches to the subcommands; turns errors into a message and exit code 1.
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vllm/cli/commands.h"
#include "vllm/core/error.h"
#include "vllm/core/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"vllm-cpp: a high-throughput LLM inference and serving engine (vLLM's commands, in C++)", "vllm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(VLLM_VERSION));
  std::map<CLI::App*, vllm::cli::Runner> runners;
  auto add = [&](vllm::cli::Runner r) { runners[app.get_subcommands({}).back()] = std::move(r); };
  add(vllm::cli::add_generate(app));
  add(vllm::cli::add_bench(app));
  add(vllm::cli::add_serve(app));
  add(vllm::cli::add_tokenize(app));
  add(vllm::cli::add_detokenize(app));
  add(vllm::cli::add_render_chat(app));
  add(vllm::cli::add_chat(app));
  add(vllm::cli::add_complete(app));
  // An unknown command word: argparse's message in vLLM, with the choices.
  if (argc > 1 && argv[1][0] != '-') {
    std::string choices;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == argv[1];
      choices += (choices.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "vllm: error: invalid choice: '%s' (choose from %s)\n", argv[1], choices.c_str());
      return 2;
    }
  }
  // vLLM's (argparse's) multi-letter short options, which CLI11 has no room for: spelled out
  // before parsing ("-tp 2" and "-tp=2" as "--tensor-parallel-size 2", and -dp).
  const std::map<std::string, std::string> long_names = {{"-tp", "--tensor-parallel-size"}, {"-dp", "--data-parallel-size"}};
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string name = args[i].substr(0, args[i].find('='));
    if (auto it = long_names.find(name); it != long_names.end()) args[i] = it->second + args[i].substr(name.size());
  }
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  try {
    app.parse(argc, arg_ptrs.data());
  } catch (const CLI::ExtrasError& e) {
    // Name the closest known flag, like argparse's suggestions in vLLM, of the innermost command
    // given (`vllm bench serve`, not `vllm bench`).
    CLI::App* sub = &app;
    std::string path = "vllm";
    while (!sub->get_subcommands().empty()) {
      sub = sub->get_subcommands().front();
      path += " " + sub->get_name();
    }
    std::string msg = e.what();
    for (const auto& arg : sub->remaining()) {
      if (arg.rfind("--", 0) != 0) continue;
      std::string name = arg.substr(0, arg.find('='));
      std::string guess = vllm::cli::closest_flag(*sub, name);
      msg = "unrecognized argument " + name + (guess.empty() ? "" : " (did you mean " + guess + "?)");
      break;
    }
    std::fprintf(stderr, "%s: error: %s\n", path.c_str(), msg.c_str());
    return 2;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (CLI::App* sub : app.get_subcommands()) {
      auto it = runners.find(sub);
      if (it != runners.end()) return it->second();
    }
  } catch (const vllm::Error& e) {
    std::fprintf(stderr, "vllm: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vllm: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
