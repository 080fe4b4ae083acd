// StopSignal's SIGHUP "reload requested" flag (sfn-server re-reads its allowlist on SIGHUP).
#include "sfn/app/stop_signal.h"

#include <doctest/doctest.h>

#include <csignal>

namespace {

// The handler installed for `signo` right now.
void (*handlerOf(int signo))(int) {
  struct sigaction current {};
  REQUIRE(::sigaction(signo, nullptr, &current) == 0);
  return current.sa_handler;
}

}  // namespace

TEST_CASE("StopSignal: with Hangup::kReload, SIGHUP requests a reload, taken once") {
  const auto before = handlerOf(SIGHUP);
  {
    const sfn::StopSignal stop(sfn::StopSignal::Hangup::kReload);
    CHECK_FALSE(stop.takeReloadRequest());
    REQUIRE(::raise(SIGHUP) == 0);  // would end the process without the handler
    REQUIRE(::raise(SIGHUP) == 0);
    CHECK_FALSE(stop.requested());  // a reload is not a stop
    CHECK(stop.takeReloadRequest());
    CHECK_FALSE(stop.takeReloadRequest());  // two signals before a take: one reload
    REQUIRE(::raise(SIGTERM) == 0);
    CHECK(stop.requested());
    CHECK_FALSE(stop.takeReloadRequest());
  }
  CHECK((handlerOf(SIGHUP) == before));  // restored
}

TEST_CASE("StopSignal: without Hangup::kReload, SIGHUP keeps its handler and never reloads") {
  const auto before = handlerOf(SIGHUP);
  const sfn::StopSignal stop;
  CHECK((handlerOf(SIGHUP) == before));
  CHECK_FALSE(stop.takeReloadRequest());
}
