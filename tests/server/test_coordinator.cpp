// Coordinator round logic against a scripted transport: the test plays the clients.
#include "sfn/core/error.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/federation.h"
#include "sfn/server/round_metrics.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"
#include "server/scripted_transport.h"
#include "temp_dir.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <functional>
#include <limits>
#include <map>

using namespace sfn;

namespace {

using test::ScriptedTransport;

// A deterministic "training": every weight of the slice plus a client-specific constant.
UpdateMsg fakeUpdate(const TrainTaskMsg& task, float delta, std::uint64_t samples) {
  UpdateMsg u;
  u.round = task.round;
  u.task_id = task.task_id;
  u.samples = samples;
  for (const auto& t : task.tensors) u.tensors.add(t.name, t.tensor.clone() + delta);
  u.mean_loss = 1.0;
  return u;
}

CoordinatorOptions options(int k) {
  CoordinatorOptions o;
  o.clients_per_round = k;
  o.round_deadline_s = 10;
  o.eval_every = 0;
  o.seed = 3;
  return o;
}

struct Harness {
  VirtualClock clock;
  ScriptedTransport transport{clock};
  Coordinator coord;
  std::vector<TrainTaskMsg> tasks;
  std::vector<PeerId> task_peers;

  explicit Harness(CoordinatorOptions o)
      : coord(std::move(o), SuperNet(DesignSpace::preset("tiny"), 5), transport, clock, nullptr,
              nullptr) {
    transport.on_send = [this](const PeerId& peer, Message& m) {
      if (auto* t = std::get_if<TrainTaskMsg>(&m)) {
        TrainTaskMsg copy = *t;
        copy.tensors = t->tensors.clone();
        tasks.push_back(std::move(copy));
        task_peers.push_back(peer);
      }
    };
  }
  // Queues a Register from each of n clients (handled by the next wait, pump or round).
  void queueRegisters(int n) {
    for (int i = 0; i < n; ++i) {
      RegisterMsg r;
      // fmt: GCC 12 -O3 warns (falsely, -Wstringop-overflow) on std::to_string inlined here.
      r.client_name = fmt::format("c{}", i);
      r.data = DataInfo{1, 8, 8, 3};  // the "tiny" SuperNet's input, labels 0..3
      r.samples = 100;
      transport.push(fmt::format("peer-{}", i), r);
    }
  }
  void registerClients(int n) {
    queueRegisters(n);
    REQUIRE(coord.waitForClients(static_cast<std::size_t>(n), 1.0));
  }
  // Clients answer every task at once with their slice + 1.
  void answerTasks() {
    transport.on_send = [this](const PeerId& peer, Message& m) {
      if (auto* t = std::get_if<TrainTaskMsg>(&m)) transport.push(peer, fakeUpdate(*t, 1.0f, 100));
    };
  }
};

}  // namespace

TEST_CASE("a round merges the updates of all selected clients into covered elements only") {
  Harness h(options(3));
  h.registerClients(3);
  const NamedTensors before = h.coord.supernet().tensors().clone();
  // Clients answer as soon as they get their task.
  h.transport.on_send = [&](const PeerId& peer, Message& m) {
    if (auto* t = std::get_if<TrainTaskMsg>(&m)) {
      h.tasks.push_back(*t);
      h.transport.push(peer, fakeUpdate(*t, 1.0f, 100));
    }
  };
  RoundMetrics m = h.coord.runRound();
  CHECK(toString(m.outcome) == "completed");
  CHECK(m.accepted == 3);
  CHECK(m.selected == 3);
  // Tracking sandwich: one MaxNet, one MinNet.
  const auto& space = h.coord.supernet().space();
  int maxnets = 0, minnets = 0;
  for (const auto& t : h.tasks) {
    const auto c = SubNetConfig::parse(t.subnet, space);
    maxnets += c.isMaxNet(space);
    minnets += c.isMinNet(space);
  }
  CHECK(maxnets == 1);
  CHECK(minnets == 1);
  // Every client added +1 to its slice, so covered elements moved by exactly +1 and the
  // MaxNet covers everything.
  const NamedTensors& after = h.coord.supernet().tensors();
  for (std::size_t i = 0; i < after.size(); ++i)
    CHECK(torch::allclose(after[i].tensor, before[i].tensor + 1.0, 1e-5, 1e-5));
}

