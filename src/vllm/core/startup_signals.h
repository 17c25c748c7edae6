// SIGINT/SIGTERM while a server starts. The server blocks both signals in every thread (the
// engine, compute and I/O threads inherit the mask) and later takes them on its main thread with
// sigwait, to shut down in order. Until it reaches that sigwait, though, a blocked signal would
// only wait: a model that takes minutes to load, or a load stuck on a bad file, could then be
// neither interrupted nor terminated. While a StartupSignalWatcher lives, one of those signals
// ends the process at once, as it would a process that never blocked them.
#pragma once

#include <atomic>
#include <thread>

namespace vllm {

class StartupSignalWatcher {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread (so in every thread it starts from now on)
  // and starts the thread that watches for them.
  StartupSignalWatcher();
  // Stops watching (done()); the signals stay blocked, so one that arrives later waits for the
  // caller's sigwait.
  ~StartupSignalWatcher();
  StartupSignalWatcher(const StartupSignalWatcher&) = delete;
  StartupSignalWatcher& operator=(const StartupSignalWatcher&) = delete;

  // Start-up is over: from here on the caller takes the signals itself.
  void done();

 private:
  std::atomic<bool> done_{false};
  std::thread watcher_;
};

}  // namespace vllm
