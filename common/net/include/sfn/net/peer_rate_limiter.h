// Per-peer receive budgets for a server transport: two token buckets per authenticated
// peer (messages and bytes, each with a rate and a burst), and a cut-off for a peer that
// stays over its budget.
//
// A message that finds either bucket short is dropped (not queued: the point is to spend
// nothing on it). A peer whose drops continue for `sustained` (no gap of a second or more
// between them) is cut off for `cut_off`: all its messages are dropped without touching
// the buckets, then it starts again with full buckets. The defaults are far above what an
// honest client sends (about one message per task plus a heartbeat every few seconds), so
// only a flood meets them.
//
// Memory: one small entry per peer seen (allowlisted keys in secure mode; in plaintext mode
// idle entries are pruned beyond 16,384). Not thread-safe: the thread that owns the socket
// owns the limiter.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sfn {

struct RateLimitOptions {
  double messages_per_s = 50;              // refill of the message bucket
  double message_burst = 500;              // its size: messages accepted at once
  double bytes_per_s = 256.0 * (1 << 20);  // refill of the byte bucket
  // Its size. Must hold the largest message the socket accepts (ZMQ_MAXMSGSIZE), or such
  // a message could never pass; 2 GiB covers the default 1 GiB limit twice.
  double bytes_burst = 2.0 * (1 << 30);
  std::chrono::milliseconds sustained{5'000};  // over budget this long -> cut off
  std::chrono::milliseconds cut_off{60'000};   // for this long
  bool enabled = true;

  // Throws ConfigError naming `where` + the field (e.g. "server.rate_limit.bytes_burst"),
  // including bytes_burst < max_message_bytes.
  void validate(std::string_view where, std::int64_t max_message_bytes) const;
};

enum class Admission {
  kAccepted,
  kOverBudget,  // dropped: a bucket was short
  kCutOff,      // dropped: the peer is cut off (the drop that starts a cut-off is one too)
};

class PeerRateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit PeerRateLimiter(const RateLimitOptions& options);

  // Charges one message of `bytes` to `peer` at `now` (never earlier than a previous call's).
  [[nodiscard]] Admission admit(const std::string& peer, std::size_t bytes, TimePoint now);

  // Whether `peer` is cut off at `now`.
  bool cutOff(const std::string& peer, TimePoint now) const;
  // Cut-offs started so far (a peer cut off twice counts twice).
  std::uint64_t cutOffs() const { return cut_offs_; }
  // Peers with state held (see "Memory" above).
  std::size_t peers() const { return peers_.size(); }

 private:
  struct Peer {
    double messages = 0;
    double bytes = 0;
    TimePoint refilled;
    TimePoint streak_start;  // first drop of the current run of drops
    TimePoint last_drop;
    bool dropping = false;
    TimePoint cut_off_until;
  };
  void refill(Peer& p, TimePoint now) const;
  void prune(TimePoint now);
  Admission overBudget(Peer& p, TimePoint now);

  RateLimitOptions options_;
  std::unordered_map<std::string, Peer> peers_;
  std::uint64_t cut_offs_ = 0;
  std::size_t prune_at_;  // peers_.size() that triggers the next prune()
};

}  // namespace sfn