TEST_CASE(
    "a round below quorum is abandoned and the SuperNet kept, and late updates are discarded") {
  CoordinatorOptions o = options(4);
  o.quorum = 3;
  Harness h(o);
  h.registerClients(4);
  const NamedTensors before = h.coord.supernet().tensors().clone();
  RoundMetrics m0 = h.coord.runRound();  // nobody answers
  CHECK(toString(m0.outcome) == "abandoned");
  CHECK(m0.dropped == 4);
  CHECK(h.coord.supernet().tensors().bitEqual(before));
  REQUIRE(h.tasks.size() == 4);
  // An answer to round 0 arriving during round 1 is late.
  h.transport.push(h.task_peers[0], fakeUpdate(h.tasks[0], 1.0f, 100));
  RoundMetrics m1 = h.coord.runRound();
  CHECK(m1.late == 1);
  CHECK(m1.accepted == 0);
  CHECK(h.coord.supernet().tensors().bitEqual(before));
}

TEST_CASE("bad input is rejected, logged and counted, and the result equals the clean round") {
  auto run = [](bool with_attacker) {
    Harness h(options(3));
    h.registerClients(3);
    if (with_attacker) {
      RegisterMsg r;
      r.client_name = "evil";
      r.samples = 0;  // refused: no data
      h.transport.push("evil", r);
      h.coord.pump();
    }
    h.transport.on_send = [&](const PeerId& peer, Message& msg) {
      auto* t = std::get_if<TrainTaskMsg>(&msg);
      if (t == nullptr) return;
      if (with_attacker) {
        // Before the honest update: garbage, a truncated update, NaN values, a stale round,
        // an update from an unregistered sender, and a registered client forging another
        // client's task (messages are tied to the authenticated peer, not to task ids).
        h.transport.pushRaw("evil", {1, 2, 3, 4, 5, 6, 7, 8, 9});
        BytesPtr good = encode(fakeUpdate(*t, 5.0f, 100));
        h.transport.pushRaw(
            "evil", std::vector<std::uint8_t>(good->data(), good->data() + good->size() / 2));
        UpdateMsg nan = fakeUpdate(*t, 0.0f, 100);
        nan.tensors[0].tensor.fill_(std::numeric_limits<float>::quiet_NaN());
        h.transport.push("evil", nan);
        UpdateMsg stale = fakeUpdate(*t, 5.0f, 100);
        stale.round += 7;
        h.transport.push(peer, stale);
        h.transport.push(peer == "peer-0" ? "peer-1" : "peer-0", fakeUpdate(*t, 5.0f, 100));
      }
      h.transport.push(peer, fakeUpdate(*t, 1.0f + static_cast<float>(t->task_id), 100));
      if (with_attacker) h.transport.push(peer, fakeUpdate(*t, 9.0f, 100));  // duplicate
    };
    RoundMetrics m = h.coord.runRound();
    return std::make_pair(m, h.coord.supernet().tensors().clone());
  };
  auto [clean_m, clean] = run(false);
  auto [dirty_m, dirty] = run(true);
  CHECK(clean_m.accepted == 3);
  CHECK(dirty_m.accepted == 3);
  CHECK(dirty_m.rejected >= 3 * 4);  // garbage, truncated, NaN-from-stranger, forged: per task
  CHECK(dirty_m.late + dirty_m.duplicate >= 3);  // stale rounds (and duplicates before close)
  CHECK(dirty.bitEqual(clean));
}

TEST_CASE("wrong tensor shapes for the assigned SubNet are rejected before aggregation") {
  Harness h(options(1));
  h.registerClients(1);
  const NamedTensors before = h.coord.supernet().tensors().clone();
  h.transport.on_send = [&](const PeerId& peer, Message& m) {
    if (auto* t = std::get_if<TrainTaskMsg>(&m)) {
      UpdateMsg u = fakeUpdate(*t, 1.0f, 100);
      u.tensors[0].tensor = torch::zeros({1, 1, 3, 3});
      h.transport.push(peer, u);
    }
  };
  RoundMetrics m = h.coord.runRound();
  CHECK(m.rejected == 1);
  CHECK(m.accepted == 0);
  CHECK(h.coord.supernet().tensors().bitEqual(before));
}

