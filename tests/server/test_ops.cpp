// Issue 11: the data behind the HTTP endpoints. OpsMetrics (Prometheus text), OpsStatus
// (/status JSON) and the embedded dashboard page, fed synthetic rounds as the federation
// loop will feed them.
#include "sfn/core/error.h"
#include "sfn/server/client_registry.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/ops_metrics.h"
#include "sfn/server/ops_status.h"
#include "sfn/server/round_metrics.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace sfn;

namespace {

TaskRecord task(const std::string& client, TaskStatus status) {
  TaskRecord t;
  t.client = client;
  t.client_id = ClientRegistry::idFor("peer-" + client);
  t.status = status;
  return t;
}

EvalRecord eval(const std::string& name, double accuracy) {
  EvalRecord e;
  e.name = name;
  e.accuracy = accuracy;
  return e;
}

// Round 0: completed and evaluated; round 1: abandoned, not evaluated; round 2: completed
// and evaluated. Walls are binary fractions so sums print exactly.
std::vector<RoundMetrics> threeRounds() {
  std::vector<RoundMetrics> rounds(3);
  const RoundOutcome outcomes[] = {RoundOutcome::kCompleted, RoundOutcome::kAbandoned,
                                   RoundOutcome::kCompleted};
  const int accepted[] = {3, 1, 4};
  for (int i = 0; i < 3; ++i) {
    RoundMetrics& m = rounds[i];
    m.round = i;
    m.outcome = outcomes[i];
    m.selected = 4;
    m.accepted = accepted[i];
    m.dropped = 4 - accepted[i];
    m.late = i;  // 0 + 1 + 2
    m.bytes_sent = 1000;
    m.bytes_received = 500;
    m.effective_clients = 2.5 + i;
    m.wall_select_s = 0.25;
    m.wall_train_s = 2.0;
    m.wall_aggregate_s = i == 1 ? 0.0 : 0.5;
    m.wall_eval_s = i == 1 ? 0.0 : 0.25;
    for (int c = 0; c < 4; ++c)
      m.tasks.push_back(task(fmt::format("c{}", c),
                             c < accepted[i] ? TaskStatus::kAccepted : TaskStatus::kDropped));
  }
  rounds[0].rejected_reasons = {{RejectReason::kNonFinite, 1}};
  rounds[1].rejected_reasons = {{RejectReason::kNonFinite, 1}, {RejectReason::kMalformed, 3}};
  rounds[2].rejected_reasons = {{RejectReason::kChangeOverBound, 1}};
  for (auto& m : rounds)
    for (const auto& [reason, n] : m.rejected_reasons) m.rejected += n;
  rounds[0].evals = {eval("max", 0.5), eval("min", 0.375)};
  rounds[2].evals = {eval("max", 0.8125), eval("min", 0.625)};
  return rounds;
}

bool hasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

// The value of the sample line `series value`, if there is one.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l.size() > series.size() && l.compare(0, series.size(), series) == 0 &&
        l[series.size()] == ' ')
      return std::stod(l.substr(series.size() + 1));
  return std::nullopt;
}

// How many sfn_phase series are at 1 (exactly one, whenever a scrape happens).
int phasesSet(const std::string& text) {
  int n = 0;
  for (RoundState s :
       {RoundState::kIdle, RoundState::kBackingOff, RoundState::kSelecting, RoundState::kTraining,
        RoundState::kAggregating, RoundState::kEvaluating, RoundState::kCheckpointing})
    n += sample(text, fmt::format("sfn_phase{{phase=\"{}\"}}", toString(s))) == 1.0;
  return n;
}

// `n` clients "c0".."c<n-1>" registered at times 0..n-1 with device class "pi" or "phone".
ClientRegistry registryOf(int n) {
  ClientRegistry reg;
  for (int i = 0; i < n; ++i) {
    ClientInfo info;
    info.name = fmt::format("c{}", i);
    info.device_class = i % 2 ? "phone" : "pi";
    REQUIRE(reg.upsert("peer-" + info.name, info, static_cast<double>(i)) != nullptr);
  }
  return reg;
}

}  // namespace

