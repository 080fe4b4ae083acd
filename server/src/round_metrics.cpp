#include "sfn/server/round_metrics.h"

#include "sfn/core/error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <utility>

namespace sfn {

std::string_view toString(TaskStatus status) {
  switch (status) {
    case TaskStatus::kDropped:
      return "dropped";
    case TaskStatus::kAccepted:
      return "accepted";
    case TaskStatus::kRejected:
      return "rejected";
  }
  return "unknown";
}

TaskStatus parseTaskStatus(std::string_view text) {
  for (TaskStatus s : {TaskStatus::kDropped, TaskStatus::kAccepted, TaskStatus::kRejected})
    if (text == toString(s)) return s;
  SFN_THROW(DataError, "metrics: unknown task status '", text, "'");
}

std::string_view toString(RoundOutcome outcome) {
  switch (outcome) {
    case RoundOutcome::kCompleted:
      return "completed";
    case RoundOutcome::kAbandoned:
      return "abandoned";
    case RoundOutcome::kRolledBack:
      return "rolled_back";
  }
  return "unknown";
}

RoundOutcome parseRoundOutcome(std::string_view text) {
  for (RoundOutcome o :
       {RoundOutcome::kCompleted, RoundOutcome::kAbandoned, RoundOutcome::kRolledBack})
    if (text == toString(o)) return o;
  SFN_THROW(DataError, "metrics: unknown round outcome '", text, "'");
}

namespace {

constexpr RejectReason kRejectReasons[] = {
    RejectReason::kMalformed,   RejectReason::kUnregistered,  RejectReason::kUnexpected,
    RejectReason::kWrongClient, RejectReason::kSampleCount,   RejectReason::kBadTensors,
    RejectReason::kNonFinite,   RejectReason::kChangeOverCap, RejectReason::kChangeOverBound};

// JSON has no infinity or NaN: a non-finite probe loss is written as null and read back as
// +infinity (non-finite either way, which is all the value says).
nlohmann::json finiteOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nullptr; }

double readLoss(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return 0.0;
  return it->is_null() ? std::numeric_limits<double>::infinity() : it->get<double>();
}

}  // namespace

std::string_view toString(RejectReason reason) {
  switch (reason) {
    case RejectReason::kMalformed:
      return "malformed";
    case RejectReason::kUnregistered:
      return "unregistered";
    case RejectReason::kUnexpected:
      return "unexpected";
    case RejectReason::kWrongClient:
      return "wrong_client";
    case RejectReason::kSampleCount:
      return "sample_count";
    case RejectReason::kBadTensors:
      return "bad_tensors";
    case RejectReason::kNonFinite:
      return "non_finite";
    case RejectReason::kChangeOverCap:
      return "change_over_cap";
    case RejectReason::kChangeOverBound:
      return "change_over_bound";
  }
  return "unknown";
}

RejectReason parseRejectReason(std::string_view text) {
  for (RejectReason r : kRejectReasons)
    if (text == toString(r)) return r;
  SFN_THROW(DataError, "metrics: unknown rejection reason '", text, "'");
}

nlohmann::json RoundMetrics::toJson() const {
  nlohmann::json evs = nlohmann::json::array();
  for (const auto& e : evals)
    evs.push_back({{"name", e.name},
                   {"subnet", e.subnet},
                   {"macs", e.macs},
                   {"params", e.params},
                   {"accuracy", e.accuracy},
                   {"loss", e.loss},
                   {"samples", e.samples}});
  nlohmann::json tks = nlohmann::json::array();
  for (const auto& t : tasks)
    tks.push_back({{"task_id", t.task_id},
                   {"client", t.client},
                   {"subnet", t.subnet},
                   {"status", toString(t.status)},
                   {"weight", t.weight},
                   {"client_id", t.client_id},
                   {"change_rms", t.change_rms}});
  nlohmann::json reasons = nlohmann::json::object();
  for (const auto& [reason, n] : rejected_reasons) reasons[std::string(toString(reason))] = n;
  return {{"round", round},
          {"outcome", toString(outcome)},
          {"available", available},
          {"selected", selected},
          {"accepted", accepted},
          {"dropped", dropped},
          {"rejected", rejected},
          {"rejected_reasons", reasons},
          {"late", late},
          {"duplicate", duplicate},
          {"bytes_sent", bytes_sent},
          {"bytes_received", bytes_received},
          {"train_loss", train_loss},
          {"beta", beta},
          {"lr", lr},
          {"effective_clients", effective_clients},
          {"train_macs", train_macs},
          {"clipped", clipped},
          {"quarantined", quarantined},
          {"probe_loss_max", finiteOrNull(probe_loss_max)},
          {"probe_loss_min", finiteOrNull(probe_loss_min)},
          {"backoff_s", backoff_s},
          {"wall_select_s", wall_select_s},
          {"wall_train_s", wall_train_s},
          {"wall_aggregate_s", wall_aggregate_s},
          {"wall_eval_s", wall_eval_s},
          {"clock_start", clock_start},
          {"clock_end", clock_end},
          {"evals", evs},
          {"tasks", tks}};
}

