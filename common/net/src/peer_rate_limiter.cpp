#include "sfn/net/peer_rate_limiter.h"

#include "sfn/core/error.h"

#include <algorithm>
#include <cmath>

namespace sfn {
namespace {

// Drops further apart than this are separate episodes: a client that was over budget once
// in a while is not treated as one that floods without pause.
constexpr std::chrono::seconds kStreakGap{1};
// Above this many peers, those that are back to full buckets and not cut off are forgotten
// (they would start with full buckets anyway). Only plaintext mode, where every connection
// is a new peer, gets there; allowlists are far smaller.
constexpr std::size_t kPruneAt = 16'384;

void requirePositive(double value, std::string_view where, const char* field) {
  if (!(std::isfinite(value) && value > 0))
    SFN_THROW(ConfigError, where, ".", field, " must be a positive number (got ", value, ")");
}

}  // namespace

void RateLimitOptions::validate(std::string_view where, std::int64_t max_message_bytes) const {
  requirePositive(messages_per_s, where, "messages_per_s");
  requirePositive(message_burst, where, "message_burst");
  requirePositive(bytes_per_s, where, "bytes_per_s");
  requirePositive(bytes_burst, where, "bytes_burst");
  if (message_burst < 1)
    SFN_THROW(ConfigError, where, ".message_burst must be >= 1 (got ", message_burst, ")");
  if (bytes_burst < static_cast<double>(max_message_bytes))
    SFN_THROW(ConfigError, where, ".bytes_burst = ", bytes_burst,
              " is below the largest message accepted (", max_message_bytes,
              " bytes): such a message could never pass");
  if (sustained.count() <= 0)
    SFN_THROW(ConfigError, where, ".sustained_s must be > 0 (got ", sustained.count() / 1e3, ")");
  if (cut_off.count() < 0)
    SFN_THROW(ConfigError, where, ".cut_off_s must be >= 0 (got ", cut_off.count() / 1e3, ")");
}

PeerRateLimiter::PeerRateLimiter(const RateLimitOptions& options)
    : options_(options), prune_at_(kPruneAt) {}

void PeerRateLimiter::refill(Peer& p, TimePoint now) const {
  const double dt = std::chrono::duration<double>(now - p.refilled).count();
  if (dt <= 0) return;
  p.messages = std::min(options_.message_burst, p.messages + dt * options_.messages_per_s);
  p.bytes = std::min(options_.bytes_burst, p.bytes + dt * options_.bytes_per_s);
  p.refilled = now;
}

Admission PeerRateLimiter::overBudget(Peer& p, TimePoint now) {
  if (!p.dropping || now - p.last_drop >= kStreakGap) p.streak_start = now;
  p.dropping = true;
  p.last_drop = now;
  if (now - p.streak_start < options_.sustained) return Admission::kOverBudget;
  ++cut_offs_;
  p.cut_off_until = now + options_.cut_off;
  p.dropping = false;
  return Admission::kCutOff;
}

void PeerRateLimiter::prune(TimePoint now) {
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = it->second;
    refill(p, now);
    const bool full = p.messages >= options_.message_burst && p.bytes >= options_.bytes_burst;
    it = full && now >= p.cut_off_until ? peers_.erase(it) : std::next(it);
  }
}

Admission PeerRateLimiter::admit(const std::string& peer, std::size_t bytes, TimePoint now) {
  if (!options_.enabled) return Admission::kAccepted;
  if (peers_.size() >= prune_at_ && peers_.count(peer) == 0) {
    prune(now);
    prune_at_ = std::max(kPruneAt, 2 * peers_.size());  // amortized: O(1) per new peer
  }
  auto [it, fresh] = peers_.try_emplace(peer);
  Peer& p = it->second;
  if (fresh) {
    p.messages = options_.message_burst;
    p.bytes = options_.bytes_burst;
    p.refilled = now;
  }
  if (now < p.cut_off_until) return Admission::kCutOff;
  if (p.cut_off_until != TimePoint{} && p.refilled < p.cut_off_until) {
    // Back from a cut-off: a fresh start, as if first seen.
    p.messages = options_.message_burst;
    p.bytes = options_.bytes_burst;
    p.refilled = now;
  }
  refill(p, now);
  const double size = static_cast<double>(bytes);
  if (p.messages < 1 || p.bytes < size) return overBudget(p, now);
  p.messages -= 1;
  p.bytes -= size;
  return Admission::kAccepted;
}

bool PeerRateLimiter::cutOff(const std::string& peer, TimePoint now) const {
  const auto it = peers_.find(peer);
  return it != peers_.end() && now < it->second.cut_off_until;
}

}  // namespace sfn
