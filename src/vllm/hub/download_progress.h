// What a download shows on stderr: a live bar when stderr is a terminal (like huggingface_hub's
// tqdm bars), else one log line per finished file so that logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vllm::hub {

class DownloadProgress {
 public:
  // `already` bytes were on disk before (a resumed download); `total` is 0 when unknown.
  DownloadProgress(std::string file, uint64_t total, uint64_t already);
  void update(uint64_t done);
  void finish(uint64_t done);

  // Bars only on a terminal, and not when HF_HUB_DISABLE_PROGRESS_BARS is set (as huggingface_hub).
  static bool bars_enabled();

 private:
  void draw(uint64_t done, bool final);

  std::string file_;
  uint64_t total_;
  uint64_t already_;
  bool bar_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1.5 MB" style sizes (decimal units, as the Hub shows them).
std::string human_bytes(double bytes);

}  // namespace vllm::hub
