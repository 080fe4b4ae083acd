// The run's Prometheus metrics, for an HTTP /metrics endpoint of sfn-server and sfn-sim.
//
// Written on the federation thread (setters, observeRound), read on the HTTP thread
// (text()). Every call takes one mutex, so a scrape sees either all of a round's updates
// or none of them (never, say, two phases at 1).
//
// Metric names (all gauges unless said otherwise):
//   sfn_round                       rounds done (the last observed round's index + 1)
//   sfn_rounds_planned              run.rounds
//   sfn_phase{phase=...}            1 for the current RoundState (toString), 0 for the others
//   sfn_ready                       0 or 1
//   sfn_clients_registered, sfn_clients_connected (available: seen lately, not gone)
//   sfn_last_round_{selected,accepted,dropped,rejected,late}, sfn_effective_clients
//   sfn_validation_accuracy{subnet=...}  latest accuracy (fraction 0..1) per evaluated SubNet
// Counters:
//   sfn_rounds_completed_total{outcome=completed|abandoned|rolled_back}
//   sfn_rejected_messages_total{reason=...}  every RejectReason (toString), 0 until seen
//   sfn_bytes_sent_total, sfn_bytes_received_total, sfn_updates_accepted_total,
//   sfn_tasks_dropped_total, sfn_late_updates_total
// Transport counters (sfn-server's ZeroMQ transport; read at each scrape, see
// setTransportCounters):
//   sfn_refused_handshakes_total        CURVE keys not on the allowlist
//   sfn_transport_dropped_messages_total{reason=revoked|rate_limited|cut_off|backlog}
//   sfn_key_cut_offs_total              keys cut off for exceeding their budgets
//   sfn_queue_full_sends_total          sends refused because a peer's queue was full
// Histograms (seconds, wall clock):
//   sfn_round_duration_seconds          select + train + aggregate + evaluate, every round
//   sfn_aggregation_duration_seconds    rounds that aggregated (not abandoned ones)
//   sfn_evaluation_duration_seconds     rounds that evaluated
#pragma once

#include "sfn/server/coordinator.h"
#include "sfn/server/round_metrics.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sfn {

// What the server's transport counts by itself, cumulative since it started. Plain numbers,
// so that this layer needs no transport type.
struct TransportCounters {
  std::uint64_t refused_handshakes = 0;
  std::uint64_t revoked_messages = 0;
  std::uint64_t rate_limited_messages = 0;
  std::uint64_t cut_off_messages = 0;
  std::uint64_t backlog_drops = 0;
  std::uint64_t cut_offs = 0;
  std::uint64_t queue_full_sends = 0;
  std::uint64_t pending_closed = 0;       // connections closed over the pending cap
  std::uint64_t pending_connections = 0;  // a gauge: connections in their handshake now
};

class OpsMetrics {
 public:
  // All series that have a fixed label set (phases, outcomes, reasons) exist from the start
  // at 0, so a dashboard's rate() has a baseline before the first event.
  OpsMetrics();
  ~OpsMetrics();
  OpsMetrics(const OpsMetrics&) = delete;
  OpsMetrics& operator=(const OpsMetrics&) = delete;

  void setPhase(RoundState state);
  void setClients(std::size_t registered, std::size_t connected);
  void setReady(bool ready);
  void setRoundsTotal(std::int64_t rounds);
  // Rounds already done, e.g. on resume before the first new round (observeRound sets it too).
  void setRoundsDone(std::int64_t rounds);
  // Adds a finished round: counters, last-round gauges, accuracies, duration histograms.
  void observeRound(const RoundMetrics& m);

  // Where the transport counters come from. `source` is called on the HTTP thread at each
  // scrape (under this object's mutex), so it must be thread-safe and must not call back in.
  void setTransportCounters(std::function<TransportCounters()> source);

  // The Prometheus text exposition format (version 0.0.4) of every metric.
  std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sfn
