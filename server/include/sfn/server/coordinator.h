// The round logic of SuperFedNAS, written once for sfn-server and sfn-sim.
//
// A Coordinator owns the SuperNet, the client registry and the round state machine. It
// talks to clients only through a ServerTransport (ZeroMQ or the simulator's in-process
// fleet) and reads time only from a Clock, so the same code runs a real federation and a
// simulated one. All its methods run on one thread (the thread that owns the transport's
// receive side).
//
// Round state machine (one pass per runRound()):
//   kBackingOff   only after robust.backoff_after abandoned or rolled-back rounds in a row:
//                 wait (clock time, doubling, capped), serving messages, before selecting
//   kSelecting    choose clients among the available ones (seeded by round), leaving out
//                 clients quarantined after a rolled-back round
//   kTraining     send each its SubNet slice; check each update against the bound on its
//                 change (sfn/fl/update_bound.h) and stream the accepted ones into the
//                 accumulator until the target count arrives or the deadline passes
//   kAggregating  quorum reached: write averages into the SuperNet, then (with a health
//                 probe) check the new SuperNet and roll the round back if it is broken;
//                 below quorum: abandon the round
//   kEvaluating   every eval.every rounds: MaxNet, MinNet and fixed SubNets on validation
//   -> kIdle
// A back-off wait is not a round: it neither runs one nor counts against run.rounds. The
// failed rounds before it do count (each was a real attempt with its own metrics line);
// the back-off spaces further attempts out so a fault that lasts burns few rounds.
// Between rounds, checkpoint() passes through kCheckpointing (kIdle -> kCheckpointing ->
// kIdle) while the run loop (sfn/server/federation.h) writes a checkpoint.
//
// Sessions (issue 13): a client's registry entry is its session, one per authenticated
// peer. The round never waits for a task whose client cannot answer it:
//   - a send that fails (unknown peer, closed, full queue...) marks the client gone and ends
//     its task at once; a TrainTask that cannot be sent is given instead to another
//     available client, chosen at random, with the same SubNet and weight (replacement:
//     it draws random numbers only when a send fails, so rounds without failures select
//     and train exactly as before);
//   - a Register from a peer that already has a session replaces it: its task is dropped
//     and it gets a new Welcome (the new session knows nothing of the old task);
//   - a malformed message from a client with a task ends the wait for that task (the
//     round no longer waits for it; an update that still comes is checked as usual);
//   - revoke() (its key left the allowlist) drops the task and ends the session for good.
// Before each selection, sessions that are gone or silent for round.liveness_s are pruned;
// with round.select_within_s, only clients heard from that recently are selected.
#pragma once

#include "sfn/server/client_admission.h"
#include "sfn/server/client_registry.h"
#include "sfn/core/clock.h"
#include "sfn/core/log_rate_limiter.h"
#include "sfn/core/rng.h"
#include "sfn/server/coordinator_options.h"
#include "sfn/train/evaluator.h"
#include "sfn/fl/change_norm.h"
#include "sfn/fl/covered_backup.h"
#include "sfn/fl/overlap_accumulator.h"
#include "sfn/fl/trimmed_mean_aggregator.h"
#include "sfn/fl/update_bound.h"
#include "sfn/server/health_probe.h"
#include "sfn/server/round_metrics.h"
#include "sfn/fl/subnet_assigner.h"
#include "sfn/model/supernet.h"
#include "sfn/net/transport.h"
#include "sfn/wire/wire.h"

#include <spdlog/logger.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sfn {

enum class RoundState {
  kIdle,
  kBackingOff,
  kSelecting,
  kTraining,
  kAggregating,
  kEvaluating,
  kCheckpointing
};
std::string_view toString(RoundState state);

// Everything a checkpoint must hold to resume exactly (besides the SuperNet tensors).
struct CoordinatorSnapshot {
  std::int64_t next_round = 0;
  std::uint64_t next_task_id = 1;
  std::unordered_map<std::uint64_t, SubNetAssigner::Counters> counters;
  std::vector<RoundMetrics> history;
};

class Coordinator {
 public:
  // `evaluator` may be null (no evaluation). What happens between rounds (metrics files,
  // checkpoints, waiting for clients) is the run loop's: runFederation (federation.h).
  Coordinator(CoordinatorOptions options, SuperNet supernet, ServerTransport& transport,
              Clock& clock, Evaluator* evaluator, std::shared_ptr<spdlog::logger> logger);

