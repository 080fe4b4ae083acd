// The simulator: same Coordinator, virtual fleet, determinism and scale.
#include "sfn/server/coordinator.h"
#include "sfn/data/data_source.h"
#include "sfn/core/error.h"
#include "sfn/simulator/fleet_keys.h"
#include "sfn/train/local_trainer.h"
#include "sfn/data/partitioner.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"
#include "sfn/simulator/virtual_fleet.h"
#include "sfn/simulator/zmq_fleet.h"

#include <torch/torch.h>

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace sfn;

namespace {

struct SimResult {
  NamedTensors tensors;
  std::vector<RoundMetrics> history;
  double virtual_s = 0;
};

// Runs `rounds` rounds of a tiny-preset federation on synthetic data.
SimResult simulate(std::uint64_t seed, int clients, int per_round, int rounds, int workers,
                   const std::vector<DeviceProfile>& profiles = {DeviceProfile{}},
                   AssignPolicy policy = AssignPolicy::kTrackingSandwich,
                   std::int64_t samples = 4000, bool iid = false) {
  setTorchThreads(1);
  const DesignSpace space = DesignSpace::preset("tiny");
  Dataset data = makeSyntheticDataset(samples, 1, 8, 4, 11);
  IndexList pool(static_cast<std::size_t>(samples));
  for (std::int64_t i = 0; i < samples; ++i) pool[static_cast<std::size_t>(i)] = i;
  Partition part = iid ? partitionIid(pool, clients, seed)
                       : partitionDirichlet(pool, data.labelVector(), 4, clients, 1.0, seed, 10);
  VirtualClock clock;
  FleetOptions fo;
  fo.seed = seed;
  fo.workers = workers;
  VirtualFleet fleet(fo, space, data, part, profiles, clock);
  CoordinatorOptions co;
  co.seed = seed;
  co.clients_per_round = per_round;
  co.eval_every = 0;
  co.liveness_s = 1e300;
  co.policy = policy;
  co.train.batch_size = 16;
  co.train.lr = 0.05;
  for (const auto& p : profiles)
    if (p.macs_budget > 0) co.device_macs_budget[p.name] = p.macs_budget;
  Coordinator coord(co, SuperNet(space, seed), fleet, clock, nullptr, nullptr);
  fleet.registerAll();
  // As sfn-sim does: one pass over the Registers (waitForClients rescans the registry after
  // every message, quadratic in the fleet size).
  coord.pump();
  REQUIRE(coord.registry().size() == static_cast<std::size_t>(clients));
  for (int r = 0; r < rounds; ++r) coord.runRound();
  return {coord.supernet().tensors().clone(), coord.history(), clock.now()};
}

}  // namespace

TEST_CASE("same config and seed give a bit-identical SuperNet, whatever the worker count") {
  SimResult a = simulate(7, 40, 6, 3, 1);
  SimResult b = simulate(7, 40, 6, 3, 2);
  SimResult c = simulate(8, 40, 6, 3, 1);
  CHECK(a.tensors.bitEqual(b.tensors));
  CHECK_FALSE(a.tensors.bitEqual(c.tensors));
  CHECK(a.virtual_s == b.virtual_s);
  for (const auto& m : a.history) CHECK(m.accepted == 6);
}

TEST_CASE("virtual time: slow devices miss the deadline, unavailable ones drop out") {
  DeviceProfile fast;
  fast.name = "fast";
  fast.gmacs = 100;
  fast.bandwidth_mbps = 1000;
  DeviceProfile slow = fast;
  slow.name = "slow";
  slow.gmacs = 1e-6;  // would take days of virtual time
  DeviceProfile flaky = fast;
  flaky.name = "flaky";
  flaky.availability = 0.0;
  SimResult r = simulate(3, 60, 12, 2, 2, {fast, slow, flaky});
  for (const auto& m : r.history) {
    CHECK(m.selected == 12);
    CHECK(m.accepted < 12);
    CHECK(m.dropped == m.selected - m.accepted);
  }
  // Each round lasted exactly up to its deadline (the slow clients never made it).
  CHECK(r.history[0].clock_end - r.history[0].clock_start == doctest::Approx(600.0));
}

