// [robust]: the defences of a round against hostile or broken updates (issue 13), read
// once from the run config (readRobust) and validated with the rest of CoordinatorOptions.
//
//   bound_*           the bound every update must pass before it is merged
//                     (sfn/fl/update_bound.h); on by default, it never touches an honest run
//   clip_norm         clip each accepted update's change to this RMS (0 = off)
//   trim_fraction     coordinate-wise trimmed mean instead of the weighted mean (0 = off;
//                     sfn/fl/trimmed_mean_aggregator.h: costs up to K x the SuperNet memory)
//   probe_*           the health guard: after aggregation, MaxNet and MinNet run on the
//                     first probe_samples validation images; non-finite outputs or a loss
//                     above its bound roll the round back
//   quarantine_rounds clients of a rolled-back round are not selected for this many rounds
//   backoff_*         after backoff_after abandoned or rolled-back rounds in a row, wait
//                     (clock time, doubling, capped) before selecting again
// experiments/configs/fmnist-default.toml lists every key with its default.
#pragma once

#include "sfn/fl/update_bound.h"

namespace sfn {

class TomlReader;

struct RobustOptions {
  UpdateBoundOptions bound;
  double clip_norm = 0.0;      // RMS of an update's change (ChangeNorm::rms); 0 = off
  double trim_fraction = 0.0;  // in [0, 0.5); 0 = plain weighted mean
  // The health guard. The probe's loss bound is min(probe_loss_cap, probe_loss_multiple x
  // max(previous healthy probe loss, ln(classes))): ln(classes), a guess's loss, keeps a
  // well-trained net's tiny loss from making an ordinary fluctuation look like an explosion.
  int probe_samples = 64;  // 0 = no probe (and no rollback)
  double probe_loss_multiple = 4.0;
  double probe_loss_cap = 100.0;
  int quarantine_rounds = 5;
  int backoff_after = 3;         // 0 = never back off
  double backoff_base_s = 10.0;  // the first wait; doubles with every further failed round
  double backoff_max_s = 300.0;

  void validate() const;  // throws ConfigError naming the robust.* key
  // The wait before selecting, after `failed_in_a_row` abandoned or rolled-back rounds:
  // 0 below backoff_after, then base, 2 x base, 4 x base ... up to backoff_max_s.
  double backoffSeconds(int failed_in_a_row) const;
};

// Reads the [robust] table (absent keys keep their defaults, unknown ones are errors).
void readRobust(TomlReader t, RobustOptions& r);

}  // namespace sfn