  // Serves registrations and heartbeats until `min_clients` are available or `timeout_s`
  // of clock time passed. Returns whether enough clients are available.
  bool waitForClients(std::size_t min_clients, double timeout_s);
  // Handles every message that is already queued (0 timeout), e.g. between rounds.
  void pump();

  // The health guard's probe (sfn/server/health_probe.h); without one (the default, or a
  // probe with no samples) rounds are never rolled back.
  void setHealthProbe(HealthProbe probe) { probe_ = std::move(probe); }
  const HealthProbe& healthProbe() const { return probe_; }
  // The process's stop flag (outlives the coordinator), or null. Once it is set, a round in
  // progress closes with the updates it has, back-off waits end, and evaluations are
  // skipped or cut short, so the run loop can checkpoint and exit within seconds.
  void setStopFlag(const std::atomic<bool>* stop) { stop_ = stop; }
  bool stopRequested() const;
  // Called on the coordinator's thread at least once per wait slice (0.5 s) while it waits
  // on the transport, and before each selection: where work a signal asked for is done
  // (sfn-server reloads its allowlist on SIGHUP here). It may call revoke() and reinstate().
  void setPollHook(std::function<void()> hook) { poll_hook_ = std::move(hook); }
  // Ends `peer`'s session for good (its key was removed from the allowlist): its task in the
  // round in progress is dropped at once (the round stops waiting for it), it is told why
  // with a Bye (best effort), and it is never selected again: a Register from it is refused.
  void revoke(const PeerId& peer, const std::string& reason);
  // Undoes revoke() (its key is allowed again): it may register again.
  void reinstate(const PeerId& peer) { revoked_.erase(peer); }
  bool isRevoked(const PeerId& peer) const { return revoked_.count(peer) != 0; }
  // Clients available now (seen within round.liveness_s and not gone).
  std::size_t availableClients() const {
    return registry_.countAvailable(clock_.now(), options_.liveness_s);
  }
  // Called on every phase change (on the coordinator's thread), e.g. for live metrics.
  void setStateObserver(std::function<void(RoundState)> observer) {
    state_observer_ = std::move(observer);
  }
  // Shard mode (client_admission.h); without it, shard-mode clients are refused.
  void setShardService(ShardService service) { admission_.setShardService(std::move(service)); }

  // Runs one round and returns its metrics (also appended to history()).
  RoundMetrics runRound();

  // Evaluates the configured SubNets now (no round).
  std::vector<EvalRecord> evaluateNow();

  // Calls `write(*this)` (which stores snapshot() and the SuperNet) in state kCheckpointing,
  // between rounds, and returns what it returns (the checkpoint's path). Back in kIdle
  // afterwards, also when `write` throws.
  std::string checkpoint(const std::function<std::string(const Coordinator&)>& write);

  const SuperNet& supernet() const { return supernet_; }
  SuperNet& supernet() { return supernet_; }
  std::int64_t round() const { return next_round_; }
  RoundState state() const { return state_; }
  const ClientRegistry& registry() const { return registry_; }
  const std::vector<RoundMetrics>& history() const { return history_; }
  const CoordinatorOptions& options() const { return options_; }
  const Clock& clock() const { return clock_; }
  const DecodeCounters& decodeCounters() const { return decode_counters_; }
  const std::shared_ptr<spdlog::logger>& logger() const { return log_; }

  CoordinatorSnapshot snapshot() const;
  void restore(const CoordinatorSnapshot& snap);

  // Tells connected clients the server is going away (best effort): kFinished ends their
  // run, kStopping lets them reconnect to a restarted server.
  void sayGoodbye(ByeCode code, const std::string& reason);

  // The update bound as it stands (its median and history), for tests and status.
  const UpdateBound& updateBound() const { return bound_; }

 private:
  struct PendingTask {
    std::uint64_t task_id = 0;
    PeerId peer;
    SubNetConfig config;
    bool is_maxnet = false;
    double weight = 0.0;
    std::vector<TensorSpec> spec;
    // False once its client sent a malformed message: the round no longer waits for it.
    bool awaited = true;
  };
  using PendingMap = std::unordered_map<std::uint64_t, PendingTask>;  // task id -> task
  // A client chosen for this round, its SubNet and its weight in the average.
  struct Selected {
    const ClientInfo* client = nullptr;
    SubNetConfig config;
    bool is_maxnet = false;
    double weight = 0.0;
  };

