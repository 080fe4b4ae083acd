#include "sfn/server/ops_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <string_view>
#include <utility>

namespace sfn {

namespace {

constexpr RoundState kStates[] = {RoundState::kIdle,         RoundState::kBackingOff,
                                  RoundState::kSelecting,    RoundState::kTraining,
                                  RoundState::kAggregating,  RoundState::kEvaluating,
                                  RoundState::kCheckpointing};
constexpr RoundOutcome kOutcomes[] = {RoundOutcome::kCompleted, RoundOutcome::kAbandoned,
                                      RoundOutcome::kRolledBack};
constexpr RejectReason kReasons[] = {
    RejectReason::kMalformed,   RejectReason::kUnregistered,  RejectReason::kUnexpected,
    RejectReason::kWrongClient, RejectReason::kSampleCount,   RejectReason::kBadTensors,
    RejectReason::kNonFinite,   RejectReason::kChangeOverCap, RejectReason::kChangeOverBound};

// Rounds last from well under a second (simulator, tiny SuperNet) to many minutes (real
// devices with a long deadline); aggregation and evaluation are shorter.
const prometheus::Histogram::BucketBoundaries kRoundBuckets = {
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
const prometheus::Histogram::BucketBoundaries kStepBuckets = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Counter& counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Histogram& histogram(prometheus::Registry& r, const std::string& name,
                                 const std::string& help,
                                 const prometheus::Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}

// One series per value of an enum, labelled `label`="toString(value)", keyed by the value.
template <typename Metric, typename Builder, typename Enum, std::size_t N>
std::map<Enum, Metric*> perValue(prometheus::Registry& r, Builder builder, const std::string& name,
                                 const std::string& help, const std::string& label,
                                 const Enum (&values)[N]) {
  auto& family = builder.Name(name).Help(help).Register(r);
  std::map<Enum, Metric*> out;
  for (Enum v : values) out[v] = &family.Add({{label, std::string(toString(v))}});
  return out;
}

}  // namespace

// The registry owns every metric; the references below stay valid as long as it lives.
struct OpsMetrics::Impl {
  mutable std::mutex mu;
  prometheus::Registry registry;

  prometheus::Gauge& round = gauge(registry, "sfn_round", "Rounds done");
  prometheus::Gauge& rounds_total =
      gauge(registry, "sfn_rounds_planned", "Rounds the run is configured for (run.rounds)");
  std::map<RoundState, prometheus::Gauge*> phase =
      perValue<prometheus::Gauge>(registry, prometheus::BuildGauge(), "sfn_phase",
                                  "1 for the round state the server is in", "phase", kStates);
  prometheus::Gauge& ready = gauge(registry, "sfn_ready", "1 when the server serves clients");
  prometheus::Gauge& registered =
      gauge(registry, "sfn_clients_registered", "Clients in the registry");
  prometheus::Gauge& connected =
      gauge(registry, "sfn_clients_connected", "Clients seen lately and not gone");
  prometheus::Gauge& selected =
      gauge(registry, "sfn_last_round_selected", "Clients selected in the last round");
  prometheus::Gauge& accepted =
      gauge(registry, "sfn_last_round_accepted", "Updates merged in the last round");
  prometheus::Gauge& dropped =
      gauge(registry, "sfn_last_round_dropped", "Tasks without an update in the last round");
  prometheus::Gauge& rejected =
      gauge(registry, "sfn_last_round_rejected", "Messages refused in the last round");
  prometheus::Gauge& late =
      gauge(registry, "sfn_last_round_late", "Late updates in the last round");
  prometheus::Gauge& effective = gauge(registry, "sfn_effective_clients",
                                       "Effective number of clients of the last round's average");
  prometheus::Family<prometheus::Gauge>& accuracy =
      prometheus::BuildGauge()
          .Name("sfn_validation_accuracy")
          .Help("Latest validation accuracy (fraction) per evaluated SubNet")
          .Register(registry);
  std::map<std::string, prometheus::Gauge*> accuracy_by_subnet;

  std::map<RoundOutcome, prometheus::Counter*> outcomes = perValue<prometheus::Counter>(
      registry, prometheus::BuildCounter(), "sfn_rounds_completed_total", "Rounds by outcome",
      "outcome", kOutcomes);
  std::map<RejectReason, prometheus::Counter*> reasons = perValue<prometheus::Counter>(
      registry, prometheus::BuildCounter(), "sfn_rejected_messages_total",
      "Refused client messages by reason", "reason", kReasons);
  prometheus::Counter& bytes_sent = counter(registry, "sfn_bytes_sent_total", "Bytes sent");
  prometheus::Counter& bytes_received =
      counter(registry, "sfn_bytes_received_total", "Bytes received");
  prometheus::Counter& updates_accepted =
      counter(registry, "sfn_updates_accepted_total", "Updates merged into the SuperNet");
  prometheus::Counter& tasks_dropped =
      counter(registry, "sfn_tasks_dropped_total", "Tasks whose update never arrived in time");
  prometheus::Counter& late_updates =
      counter(registry, "sfn_late_updates_total", "Updates for a closed round or unknown task");

  prometheus::Histogram& round_duration =
      histogram(registry, "sfn_round_duration_seconds",
                "Wall time of select, train, aggregate and evaluate", kRoundBuckets);
  prometheus::Histogram& aggregation_duration =
      histogram(registry, "sfn_aggregation_duration_seconds",
                "Wall time of aggregation (rounds that aggregated)", kStepBuckets);
  prometheus::Histogram& evaluation_duration =
      histogram(registry, "sfn_evaluation_duration_seconds",
                "Wall time of evaluation (rounds that evaluated)", kStepBuckets);

