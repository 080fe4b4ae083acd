#include "sfn/server/round_metrics.h"

#include "sfn/core/error.h"

#include <nlohmann/json.hpp>

#include <initializer_list>
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
                   {"status", toString(t.status)},
                   {"weight", t.weight}});
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
          {"lr", lr},
          {"effective_clients", effective_clients},
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
                   SFN_FIELD(dropped), SFN_FIELD(rejected), SFN_FIELD(late), SFN_FIELD(duplicate)});
  readOrZero<std::uint64_t>(j, m, {SFN_FIELD(bytes_sent), SFN_FIELD(bytes_received)});
  readOrZero<double>(j, m, {SFN_FIELD(train_loss), SFN_FIELD(beta), SFN_FIELD(lr),
                               SFN_FIELD(effective_clients)});
  m.train_macs = j.value("train_macs", std::int64_t{0});
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
    m.tasks.push_back(r);
  }
  return m;
}

std::string RoundMetrics::csvHeader(const std::vector<std::string>& eval_names) {
  std::ostringstream os;
  os << "round,outcome,available,selected,accepted,dropped,rejected,late,duplicate,bytes_sent,"
        "bytes_received,train_loss,beta,lr,effective_clients,train_macs,wall_select_s,wall_train_s,"
        "wall_aggregate_s,wall_eval_s,clock_start,clock_end";
  for (const auto& n : eval_names) os << ",acc_" << n << ",loss_" << n;
  return os.str();
}

std::string RoundMetrics::csvRow(const std::vector<std::string>& eval_names) const {
  std::ostringstream os;
  os << round << ',' << toString(outcome) << ',' << available << ',' << selected << ',' << accepted
     << ',' << dropped << ',' << rejected << ',' << late << ',' << duplicate << ',' << bytes_sent
     << ',' << bytes_received << ',' << train_loss << ',' << beta << ',' << lr << ','
     << effective_clients << ','
     << train_macs << ',' << wall_select_s << ',' << wall_train_s << ',' << wall_aggregate_s << ','
     << wall_eval_s << ',' << clock_start << ',' << clock_end;
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
