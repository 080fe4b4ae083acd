// Caps how many log lines of one kind are written per interval, and counts the rest, so a
// flood (thousands of refused handshakes, dropped messages) costs a few lines plus one
// "... and K more in the last T s" line per interval instead of one line per event.
//
// Not thread-safe: each thread that logs owns its own limiter (the ZeroMQ server's socket
// thread and its ZAP thread each have one). No logging library here: callers write the
// lines, so the core layer stays free of spdlog.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sfn {

class LogRateLimiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Lines of one kind that were held back during an interval that has ended.
  struct Suppressed {
    std::string kind;
    std::uint64_t count = 0;
    std::chrono::milliseconds interval{0};
    // "<kind>: ... and <count> more in the last <T> s"
    std::string text() const;
  };

  // At most `lines_per_interval` lines per kind in each `interval`. Throws ConfigError
  // unless both are positive.
  explicit LogRateLimiter(int lines_per_interval = 5,
                          std::chrono::milliseconds interval = std::chrono::seconds(10));

  // True if a line of `kind` may be written now; otherwise the line is counted, to be
  // reported by flush() once its interval has ended.
  [[nodiscard]] bool allow(const std::string& kind,
                           TimePoint now = std::chrono::steady_clock::now());

  // The kinds whose interval has ended with lines held back, each once; callers write one
  // line for each. Call it regularly (e.g. from a receive loop) so a burst that simply
  // stops is still reported.
  [[nodiscard]] std::vector<Suppressed> flush(TimePoint now = std::chrono::steady_clock::now());

  // Lines held back so far, all kinds, reported or not.
  std::uint64_t suppressedTotal() const { return suppressed_total_; }

 private:
  struct Window {
    TimePoint start;
    int lines = 0;
    std::uint64_t held = 0;     // in this window
    std::uint64_t pending = 0;  // from ended windows, not yet returned by flush()
  };
  void roll(Window& w, TimePoint now) const;

  int lines_per_interval_;
  std::chrono::milliseconds interval_;
  std::map<std::string, Window> windows_;
  std::uint64_t suppressed_total_ = 0;
};

}  // namespace sfn
