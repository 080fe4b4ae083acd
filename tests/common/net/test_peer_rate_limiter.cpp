// PeerRateLimiter on a hand-driven clock: exact counts, no sleeping.
#include "sfn/core/error.h"
#include "sfn/net/peer_rate_limiter.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

TEST_CASE("peer rate limiter: burst, refill, cut-off after sustained excess, fresh start") {
  sfn::RateLimitOptions o;
  o.messages_per_s = 10;
  o.message_burst = 5;
  o.bytes_per_s = 1000;
  o.bytes_burst = 4000;
  o.sustained = 2s;
  o.cut_off = 30s;
  sfn::PeerRateLimiter limiter(o);
  const TimePoint t0 = TimePoint{} + 1h;
  using A = sfn::Admission;

  for (int i = 0; i < 5; ++i) CHECK(limiter.admit("a", 10, t0) == A::kAccepted);
  CHECK(limiter.admit("a", 10, t0) == A::kOverBudget);
  CHECK(limiter.admit("b", 10, t0) == A::kAccepted);          // each peer has its own buckets
  CHECK(limiter.admit("a", 10, t0 + 100ms) == A::kAccepted);  // 10/s: one more after 0.1 s
  // Bytes (another peer): 4000 burst, then 1000/s.
  CHECK(limiter.admit("d", 3000, t0) == A::kAccepted);
  CHECK(limiter.admit("d", 1500, t0) == A::kOverBudget);
  CHECK(limiter.admit("d", 900, t0) == A::kAccepted);
  CHECK(limiter.admit("d", 550, t0 + 500ms) == A::kAccepted);  // 100 + 500 refilled

  // Over budget without a pause for 2 s: cut off, and then everything is dropped.
  TimePoint t = t0 + 300ms;
  int accepted = 0;
  A last = A::kAccepted;
  for (; t < t0 + 3s && last != A::kCutOff; t += 1ms) {
    last = limiter.admit("a", 1, t);
    accepted += last == A::kAccepted ? 1 : 0;
  }
  CHECK(last == A::kCutOff);
  CHECK(limiter.cutOffs() == 1);
  CHECK(accepted <= 10 * 3);  // at most the refill rate got through meanwhile
  CHECK(limiter.cutOff("a", t + 29s));
  CHECK(limiter.admit("a", 1, t + 29s) == A::kCutOff);
  CHECK(limiter.admit("b", 10, t + 29s) == A::kAccepted);
  // After the cut-off: full buckets again.
  for (int i = 0; i < 5; ++i) CHECK(limiter.admit("a", 10, t + 31s) == A::kAccepted);
  CHECK(limiter.cutOffs() == 1);

  // Drops with pauses of over a second are separate episodes: no cut-off.
  sfn::PeerRateLimiter patient(o);
  for (int k = 0; k < 10; ++k) {
    const TimePoint tk = t0 + k * 1500ms;
    while (patient.admit("c", 1, tk) == A::kAccepted) {
    }
  }
  CHECK(patient.cutOffs() == 0);
}

TEST_CASE("peer rate limiter: peers back to full buckets are forgotten past 16,384") {
  sfn::RateLimitOptions o;
  o.messages_per_s = 1;
  o.message_burst = 2;
  sfn::PeerRateLimiter limiter(o);
  const TimePoint t0 = TimePoint{} + 1h;
  for (int i = 0; i < 20'000; ++i) (void)limiter.admit("a" + std::to_string(i), 1, t0);
  // Only 16,384 were pruned for, and all had just drained a message: none forgotten.
  CHECK(limiter.peers() == 20'000);
  for (int i = 0; i < 60; ++i) (void)limiter.admit("p0", 1, t0 + 10s + i * 100ms);
  REQUIRE(limiter.cutOff("p0", t0 + 20s));
  // At 32,768 peers the "a" peers (full again) go; p0 (cut off) and the new ones stay.
  for (int i = 0; i < 20'000; ++i) (void)limiter.admit("b" + std::to_string(i), 1, t0 + 20s);
  CHECK(limiter.peers() == 20'001);
  CHECK(limiter.admit("p0", 1, t0 + 20s) == sfn::Admission::kCutOff);
}

TEST_CASE("peer rate limiter: options name the key") {
  sfn::RateLimitOptions o;
  CHECK_NOTHROW(o.validate("server.rate_limit", std::int64_t{1} << 30));
  o.bytes_burst = 100;
  CHECK_THROWS_WITH_AS(o.validate("server.rate_limit", 1000),
                       doctest::Contains("server.rate_limit.bytes_burst"), sfn::ConfigError);
  o = {};
  o.sustained = 0ms;
  CHECK_THROWS_WITH_AS(o.validate("server.rate_limit", 1000),
                       doctest::Contains("server.rate_limit.sustained_s"), sfn::ConfigError);
}
