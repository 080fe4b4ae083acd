#include "sfn/core/log_rate_limiter.h"

#include "sfn/core/error.h"

#include <sstream>

namespace sfn {

std::string LogRateLimiter::Suppressed::text() const {
  std::ostringstream out;
  out << kind << ": ... and " << count << " more in the last "
      << std::chrono::duration<double>(interval).count() << " s";
  return out.str();
}

LogRateLimiter::LogRateLimiter(int lines_per_interval, std::chrono::milliseconds interval)
    : lines_per_interval_(lines_per_interval), interval_(interval) {
  SFN_ENFORCE(lines_per_interval > 0, ConfigError,
              "log rate limit: lines per interval must be > 0");
  SFN_ENFORCE(interval.count() > 0, ConfigError, "log rate limit: interval must be > 0");
}

void LogRateLimiter::roll(Window& w, TimePoint now) const {
  if (now - w.start < interval_) return;
  w.pending += w.held;
  w.held = 0;
  w.lines = 0;
  w.start = now;
}

bool LogRateLimiter::allow(const std::string& kind, TimePoint now) {
  auto [it, fresh] = windows_.try_emplace(kind);
  Window& w = it->second;
  if (fresh) w.start = now;
  roll(w, now);
  if (w.lines < lines_per_interval_) {
    ++w.lines;
    return true;
  }
  ++w.held;
  ++suppressed_total_;
  return false;
}

std::vector<LogRateLimiter::Suppressed> LogRateLimiter::flush(TimePoint now) {
  std::vector<Suppressed> out;
  for (auto it = windows_.begin(); it != windows_.end();) {
    Window& w = it->second;
    roll(w, now);
    if (w.pending > 0) out.push_back({it->first, w.pending, interval_});
    w.pending = 0;
    // A kind that has been quiet for a whole interval starts afresh next time; dropping it
    // keeps the map as small as the set of kinds that are active.
    const bool idle = w.lines == 0 && w.held == 0;
    it = idle ? windows_.erase(it) : std::next(it);
  }
  return out;
}

}  // namespace sfn
