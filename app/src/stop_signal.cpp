#include "sfn/app/stop_signal.h"

#include "sfn/core/error.h"

namespace sfn {
namespace {

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "signal handlers may only touch lock-free atomics");

// A signal handler can reach only process-wide state; these are the one exception to
// "no mutable state outside objects", kept inside functions so nothing else names them.
std::atomic<bool>& stopFlag() {
  static std::atomic<bool> flag{false};
  return flag;
}
std::atomic<int>& stopSignalNumber() {
  static std::atomic<int> signo{0};
  return signo;
}
std::atomic<bool>& reloadFlag() {
  static std::atomic<bool> flag{false};
  return flag;
}
std::atomic<bool>& installed() {
  static std::atomic<bool> in_use{false};
  return in_use;
}

extern "C" void onStopSignal(int signo) {
  stopSignalNumber().store(signo, std::memory_order_relaxed);
  stopFlag().store(true, std::memory_order_relaxed);
}

extern "C" void onHangupSignal(int) { reloadFlag().store(true, std::memory_order_relaxed); }

}  // namespace

StopSignal::StopSignal(Hangup hangup) : hangup_(hangup) {
  SFN_ENFORCE(!installed().exchange(true), Error, "only one StopSignal may exist at a time");
  stopFlag().store(false);
  stopSignalNumber().store(0);
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &previous_int_);
  ::sigaction(SIGTERM, &sa, &previous_term_);
  reloadFlag().store(false);
  if (hangup_ == Hangup::kReload) {
    sa.sa_handler = onHangupSignal;
    ::sigaction(SIGHUP, &sa, &previous_hup_);
  }
}

StopSignal::~StopSignal() {
  ::sigaction(SIGINT, &previous_int_, nullptr);
  ::sigaction(SIGTERM, &previous_term_, nullptr);
  if (hangup_ == Hangup::kReload) ::sigaction(SIGHUP, &previous_hup_, nullptr);
  installed().store(false);
}

const std::atomic<bool>& StopSignal::flag() const { return stopFlag(); }

int StopSignal::signalNumber() const { return stopSignalNumber().load(); }

bool StopSignal::takeReloadRequest() const {
  return hangup_ == Hangup::kReload && reloadFlag().exchange(false);
}

}  // namespace sfn
