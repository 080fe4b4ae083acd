// SIGINT and SIGTERM as a stop request that loops poll.
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
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  const std::atomic<bool>& flag() const;
  bool requested() const { return flag().load(std::memory_order_relaxed); }
  // The signal that set the flag (SIGINT, SIGTERM), or 0.
  int signalNumber() const;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace sfn
