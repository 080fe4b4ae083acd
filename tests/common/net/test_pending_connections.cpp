// PendingConnections (issue 13 item 4): the bookkeeping behind the server's cap on
// connections still in their handshake, on a hand-driven clock.
#include "sfn/core/error.h"
#include "sfn/net/pending_connections.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sfn::PendingConnections;

namespace {

const PendingConnections::TimePoint kT0{};

std::string addr(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

std::vector<int> fds(const std::vector<PendingConnections::Connection>& cut) {
  std::vector<int> out;
  for (const auto& c : cut) out.push_back(c.fd);
  return out;
}

}  // namespace

TEST_CASE("pending connections: over the cap, the oldest are cut, oldest first") {
  PendingConnections p(3, 12s);
  for (int fd = 10; fd < 16; ++fd) p.accepted(fd, addr(fd), kT0 + (fd - 10) * 1ms);
  CHECK(p.size() == 6);
  CHECK(p.pending() == 6);
  const auto cut = p.overCap(kT0 + 10ms);
  CHECK(fds(cut) == std::vector<int>{10, 11, 12});
  CHECK(cut[0].address == addr(10));
  CHECK(cut[0].accepted == kT0);
  CHECK(p.size() == 3);
  CHECK(p.evictions() == 3);
  // At the cap nothing more goes; the next one over it takes the now oldest (13).
  CHECK(p.overCap(kT0 + 11ms).empty());
  p.accepted(20, addr(20), kT0 + 12ms);
  CHECK(fds(p.overCap(kT0 + 12ms)) == std::vector<int>{13});
  CHECK(p.evictions() == 4);
}

TEST_CASE("pending connections: finished handshakes leave, and do not count") {
  PendingConnections p(2, 12s);
  p.accepted(5, addr(1), kT0);
  p.accepted(6, addr(2), kT0);
  p.accepted(7, addr(3), kT0);
  // 6 failed its handshake and closed; 5 authenticated and sent its first message.
  CHECK(p.disconnected(6, /*handshake_failed=*/true));
  p.authenticated(kT0 + 1ms);
  CHECK(p.heardFrom(5));
  CHECK(p.size() == 1);
  CHECK(p.pending() == 1);
  CHECK(p.overCap(kT0 + 2ms).empty());
  // Already gone, or never seen: nothing happens.
  CHECK_FALSE(p.heardFrom(5));
  CHECK_FALSE(p.disconnected(6, true));
  CHECK_FALSE(p.disconnected(99, false));
  CHECK_FALSE(p.heardFrom(99));
  CHECK(p.size() == 1);
}

TEST_CASE("pending connections: an authenticated but silent connection is not cut for the cap") {
  PendingConnections p(2, 12s);
  p.accepted(5, addr(1), kT0);
  p.accepted(6, addr(2), kT0 + 1ms);
  p.accepted(7, addr(3), kT0 + 2ms);
  // One of them completed its handshake (libzmq does not say which) and sends nothing yet:
  // 3 recorded, 2 unauthenticated, at the cap.
  p.authenticated(kT0 + 3ms);
  CHECK(p.size() == 3);
  CHECK(p.pending() == 2);
  CHECK(p.overCap(kT0 + 4ms).empty());
  // It closes without a message, not as a failed handshake: its success goes with it.
  CHECK(p.disconnected(7, /*handshake_failed=*/false));
  CHECK(p.pending() == 2);
  p.accepted(8, addr(4), kT0 + 5ms);
  CHECK(fds(p.overCap(kT0 + 5ms)) == std::vector<int>{5});
  // A success cannot outnumber what it could belong to.
  PendingConnections q(1, 12s);
  q.authenticated(kT0);
  q.accepted(3, addr(1), kT0 + 1ms);
  q.accepted(4, addr(2), kT0 + 2ms);
  CHECK(q.pending() == 2);
  CHECK(fds(q.overCap(kT0 + 3ms)) == std::vector<int>{3});
}

TEST_CASE("pending connections: entries older than max_age are forgotten, never cut") {
  PendingConnections p(1, 10s);
  p.accepted(5, addr(1), kT0);
  p.accepted(6, addr(2), kT0 + 4s);
  p.accepted(7, addr(3), kT0 + 11s);
  // At 11 s, 5 is 11 s old: libzmq dropped it itself (or we missed its close). Forgotten
  // first, so only 6 is over the cap.
  CHECK(fds(p.overCap(kT0 + 11s)) == std::vector<int>{6});
  CHECK(p.expired() == 1);
  CHECK(p.evictions() == 1);
  CHECK(p.size() == 1);
  // With no cap, entries are still forgotten (size() stays meaningful), never cut.
  PendingConnections open(0, 10s);
  for (int fd = 0; fd < 100; ++fd) open.accepted(fd, addr(fd), kT0 + fd * 1ms);
  CHECK(open.overCap(kT0 + 5s).empty());
  CHECK(open.size() == 100);
  CHECK(open.overCap(kT0 + 10s + 50ms).empty());
  CHECK(open.size() == 49);
  CHECK(open.expired() == 51);
  CHECK(open.evictions() == 0);
  // Unidentified successes age out too.
  PendingConnections s(1, 10s);
  s.accepted(1, addr(1), kT0 + 5s);
  s.accepted(2, addr(2), kT0 + 6s);
  s.authenticated(kT0);
  CHECK(s.pending() == 1);
  CHECK(fds(s.overCap(kT0 + 10s)) == std::vector<int>{1});
}

TEST_CASE("pending connections: a reused fd replaces the connection it named before") {
  PendingConnections p(1, 12s);
  p.accepted(5, addr(1), kT0);
  p.accepted(6, addr(2), kT0 + 1ms);
  // fd 5 closed (the event was missed) and came back as another connection: it is now the
  // newest, with its new address.
  p.accepted(5, addr(3), kT0 + 2ms);
  CHECK(p.size() == 2);
  const auto cut = p.overCap(kT0 + 3ms);
  REQUIRE(cut.size() == 1);
  CHECK(cut[0].fd == 6);
  CHECK(p.heardFrom(5));
  CHECK(p.size() == 0);
}

TEST_CASE("pending connections: max_age must be positive") {
  CHECK_THROWS_AS(PendingConnections(1, 0ms), sfn::ConfigError);
}