TEST_CASE("OpsMetrics: counters, gauges and histograms of three rounds") {
  OpsMetrics metrics;
  metrics.setRoundsTotal(10);
  metrics.setClients(6, 4);
  metrics.setReady(true);
  for (const auto& m : threeRounds()) metrics.observeRound(m);
  const std::string t = metrics.text();
  INFO(t);
  for (const char* line : {
           "sfn_round 3",
           "sfn_rounds_planned 10",
           "sfn_ready 1",
           "sfn_clients_registered 6",
           "sfn_clients_connected 4",
           "sfn_last_round_selected 4",
           "sfn_last_round_accepted 4",
           "sfn_last_round_dropped 0",
           "sfn_last_round_rejected 1",
           "sfn_last_round_late 2",
           "sfn_effective_clients 4.5",
           "sfn_validation_accuracy{subnet=\"max\"} 0.8125",
           "sfn_validation_accuracy{subnet=\"min\"} 0.625",
           "sfn_rounds_completed_total{outcome=\"completed\"} 2",
           "sfn_rounds_completed_total{outcome=\"abandoned\"} 1",
           "sfn_rounds_completed_total{outcome=\"rolled_back\"} 0",
           "sfn_rejected_messages_total{reason=\"non_finite\"} 2",
           "sfn_rejected_messages_total{reason=\"malformed\"} 3",
           "sfn_rejected_messages_total{reason=\"change_over_bound\"} 1",
           "sfn_rejected_messages_total{reason=\"wrong_client\"} 0",
           "sfn_bytes_sent_total 3000",
           "sfn_bytes_received_total 1500",
           "sfn_updates_accepted_total 8",
           "sfn_tasks_dropped_total 4",
           "sfn_late_updates_total 3",
           "sfn_round_duration_seconds_count 3",
           "sfn_round_duration_seconds_sum 8.25",  // 3 + 2.25 + 3
           "sfn_round_duration_seconds_bucket{le=\"2.5\"} 1",
           "sfn_round_duration_seconds_bucket{le=\"5\"} 3",
           "sfn_round_duration_seconds_bucket{le=\"+Inf\"} 3",
           "sfn_aggregation_duration_seconds_count 2",  // not the abandoned round
           "sfn_aggregation_duration_seconds_sum 1",
           "sfn_evaluation_duration_seconds_count 2",  // only the evaluated rounds
           "sfn_evaluation_duration_seconds_sum 0.5",
           "# TYPE sfn_rejected_messages_total counter",
           "# TYPE sfn_round_duration_seconds histogram",
       })
    CHECK_MESSAGE(hasLine(t, line), line);
}

TEST_CASE("OpsMetrics: fixed label sets start at 0 and one phase is set at a time") {
  OpsMetrics metrics;
  std::string t = metrics.text();
  CHECK(hasLine(t, "sfn_round 0"));
  CHECK(hasLine(t, "sfn_ready 0"));
  CHECK(hasLine(t, "sfn_rejected_messages_total{reason=\"malformed\"} 0"));
  CHECK(hasLine(t, "sfn_rounds_completed_total{outcome=\"rolled_back\"} 0"));
  CHECK(hasLine(t, "sfn_phase{phase=\"idle\"} 1"));
  CHECK(hasLine(t, "sfn_round_duration_seconds_count 0"));
  CHECK_FALSE(sample(t, "sfn_validation_accuracy{subnet=\"max\"}").has_value());
  CHECK(phasesSet(t) == 1);

  metrics.setPhase(RoundState::kTraining);
  t = metrics.text();
  CHECK(hasLine(t, "sfn_phase{phase=\"training\"} 1"));
  CHECK(hasLine(t, "sfn_phase{phase=\"idle\"} 0"));
  CHECK(phasesSet(t) == 1);
  metrics.setPhase(RoundState::kCheckpointing);
  t = metrics.text();
  CHECK(hasLine(t, "sfn_phase{phase=\"checkpointing\"} 1"));
  CHECK(hasLine(t, "sfn_phase{phase=\"training\"} 0"));
  CHECK(phasesSet(t) == 1);
  metrics.setRoundsDone(42);
  CHECK(hasLine(metrics.text(), "sfn_round 42"));
}

