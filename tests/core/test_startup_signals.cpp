// SIGTERM/SIGINT during a server's start: with the signals blocked for the server's sigwait,
// a StartupSignalWatcher must still end the process at once (issue 20: `vllm serve` ignored
// both while it loaded a model), and once start-up is done hand them to the caller's sigwait.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "vllm/core/startup_signals.h"

namespace {

// Forks a child that runs `body`; returns its wait status, or -1 if it is still running after
// `limit` (then it is killed).
template <typename F>
int run_child(F body, int signal_to_send, std::chrono::milliseconds after, std::chrono::seconds limit) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  std::this_thread::sleep_for(after);
  ::kill(pid, signal_to_send);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

TEST(StartupSignals, SignalDuringStartEndsTheProcess) {
  for (int sig : {SIGTERM, SIGINT}) {
    const int status = run_child(
        [] {
          vllm::StartupSignalWatcher watcher;
          std::this_thread::sleep_for(std::chrono::seconds(30));  // a long model load
        },
        sig, std::chrono::milliseconds(300), std::chrono::seconds(10));
    ASSERT_NE(status, -1) << "signal " << sig << " was ignored during start-up";
    EXPECT_TRUE(WIFSIGNALED(status)) << status;
    EXPECT_EQ(WTERMSIG(status), sig);
  }
}

TEST(StartupSignals, AfterStartTheCallerTakesThem) {
  const int status = run_child(
      [] {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        vllm::StartupSignalWatcher watcher;
        watcher.done();
        int sig = 0;
        while (sigwait(&set, &sig) != 0) {
        }
        ::_exit(sig == SIGTERM ? 42 : 43);  // shut down in order
      },
      SIGTERM, std::chrono::milliseconds(300), std::chrono::seconds(10));
  ASSERT_NE(status, -1);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 42);
}

}  // namespace
