#include "vllm/core/startup_signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace vllm {

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Ends the process the way the signal would have without the mask: default action, re-raised
// in this thread with the signal unblocked (exit status 128 + sig in a shell).
[[noreturn]] void die_by(int sig) {
  const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
  char line[96];
  const int n = std::snprintf(line, sizeof line, "vllm: received %s while starting; exiting\n", name);
  if (n > 0) (void)!::write(STDERR_FILENO, line, static_cast<size_t>(n));
  ::signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(sig);
  ::_exit(128 + sig);  // only if the signal was ignored by its default disposition (it is not)
}

}  // namespace

StartupSignalWatcher::StartupSignalWatcher() {
  sigset_t set = stop_signals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  watcher_ = std::thread([this, set] {
    // Polls so that done() takes effect within one period; sigtimedwait takes a pending signal
    // off the process, so it is never lost between the watcher and the caller's sigwait.
    const timespec period{0, 50 * 1000 * 1000};
    while (!done_.load()) {
      siginfo_t info;
      const int sig = ::sigtimedwait(&set, &info, &period);
      if (sig > 0) {
        if (done_.load()) {
          // Start-up ended while this signal was being taken: hand it to the caller's sigwait.
          ::kill(::getpid(), sig);
          return;
        }
        die_by(sig);
      }
    }
  });
}

StartupSignalWatcher::~StartupSignalWatcher() { done(); }

void StartupSignalWatcher::done() {
  done_.store(true);
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace vllm
