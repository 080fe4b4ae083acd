// The bound every update must pass before it is merged (issue 13: one poisoned update must
// never destroy the federation).
//
// An update's size is the RMS of its change from the slice it was sent (ChangeNorm::rms,
// sfn/fl/change_norm.h). It is refused when
//   - that RMS exceeds `cap` (an absolute cap, for the first updates of a run too), or
//   - once `min_history` updates were accepted, it exceeds `multiple` times the median RMS
//     of the last `window` accepted updates (this round's included).
// The median is robust: as long as fewer than half the accepted updates are hostile, it
// stays at an honest size. Updates of RMS exactly 0 (a client that returned its slice
// unchanged) are not recorded, so free riders cannot pull the median to 0 and turn the
// bound against everyone. With `per_tensor`, the same two rules also apply to each tensor's
// own RMS against its own history, so that a large change concentrated in a small tensor
// (a bias, a BN vector) cannot hide in the average over the whole update.
//
// History is kept per round: accept() counts at once for later updates of the round, and
// endRound(false) (a round rolled back) forgets the round's updates again.
#pragma once

#include "sfn/fl/change_norm.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

struct UpdateBoundOptions {
  double multiple = 10.0;  // x the median RMS of accepted updates; 0 = no median rule
  double cap = 100.0;      // absolute cap on the RMS; 0 = none
  int min_history = 8;     // accepted updates before the median rule applies
  int window = 1000;       // the median is over the last `window` accepted updates
  bool per_tensor = false;
  void validate() const;  // throws ConfigError naming the robust.* key
};

enum class BoundVerdict {
  kWithin,      // acceptable
  kOverCap,     // above the absolute cap
  kOverMedian,  // above multiple x the median
};

struct BoundCheck {
  BoundVerdict verdict = BoundVerdict::kWithin;
  double rms = 0.0;    // the RMS that was judged (the update's, or the tensor's)
  double limit = 0.0;  // the limit it was held to
  std::string tensor;  // the offending tensor with per_tensor; empty for the whole update
  bool ok() const { return verdict == BoundVerdict::kWithin; }
  // "change rms 3e+38 over the cap 100", "tensor 'head.bias' change rms 2.1 over 10 x
  // median 0.011 = 0.11", or "within" (for logs and rejection reasons).
  std::string describe() const;
};

class UpdateBound {
 public:
  explicit UpdateBound(UpdateBoundOptions options);

  // Judges `change` against the cap and the history so far (the first failing rule).
  BoundCheck check(const ChangeNorm& change) const;
  // Records an accepted update's change in this round's history.
  void accept(const ChangeNorm& change);
  // Ends the round: `keep` moves its updates into the history, false forgets them (a round
  // rolled back must not teach the bound its sizes). Trims the history to the window.
  void endRound(bool keep);
  // Replaces the update-level history with `rms` (oldest first), e.g. rebuilt from metrics
  // on resume; per-tensor history starts empty.
  void restore(const std::vector<double>& rms);

  // The median the rule uses now (this round included); nullopt below min_history.
  std::optional<double> median() const;
  std::size_t history() const { return update_.values.size(); }
  const UpdateBoundOptions& options() const { return options_; }

 private:
  // Accepted RMS values, oldest first; the last `in_round` belong to the current round.
  struct History {
    std::deque<double> values;
    std::size_t in_round = 0;
    void add(double v);
    void endRound(bool keep, std::size_t window);
    std::optional<double> median(std::size_t min_history) const;
  };
  BoundCheck judge(double rms, const History& h, const std::string& tensor) const;

  UpdateBoundOptions options_;
  History update_;
  std::map<std::size_t, History> tensors_;  // per SuperNet tensor index (per_tensor only)
};

}  // namespace sfn
