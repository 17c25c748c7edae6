#include "vllm/hub/download_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "vllm/core/logging.h"

namespace vllm::hub {

namespace {
bool env_is_true(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s == "1" || s == "ON" || s == "YES" || s == "TRUE";
}
}  // namespace

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) bytes /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

bool DownloadProgress::bars_enabled() { return isatty(STDERR_FILENO) && !env_is_true("HF_HUB_DISABLE_PROGRESS_BARS"); }

DownloadProgress::DownloadProgress(std::string file, uint64_t total, uint64_t already)
    : file_(std::move(file)), total_(total), already_(already), bar_(bars_enabled()),
      start_(std::chrono::steady_clock::now()), last_draw_() {}

void DownloadProgress::update(uint64_t done) {
  if (!bar_) return;
  auto now = std::chrono::steady_clock::now();
  // Ten redraws a second are smooth enough and cost nothing next to the transfer.
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done, false);
}

void DownloadProgress::finish(uint64_t done) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (bar_) {
    draw(done, true);
    return;
  }
  std::string resumed = already_ > 0 ? " (resumed at " + human_bytes(static_cast<double>(already_)) + ")" : "";
  VLLM_LOG_INFO("Downloaded {} ({}) in {:.1f}s{}", file_, human_bytes(static_cast<double>(done)), seconds, resumed);
}

void DownloadProgress::draw(uint64_t done, bool final) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = seconds > 0 ? static_cast<double>(done - std::min(done, already_)) / seconds : 0;
  std::string line = file_ + ": ";
  if (total_ > 0) {
    constexpr int kWidth = 20;
    int filled = static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total_));
    filled = std::max(0, std::min(kWidth, filled));
    char pct[8];
    std::snprintf(pct, sizeof(pct), "%3d%%", static_cast<int>(100.0 * static_cast<double>(done) / total_));
    line += std::string(pct) + "|" + std::string(filled, '#') + std::string(kWidth - filled, ' ') + "| " +
            human_bytes(static_cast<double>(done)) + "/" + human_bytes(static_cast<double>(total_));
  } else {
    line += human_bytes(static_cast<double>(done));
  }
  line += " [" + human_bytes(rate) + "/s]";
  // \r redraws in place; \x1b[K clears what a longer previous line left behind.
  std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace vllm::hub