TEST_CASE("static-capacity: every device class only gets SubNets within its MACs budget") {
  DeviceProfile small;
  small.name = "small";
  const DesignSpace space = DesignSpace::preset("tiny");
  const auto min_macs = computeCost(space, SubNetConfig::minNet(space)).macs;
  const auto max_macs = computeCost(space, SubNetConfig::maxNet(space)).macs;
  small.macs_budget = (min_macs + max_macs) / 2;
  DeviceProfile big;
  big.name = "big";
  SimResult r = simulate(5, 30, 8, 2, 1, {small, big}, AssignPolicy::kStaticCapacity);
  CHECK(r.history.back().accepted == 8);
  // The assigner's guarantee is tested in test_aggregate; here the fleet and coordinator
  // must have wired device budgets through registration.
  CoordinatorOptions co;
  co.device_macs_budget["small"] = small.macs_budget;
  CHECK(co.device_macs_budget.at("small") < max_macs);
}

TEST_CASE("10,000 registered virtual clients with a tiny model run in seconds") {
  const auto t0 = std::chrono::steady_clock::now();
  // 12 samples per client: an IID split (Dirichlet cannot give every client 10 here).
  SimResult r = simulate(1, 10000, 20, 2, 2, {DeviceProfile{}}, AssignPolicy::kTrackingSandwich,
                         120000, /*iid=*/true);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("10,000 clients, 2 rounds of 20: " << secs << " s");
  CHECK(r.history.size() == 2);
  CHECK(r.history[0].available == 10000);
  CHECK(r.history[1].accepted == 20);
  CHECK(secs < 120);
}