TEST_CASE("snapshot and restore carry round, task ids and sampler counters") {
  Harness h(options(2));
  h.registerClients(3);
  h.coord.runRound();
  h.coord.runRound();
  CoordinatorSnapshot s = h.coord.snapshot();
  CHECK(s.next_round == 2);
  CHECK(s.history.size() == 2);
  CHECK_FALSE(s.counters.empty());
  Harness h2(options(2));
  h2.coord.restore(s);
  CHECK(h2.coord.round() == 2);
  CHECK(h2.coord.snapshot().counters.size() == s.counters.size());
}

TEST_CASE("invalid coordinator options name the key") {
  CoordinatorOptions o;
  o.clients_per_round = 0;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("round.clients_per_round"), ConfigError);
  o = CoordinatorOptions{};
  o.quorum = 99;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("round.quorum"), ConfigError);
}

TEST_CASE("task status and round outcome are enums; metrics JSON keeps their text") {
  RoundMetrics m;
  m.outcome = RoundOutcome::kCompleted;
  m.tasks.push_back({7, "c0", "max", TaskStatus::kRejected});
  const nlohmann::json j = m.toJson();
  CHECK(j.at("outcome") == "completed");
  CHECK(j.at("tasks").at(0).at("status") == "rejected");
  const RoundMetrics back = RoundMetrics::fromJson(j);
  CHECK(toString(back.outcome) == "completed");
  CHECK(toString(back.tasks.at(0).status) == "rejected");
  CHECK(toString(parseTaskStatus("dropped")) == "dropped");
  CHECK(toString(RoundOutcome::kAbandoned) == "abandoned");
  nlohmann::json bad = j;
  bad["outcome"] = "done";
  CHECK_THROWS_WITH_AS(RoundMetrics::fromJson(bad), doctest::Contains("'done'"), DataError);
}