  std::function<TransportCounters()> transport_source;
  prometheus::Counter& refused_handshakes = counter(
      registry, "sfn_refused_handshakes_total", "CURVE handshakes refused (key not allowlisted)");
  prometheus::Family<prometheus::Counter>& transport_dropped =
      prometheus::BuildCounter()
          .Name("sfn_transport_dropped_messages_total")
          .Help("Messages the transport dropped before the coordinator saw them, by reason")
          .Register(registry);
  prometheus::Counter& dropped_revoked = transport_dropped.Add({{"reason", "revoked"}});
  prometheus::Counter& dropped_rate_limited = transport_dropped.Add({{"reason", "rate_limited"}});
  prometheus::Counter& dropped_cut_off = transport_dropped.Add({{"reason", "cut_off"}});
  prometheus::Counter& dropped_backlog = transport_dropped.Add({{"reason", "backlog"}});
  prometheus::Counter& cut_offs =
      counter(registry, "sfn_key_cut_offs_total", "Keys cut off for exceeding their budgets");
  prometheus::Counter& queue_full_sends = counter(
      registry, "sfn_queue_full_sends_total", "Sends refused because the peer's queue was full");
  prometheus::Counter& pending_closed =
      counter(registry, "sfn_pending_connections_closed_total",
              "Unauthenticated connections closed for being over server.max_pending_connections");
  prometheus::Gauge& pending_connections =
      gauge(registry, "sfn_pending_connections", "TCP connections in their handshake now");

  // Counters only go up: add what the transport counted since the last scrape.
  static void catchUp(prometheus::Counter& c, std::uint64_t total) {
    const double t = static_cast<double>(total);
    if (t > c.Value()) c.Increment(t - c.Value());
  }

  void readTransport() {
    if (!transport_source) return;
    const TransportCounters t = transport_source();
    catchUp(refused_handshakes, t.refused_handshakes);
    catchUp(dropped_revoked, t.revoked_messages);
    catchUp(dropped_rate_limited, t.rate_limited_messages);
    catchUp(dropped_cut_off, t.cut_off_messages);
    catchUp(dropped_backlog, t.backlog_drops);
    catchUp(cut_offs, t.cut_offs);
    catchUp(queue_full_sends, t.queue_full_sends);
    catchUp(pending_closed, t.pending_closed);
    pending_connections.Set(static_cast<double>(t.pending_connections));
  }

  void setAccuracy(const std::string& subnet, double value) {
    auto it = accuracy_by_subnet.find(subnet);
    if (it == accuracy_by_subnet.end())
      it = accuracy_by_subnet.emplace(subnet, &accuracy.Add({{"subnet", subnet}})).first;
    it->second->Set(value);
  }
};

OpsMetrics::OpsMetrics() : impl_(std::make_unique<Impl>()) { setPhase(RoundState::kIdle); }

OpsMetrics::~OpsMetrics() = default;

void OpsMetrics::setPhase(RoundState state) {
  std::lock_guard lock(impl_->mu);
  for (auto& [s, g] : impl_->phase) g->Set(s == state ? 1.0 : 0.0);
}

void OpsMetrics::setClients(std::size_t registered, std::size_t connected) {
  std::lock_guard lock(impl_->mu);
  impl_->registered.Set(static_cast<double>(registered));
  impl_->connected.Set(static_cast<double>(connected));
}

void OpsMetrics::setReady(bool ready) {
  std::lock_guard lock(impl_->mu);
  impl_->ready.Set(ready ? 1.0 : 0.0);
}

void OpsMetrics::setRoundsTotal(std::int64_t rounds) {
  std::lock_guard lock(impl_->mu);
  impl_->rounds_total.Set(static_cast<double>(rounds));
}

void OpsMetrics::setRoundsDone(std::int64_t rounds) {
  std::lock_guard lock(impl_->mu);
  impl_->round.Set(static_cast<double>(rounds));
}

void OpsMetrics::observeRound(const RoundMetrics& m) {
  std::lock_guard lock(impl_->mu);
  Impl& s = *impl_;
  s.round.Set(static_cast<double>(m.round + 1));
  s.selected.Set(m.selected);
  s.accepted.Set(m.accepted);
  s.dropped.Set(m.dropped);
  s.rejected.Set(m.rejected);
  s.late.Set(m.late);
  s.effective.Set(m.effective_clients);
  for (const auto& e : m.evals) s.setAccuracy(e.name, e.accuracy);

  s.outcomes.at(m.outcome)->Increment();
  for (const auto& [reason, n] : m.rejected_reasons) s.reasons.at(reason)->Increment(n);
  s.bytes_sent.Increment(static_cast<double>(m.bytes_sent));
  s.bytes_received.Increment(static_cast<double>(m.bytes_received));
  s.updates_accepted.Increment(m.accepted);
  s.tasks_dropped.Increment(m.dropped);
  s.late_updates.Increment(m.late);

  s.round_duration.Observe(m.wall_select_s + m.wall_train_s + m.wall_aggregate_s + m.wall_eval_s);
  // An abandoned round never aggregates and most rounds do not evaluate; observing their
  // zeros would bury the real durations in the lowest bucket.
  if (m.outcome != RoundOutcome::kAbandoned) s.aggregation_duration.Observe(m.wall_aggregate_s);
  if (!m.evals.empty()) s.evaluation_duration.Observe(m.wall_eval_s);
}

void OpsMetrics::setTransportCounters(std::function<TransportCounters()> source) {
  std::lock_guard lock(impl_->mu);
  impl_->transport_source = std::move(source);
}

std::string OpsMetrics::text() const {
  std::lock_guard lock(impl_->mu);
  impl_->readTransport();
  return prometheus::TextSerializer().Serialize(impl_->registry.Collect());
}

}  // namespace sfn
