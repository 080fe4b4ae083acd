// What one round did, as written to metrics.jsonl / metrics.csv and kept in checkpoints.
#pragma once

#include "sfn/train/evaluator.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

// What became of a selected client's task. The JSON text is toString's.
enum class TaskStatus {
  kDropped,   // no valid update by the deadline (every task starts here)
  kAccepted,  // merged into the SuperNet
  kRejected,  // its update failed validation
};
std::string_view toString(TaskStatus status);
// "accepted" | "rejected" | "dropped"; throws DataError naming the text otherwise.
TaskStatus parseTaskStatus(std::string_view text);

// How a round ended.
enum class RoundOutcome {
  kCompleted,   // quorum reached: the averages were written into the SuperNet
  kAbandoned,   // below quorum: the SuperNet was kept
  kRolledBack,  // aggregated, but the health probe failed: the SuperNet was restored
};
std::string_view toString(RoundOutcome outcome);
// "completed" | "abandoned" | "rolled_back"; throws DataError naming the text otherwise.
RoundOutcome parseRoundOutcome(std::string_view text);

// Why a message was refused (RoundMetrics::rejected_reasons). The JSON text is toString's.
enum class RejectReason {
  kMalformed,        // failed to decode (garbage, truncated, bad envelope or fields)
  kUnregistered,     // from a peer that has not registered
  kUnexpected,       // a message type the server does not take from clients
  kWrongClient,      // an update for a task assigned to another client
  kSampleCount,      // an update's sample count out of range
  kBadTensors,       // names, dtypes or shapes not those of the assigned SubNet
  kNonFinite,        // NaN or infinity in the tensors, or a non-finite loss
  kChangeOverCap,    // change from the sent slice above robust.bound_cap
  kChangeOverBound,  // change above robust.bound_multiple x the median change
};
std::string_view toString(RejectReason reason);
// The toString text back; throws DataError naming the text otherwise.
RejectReason parseRejectReason(std::string_view text);

// One selected client's task in a round and what became of it.
struct TaskRecord {
  std::uint64_t task_id = 0;
  std::string client;  // the client's self-declared name (its CURVE key is in the server log)
  std::string subnet;  // canonical SubNetConfig text
  TaskStatus status = TaskStatus::kDropped;
  double weight = 0.0;          // its weight in the round's average, fixed at selection
  std::uint64_t client_id = 0;  // the registry's stable id (quarantine survives a resume)
  // RMS of the update's change from the slice that was sent (sfn/fl/change_norm.h), for
  // updates that got as far as the bound; -1 if none did. The bound's history on resume.
  double change_rms = -1.0;
};

struct RoundMetrics {
  std::int64_t round = 0;
  RoundOutcome outcome = RoundOutcome::kAbandoned;
  int available = 0;  // clients available at selection
  int selected = 0;
  int accepted = 0;   // updates merged into the SuperNet
  int dropped = 0;    // selected clients whose update never arrived in time
  int rejected = 0;   // messages refused (bad shapes, NaN, wrong peer, over the bound...)
  int late = 0;       // updates for a closed round or an unknown task
  int duplicate = 0;  // second update for the same task
  // `rejected` split by reason (JSON only, not CSV).
  std::map<RejectReason, int> rejected_reasons;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  double train_loss = 0.0;  // mean of the accepted clients' local training losses
  double beta = 0.0;        // MaxNet weight share this round (0: weighting.maxnet_beta none)
  double lr = 0.0;          // the learning rate sent with this round's tasks
  // 1 / sum v^2 over the accepted updates' weights v, normalised to sum 1 over those updates:
  // how many clients the average over elements all of them trained is worth. K for uniform
  // weights, about 1 / (beta^2 + (1 - beta)^2 / (K - 1)) with one MaxNet client.
  double effective_clients = 0.0;
  std::int64_t train_macs = 0;  // client training MACs (3x forward MACs per sample-epoch)
  int clipped = 0;              // accepted updates whose change was clipped (robust.clip_norm)
  int quarantined = 0;          // available clients left out of selection (quarantine)
  // The health probe after aggregation (0 when it did not run; +inf for non-finite outputs,
  // written as null in JSON).
  double probe_loss_max = 0.0, probe_loss_min = 0.0;
  double backoff_s = 0.0;  // clock seconds waited before selection (robust.backoff_*)
  double wall_select_s = 0, wall_train_s = 0, wall_aggregate_s = 0, wall_eval_s = 0;
  double clock_start = 0, clock_end = 0;  // coordinator clock (virtual in the simulator)
  std::vector<EvalRecord> evals;
  // Which SubNet each selected client trained, so that tools can tell which SuperNet
  // elements a round could change (tests/integration/check_run.cpp). JSON only, not CSV.
  std::vector<TaskRecord> tasks;

  nlohmann::json toJson() const;
  static RoundMetrics fromJson(const nlohmann::json& j);
  // CSV: fixed columns (not tasks or rejected_reasons), then acc_<name> and loss_<name> per
  // evaluated SubNet.
  static std::string csvHeader(const std::vector<std::string>& eval_names);
  std::string csvRow(const std::vector<std::string>& eval_names) const;
};

}  // namespace sfn
