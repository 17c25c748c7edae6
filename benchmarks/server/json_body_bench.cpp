// CPU time of parsing a request body with many keys (issue 20: 160,000 keys took 16-20 s with
// nlohmann::ordered_json's quadratic inserts): the server's parser, next to nlohmann::json
// (std::map) for scale. Usage: json_body_bench [KEYS] (default 160000).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "vllm/server/json_body.h"

namespace {

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int keys = argc > 1 ? std::atoi(argv[1]) : 160000;
  std::string text = "{\"model\":\"m\",\"prompt\":\"a\"";
  for (int i = 0; i < keys; ++i) text.append(",\"k").append(std::to_string(i)).append("\":").append(std::to_string(i));
  text += "}";
  double best = 1e30, best_map = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    double t0 = cpu_ms();
    { auto j = vllm::server::parse_request_json(text); }
    double t1 = cpu_ms();
    { auto j = nlohmann::json::parse(text); }
    double t2 = cpu_ms();
    best = std::min(best, t1 - t0);
    best_map = std::min(best_map, t2 - t1);
  }
  std::printf("%d keys (%.1f MB): parse_request_json %.1f ms CPU, nlohmann::json (std::map) %.1f ms CPU (best of 5, "
              "parse and destroy)\n",
              keys, static_cast<double>(text.size()) / 1e6, best, best_map);
  return 0;
}
