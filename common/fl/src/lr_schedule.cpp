#include "sfn/fl/lr_schedule.h"

#include "sfn/core/error.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace sfn {

std::string_view toString(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant:
      return "constant";
    case LrScheduleKind::kCosine:
      return "cosine";
  }
  return "unknown";
}

LrScheduleKind parseLrScheduleKind(std::string_view text) {
  if (text == "constant") return LrScheduleKind::kConstant;
  if (text == "cosine") return LrScheduleKind::kCosine;
  SFN_THROW(ConfigError, "train.lr_schedule = '", std::string(text),
            "': expected \"constant\" or \"cosine\"");
}

void LrSchedule::validate(double lr) const {
  if (kind == LrScheduleKind::kConstant) return;
  SFN_ENFORCE(std::isfinite(final_lr) && final_lr >= 0.0 && final_lr <= lr, ConfigError,
              "train.lr_final = ", final_lr, ": expected a value in [0, train.lr = ", lr, "]");
  SFN_ENFORCE(std::isfinite(decay_rounds) && decay_rounds >= 0.0, ConfigError,
              "train.lr_decay_rounds = ", decay_rounds, ": expected a value >= 0");
}

double LrSchedule::at(double lr, std::int64_t round) const {
  if (kind == LrScheduleKind::kConstant || !(decay_rounds > 0.0)) return lr;
  const double progress = std::clamp(static_cast<double>(round), 0.0, decay_rounds) / decay_rounds;
  return final_lr + (lr - final_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace sfn