TEST_CASE("OpsMetrics: the transport's counters are read at each scrape and only go up") {
  sfn::OpsMetrics metrics;
  CHECK(hasLine(metrics.text(), "sfn_refused_handshakes_total 0"));
  sfn::TransportCounters now{7, 3, 500, 40, 2, 1, 9, 25, 4};
  metrics.setTransportCounters([&now] { return now; });
  std::string t = metrics.text();
  for (const char* line : {"sfn_refused_handshakes_total 7",
                           "sfn_transport_dropped_messages_total{reason=\"revoked\"} 3",
                           "sfn_transport_dropped_messages_total{reason=\"rate_limited\"} 500",
                           "sfn_transport_dropped_messages_total{reason=\"cut_off\"} 40",
                           "sfn_transport_dropped_messages_total{reason=\"backlog\"} 2",
                           "sfn_key_cut_offs_total 1", "sfn_queue_full_sends_total 9",
                           "sfn_pending_connections_closed_total 25", "sfn_pending_connections 4"})
    CHECK_MESSAGE(hasLine(t, line), line);
  now.refused_handshakes = 12;
  now.pending_connections = 0;  // a gauge: it follows the transport down too
  t = metrics.text();
  CHECK(hasLine(t, "sfn_refused_handshakes_total 12"));
  CHECK(hasLine(t, "sfn_pending_connections 0"));
  // Detached (the transport is gone): the totals stay where they were.
  metrics.setTransportCounters(nullptr);
  now.refused_handshakes = 99;
  t = metrics.text();
  CHECK(hasLine(t, "sfn_refused_handshakes_total 12"));
  CHECK(hasLine(t, "sfn_queue_full_sends_total 9"));
}