TEST_CASE("the main job's config parses and unknown keys are rejected by name") {
  const std::string dir = std::string(SFN_SOURCE_DIR) + "/experiments/configs";
  RunConfig c = RunConfig::load(dir + "/fmnist-default.toml");
  CHECK(c.space.name == "fmnist");
  CHECK(c.simulation.clients == 100);
  CHECK(std::filesystem::exists(c.simulation.devices_file));
  RunConfig o = RunConfig::load(dir + "/fmnist-default.toml",
                                {"round.clients_per_round=5", "round.policy=random"});
  CHECK(o.coordinator.clients_per_round == 5);
  CHECK(toString(o.coordinator.policy) == "random");
  CHECK_THROWS_WITH_AS(RunConfig::parse("[round]\nclient_per_round = 3\n", "t.toml"),
                       doctest::Contains("round.client_per_round"), ConfigError);
  CHECK_THROWS_WITH_AS(RunConfig::parse("[rund]\n", "t.toml"), doctest::Contains("rund"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(RunConfig::parse("[train]\nlr = -1\n", "t.toml"),
                       doctest::Contains("train.lr"), ConfigError);
}

TEST_CASE("checkpoint and resume continue exactly where the run left off") {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("sfn-test-resume-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  setTorchThreads(1);
  const DesignSpace space = DesignSpace::preset("tiny");
  Dataset data = makeSyntheticDataset(2000, 1, 8, 4, 11);
  IndexList pool(2000);
  for (std::int64_t i = 0; i < 2000; ++i) pool[static_cast<std::size_t>(i)] = i;
  Partition part = partitionIid(pool, 20, 1);
  CoordinatorOptions co;
  co.clients_per_round = 4;
  co.eval_every = 0;
  co.liveness_s = 1e300;
  auto make = [&](VirtualClock& clock, VirtualFleet& fleet) {
    auto c = std::make_unique<Coordinator>(co, SuperNet(space, 1), fleet, clock, nullptr, nullptr);
    fleet.registerAll();
    REQUIRE(c->waitForClients(20, 1.0));
    return c;
  };
  // Uninterrupted: 4 rounds.
  VirtualClock c1;
  VirtualFleet f1(FleetOptions{}, space, data, part, {DeviceProfile{}}, c1);
  auto full = make(c1, f1);
  for (int r = 0; r < 4; ++r) full->runRound();
  // Interrupted after 2 rounds, resumed in a fresh coordinator.
  VirtualClock c2;
  VirtualFleet f2(FleetOptions{}, space, data, part, {DeviceProfile{}}, c2);
  auto first = make(c2, f2);
  first->runRound();
  first->runRound();
  RunRecorder rec(dir, {}, 2, nlohmann::json::object());
  rec.checkpoint(*first);
  VirtualClock c3;
  VirtualFleet f3(FleetOptions{}, space, data, part, {DeviceProfile{}}, c3);
  auto second = make(c3, f3);
  REQUIRE(RunRecorder::resume(dir, *second));
  CHECK(second->round() == 2);
  second->runRound();
  second->runRound();
  CHECK(second->supernet().tensors().bitEqual(full->supernet().tensors()));
  std::filesystem::remove_all(dir);
}

TEST_CASE("availability traces: devices answer only inside their online windows") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("sfn-trace-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "night.csv") << "start_s,end_s\n0,100\n300,400\n";
    std::ofstream(dir / "bad.csv") << "start_s,end_s\n50,10\n";
  }
  const std::string toml = "[[device]]\nname = \"night\"\navailability_trace = \"night.csv\"\n";
  auto profiles = parseDeviceProfiles(toml, "devices.toml", dir.string());
  REQUIRE(profiles.size() == 1);
  const DeviceProfile& p = profiles[0];
  CHECK(p.onlineAt(0));
  CHECK(p.onlineAt(99.9));
  CHECK_FALSE(p.onlineAt(100));
  CHECK(p.onlineAt(350));
  CHECK(p.onlineAt(450));  // the trace repeats every 400 s: 450 is 50 of the next cycle
  CHECK_FALSE(p.onlineAt(400 + 150));
  CHECK_THROWS_WITH_AS(loadAvailabilityTrace((dir / "bad.csv").string()),
                       doctest::Contains("bad.csv:2"), ConfigError);
  // A whole fleet that is offline at t = 0 drops every task of round 0.
  DeviceProfile off = p;
  off.online = {{1000, 2000}};
  SimResult r = simulate(2, 20, 5, 1, 1, {off});
  CHECK(r.history[0].accepted == 0);
  CHECK(toString(r.history[0].outcome) == "abandoned");
  std::filesystem::remove_all(dir);
}

TEST_CASE("fleet keys: generated once, reused, and all allowlisted") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("sfn-fleet-keys-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  FleetKeys a = loadOrCreateFleetKeys(dir, 3);
  CHECK(a.generated == 3);
  REQUIRE(a.keys.size() == 3);
  CHECK(a.keys[0].public_key != a.keys[1].public_key);
  CHECK((std::filesystem::status(fleetKeyPath(dir, 0)).permissions() &
         std::filesystem::perms::group_all) == std::filesystem::perms::none);
  // A larger fleet reuses the first three and adds one; a smaller one keeps all four listed.
  FleetKeys b = loadOrCreateFleetKeys(dir, 4);
  CHECK(b.generated == 1);
  CHECK(b.keys[2].public_key == a.keys[2].public_key);
  FleetKeys c = loadOrCreateFleetKeys(dir, 2);
  CHECK(c.generated == 0);
  CHECK(c.keys.size() == 2);
  const std::vector<std::string> allowed = readPublicKeys(c.allowlist);
  REQUIRE(allowed.size() == 4);
  CHECK(allowed[3] == b.keys[3].public_key);
  CHECK_THROWS_AS(loadOrCreateFleetKeys(dir, 0), ConfigError);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a fleet of real clients with no server stops promptly when asked") {
  // Nothing listens on the endpoint: every client keeps trying to register until stopped.
  const DesignSpace space = DesignSpace::preset("tiny");
  const Dataset data = makeSyntheticDataset(60, 1, 8, 4, 3);
  Partition shards(3);
  for (std::int64_t i = 0; i < 60; ++i) shards[static_cast<std::size_t>(i % 3)].push_back(i);
  ZmqFleetOptions fo;
  fo.server_endpoint = "tcp://127.0.0.1:1";
  fo.insecure = true;
  fo.client.poll_interval = std::chrono::milliseconds(50);
  fo.client.register_timeout = std::chrono::milliseconds(200);
  fo.client.backoff_initial = std::chrono::milliseconds(50);
  fo.client.backoff_max = std::chrono::milliseconds(100);
  fo.status_interval = std::chrono::milliseconds(100);
  auto log = std::make_shared<spdlog::logger>("fleet-test");  // no sinks: silent
  std::vector<DeviceProfile> profiles(2);
  profiles[0].name = "a";
  profiles[1].name = "b";
  ZmqFleet fleet(fo, data, shards, profiles, log, log);
  std::atomic<bool> stop{false};
  std::size_t statuses = 0;
  std::chrono::steady_clock::time_point asked{};
  // Asked to stop once it has reported twice: a wait on the condition, not a fixed sleep that
  // a loaded machine can outlast. The watchdog only ends a fleet that never reports.
  std::thread watchdog([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!stop.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop.store(true);
  });
  ZmqFleetReport r = fleet.run(stop, [&](const ZmqFleetStatus& s) {
    CHECK(s.clients == 3);
    CHECK(s.idle + s.training == 0);
    if (++statuses == 2) {  // on run()'s own thread
      asked = std::chrono::steady_clock::now();
      stop.store(true);
    }
  });
  const auto returned = std::chrono::steady_clock::now();
  watchdog.join();
  REQUIRE(statuses >= 2);
  CHECK(std::chrono::duration<double>(returned - asked).count() < 5.0);
  CHECK(r.stopped == 3);
  CHECK(r.final_status.ended == 3);
  CHECK(r.final_status.updates_sent == 0);
  REQUIRE(r.device_class.size() == 3);
  for (const auto& d : r.device_class) CHECK((d == "a" || d == "b"));
  // Secure mode without keys is a configuration error, caught before any socket exists.
  ZmqFleetOptions bad = fo;
  bad.insecure = false;
  CHECK_THROWS_AS(ZmqFleet(bad, data, shards, profiles, log, log), ConfigError);
}

// --- one client task handler -------------------------------------------------------------
#include "sfn/client/client_runner.h"
#include "sfn/client/prepared_data.h"
#include "sfn/core/rng.h"
#include "sfn/net/inproc_transport.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <future>

namespace {

struct HandlerCase {
  DesignSpace space = DesignSpace::preset("tiny");
  Dataset data = makeSyntheticDataset(80, 1, 8, 4, 13);
  IndexList shard;
  SuperNet supernet{space, 9};
  SubNetConfig config;
  BytesPtr task_bytes;
  VirtualClock fixed;  // never advanced: compute_seconds is 0 on both paths

  // The task, as the Coordinator would send it: a random SubNet, momentum, weight decay.
  HandlerCase() {
    for (std::int64_t i = 3; i < 80; i += 2) shard.push_back(i);
    Rng rng(21);
    config = SubNetConfig::random(space, rng);
    TrainTaskMsg task;
    task.round = 6;
    task.task_id = 42;
    task.subnet = config.toString(space);
    task.tensors = supernet.extract(config);
    task.hyper = HyperParams{2, 8, 0.05, 0.9, 1e-4, 5.0, 17};
    task.deadline_ms = 600'000;
    task_bytes = encode(task);
  }
};

// Path 1: the simulator's virtual client. Returns the Update bytes the fleet delivers.
BytesPtr virtualClientAnswer(const HandlerCase& c) {
  VirtualClock clock;
  FleetOptions fo;
  fo.task_clock = &c.fixed;
  VirtualFleet fleet(fo, c.space, c.data, Partition{c.shard}, {DeviceProfile{}}, clock);
  REQUIRE(fleet.send(VirtualFleet::peerName(0), c.task_bytes).ok());
  std::optional<Received> update = fleet.recv(std::chrono::hours(1));
  REQUIRE(update.has_value());
  return update->message;
}

// The next message of type T from a client (skipping others), as bytes; null on timeout.
template <typename T>
BytesPtr nextFromClient(ServerTransport& server) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::optional<Received> r = server.recv(std::chrono::milliseconds(50));
    if (!r) continue;
    DecodeResult d = decode(r->message);
    if (d.ok() && std::holds_alternative<T>(d.message())) return r->message;
  }
  return nullptr;
}

// Path 2: sfn-client's ClientRunner on its own thread, over the in-process transport.
// Returns the Update bytes the server side receives.
BytesPtr runnerAnswer(const HandlerCase& c) {
  InprocNetwork net;
  std::unique_ptr<ServerTransport> server = net.server();
  ClientOptions co;
  co.name = "real";
  co.poll_interval = std::chrono::milliseconds(20);
  co.compute_clock = &c.fixed;
  co.train_executor = [](std::function<UpdateMsg()> job) {
    return std::async(std::launch::async, [job = std::move(job)] {
      at::set_num_threads(1);  // as the fleet's pool threads
      return job();
    });
  };
  auto log = std::make_shared<spdlog::logger>("handler-test");  // no sinks: silent
  PreparedData prepared(c.data, c.shard);
  ClientRunner runner(
      co, prepared, [&net] { return net.connect("real"); }, log);
  std::atomic<bool> stop{false};
  std::thread client([&] { (void)runner.run(stop); });
  const bool registered = nextFromClient<RegisterMsg>(*server) != nullptr;
  if (registered) {
    WelcomeMsg welcome;
    welcome.client_id = 1;
    welcome.design_space = c.space.toToml();
    CHECK(server->send("real", encode(welcome)).ok());
    CHECK(server->send("real", c.task_bytes).ok());
  }
  BytesPtr update = registered ? nextFromClient<UpdateMsg>(*server) : nullptr;
  stop = true;
  client.join();
  CHECK(registered);
  return update;
}

}  // namespace

