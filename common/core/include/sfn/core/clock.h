// Time as the round logic sees it. The server runs on the steady clock; the simulator on a
// virtual clock its fleet advances, so deadlines and stragglers act in simulated time and
// results do not depend on how loaded the host is.
#pragma once

#include <chrono>

namespace sfn {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since an arbitrary, fixed origin; never decreases.
  virtual double now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  double now() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  }

 private:
  std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
};

// Advanced explicitly by its owner (the simulator's fleet); reads are not synchronized, so
// only the coordinator's thread may read it while the owner advances it on that thread.
class VirtualClock final : public Clock {
 public:
  double now() const override { return now_; }
  void advanceTo(double t) {
    if (t > now_) now_ = t;
  }

 private:
  double now_ = 0.0;
};

}  // namespace sfn
