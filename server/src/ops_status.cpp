#include "sfn/server/ops_status.h"

#include "sfn/core/error.h"
#include "sfn/core/time_text.h"
#include "sfn/server/dashboard_html.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <utility>

namespace sfn {

namespace {

constexpr RejectReason kReasons[] = {
    RejectReason::kMalformed,   RejectReason::kUnregistered,  RejectReason::kUnexpected,
    RejectReason::kWrongClient, RejectReason::kSampleCount,   RejectReason::kBadTensors,
    RejectReason::kNonFinite,   RejectReason::kChangeOverCap, RejectReason::kChangeOverBound};

nlohmann::json accuracyJson(const std::map<std::string, double>& accuracy) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, acc] : accuracy) j[name] = acc;
  return j;
}

}  // namespace

std::string_view toString(FinalEval state) {
  switch (state) {
    case FinalEval::kPending:
      return "pending";
    case FinalEval::kRunning:
      return "running";
    case FinalEval::kDone:
      return "done";
  }
  return "unknown";
}

OpsStatus::OpsStatus(std::size_t history_cap, std::size_t fleet_cap)
    : history_cap_(history_cap),
      fleet_cap_(fleet_cap),
      started_(utcNow()),
      started_at_(std::chrono::steady_clock::now()) {
  if (history_cap_ == 0 || fleet_cap_ == 0)
    SFN_THROW(ConfigError, "status: the history and fleet caps must be positive (got ",
              history_cap_, " and ", fleet_cap_, ")");
  for (RejectReason r : kReasons) rejected_[r] = 0;
}

void OpsStatus::setRun(std::string name, std::int64_t rounds_total) {
  std::lock_guard lock(mu_);
  run_ = std::move(name);
  rounds_total_ = rounds_total;
}

void OpsStatus::setPhase(RoundState state) {
  std::lock_guard lock(mu_);
  phase_ = state;
}

void OpsStatus::setReady(bool ready) {
  std::lock_guard lock(mu_);
  ready_ = ready;
}

void OpsStatus::setRoundsDone(std::int64_t rounds) {
  std::lock_guard lock(mu_);
  rounds_done_ = rounds;
}

void OpsStatus::updateClients(const ClientRegistry& registry, double now, double liveness_s) {
  // Every client not gone (the registry lists no others); read before taking the lock, as
  // the registry belongs to the calling thread and the HTTP thread should not wait while
  // 100,000 clients are filtered.
  const std::vector<const ClientInfo*> known =
      registry.available(now, std::numeric_limits<double>::infinity());
  std::lock_guard lock(mu_);
  registered_ = registry.size();
  connected_ = 0;
  clients_now_ = now;
  for (auto& [id, entry] : fleet_) entry.connected = false;
  for (const ClientInfo* c : known) {
    FleetEntry& e = fleet_[c->id];
    e.id = c->id;
    e.name = c->name;
    e.device_class = c->device_class;
    e.last_seen = c->last_seen;
    // The test of ClientRegistry::available(now, liveness_s).
    e.connected = now - c->last_seen <= liveness_s;
    connected_ += e.connected;
  }
}

void OpsStatus::observeRound(const RoundMetrics& m) {
  std::lock_guard lock(mu_);
  rounds_done_ = m.round + 1;
  ++rounds_observed_;
  HistoryEntry h{m.round,    m.outcome, m.selected,          m.accepted,   m.dropped,
                 m.rejected, m.late,    m.effective_clients, m.train_loss, {}};
  for (const auto& e : m.evals) {
    h.accuracy.emplace_back(e.name, e.accuracy);
    accuracy_[e.name] = e.accuracy;
  }
  history_.push_back(std::move(h));
  while (history_.size() > history_cap_) history_.pop_front();
  for (const auto& [reason, n] : m.rejected_reasons) rejected_[reason] += n;
  for (const auto& t : m.tasks) {
    auto [it, added] = fleet_.try_emplace(t.client_id);
    FleetEntry& e = it->second;
    if (added) {  // not (yet) seen by updateClients: what the task record knows
      e.id = t.client_id;
      e.name = t.client;
      e.last_seen = -1.0;
    }
    ++e.tasks;
    e.accepted += t.status == TaskStatus::kAccepted;
    e.rejected += t.status == TaskStatus::kRejected;
    e.dropped += t.status == TaskStatus::kDropped;
  }
}

void OpsStatus::setFinal(FinalEval state, const std::vector<EvalRecord>& evals) {
  std::lock_guard lock(mu_);
  final_ = state;
  final_accuracy_.clear();
  for (const auto& e : evals) final_accuracy_[e.name] = e.accuracy;
}

nlohmann::json OpsStatus::historyJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : history_) {
    nlohmann::json acc = nlohmann::json::object();
    for (const auto& [name, a] : h.accuracy) acc[name] = a;
    out.push_back({{"round", h.round},
                   {"outcome", toString(h.outcome)},
                   {"selected", h.selected},
                   {"accepted", h.accepted},
                   {"dropped", h.dropped},
                   {"rejected", h.rejected},
                   {"late", h.late},
                   {"effective_clients", h.effective_clients},
                   {"train_loss", h.train_loss},
                   {"accuracy", std::move(acc)}});
  }
  return out;
}

nlohmann::json OpsStatus::fleetJson() const {
  std::vector<const FleetEntry*> order;
  order.reserve(fleet_.size());
  for (const auto& [id, e] : fleet_) order.push_back(&e);
  // Connected first, then the most recently seen; the id breaks ties so the list is stable.
  const auto before = [](const FleetEntry* a, const FleetEntry* b) {
    if (a->connected != b->connected) return a->connected;
    if (a->last_seen != b->last_seen) return a->last_seen > b->last_seen;
    return a->id < b->id;
  };
  const std::size_t shown = std::min(order.size(), fleet_cap_);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                    before);
  nlohmann::json clients = nlohmann::json::array();
  for (std::size_t i = 0; i < shown; ++i) {
    const FleetEntry& e = *order[i];
    clients.push_back(
        {{"id", std::to_string(e.id)},
         {"name", e.name},
         {"device_class", e.device_class},
         {"connected", e.connected},
         {"last_seen_s",
          e.last_seen < 0 ? nlohmann::json(nullptr) : nlohmann::json(clients_now_ - e.last_seen)},
         {"tasks", e.tasks},
         {"accepted", e.accepted},
         {"rejected", e.rejected},
         {"dropped", e.dropped}});
  }
  return {{"total", fleet_.size()}, {"shown", shown}, {"clients", std::move(clients)}};
}

nlohmann::json OpsStatus::rejectedJson() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [reason, n] : rejected_) out[std::string(toString(reason))] = n;
  return out;
}

nlohmann::json OpsStatus::toJson() const {
  std::lock_guard lock(mu_);
  std::int64_t rejected_total = 0;
  for (const auto& [reason, n] : rejected_) rejected_total += n;
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
  return {{"run", run_},
          {"phase", toString(phase_)},
          {"round", rounds_done_},
          {"rounds_total", rounds_total_},
          {"ready", ready_},
          {"started", started_},
          {"uptime_s", uptime},
          {"clients", {{"registered", registered_}, {"connected", connected_}}},
          {"accuracy", accuracyJson(accuracy_)},
          {"history", historyJson()},
          {"rounds_observed", rounds_observed_},
          {"fleet", fleetJson()},
          {"rejected", rejectedJson()},
          {"rejected_total", rejected_total},
          {"final", {{"state", toString(final_)}, {"accuracy", accuracyJson(final_accuracy_)}}}};
}

std::string_view dashboardHtml() { return generated::kDashboardHtml; }

}  // namespace sfn
