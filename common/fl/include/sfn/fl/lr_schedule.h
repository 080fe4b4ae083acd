// The learning rate the server sends with each round's tasks.
#pragma once

#include <cstdint>
#include <string_view>

namespace sfn {

enum class LrScheduleKind {
  kConstant,  // the authors' setting: the same lr every round
  kCosine,    // from lr down to final_lr on a cosine over decay_rounds, then held
};
std::string_view toString(LrScheduleKind kind);
// "constant" | "cosine"; throws ConfigError naming train.lr_schedule otherwise.
LrScheduleKind parseLrScheduleKind(std::string_view text);

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double final_lr = 0.0;           // cosine: the lr from round decay_rounds on
  double decay_rounds = 0.0;       // cosine: rounds from lr to final_lr; <= 0 means no decay
  void validate(double lr) const;  // throws ConfigError naming the train.* key

  // The lr of round t (the same 0-based round count the MaxNet beta uses).
  double at(double lr, std::int64_t round) const;
};

}  // namespace sfn
