#include "sfn/server/coordinator_options.h"

#include "sfn/core/error.h"

#include <cmath>

namespace sfn {

void CoordinatorOptions::validate() const {
  if (clients_per_round < 1)
    SFN_THROW(ConfigError, "round.clients_per_round must be >= 1 (got ", clients_per_round, ")");
  if (!(over_selection >= 0 && over_selection <= 10))
    SFN_THROW(ConfigError, "round.over_selection must be in [0, 10] (got ", over_selection, ")");
  if (quorum < 0 || quorum > clients_per_round)
    SFN_THROW(ConfigError, "round.quorum must be in [0, clients_per_round] (got ", quorum, ")");
  if (!(round_deadline_s > 0) || !std::isfinite(round_deadline_s))
    SFN_THROW(ConfigError, "round.deadline_s must be > 0 (got ", round_deadline_s, ")");
  if (!(liveness_s > 0))
    SFN_THROW(ConfigError, "round.liveness_s must be > 0 (got ", liveness_s, ")");
  if (!(select_within_s >= 0) || !std::isfinite(select_within_s))
    SFN_THROW(ConfigError, "round.select_within_s must be >= 0 (got ", select_within_s, ")");
  if (policy == AssignPolicy::kFixed && fixed_subnet.empty())
    SFN_THROW(ConfigError, "round.fixed_subnet must name a SubNet for round.policy = \"fixed\"");
  if (eval_every < 0) SFN_THROW(ConfigError, "eval.every must be >= 0 (got ", eval_every, ")");
  for (const auto& [cls, budget] : device_macs_budget)
    if (budget < 0) SFN_THROW(ConfigError, "devices.", cls, ".macs_budget must be >= 0");
  weighting.validate();
  train.validate();
  lr_schedule.validate(train.lr);
  robust.validate();
}

}  // namespace sfn
