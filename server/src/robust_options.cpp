#include "sfn/server/robust_options.h"

#include "sfn/core/error.h"
#include "sfn/io/toml_reader.h"

#include <algorithm>
#include <cmath>

namespace sfn {

void RobustOptions::validate() const {
  bound.validate();
  if (!(clip_norm >= 0) || !std::isfinite(clip_norm))
    SFN_THROW(ConfigError, "robust.clip_norm must be >= 0 (got ", clip_norm, ")");
  if (!(trim_fraction >= 0 && trim_fraction < 0.5))
    SFN_THROW(ConfigError, "robust.trim_fraction must be in [0, 0.5) (got ", trim_fraction, ")");
  if (probe_samples < 0 || probe_samples > 100'000)
    SFN_THROW(ConfigError, "robust.probe_samples must be in [0, 100000] (got ", probe_samples, ")");
  if (!(probe_loss_multiple >= 1) || !std::isfinite(probe_loss_multiple))
    SFN_THROW(ConfigError, "robust.probe_loss_multiple must be >= 1 (got ", probe_loss_multiple,
              ")");
  if (!(probe_loss_cap > 0) || !std::isfinite(probe_loss_cap))
    SFN_THROW(ConfigError, "robust.probe_loss_cap must be > 0 (got ", probe_loss_cap, ")");
  if (quarantine_rounds < 0)
    SFN_THROW(ConfigError, "robust.quarantine_rounds must be >= 0 (got ", quarantine_rounds, ")");
  if (backoff_after < 0)
    SFN_THROW(ConfigError, "robust.backoff_after must be >= 0 (got ", backoff_after, ")");
  if (!(backoff_base_s > 0) || !std::isfinite(backoff_base_s))
    SFN_THROW(ConfigError, "robust.backoff_base_s must be > 0 (got ", backoff_base_s, ")");
  if (!(backoff_max_s >= backoff_base_s) || !std::isfinite(backoff_max_s))
    SFN_THROW(ConfigError, "robust.backoff_max_s must be >= robust.backoff_base_s (got ",
              backoff_max_s, ")");
}

double RobustOptions::backoffSeconds(int failed_in_a_row) const {
  if (backoff_after <= 0 || failed_in_a_row < backoff_after) return 0.0;
  // Capped exponent: 2^60 x base is past any cap, and the shift cannot overflow.
  const int doublings = std::min(failed_in_a_row - backoff_after, 60);
  return std::min(backoff_max_s, backoff_base_s * std::ldexp(1.0, doublings));
}

void readRobust(TomlReader t, RobustOptions& r) {
  t.get("bound_multiple", r.bound.multiple);
  t.get("bound_cap", r.bound.cap);
  t.get("bound_min_history", r.bound.min_history);
  t.get("bound_window", r.bound.window);
  t.get("bound_per_tensor", r.bound.per_tensor);
  t.get("clip_norm", r.clip_norm);
  t.get("trim_fraction", r.trim_fraction);
  t.get("probe_samples", r.probe_samples);
  t.get("probe_loss_multiple", r.probe_loss_multiple);
  t.get("probe_loss_cap", r.probe_loss_cap);
  t.get("quarantine_rounds", r.quarantine_rounds);
  t.get("backoff_after", r.backoff_after);
  t.get("backoff_base_s", r.backoff_base_s);
  t.get("backoff_max_s", r.backoff_max_s);
  t.rejectUnknown();
}

}  // namespace sfn