TEST_CASE("OpsStatus: the /status document after three rounds") {
  OpsStatus status;
  status.setRun("fmnist-a1", 10);
  status.setPhase(RoundState::kEvaluating);
  status.setReady(true);
  const ClientRegistry reg = registryOf(6);
  status.updateClients(reg, 5.5, 3.0);  // c3, c4, c5 seen within 3 s
  for (const auto& m : threeRounds()) status.observeRound(m);
  const nlohmann::json j = status.toJson();
  INFO(j.dump(2));
  CHECK(j["run"] == "fmnist-a1");
  CHECK(j["phase"] == "evaluating");
  CHECK(j["round"] == 3);
  CHECK(j["rounds_total"] == 10);
  CHECK(j["ready"] == true);
  CHECK(std::regex_match(j["started"].get<std::string>(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  CHECK(j["uptime_s"].get<double>() >= 0.0);
  CHECK(j["clients"] == nlohmann::json{{"registered", 6}, {"connected", 3}});
  CHECK(j["accuracy"] == nlohmann::json{{"max", 0.8125}, {"min", 0.625}});
  CHECK(j["rounds_observed"] == 3);
  REQUIRE(j["history"].size() == 3);
  const nlohmann::json& h1 = j["history"][1];
  CHECK(h1["round"] == 1);
  CHECK(h1["outcome"] == "abandoned");
  CHECK(h1["accepted"] == 1);
  CHECK(h1["dropped"] == 3);
  CHECK(h1["rejected"] == 4);
  CHECK(h1["late"] == 1);
  CHECK(h1["effective_clients"] == 3.5);
  CHECK(h1["accuracy"].empty());
  CHECK(j["history"][2]["accuracy"]["max"] == 0.8125);
  CHECK(j["rejected"]["non_finite"] == 2);
  CHECK(j["rejected"]["malformed"] == 3);
  CHECK(j["rejected"]["change_over_bound"] == 1);
  CHECK(j["rejected"]["sample_count"] == 0);
  CHECK(j["rejected"].size() == 9);
  CHECK(j["rejected_total"] == 6);
  CHECK(j["final"]["state"] == "pending");
  CHECK(j["final"]["accuracy"].empty());
}

TEST_CASE("OpsStatus: the fleet joins the registry with the rounds' task records") {
  OpsStatus status;
  const ClientRegistry reg = registryOf(6);
  status.updateClients(reg, 5.5, 3.0);
  for (const auto& m : threeRounds()) status.observeRound(m);
  const nlohmann::json fleet = status.toJson()["fleet"];
  INFO(fleet.dump(2));
  CHECK(fleet["total"] == 6);
  CHECK(fleet["shown"] == 6);
  std::vector<std::string> names;
  for (const auto& c : fleet["clients"]) names.push_back(c["name"]);
  // Connected (c5, c4, c3, most recent first), then the others by last seen.
  CHECK(names == std::vector<std::string>{"c5", "c4", "c3", "c2", "c1", "c0"});
  const nlohmann::json& c3 = fleet["clients"][2];
  CHECK(c3["id"] == std::to_string(ClientRegistry::idFor("peer-c3")));
  CHECK(c3["device_class"] == "phone");
  CHECK(c3["connected"] == true);
  CHECK(c3["last_seen_s"] == 2.5);
  CHECK(c3["tasks"] == 3);
  CHECK(c3["accepted"] == 1);  // only round 2 accepted four
  CHECK(c3["dropped"] == 2);
  const nlohmann::json& c0 = fleet["clients"][5];
  CHECK(c0["connected"] == false);
  CHECK(c0["tasks"] == 3);
  CHECK(c0["accepted"] == 3);
  CHECK(c0["last_seen_s"] == 5.5);
  CHECK(fleet["clients"][4]["accepted"] == 2);  // c1: rounds 0 and 2

  // A client the rounds name but the status never saw in the registry: listed, never seen.
  RoundMetrics m;
  m.round = 3;
  m.tasks = {task("stranger", TaskStatus::kRejected)};
  status.observeRound(m);
  const nlohmann::json after = status.toJson()["fleet"];
  CHECK(after["total"] == 7);
  const nlohmann::json& last = after["clients"][6];
  CHECK(last["name"] == "stranger");
  CHECK(last["last_seen_s"].is_null());
  CHECK(last["rejected"] == 1);
}

TEST_CASE("OpsStatus: history and fleet are capped") {
  OpsStatus status(5, 3);
  status.updateClients(registryOf(10), 9.0, 100.0);
  for (int r = 0; r < 8; ++r) {
    RoundMetrics m;
    m.round = r;
    m.outcome = RoundOutcome::kCompleted;
    m.evals = {eval("max", 0.125 * r)};
    status.observeRound(m);
  }
  const nlohmann::json j = status.toJson();
  CHECK(j["round"] == 8);
  CHECK(j["rounds_observed"] == 8);
  REQUIRE(j["history"].size() == 5);
  CHECK(j["history"].front()["round"] == 3);
  CHECK(j["history"].back()["round"] == 7);
  CHECK(j["accuracy"]["max"] == 0.875);
  CHECK(j["fleet"]["total"] == 10);
  CHECK(j["fleet"]["shown"] == 3);
  REQUIRE(j["fleet"]["clients"].size() == 3);
  CHECK(j["fleet"]["clients"][0]["name"] == "c9");
  CHECK(j["fleet"]["clients"][2]["name"] == "c7");
  CHECK(OpsStatus::kHistoryCap == 1000);
  CHECK(OpsStatus::kFleetCap == 500);
  CHECK_THROWS_AS(OpsStatus(0, 3), ConfigError);
}

TEST_CASE("OpsStatus: phase, rounds done and the final evaluation") {
  OpsStatus status;
  CHECK(status.toJson()["phase"] == "idle");
  CHECK(status.toJson()["ready"] == false);
  status.setRoundsDone(17);
  status.setPhase(RoundState::kBackingOff);
  CHECK(status.toJson()["round"] == 17);
  CHECK(status.toJson()["phase"] == "backing_off");
  status.setFinal(FinalEval::kRunning);
  CHECK(status.toJson()["final"]["state"] == "running");
  status.setFinal(FinalEval::kDone, {eval("max", 0.75), eval("min", 0.5)});
  const nlohmann::json fin = status.toJson()["final"];
  CHECK(fin["state"] == "done");
  CHECK(fin["accuracy"] == nlohmann::json{{"max", 0.75}, {"min", 0.5}});
}

TEST_CASE("OpsMetrics and OpsStatus: a reader thread during 200 rounds") {
  OpsMetrics metrics;
  OpsStatus status(50, 500);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  int inconsistent = 0;
  std::thread reader([&] {
    std::int64_t last_round = 0;
    while (!done.load()) {
      const std::string t = metrics.text();
      const nlohmann::json j = status.toJson();
      const std::int64_t round = j["round"];
      // A scrape sees a round whole: one phase, history never past its cap or its round.
      if (phasesSet(t) != 1 || j["history"].size() > 50 || round < last_round ||
          j["history"].size() > static_cast<std::size_t>(round))
        ++inconsistent;
      last_round = round;
      ++reads;
    }
  });
  const ClientRegistry reg = registryOf(8);
  const std::vector<RoundMetrics> three = threeRounds();
  for (int r = 0; r < 200; ++r) {
    // Reads interleave with the rounds, however the threads are scheduled.
    if (r % 20 == 0)
      while (reads.load() <= r / 20) std::this_thread::yield();
    RoundMetrics m = three[r % 3];
    m.round = r;
    metrics.setPhase(r % 2 ? RoundState::kTraining : RoundState::kAggregating);
    status.setPhase(RoundState::kTraining);
    status.updateClients(reg, 10.0 + r, 5.0);
    metrics.observeRound(m);
    status.observeRound(m);
  }
  done = true;
  reader.join();
  CHECK(inconsistent == 0);
  // The waits above guarantee 10 reads; more depends on the scheduler.
  CHECK(reads.load() >= 10);
  const std::string t = metrics.text();
  CHECK(hasLine(t, "sfn_round 200"));
  CHECK(hasLine(t, "sfn_round_duration_seconds_count 200"));
  CHECK(sample(t, "sfn_updates_accepted_total") == 67 * 3 + 67 * 1 + 66 * 4);
  const nlohmann::json j = status.toJson();
  CHECK(j["round"] == 200);
  CHECK(j["rounds_observed"] == 200);
  CHECK(j["history"].size() == 50);
  for (const auto& c : j["fleet"]["clients"])  // c0..c3 got a task every round, c4..c7 none
    CHECK(c["tasks"] == (c["name"].get<std::string>() < "c4" ? 200 : 0));
}

TEST_CASE("dashboardHtml: the embedded page") {
  const std::string_view html = dashboardHtml();
  REQUIRE(!html.empty());
  CHECK(html.substr(0, 15) == "<!DOCTYPE html>");
  CHECK(html.find("</html>") != std::string_view::npos);
  for (const char* id :
       {"id=\"round\"", "id=\"rounds-total\"", "id=\"phase\"", "id=\"ready\"", "id=\"acc-chart\"",
        "id=\"legend\"", "id=\"fleet-body\"", "id=\"rejected-total\"", "\"acc-\"", "\"rej-\"",
        "\"line-\"", "\"/status\""})
    CHECK_MESSAGE(html.find(id) != std::string_view::npos, id);
  // Self-contained: nothing is fetched from anywhere but the server itself.
  CHECK(html.find("http://") == std::string_view::npos);
  CHECK(html.find("https://") == std::string_view::npos);
  CHECK(html.find("src=") == std::string_view::npos);
  CHECK(html.find("<link") == std::string_view::npos);
}

TEST_CASE("ClientRegistry: countAvailable counts what available() lists, for any window") {
  ClientRegistry reg = registryOf(6);  // seen at 0..5
  reg.markGone("peer-c4");
  for (const double window : {0.0, 1.0, 2.5, 10.0}) {
    INFO("window ", window);
    CHECK(reg.countAvailable(5.0, window) == reg.available(5.0, window).size());
  }
  CHECK(reg.countAvailable(5.0, 2.5) == 2);  // c3 and c5 (c4 is gone)
  CHECK(reg.countAvailable(5.0, 10.0) == 5);
}
