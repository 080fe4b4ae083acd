// The run's state as one JSON document, for an HTTP /status endpoint and the dashboard page
// (dashboardHtml(), which polls /status).
//
// Written on the federation thread (setters, updateClients, observeRound), read on the HTTP
// thread (toJson()). Every call takes one mutex, so a document is a consistent snapshot.
// The status keeps copies of what it shows, never pointers into the Coordinator.
//
// toJson():
//   run, phase (toString(RoundState)), round (rounds done), rounds_total, ready,
//   started (UTC ISO 8601, when the status was made), uptime_s,
//   clients {registered, connected},
//   accuracy {<subnet name>: latest validation accuracy as a fraction 0..1},
//   history [{round (0-based index, as in metrics.jsonl), outcome, selected, accepted,
//             dropped, rejected, late, effective_clients, train_loss,
//             accuracy {<subnet name>: fraction}}]       the last history_cap rounds, oldest
//   rounds_observed (all rounds observed, also those no longer in history),
//   fleet {total, shown, clients [{id (decimal string: 64 bits do not fit a JS number), name,
//          device_class, connected, last_seen_s (seconds before the last updateClients, on
//          the coordinator's clock), tasks (assigned), accepted, rejected, dropped}]}
//          connected clients first, then the most recently seen; at most fleet_cap entries,
//   rejected {<every RejectReason>: cumulative count}, rejected_total,
//   final {state: pending|running|done, accuracy {<subnet name>: fraction}}
#pragma once

#include "sfn/server/client_registry.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/round_metrics.h"
#include "sfn/train/evaluator.h"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sfn {

// The evaluation after the last round (on the test set), as the status reports it.
enum class FinalEval {
  kPending,  // not started (rounds still running, or the run stopped before it)
  kRunning,
  kDone,
};
std::string_view toString(FinalEval state);

class OpsStatus {
 public:
  static constexpr std::size_t kHistoryCap = 1000;
  static constexpr std::size_t kFleetCap = 500;

  // `history_cap` rounds are kept (the oldest go first); the fleet list shows at most
  // `fleet_cap` clients (fleet.total counts them all). Both must be positive.
  explicit OpsStatus(std::size_t history_cap = kHistoryCap, std::size_t fleet_cap = kFleetCap);

  void setRun(std::string name, std::int64_t rounds_total);
  void setPhase(RoundState state);
  void setReady(bool ready);
  // Rounds already done, e.g. on resume before the first new round (observeRound sets it too).
  void setRoundsDone(std::int64_t rounds);
  // Copies the registry's size and its clients that are not gone; those seen within
  // `liveness_s` of `now` count as connected (ClientRegistry::available). Clients gone since
  // stay listed, as not connected. Call it on the thread that owns the registry (the
  // Coordinator's).
  void updateClients(const ClientRegistry& registry, double now, double liveness_s);
  // Adds a finished round: history, latest accuracies, rejections, per-client task counts.
  void observeRound(const RoundMetrics& m);
  // The final evaluation's progress and, when done, its results.
  void setFinal(FinalEval state, const std::vector<EvalRecord>& evals = {});

  nlohmann::json toJson() const;

 private:
  struct HistoryEntry {
    std::int64_t round = 0;
    RoundOutcome outcome = RoundOutcome::kAbandoned;
    int selected = 0, accepted = 0, dropped = 0, rejected = 0, late = 0;
    double effective_clients = 0.0, train_loss = 0.0;
    std::vector<std::pair<std::string, double>> accuracy;  // evaluated SubNets, in order
  };
  struct FleetEntry {
    std::uint64_t id = 0;
    std::string name, device_class;
    bool connected = false;
    double last_seen = 0.0;  // coordinator clock; < 0: never seen in the registry
    int tasks = 0, accepted = 0, rejected = 0, dropped = 0;
  };

  nlohmann::json historyJson() const;
  nlohmann::json fleetJson() const;
  nlohmann::json rejectedJson() const;

  mutable std::mutex mu_;
  const std::size_t history_cap_, fleet_cap_;
  const std::string started_;
  const std::chrono::steady_clock::time_point started_at_;
  std::string run_;
  RoundState phase_ = RoundState::kIdle;
  std::int64_t rounds_done_ = 0, rounds_total_ = 0, rounds_observed_ = 0;
  bool ready_ = false;
  std::size_t registered_ = 0, connected_ = 0;
  double clients_now_ = 0.0;  // `now` of the last updateClients
  std::map<std::string, double> accuracy_;
  std::deque<HistoryEntry> history_;
  std::unordered_map<std::uint64_t, FleetEntry> fleet_;  // by registry id
  std::map<RejectReason, std::int64_t> rejected_;
  FinalEval final_ = FinalEval::kPending;
  std::map<std::string, double> final_accuracy_;
};

// The dashboard page (server/dashboard/index.html, compiled in): one self-contained HTML
// file that polls the relative URL "status" (the /status JSON above) every second.
std::string_view dashboardHtml();

}  // namespace sfn
