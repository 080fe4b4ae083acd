#include "sfn/server/round_metrics.h"

#include "sfn/core/error.h"

#include <nlohmann/json.hpp>

#include <sstream>

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
  return outcome == RoundOutcome::kCompleted ? "completed" : "abandoned";
}

RoundOutcome parseRoundOutcome(std::string_view text) {
  if (text == "completed") return RoundOutcome::kCompleted;
  if (text == "abandoned") return RoundOutcome::kAbandoned;
  SFN_THROW(DataError, "metrics: unknown round outcome '", text, "'");
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
                   {"status", toString(t.status)}});
  return {{"round", round},
          {"outcome", toString(outcome)},
          {"available", available},
          {"selected", selected},
          {"accepted", accepted},
          {"dropped", dropped},
          {"rejected", rejected},
          {"late", late},
          {"duplicate", duplicate},
          {"bytes_sent", bytes_sent},
          {"bytes_received", bytes_received},
          {"train_loss", train_loss},
          {"beta", beta},
          {"train_macs", train_macs},
          {"wall_select_s", wall_select_s},
          {"wall_train_s", wall_train_s},
          {"wall_aggregate_s", wall_aggregate_s},
          {"wall_eval_s", wall_eval_s},
          {"clock_start", clock_start},
          {"clock_end", clock_end},
          {"evals", evs},
          {"tasks", tks}};
}

RoundMetrics RoundMetrics::fromJson(const nlohmann::json& j) {
  RoundMetrics m;
  m.round = j.at("round").get<std::int64_t>();
  m.outcome = parseRoundOutcome(j.at("outcome").get<std::string>());
  m.available = j.value("available", 0);
  m.selected = j.value("selected", 0);
  m.accepted = j.value("accepted", 0);
  m.dropped = j.value("dropped", 0);
  m.rejected = j.value("rejected", 0);
  m.late = j.value("late", 0);
  m.duplicate = j.value("duplicate", 0);
  m.bytes_sent = j.value("bytes_sent", std::uint64_t{0});
  m.bytes_received = j.value("bytes_received", std::uint64_t{0});
  m.train_loss = j.value("train_loss", 0.0);
  m.beta = j.value("beta", 0.0);
  m.train_macs = j.value("train_macs", std::int64_t{0});
  m.wall_select_s = j.value("wall_select_s", 0.0);
  m.wall_train_s = j.value("wall_train_s", 0.0);
  m.wall_aggregate_s = j.value("wall_aggregate_s", 0.0);
  m.wall_eval_s = j.value("wall_eval_s", 0.0);
  m.clock_start = j.value("clock_start", 0.0);
  m.clock_end = j.value("clock_end", 0.0);
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
    m.tasks.push_back(r);
  }
  return m;
}

std::string RoundMetrics::csvHeader(const std::vector<std::string>& eval_names) {
  std::ostringstream os;
  os << "round,outcome,available,selected,accepted,dropped,rejected,late,duplicate,bytes_sent,"
        "bytes_received,train_loss,beta,train_macs,wall_select_s,wall_train_s,wall_aggregate_s,"
        "wall_eval_s,clock_start,clock_end";
  for (const auto& n : eval_names) os << ",acc_" << n << ",loss_" << n;
  return os.str();
}

std::string RoundMetrics::csvRow(const std::vector<std::string>& eval_names) const {
  std::ostringstream os;
  os << round << ',' << toString(outcome) << ',' << available << ',' << selected << ',' << accepted
     << ',' << dropped << ',' << rejected << ',' << late << ',' << duplicate << ',' << bytes_sent
     << ',' << bytes_received << ',' << train_loss << ',' << beta << ',' << train_macs << ','
     << wall_select_s << ',' << wall_train_s << ',' << wall_aggregate_s << ',' << wall_eval_s << ','
     << clock_start << ',' << clock_end;
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
