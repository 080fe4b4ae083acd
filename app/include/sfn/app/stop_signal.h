// SIGINT and SIGTERM as a stop request that loops poll; SIGHUP, if asked, as a reload request.
#pragma once

#include <signal.h>

#include <atomic>

namespace sfn {

// While a StopSignal exists, SIGINT and SIGTERM set one lock-free atomic flag (the only
// thing a signal handler may safely touch) instead of killing the process. Loops take the
// flag as `const std::atomic<bool>&` and poll it at least once per blocking wait, so the
// process stops within one wait's timeout; no watcher thread is needed. The previous
// handlers are restored on destruction. Create at most one at a time (in main()): the
// flag is process-wide because signals are.
//
// With Hangup::kReload, SIGHUP sets a second flag, "reload requested", which the owner
// takes (reads and clears) with takeReloadRequest() from its own loop and then does the
// work there (sfn-server re-reads its allowlist); the handler does nothing else. Without it
// SIGHUP keeps its default action (ending the process, as a closed terminal expects).
class StopSignal {
 public:
  enum class Hangup { kDefault, kReload };
  explicit StopSignal(Hangup hangup = Hangup::kDefault);
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  const std::atomic<bool>& flag() const;
  bool requested() const { return flag().load(std::memory_order_relaxed); }
  // The signal that set the flag (SIGINT, SIGTERM), or 0.
  int signalNumber() const;
  // Whether SIGHUP arrived since the last call (always false without Hangup::kReload).
  // Several SIGHUPs before a call count as one: one reload reads the newest file anyway.
  bool takeReloadRequest() const;

 private:
  Hangup hangup_;
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
  struct sigaction previous_hup_ {};
};

}  // namespace sfn