namespace {

// Sets each listed field of `m` to its key's value in `j`, or to zero if the key is absent.
template <typename T>
void readOrZero(const nlohmann::json& j, RoundMetrics& m,
                std::initializer_list<std::pair<const char*, T RoundMetrics::*>> fields) {
  for (const auto& [key, field] : fields) m.*field = j.value(key, T{});
}

}  // namespace

RoundMetrics RoundMetrics::fromJson(const nlohmann::json& j) {
  RoundMetrics m;
  m.round = j.at("round").get<std::int64_t>();
  m.outcome = parseRoundOutcome(j.at("outcome").get<std::string>());
  // Counters and timings default to zero, so metrics written before a field existed load.
#define SFN_FIELD(name) {#name, &RoundMetrics::name}  // the key is the member's name
  readOrZero<int>(j, m,
                  {SFN_FIELD(available), SFN_FIELD(selected), SFN_FIELD(accepted),
                   SFN_FIELD(dropped), SFN_FIELD(rejected), SFN_FIELD(late), SFN_FIELD(duplicate),
                   SFN_FIELD(clipped), SFN_FIELD(quarantined)});
  readOrZero<std::uint64_t>(j, m, {SFN_FIELD(bytes_sent), SFN_FIELD(bytes_received)});
  readOrZero<double>(
      j, m, {SFN_FIELD(train_loss), SFN_FIELD(beta), SFN_FIELD(lr), SFN_FIELD(effective_clients)});
  m.train_macs = j.value("train_macs", std::int64_t{0});
  m.backoff_s = j.value("backoff_s", 0.0);
  m.probe_loss_max = readLoss(j, "probe_loss_max");
  m.probe_loss_min = readLoss(j, "probe_loss_min");
  const nlohmann::json reasons = j.value("rejected_reasons", nlohmann::json::object());
  for (const auto& [text, n] : reasons.items())
    m.rejected_reasons[parseRejectReason(text)] = n.get<int>();
  readOrZero<double>(
      j, m,
      {SFN_FIELD(wall_select_s), SFN_FIELD(wall_train_s), SFN_FIELD(wall_aggregate_s),
       SFN_FIELD(wall_eval_s), SFN_FIELD(clock_start), SFN_FIELD(clock_end)});
#undef SFN_FIELD
  for (const auto& e : j.value("evals", nlohmann::json::array())) {
    EvalRecord r;
    r.name = e.at("name").get<std::string>();
    r.subnet = e.value("subnet", "");
    r.macs = e.value("macs", std::int64_t{0});
    r.params = e.value("params", std::int64_t{0});
    r.accuracy = e.value("accuracy", 0.0);
    r.loss = e.value("loss", 0.0);
    r.samples = e.value("samples", std::int64_t{0});
    m.evals.push_back(r);
  }
  // Absent in metrics written before tasks were recorded.
  for (const auto& t : j.value("tasks", nlohmann::json::array())) {
    TaskRecord r;
    r.task_id = t.value("task_id", std::uint64_t{0});
    r.client = t.value("client", "");
    r.subnet = t.value("subnet", "");
    r.status = parseTaskStatus(t.value("status", ""));
    r.weight = t.value("weight", 0.0);
    r.client_id = t.value("client_id", std::uint64_t{0});
    r.change_rms = t.value("change_rms", -1.0);
    m.tasks.push_back(r);
  }
  return m;
}

std::string RoundMetrics::csvHeader(const std::vector<std::string>& eval_names) {
  std::ostringstream os;
  os << "round,outcome,available,selected,accepted,dropped,rejected,late,duplicate,bytes_sent,"
        "bytes_received,train_loss,beta,lr,effective_clients,train_macs,wall_select_s,wall_train_s,"
        "wall_aggregate_s,wall_eval_s,clock_start,clock_end,clipped,quarantined,probe_loss_max,"
        "probe_loss_min,backoff_s";
  for (const auto& n : eval_names) os << ",acc_" << n << ",loss_" << n;
  return os.str();
}

std::string RoundMetrics::csvRow(const std::vector<std::string>& eval_names) const {
  std::ostringstream os;
  os << round << ',' << toString(outcome) << ',' << available << ',' << selected << ',' << accepted
     << ',' << dropped << ',' << rejected << ',' << late << ',' << duplicate << ',' << bytes_sent
     << ',' << bytes_received << ',' << train_loss << ',' << beta << ',' << lr << ','
     << effective_clients << ',' << train_macs << ',' << wall_select_s << ',' << wall_train_s << ','
     << wall_aggregate_s << ',' << wall_eval_s << ',' << clock_start << ',' << clock_end << ','
     << clipped << ',' << quarantined << ',' << probe_loss_max << ',' << probe_loss_min << ','
     << backoff_s;
  for (const auto& n : eval_names) {
    const EvalRecord* found = nullptr;
    for (const auto& e : evals)
      if (e.name == n) found = &e;
    if (found)
      os << ',' << found->accuracy << ',' << found->loss;
    else
      os << ",,";
  }
  return os.str();
}

}  // namespace sfn