  // The phases of runRound(), in order; each records into round_.
  void backOffIfDue();
  std::vector<Selected> selectClients();
  double sendTasks(const std::vector<Selected>& selected);  // returns the deadline
  // Sends one TrainTask and records it; false (task recorded as dropped) if the send failed.
  bool sendTask(const Selected& slot, HyperParams hyper);
  // A client from spares_ to take over `failed`'s slot, or nothing when none is left.
  std::optional<Selected> replacementFor(const Selected& failed, Rng& rng);
  // Moves the MaxNet/MinNet count of `config` from one client to another (tracking sandwich).
  void moveAssignment(std::uint64_t from, std::uint64_t to, const SubNetConfig& config);
  void collectUpdates(double deadline);
  void aggregate();
  void evaluateIfDue();
  void logRound() const;

  // The health guard after aggregation: probes the new SuperNet and, if it is broken,
  // restores the saved elements, marks the round rolled back and logs who is quarantined.
  void guardHealth();
  // Debug level: the change of one arriving update and its largest tensor.
  void logChange(const PeerId& peer, std::uint64_t task_id, const ChangeNorm& change) const;
  // Adds an accepted update (clipped, or kept for the trimmed mean, as configured).
  void mergeUpdate(NamedTensors& tensors, double weight, double change_rms);
  // Derived from history_ alone, so that a resumed run decides as the original would:
  int failedInARow() const;                                      // trailing non-completed rounds
  std::unordered_set<std::uint64_t> quarantinedClients() const;  // ids barred this round
  std::optional<ProbeLosses> lastHealthyProbe() const;

  // Decodes and dispatches one received message. Returns true if it was an accepted update.
  bool handle(const Received& received);
  void handleRegister(const PeerId& peer, const RegisterMsg& msg);
  bool handleUpdate(const PeerId& peer, UpdateMsg& msg);
  // Refuses the update for `it`'s task: logged, counted, the task marked rejected and closed.
  void rejectTask(const PeerId& peer, RejectReason reason, const std::string& why,
                  PendingMap::iterator it);
  // Drops `peer`'s task in the round in progress, if it has one (counted as dropped).
  void dropTaskOf(const PeerId& peer, const std::string& why);
  // After a malformed message from `peer`: the round stops waiting for its task.
  void stopAwaiting(const PeerId& peer);
  std::size_t awaitedTasks() const;
  void runPollHook();
  // Logs (with the client's name when registered) and counts a refused message.
  void reject(const PeerId& peer, RejectReason reason, const std::string& why);
  void markTask(std::uint64_t task_id, TaskStatus status);
  TaskRecord* taskRecord(std::uint64_t task_id);  // this round's record of the task, or null
  // Returns the bytes sent; 0 if the transport refused the message, and then the client is
  // marked gone and its task dropped.
  std::size_t send(const PeerId& peer, const Message& msg);
  void setState(RoundState s);

  CoordinatorOptions options_;
  SuperNet supernet_;
  ServerTransport& transport_;
  Clock& clock_;
  Evaluator* evaluator_;
  std::shared_ptr<spdlog::logger> log_;
  const std::atomic<bool>* stop_ = nullptr;
  std::function<void(RoundState)> state_observer_;
  std::function<void()> poll_hook_;
  std::unordered_set<PeerId> revoked_;
  // Per-message log lines a hostile peer can provoke (rejections, repeated Registers): at
  // most 5 per kind per 10 s, then a count, written from runPollHook().
  LogRateLimiter log_limit_;

  ClientAdmission admission_;
  ClientRegistry registry_;
  SubNetAssigner assigner_;
  OverlapAccumulator accumulator_;
  std::optional<TrimmedMeanAggregator> trimmed_;  // robust.trim_fraction > 0: replaces the above
  UpdateBound bound_;
  CoveredBackup backup_;  // the round's covered elements, saved for a rollback (with a probe)
  HealthProbe probe_;
  DecodeCounters decode_counters_;

  RoundState state_ = RoundState::kIdle;
  std::int64_t next_round_ = 0;
  std::uint64_t next_task_id_ = 1;
  PendingMap pending_;  // this round's tasks still waiting for their update
  // The available clients not selected this round, for replacements: set by selectClients,
  // used and cleared by sendTasks (nothing changes the registry in between).
  std::vector<const ClientInfo*> spares_;
  // The round in progress: set by runRound() from its start to its end, empty between
  // rounds (messages handled then are not counted in any round's metrics).
  std::optional<RoundMetrics> round_;
  std::vector<RoundMetrics> history_;
};

}  // namespace sfn