// The proof that the simulator's virtual clients and sfn-client run the same task handling:
// one TrainTask, byte for byte the same message, answered by a VirtualFleet with one client
// and by a ClientRunner (sfn-client's runner) over the in-process transport, on the same
// shard. Both Updates are encoded by their path's own code and must be equal byte for byte.
// compute_seconds is the only field that depends on the host; both paths measure it with
// the same fixed clock, which only the shared handler (runTrainTask) reads.
TEST_CASE("one task handler: a virtual client and ClientRunner answer a task with the same bytes") {
  setTorchThreads(1);
  const HandlerCase c;
  const BytesPtr virtual_update = virtualClientAnswer(c);
  const BytesPtr real_update = runnerAnswer(c);
  REQUIRE(real_update != nullptr);

  const Bytes& a = *virtual_update;
  const Bytes& b = *real_update;
  CHECK(a.size() == b.size());
  CHECK(std::equal(a.data(), a.data() + a.size(), b.data(), b.data() + b.size()));
  // And they are a real answer: trained weights, not the task's.
  DecodeResult d = decode(virtual_update);
  REQUIRE(d.ok());
  const auto& update = std::get<UpdateMsg>(d.message());
  CHECK(update.task_id == 42);
  CHECK(update.samples == c.shard.size());
  CHECK(update.compute_seconds == 0.0);
  CHECK_FALSE(update.tensors.bitEqual(c.supernet.extract(c.config)));
}

TEST_CASE("one task handler: a virtual client refuses a task that does not fit, without failing") {
  const HandlerCase c;
  VirtualClock clock;
  VirtualFleet fleet(FleetOptions{}, c.space, c.data, Partition{c.shard}, {DeviceProfile{}}, clock);
  DecodeResult d = decode(c.task_bytes);
  REQUIRE(d.ok());
  TrainTaskMsg task = std::get<TrainTaskMsg>(d.message());
  const SubNetConfig max = SubNetConfig::maxNet(c.space);
  REQUIRE(max.toString(c.space) != task.subnet);
  task.tensors = c.supernet.extract(max);  // not the SubNet's slice
  const SendResult r = fleet.send(VirtualFleet::peerName(0), encode(task));
  CHECK(toString(r.status) == "error");
  CHECK(r.reason.find("refused the task") != std::string::npos);
  CHECK(fleet.tasksInFlight() == 0);
  CHECK_FALSE(fleet.recv(std::chrono::milliseconds(10)).has_value());
}
