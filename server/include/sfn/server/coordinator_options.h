// Options of the round logic, filled from TOML and CLI in one place (run_config.h),
// validated once, then passed down.
#pragma once

#include "sfn/fl/client_weighting.h"
#include "sfn/fl/lr_schedule.h"
#include "sfn/train/local_trainer.h"
#include "sfn/fl/subnet_assigner.h"
#include "sfn/server/robust_options.h"
#include "sfn/wire/wire.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sfn {

struct CoordinatorOptions {
  std::string server_name = "sfn";
  std::string run_id;  // sent in every Welcome (run.name)
  std::uint64_t seed = 1;
  int clients_per_round = 10;     // K: updates a round waits for
  double over_selection = 0.0;    // select ceil(K * (1 + o)) clients, keep the first K
  int quorum = 0;                 // fewest updates to aggregate; 0 = ceil(K / 2)
  double round_deadline_s = 600;  // clock seconds from sending tasks to closing the round
  double liveness_s = 300;        // a client not heard from for this long is unavailable
  // Selection only among clients heard from within this many clock seconds (sfn-client
  // heartbeats every 5 s while registered); 0 = off, liveness_s alone decides. Off by
  // default because the simulator's virtual clients send no heartbeats.
  double select_within_s = 0;
  AssignPolicy policy = AssignPolicy::kTrackingSandwich;
  std::string fixed_subnet = "max";  // policy "fixed": "max", "min" or a canonical SubNet text
  WeightingOptions weighting;
  TrainOptions train;                                      // hyper-parameters sent with every task
  LrSchedule lr_schedule;                                  // train.lr per round
  std::map<std::string, std::int64_t> device_macs_budget;  // device class -> MACs (static-capacity)
  std::uint64_t max_samples_per_client = 10'000'000;
  std::vector<std::string> eval_subnets = {"max", "min"};  // names: max, min or SubNet text
  int eval_every = 1;                                      // 0 = never
  DecodeLimits limits;
  RobustOptions robust;  // [robust]: update bound, robust aggregation, health guard, back-off

  int effectiveQuorum() const { return quorum > 0 ? quorum : (clients_per_round + 1) / 2; }
  void validate() const;  // throws ConfigError naming the key
};

}  // namespace sfn
