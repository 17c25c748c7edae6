// Constrained generation over many schemas, for an independent validator
// (tests/structured/validate_constrained.mjs, ajv): for every schema of the official
// JSON-Schema-Test-Suite that compiles and for random schemas from random_schema.h, generates
// with several seeds at temperature 1.0 on a model and writes one JSON line per output:
//   {"source", "draft", "schema", "seed", "finish_reason", "text"}
// Schemas the front end refuses (unsupported keywords) are counted and listed on stderr with the
// error, which must name the keyword; nothing is hidden.
//
//   constrained_generation_dump --model DIR --out FILE [--random N] [--seeds K] [--suite DIR]
//                               [--max-suite N] [--max-tokens T]
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "../engine/golden.h"
#include "random_schema.h"
#include "vllm/core/error.h"
#include "vllm/engine/llm_engine.h"
#include "vllm/structured/structured_outputs_params.h"

namespace fs = std::filesystem;
using namespace vllm;
using ojson = nlohmann::ordered_json;

namespace {

struct SchemaCase {
  std::string source;  // "random/17", "draft4/properties.json#2"
  std::string draft;   // "2020-12", "draft4"
  ojson schema;
};

std::vector<SchemaCase> suite_cases(const fs::path& root, size_t limit) {
  std::vector<SchemaCase> out;
  if (!fs::exists(root)) return out;
  std::vector<fs::path> files;
  for (const auto& draft_dir : fs::directory_iterator(root)) {
    const std::string draft = draft_dir.path().filename().string();
    if (!draft_dir.is_directory() || draft == "draft3") continue;  // draft3's keywords differ too much
    for (const auto& f : fs::directory_iterator(draft_dir.path()))
      if (f.path().extension() == ".json") files.push_back(f.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    ojson groups = ojson::parse(in);
    for (size_t g = 0; g < groups.size() && out.size() < limit; ++g)
      out.push_back({f.parent_path().filename().string() + "/" + f.filename().string() + "#" + std::to_string(g),
                     f.parent_path().filename().string(), groups[g]["schema"]});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--random", "200"}, {"--seeds", "5"}, {"--max-suite", "100000"},
                                             {"--max-tokens", "256"}, {"--suite", ""}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  if (!args.count("--model") || !args.count("--out")) {
    std::cerr << "usage: constrained_generation_dump --model DIR --out FILE [--random N] [--seeds K] [--suite DIR]\n";
    return 2;
  }
  const int seeds = std::stoi(args["--seeds"]);

  std::vector<SchemaCase> cases;
  if (!args["--suite"].empty()) cases = suite_cases(args["--suite"], std::stoul(args["--max-suite"]));
  const size_t num_suite = cases.size();
  for (int i = 0; i < std::stoi(args["--random"]); ++i) {
    structured::testing::RandomSchemaGenerator gen(static_cast<uint64_t>(i) * 7919 + 1);
    cases.push_back({"random/" + std::to_string(i), "2020-12", gen.schema()});
  }

  EngineConfig config;
  // A model folder, or the name of a test model (its random weights are written first).
  config.model = fs::is_directory(args["--model"]) ? args["--model"] : test::materialize_model(args["--model"]);
  config.dtype = "float32";
  config.num_kv_blocks = 4096;
  LLMEngine engine(config);

  std::map<std::string, const SchemaCase*> by_id;
  std::map<std::string, int> seed_of;
  size_t compiled = 0, refused = 0;
  for (const SchemaCase& c : cases) {
    nlohmann::json so = {{"json", c.schema.dump()}};
    for (int seed = 0; seed < seeds; ++seed) {
      SamplingParams p;
      p.temperature = 1.0;
      p.seed = seed;
      p.max_tokens = std::stoi(args["--max-tokens"]);
      p.structured_outputs = so;
      const std::string id = c.source + "@" + std::to_string(seed);
      try {
        engine.add_request(id, PromptInput::from_text("Here is the JSON:"), p);
      } catch (const Error& e) {
        if (seed == 0) {
          ++refused;
          std::cerr << "refused " << c.source << ": " << e.what() << "\n";
        }
        break;
      }
      if (seed == 0) ++compiled;
      by_id[id] = &c;
      seed_of[id] = seed;
    }
  }

  std::ofstream out(args["--out"]);
  size_t outputs = 0, stopped = 0;
  while (engine.has_unfinished()) {
    for (auto& r : engine.step()) {
      if (!r.finished) continue;
      const SchemaCase& c = *by_id.at(r.request_id);
      const CompletionOutput& o = r.outputs.at(0);
      const std::string reason(o.finish_reason ? finish_reason_name(*o.finish_reason) : "");
      ojson line = {{"source", c.source}, {"draft", c.draft}, {"schema", c.schema}, {"seed", seed_of[r.request_id]},
                    {"finish_reason", reason}, {"text", o.text}};
      out << line.dump(-1, ' ', false, ojson::error_handler_t::replace) << "\n";
      ++outputs;
      stopped += reason == "stop";
    }
  }
  std::cerr << "schemas: " << cases.size() << " (" << num_suite << " from the suite), compiled " << compiled
            << ", refused " << refused << "; outputs " << outputs << ", finished with stop " << stopped << "\n";
  return 0;
}
