// LogRateLimiter on a hand-driven clock: exact counts, no sleeping.
#include "sfn/core/error.h"
#include "sfn/core/log_rate_limiter.h"

#include <doctest/doctest.h>

#include <chrono>

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

TEST_CASE("log rate limiter: N lines per interval per kind, then one count") {
  sfn::LogRateLimiter limiter(3, 10s);
  const TimePoint t0{};
  int written = 0;
  for (int i = 0; i < 2000; ++i) written += limiter.allow("refused", t0 + i * 1ms) ? 1 : 0;
  CHECK(written == 3);
  CHECK(limiter.allow("dropped", t0 + 2s));  // another kind has its own budget
  CHECK(limiter.flush(t0 + 5s).empty());     // the interval has not ended: nothing to report

  const auto summaries = limiter.flush(t0 + 10s);
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0].kind == "refused");
  CHECK(summaries[0].count == 1997);
  CHECK(summaries[0].text() == "refused: ... and 1997 more in the last 10 s");
  CHECK(limiter.flush(t0 + 11s).empty());  // reported once
  CHECK(limiter.suppressedTotal() == 1997);

  // A new interval writes lines again.
  CHECK(limiter.allow("refused", t0 + 12s));
  CHECK_THROWS_AS(sfn::LogRateLimiter(0, 1s), sfn::ConfigError);
}

TEST_CASE("log rate limiter: a burst that stops is reported by the next flush") {
  sfn::LogRateLimiter limiter(1, 1s);
  const TimePoint t0{};
  CHECK(limiter.allow("x", t0));
  CHECK_FALSE(limiter.allow("x", t0 + 10ms));
  CHECK_FALSE(limiter.allow("x", t0 + 20ms));
  const auto s = limiter.flush(t0 + 5s);
  REQUIRE(s.size() == 1);
  CHECK(s[0].count == 2);
}