TEST_CASE("runFederation: checkpoints from round 0, metrics per round, kCheckpointing") {
  test::TempDir dir;
  Harness h(options(2));
  h.registerClients(3);
  h.answerTasks();
  RunRecorder recorder(dir.path().string(), {}, 10, nlohmann::json::object());
  FederationOptions fo;
  fo.rounds = 3;
  fo.checkpoint_every = 2;
  int rounds_seen = 0;
  fo.before_round = [&] { CHECK(toString(h.coord.state()) == "idle"); };
  fo.after_round = [&](const RoundMetrics& m) { CHECK(m.round == rounds_seen++); };
  const std::atomic<bool> stop{false};
  const FederationResult r = runFederation(h.coord, recorder, fo, stop);
  CHECK(toString(r.end) == "finished");
  CHECK(rounds_seen == 3);
  CHECK(h.coord.round() == 3);
  for (const char* f : {"ckpt-000000.sfn", "ckpt-000002.sfn", "ckpt-000003.sfn"})
    CHECK(std::filesystem::exists(dir.path() / "checkpoints" / f));
  CHECK(r.checkpoint == (dir.path() / "checkpoints" / "ckpt-000003.sfn").string());
  std::ifstream jsonl(dir.path() / "metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(jsonl, line);) lines += !line.empty();
  CHECK(lines == 3);
  // A checkpoint is written in state kCheckpointing, and the state is kIdle afterwards.
  RoundState during = RoundState::kIdle;
  CHECK(h.coord.checkpoint([&](const Coordinator& c) {
    during = c.state();
    return std::string("x");
  }) == "x");
  CHECK(toString(during) == "checkpointing");
  CHECK(toString(h.coord.state()) == "idle");
  CHECK_THROWS(h.coord.checkpoint([](const Coordinator&) -> std::string { throw IoError("x"); }));
  CHECK(toString(h.coord.state()) == "idle");
}

TEST_CASE("runFederation: waits for min_clients, and a stop ends it with a checkpoint") {
  test::TempDir dir;
  Harness h(options(3));
  h.queueRegisters(3);  // served by the wait before round 0
  h.answerTasks();
  RunRecorder recorder(dir.path().string(), {}, 10, nlohmann::json::object());
  FederationOptions fo;
  fo.rounds = 1;
  fo.min_clients = 3;
  std::atomic<bool> stop{false};
  FederationResult r = runFederation(h.coord, recorder, fo, stop);
  CHECK(toString(r.end) == "finished");
  CHECK(h.coord.history().at(0).accepted == 3);
  // Stopped before the next round: no round runs, the final checkpoint is still written.
  stop.store(true);
  fo.rounds = 5;
  r = runFederation(h.coord, recorder, fo, stop);
  CHECK(toString(r.end) == "stopped");
  CHECK(h.coord.round() == 1);
  CHECK(std::filesystem::exists(r.checkpoint));
}

TEST_CASE("runFederation trains exactly what plain runRound calls do (checkpoints draw nothing)") {
  auto federated = [](bool loop) {
    test::TempDir dir;
    Harness h(options(2));
    h.registerClients(4);
    // Deterministic answers that depend on the task (its seed and slice), so a changed
    // selection, assignment or seed would change the SuperNet.
    h.transport.on_send = [&h](const PeerId& peer, Message& m) {
      if (auto* t = std::get_if<TrainTaskMsg>(&m))
        h.transport.push(
            peer, fakeUpdate(*t, static_cast<float>(t->hyper.seed % 97) / 97.0f, 50 + t->task_id));
    };
    if (loop) {
      RunRecorder recorder(dir.path().string(), {}, 10, nlohmann::json::object());
      FederationOptions fo;
      fo.rounds = 4;
      fo.checkpoint_every = 1;
      const std::atomic<bool> stop{false};
      (void)runFederation(h.coord, recorder, fo, stop);
    } else {
      for (int r = 0; r < 4; ++r) h.coord.runRound();
    }
    for (const RoundMetrics& m : h.coord.history()) CHECK(m.accepted == 2);
    return h.coord.supernet().tensors().clone();
  };
  CHECK(federated(true).bitEqual(federated(false)));
}

namespace {

// Tasks answered at once, except those `skip` picks (they are dropped at the deadline).
void answerAllBut(Harness& h, const std::function<bool(const TrainTaskMsg&)>& skip) {
  h.transport.on_send = [&h, skip](const PeerId& peer, Message& m) {
    if (auto* t = std::get_if<TrainTaskMsg>(&m); t && !skip(*t))
      h.transport.push(peer, fakeUpdate(*t, 1.0f, 100));
  };
}

}  // namespace

TEST_CASE("effective_clients is 1 / sum w^2 over the accepted updates' normalised weights") {
  auto never = [](const TrainTaskMsg&) { return false; };
  SUBCASE("uniform weights: K") {
    CoordinatorOptions o = options(4);
    o.weighting.maxnet_beta = "none";
    Harness h(o);
    h.registerClients(4);
    answerAllBut(h, never);
    const RoundMetrics m = h.coord.runRound();
    CHECK(m.accepted == 4);
    CHECK(m.beta == 0.0);
    CHECK(m.effective_clients == doctest::Approx(4.0));
  }
  SUBCASE("one MaxNet client at beta: 1 / (beta^2 + (1 - beta)^2 / (K - 1))") {
    Harness h(options(4));
    h.registerClients(4);
    answerAllBut(h, never);
    const RoundMetrics m = h.coord.runRound();
    const double beta = 0.9;  // round 0 of the cosine
    CHECK(m.beta == doctest::Approx(beta));
    CHECK(m.effective_clients == doctest::Approx(1 / (beta * beta + 0.01 / 3)));
    double total = 0.0;
    for (const TaskRecord& t : m.tasks) total += t.weight;
    CHECK(total == doctest::Approx(1.0));
  }
  SUBCASE("a dropped client: renormalised over the updates that were accepted") {
    Harness h(options(4));
    h.registerClients(4);
    const DesignSpace space = h.coord.supernet().space();
    bool skipped = false;
    answerAllBut(h, [&](const TrainTaskMsg& t) {
      if (skipped || SubNetConfig::parse(t.subnet, space).isMaxNet(space)) return false;
      return skipped = true;
    });
    const RoundMetrics m = h.coord.runRound();
    CHECK(m.accepted == 3);
    CHECK(m.dropped == 1);
    const double other = 0.1 / 3;  // 1 - beta shared by three, one of whom never answered
    const double sum = 0.9 + 2 * other;
    CHECK(m.effective_clients == doctest::Approx(sum * sum / (0.81 + 2 * other * other)));
  }
}

TEST_CASE("metrics.jsonl and metrics.csv report effective_clients and each task's weight") {
  test::TempDir dir;
  CoordinatorOptions o = options(3);
  o.weighting.maxnet_beta = "none";
  Harness h(o);
  h.registerClients(3);
  h.answerTasks();
  {
    RunRecorder recorder(dir.path().string(), {}, 10, nlohmann::json::object());
    FederationOptions fo;
    fo.rounds = 1;
    const std::atomic<bool> stop{false};
    (void)runFederation(h.coord, recorder, fo, stop);
  }
  std::ifstream jsonl(dir.path() / "metrics.jsonl");
  std::string line;
  REQUIRE(std::getline(jsonl, line));
  const nlohmann::json j = nlohmann::json::parse(line);
  CHECK(j.at("effective_clients").get<double>() == doctest::Approx(3.0));
  CHECK(j.at("tasks").at(0).at("weight").get<double>() == doctest::Approx(1.0 / 3));
  CHECK(RoundMetrics::fromJson(j).effective_clients == doctest::Approx(3.0));
  std::ifstream csv(dir.path() / "metrics.csv");
  REQUIRE(std::getline(csv, line));
  CHECK(line.find(",beta,lr,effective_clients,") != std::string::npos);
}

TEST_CASE("[train] lr_schedule: cosine from lr to lr_final over the rounds, sent with each task") {
  const RunConfig c = RunConfig::parse(
      "[run]\nrounds = 4\n[train]\nlr = 0.2\nlr_schedule = \"cosine\"\n", "t.toml");
  const LrSchedule& s = c.coordinator.lr_schedule;
  CHECK(toString(s.kind) == std::string("cosine"));
  CHECK(s.final_lr == doctest::Approx(0.02));  // default: a tenth of lr, after all rounds
  CHECK(s.decay_rounds == 4.0);
  CHECK(s.at(0.2, 0) == doctest::Approx(0.2));
  CHECK(s.at(0.2, 2) == doctest::Approx(0.11));
  CHECK(s.at(0.2, 4) == doctest::Approx(0.02));
  CHECK(s.at(0.2, 9) == doctest::Approx(0.02));
  const RunConfig k = RunConfig::parse("[train]\nlr = 0.2\n", "t.toml");
  CHECK(k.coordinator.lr_schedule.at(0.2, 3) == 0.2);  // constant: the authors' setting
  CHECK_THROWS_WITH_AS(RunConfig::parse("[train]\nlr_schedule = \"step\"\n", "t.toml"),
                       doctest::Contains("train.lr_schedule = 'step'"), ConfigError);
  CHECK_THROWS_WITH_AS(
      RunConfig::parse("[train]\nlr = 0.1\nlr_schedule = \"cosine\"\nlr_final = 0.5\n", "t.toml"),
      doctest::Contains("train.lr_final"), ConfigError);

  CoordinatorOptions o = options(2);
  o.train.lr = 0.2;
  o.lr_schedule = s;
  Harness h(o);
  h.registerClients(2);
  std::vector<double> task_lr;
  h.transport.on_send = [&h, &task_lr](const PeerId& peer, Message& m) {
    if (auto* t = std::get_if<TrainTaskMsg>(&m)) {
      task_lr.push_back(t->hyper.lr);
      h.transport.push(peer, fakeUpdate(*t, 1.0f, 100));
    }
  };
  std::vector<double> metric_lr;
  for (int r = 0; r < 3; ++r) metric_lr.push_back(h.coord.runRound().lr);
  REQUIRE(task_lr.size() == 6);
  for (std::size_t i = 0; i < task_lr.size(); ++i)
    CHECK(task_lr[i] == doctest::Approx(s.at(0.2, static_cast<std::int64_t>(i / 2))));
  CHECK(metric_lr == std::vector<double>{s.at(0.2, 0), s.at(0.2, 1), s.at(0.2, 2)});
}

TEST_CASE("[weighting] defaults: bT = 1/K, decay_rounds = round(0.8 x rounds), set values win") {
  const RunConfig d =
      RunConfig::parse("[run]\nrounds = 30\n[round]\nclients_per_round = 8\n", "w.toml");
  CHECK(d.coordinator.weighting.bT == doctest::Approx(0.125));
  CHECK(d.coordinator.weighting.decay_rounds == 24.0);
  CHECK(d.coordinator.weighting.beta(24) == doctest::Approx(0.125));
  // Overrides change K and rounds before the defaults are derived from them.
  const RunConfig o =
      RunConfig::parse("", "w.toml", ".", {"run.rounds=10", "round.clients_per_round=5"});
  CHECK(o.coordinator.weighting.bT == doctest::Approx(0.2));
  CHECK(o.coordinator.weighting.decay_rounds == 8.0);
  const RunConfig e =
      RunConfig::parse("[run]\nrounds = 30\n[weighting]\nbT = 0.3\ndecay_rounds = 30\n", "w.toml");
  CHECK(e.coordinator.weighting.bT == doctest::Approx(0.3));
  CHECK(e.coordinator.weighting.decay_rounds == 30.0);
  const RunConfig z = RunConfig::parse("[weighting]\ndecay_rounds = 0\n", "w.toml");
  CHECK(z.coordinator.weighting.beta(5) == doctest::Approx(0.9));  // 0: no decay, b0 always
}

TEST_CASE("admission: data that does not fit the SuperNet is refused with its reason") {
  Harness h(options(2));
  std::map<PeerId, Message> replies;
  h.transport.on_send = [&](const PeerId& peer, Message& m) { replies[peer] = m; };
  const auto reg = [](std::optional<DataInfo> data, std::uint64_t samples = 50) {
    RegisterMsg r;
    r.client_name = "c";
    r.samples = samples;
    r.data = data;
    return r;
  };
  h.transport.push("ok", reg(DataInfo{1, 8, 8, 3}));
  h.transport.push("rgb", reg(DataInfo{3, 32, 32, 3}));
  h.transport.push("labels", reg(DataInfo{1, 8, 8, 9}));
  h.transport.push("silent", reg(std::nullopt));
  h.transport.push("empty", reg(DataInfo{1, 8, 8, 3}, 0));
  h.transport.push("shard", [] {
    RegisterMsg r;
    r.client_name = "s";
    r.shard = ShardRequest{1, 10};
    return r;
  }());
  h.coord.pump();

  const auto* w = std::get_if<WelcomeMsg>(&replies["ok"]);
  REQUIRE(w != nullptr);
  CHECK(DesignSpace::fromToml(w->design_space).toToml() == DesignSpace::preset("tiny").toToml());
  CHECK_FALSE(w->shard.has_value());
  const auto refusal = [&](const PeerId& peer) {
    const auto* r = std::get_if<RejectMsg>(&replies[peer]);
    REQUIRE_MESSAGE(r != nullptr, peer);
    return *r;
  };
  CHECK((refusal("rgb").code == RejectCode::kDataMismatch));
  CHECK(refusal("rgb").reason.find("3x32x32") != std::string::npos);
  CHECK(refusal("rgb").reason.find("1x8x8") != std::string::npos);
  CHECK(refusal("labels").reason.find("label 9") != std::string::npos);
  CHECK((refusal("silent").code == RejectCode::kDataMismatch));
  CHECK((refusal("empty").code == RejectCode::kSampleCountOutOfRange));
  // No shard service: shard mode is refused, with what to do instead.
  CHECK(refusal("shard").reason.find("--data") != std::string::npos);
  CHECK(h.coord.registry().size() == 1);
}

TEST_CASE("admission: a shard request is sized by the server and welcomed with its settings") {
  Harness h(options(2));
  std::map<PeerId, Message> replies;
  h.transport.on_send = [&](const PeerId& peer, Message& m) { replies[peer] = m; };
  ShardService service;
  service.settings.dataset = DatasetKind::kSynthetic;
  service.settings.seed = 9;
  service.size = [](std::uint32_t index, std::uint32_t count) -> std::optional<std::uint64_t> {
    if (index >= count) return std::nullopt;
    return 100 + index;
  };
  h.coord.setShardService(service);
  h.transport.push("shard", [] {
    RegisterMsg r;
    r.client_name = "s";
    r.shard = ShardRequest{3, 10};
    return r;
  }());
  h.coord.pump();
  const auto* w = std::get_if<WelcomeMsg>(&replies["shard"]);
  REQUIRE(w != nullptr);
  REQUIRE(w->shard.has_value());
  CHECK(w->shard->samples == 103);
  CHECK(w->shard->seed == 9);
  CHECK(h.coord.registry().find("shard")->samples == 103);
}
