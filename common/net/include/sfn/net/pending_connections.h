// Bookkeeping for a cap on pending connections: TCP connections a server has accepted whose
// ZMTP handshake (CURVE, or NULL in plaintext) has not completed. Each can make libzmq hold
// up to one maximum-size message and one file descriptor for the whole handshake interval,
// so their number must be bounded (issue 13 item 4). Pure bookkeeping: the transport feeds it
// its socket monitor's events and closes what overCap() returns.
//
// Connections are named by file descriptor, because that is all libzmq 4.3.4's monitor
// tells about them: ACCEPTED and DISCONNECTED carry the fd, but every event of a bind-side
// connection carries the server's own endpoint as its address (endpoint_uri_pair_t::
// identifier() is the local end there), and HANDSHAKE_SUCCEEDED carries neither. So:
// - a completed handshake is known by its fd only once that connection delivers its first
//   message (heardFrom(), libzmq's ZMQ_SRCFD); until then it is one of authenticated()'s
//   unidentified successes, which count against size() but not against the cap;
// - fds are reused: a second accepted() with an fd replaces the first (its DISCONNECTED was
//   missed), and each connection keeps the peer address it had when accepted, so that the
//   caller can check that the fd still is that connection before it closes it;
// - events may be missed or arrive late, so nothing is held for longer than max_age (the
//   handshake interval plus a margin: libzmq drops a handshake that takes longer itself):
//   older entries are forgotten, never returned by overCap(). A missed event therefore never
//   leads to cutting a connection that authenticated long ago.
// The caller applies heardFrom() only after the events that came before the message: a
// connection's ACCEPTED is always sent before its first message. (A message read from an fd
// just before that fd is closed and reused can still credit the new connection: it then
// escapes the cap, and libzmq's handshake timeout still ends it.)
//
// Every call is O(1) amortized (a fleet of 10,000 clients passes through it). Not
// thread-safe: the transport's receive thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

namespace sfn {

// The server's cap on pending connections (server.max_pending_connections,
// ZmqServerOptions::max_pending_connections): its default, and the largest value accepted,
// above any fleet and any process's file limit (a typo, not a setting). 0 means no cap.
inline constexpr int kDefaultMaxPendingConnections = 1024;
inline constexpr int kMaxPendingConnectionsLimit = 1'000'000;

class PendingConnections {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Connection {
    int fd = -1;
    std::string address;  // the peer, as the caller formatted it when it was accepted
    TimePoint accepted;
  };

  // `cap`: unauthenticated connections allowed at once, 0 for no cap (overCap() then only
  // forgets). `max_age`: how long an entry or an unidentified success is kept (> 0).
  // Throws ConfigError for a max_age <= 0.
  PendingConnections(std::size_t cap, std::chrono::milliseconds max_age);

  // A connection was accepted on `fd` at `now` (never earlier than a previous call's).
  void accepted(int fd, std::string address, TimePoint now);
  // Some pending connection completed its handshake (which one is not known yet).
  void authenticated(TimePoint now);
  // A message arrived on `fd`: its connection is authenticated. True if it was pending.
  bool heardFrom(int fd);
  // The connection on `fd` ended; `handshake_failed` if libzmq reported its handshake as
  // failed just before (so it was not one of the unidentified successes). True if it was
  // pending.
  bool disconnected(int fd, bool handshake_failed);

  // Forgets what is older than max_age, then removes and returns the oldest connections
  // beyond the cap (pending() - cap of them), oldest first; they count as evictions.
  [[nodiscard]] std::vector<Connection> overCap(TimePoint now);

  // Connections recorded: pending ones plus those authenticated but not yet heard from.
  std::size_t size() const { return by_fd_.size(); }
  // Of those, the ones that count against the cap: size() minus unidentified successes.
  std::size_t pending() const;
  std::uint64_t evictions() const { return evictions_; }
  // Entries forgotten for their age (libzmq dropped them, or an event was missed).
  std::uint64_t expired() const { return expired_; }

 private:
  void forgetOlderThan(TimePoint now);
  void erase(std::list<Connection>::iterator it);
  void dropOneSuccess();

  std::size_t cap_;
  std::chrono::milliseconds max_age_;
  std::list<Connection> by_age_;  // oldest first
  std::unordered_map<int, std::list<Connection>::iterator> by_fd_;
  std::deque<TimePoint> successes_;  // unidentified authenticated(), oldest first
  std::uint64_t evictions_ = 0;
  std::uint64_t expired_ = 0;
};

}  // namespace sfn
