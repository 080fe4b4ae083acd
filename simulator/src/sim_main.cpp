// sfn-sim: the Coordinator of sfn-server driving a fleet of virtual clients in one process,
// or (--connect) a fleet of real ZeroMQ clients driving a running sfn-server.
//
//   sfn-sim -c CONFIG [--set k=v] [-o RUN] [--resume RUN]     simulate (virtual clients)
//   sfn-sim keygen --clients N -o DIR                          key pairs + DIR/allow ("keys" too)
//   sfn-sim --connect tcp://H:P --clients N --keys-dir DIR --server-key server.pub [-c CONFIG]
//           [--shard I --shards K]    one of K processes of a fleet of K x N clients
#include "sfn/app/app_main.h"
#include "sfn/app/key_files.h"
#include "sfn/app/open_file_limit.h"
#include "sfn/app/stop_signal.h"
#include "sfn/core/error.h"
#include "sfn/data/data_source.h"
#include "sfn/data/partitioner.h"
#include "sfn/io/crypto.h"
#include "sfn/io/text_file.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/federation.h"
#include "sfn/server/ops_endpoint.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"
#include "sfn/server/run_summary.h"
#include "sfn/simulator/device_profile.h"
#include "sfn/simulator/fleet_keys.h"
#include "sfn/simulator/virtual_fleet.h"
#include "sfn/simulator/zmq_fleet.h"
#include "sfn/train/evaluator.h"
#include "sfn/train/local_trainer.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

namespace {

namespace fs = std::filesystem;

// --connect: clients of one process. Each has a DEALER socket, plus two more while it
// connects, on one ZeroMQ context whose socket limit is 16,384 (zmq_transport.cpp).
constexpr std::int64_t kMaxFleetClients = 15'000;

// Local time for run folder names (<run.name>-20261128-204900).
std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string fmtDuration(double s) {
  char buf[32];
  const int total = static_cast<int>(s + 0.5);
  std::snprintf(buf, sizeof buf, "%d:%02d", total / 60, total % 60);
  return buf;
}

std::vector<sfn::DeviceProfile> deviceProfiles(const sfn::RunConfig& cfg) {
  return cfg.simulation.devices_file.empty() ? std::vector<sfn::DeviceProfile>{sfn::DeviceProfile{}}
                                             : sfn::loadDeviceProfiles(cfg.simulation.devices_file);
}

// The sfn-sim logger: --log-level, else the config's level; -q caps it at warnings.
std::shared_ptr<spdlog::logger> simLogger(const sfn::AppMain& app, const std::string& level,
                                          bool quiet) {
  auto log = app.logger(level);
  if (quiet) log->set_level(std::max(log->level(), spdlog::level::warn));
  return log;
}

// `sfn-sim keygen`: the key pairs of a fleet and the allowlist for sfn-server --allow.
// Existing pairs are reused; --force replaces each with a new one (atomically, mode 0600).
sfn::ExitCode writeKeys(std::size_t clients, const std::string& out, bool force) {
  std::size_t replaced = 0;
  for (std::size_t i = 0; force && i < clients; ++i)
    if (fs::exists(sfn::fleetKeyPath(out, i))) {
      sfn::writeKeyPairFile(sfn::fleetKeyPath(out, i), sfn::generateCurveKeyPair());
      ++replaced;
    }
  if (replaced > 0) std::cout << "--force: replaced " << replaced << " key pairs\n";
  const sfn::FleetKeys keys = sfn::loadOrCreateFleetKeys(out, clients);
  std::cout << clients << " client key pairs in " << out << " (" << keys.generated << " new, "
            << clients - keys.generated << " reused)\n"
            << "allowlist: " << keys.allowlist.string() << "  (start sfn-server with --allow "
            << keys.allowlist.string() << ")" << std::endl;
  return sfn::ExitCode::kOk;
}

// A redrawn progress line on a terminal, unless -q or --log-format json (whose readers
// expect nothing but JSON lines on stderr).
bool progressOnTerminal(const sfn::AppMain& app, bool quiet) {
  return isatty(STDERR_FILENO) && !quiet && app.logFormat() == sfn::LogFormat::kText;
}

struct ConnectOptions {
  std::string endpoint;
  std::int64_t clients = 0;  // 0: simulation.clients
  std::string server_key;
  std::string keys_dir = "fleet-keys";
  bool insecure = false;
  std::string client_log_level = "warn";
  double status_s = 10;
  std::int64_t shard = 0;   // --shard: this process's index among --shards
  std::int64_t shards = 1;  // --shards: processes one fleet is split across
};

// This process's clients when one fleet is split across `shards` processes (a Kubernetes
// Indexed Job): clients [first, first + count) of `total`, each with the key pair and the
// partition shard of its global index, so that the processes together are one fleet.
struct FleetSlice {
  std::size_t first = 0;
  std::size_t count = 0;
  std::size_t total = 0;
};

FleetSlice fleetSlice(const ConnectOptions& co, std::int64_t per_process) {
  if (co.shard >= co.shards)
    SFN_THROW(sfn::ConfigError, "--shard ", co.shard, " is not below --shards ", co.shards,
              " (shards are numbered from 0)");
  const auto n = static_cast<std::size_t>(per_process);
  return {static_cast<std::size_t>(co.shard) * n, n, static_cast<std::size_t>(co.shards) * n};
}

// Key pairs of clients [first, first + count) from a folder `sfn-sim keygen --clients TOTAL`
// wrote. A sharded fleet never generates keys or rewrites DIR/allow: its processes share
// the folder (often read-only), and the server must allowlist all of them before they connect.
std::vector<sfn::CurveKeyPair> sliceKeys(const std::string& dir, const FleetSlice& s) {
  std::vector<sfn::CurveKeyPair> keys;
  keys.reserve(s.count);
  for (std::size_t g = s.first; g < s.first + s.count; ++g) {
    const fs::path path = sfn::fleetKeyPath(dir, g);
    if (!fs::exists(path))
      SFN_THROW(sfn::ConfigError, "--keys-dir ", dir, " has no key pair for client ", g, " (",
                path.filename().string(), "); with --shards, write the whole fleet's keys first: ",
                "sfn-sim keygen --clients ", s.total, " -o ", dir);
    keys.push_back(sfn::readKeyFile(path));
    if (keys.back().secret_key.empty())
      SFN_THROW(sfn::ConfigError, "'", path.string(), "' holds no secret key");
  }
  return keys;
}

struct SimArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string run_dir;
  std::string resume;
  std::string http;  // --http: http.listen
  bool quiet = false;
  ConnectOptions connect;
  std::int64_t keys_clients = 0;
  std::string keys_out = "fleet-keys";
  bool keys_force = false;
};

// ---------------------------------------------------------------------------------------
// --connect: N real clients against a running sfn-server.

// The fleet's settings and, unless --insecure, its key pairs (generated where missing).
sfn::ZmqFleetOptions fleetOptions(const sfn::RunConfig& cfg, const ConnectOptions& co,
                                  const FleetSlice& slice, spdlog::logger& log) {
  sfn::ZmqFleetOptions fo;
  fo.server_endpoint = co.endpoint;
  fo.insecure = co.insecure;
  // Per shard: reconnect jitter must differ between the processes of one fleet.
  fo.seed = cfg.seed + static_cast<std::uint64_t>(co.shard);
  if (co.shards > 1) fo.name_prefix = "sim-s" + std::to_string(co.shard);
  fo.workers = cfg.simulation.workers;
  fo.torch_threads = cfg.simulation.torch_threads;
  fo.device = cfg.device;
  fo.status_interval = std::chrono::milliseconds(static_cast<long long>(co.status_s * 1000));
  // A runner's loop wakes once per poll interval even when nothing arrives (messages end a
  // wait at once): 10,000 runners at sfn-client's 0.5 s woke 20,000 times a second, and on
  // a loaded machine starved the server they test. 2 s still stops a fleet promptly.
  fo.client.poll_interval = std::chrono::milliseconds(2000);
  if (co.insecure) {
    log.warn("*** --insecure: fleet traffic is NOT encrypted and NOT authenticated ***");
    return fo;
  }
  if (co.server_key.empty())
    SFN_THROW(sfn::ConfigError,
              "--connect needs --server-key (the server's server.pub) unless --insecure");
  fo.server_public_key = sfn::readKeyFile(co.server_key).public_key;
  if (co.shards > 1) {
    fo.keys = sliceKeys(co.keys_dir, slice);
    log.info("shard {} of {}: clients {}..{} of {}, key pairs from {}", co.shard, co.shards,
             slice.first, slice.first + slice.count - 1, slice.total, co.keys_dir);
    return fo;
  }
  sfn::FleetKeys keys = sfn::loadOrCreateFleetKeys(co.keys_dir, slice.count);
  log.info("{} client key pairs from {}; allowlist {}", slice.count, co.keys_dir,
           keys.allowlist.string());
  if (keys.generated > 0)
    log.warn(
        "{} new client keys generated: the server must be (re)started with --allow {} "
        "before they can register (or run `sfn-sim keygen` first)",
        keys.generated, keys.allowlist.string());
  fo.keys = std::move(keys.keys);
  return fo;
}

// The fleet's status callback: a redrawn line on a terminal, log lines otherwise.
std::function<void(const sfn::ZmqFleetStatus&)> statusPrinter(const ConnectOptions& co,
                                                              std::shared_ptr<spdlog::logger> log,
                                                              bool tty) {
  auto warned = std::make_shared<bool>(false);
  return [&co, log, tty, warned](const sfn::ZmqFleetStatus& s) {
    // A key missing from the server's allowlist fails in the CURVE handshake: the client
    // hears nothing and keeps retrying, so say what the likely cause is.
    if (!*warned && s.wall_s > 30 && s.ended == 0 && s.registering == s.clients) {
      *warned = true;
      log->warn("fleet: no client registered after {:.0f} s: is the server at {} running{}?",
                s.wall_s, co.endpoint,
                co.insecure ? " with --insecure" : " with --allow " + co.keys_dir + "/allow");
    }
    if (tty)
      std::fprintf(stderr,
                   "\r[fleet %zu clients] registering %zu idle %zu training %zu ended %zu  "
                   "updates %llu  elapsed %s   ",
                   s.clients, s.registering, s.idle, s.training, s.ended,
                   static_cast<unsigned long long>(s.updates_sent), fmtDuration(s.wall_s).c_str());
    else
      log->info("fleet: {} clients: registering {} idle {} training {} ended {}; {} updates sent",
                s.clients, s.registering, s.idle, s.training, s.ended, s.updates_sent);
  };
}

// Updates per device class, then the fleet's totals, on stdout.
void printFleetReport(const sfn::ZmqFleetReport& report) {
  std::map<std::string, std::pair<std::size_t, std::uint64_t>> by_class;
  for (std::size_t i = 0; i < report.device_class.size(); ++i) {
    auto& e = by_class[report.device_class[i]];
    ++e.first;
    e.second += report.updates_per_client[i];
  }
  std::printf("\n%-16s %8s %10s\n", "device class", "clients", "updates");
  for (const auto& [name, e] : by_class)
    std::printf("%-16s %8zu %10llu\n", name.c_str(), e.first,
                static_cast<unsigned long long>(e.second));
  std::printf(
      "\nfleet: %zu clients, %llu updates sent in %.1f s; ended: %zu by server Bye, "
      "%zu stopped, %zu rejected\n",
      report.final_status.clients,
      static_cast<unsigned long long>(report.final_status.updates_sent), report.final_status.wall_s,
      report.ended_by_server_bye, report.stopped, report.rejected);
}

// A connected client holds two open files and a connecting one four (at most
// ZmqFleetOptions::max_connecting at once); data, logs and LibTorch need a few hundred more.
void checkOpenFiles(std::int64_t clients) {
  constexpr std::uint64_t kReserve = 256;
  const auto n = static_cast<std::uint64_t>(clients);
  const std::uint64_t need = 2 * n + 2 * sfn::ZmqFleetOptions{}.max_connecting + kReserve;
  const std::uint64_t have = sfn::raiseOpenFileLimit();
  if (need > have)
    SFN_THROW(sfn::ConfigError, "--clients ", clients, " needs about ", need,
              " open files, but this process may open ", have,
              " (ulimit -n); split the fleet with --shards over several processes, or raise "
              "the limit");
}

// Runs until Ctrl-C or the server says Bye. The server owns rounds, metrics and
// checkpoints; this side reports what its clients did.
sfn::ExitCode runConnect(const sfn::AppMain& app, const SimArgs& a, const sfn::StopSignal& stop) {
  const ConnectOptions& co = a.connect;
  const sfn::RunConfig cfg = a.config_path.empty()
                                 ? sfn::RunConfig::parse("", "(defaults)", ".", a.overrides)
                                 : sfn::RunConfig::load(a.config_path, a.overrides);
  const auto log = simLogger(app, cfg.log_level, a.quiet);
  const auto client_log = app.logger(co.client_log_level, "fleet");
  client_log->set_level(spdlog::level::from_str(co.client_log_level));
  const std::int64_t n = co.clients > 0 ? co.clients : cfg.simulation.clients;
  if (n > kMaxFleetClients)
    SFN_THROW(sfn::ConfigError, "--connect runs one socket and thread per client: ", n,
              " clients (simulation.clients) is more than the ", kMaxFleetClients,
              " allowed; pass --clients");
  checkOpenFiles(n);
  const FleetSlice slice = fleetSlice(co, n);
  cfg.checkFleetStart(std::thread::hardware_concurrency());
  sfn::setTorchThreads(cfg.simulation.torch_threads);
  sfn::ZmqFleetOptions fo = fleetOptions(cfg, co, slice, *log);

  log->info("loading data ({})", cfg.data.dataset);
  const sfn::DataBundle data = sfn::loadDataBundle(cfg.data);
  // The same split and partition (seed, scheme, whole fleet's client count) as sfn-sim and
  // sfn-client; this process keeps its slice.
  const sfn::Partition all =
      sfn::makePartition(cfg.data.partition, data.split.train, data.train.labelVector(),
                         data.train.num_classes, static_cast<std::int64_t>(slice.total), cfg.seed);
  const auto from = all.begin() + static_cast<std::ptrdiff_t>(slice.first);
  const sfn::Partition shards(from, from + static_cast<std::ptrdiff_t>(slice.count));
  log->info("{} of {} shards ({} partition, seed {}) of {} training samples", shards.size(),
            all.size(), cfg.data.partition.scheme, cfg.seed, data.split.train.size());

  sfn::ZmqFleet fleet(std::move(fo), data.train, shards, deviceProfiles(cfg), log, client_log);
  const bool tty = progressOnTerminal(app, a.quiet);
  const sfn::ZmqFleetReport report = fleet.run(stop.flag(), statusPrinter(co, log, tty));
  if (tty) std::fprintf(stderr, "\n");
  printFleetReport(report);
  if (report.rejected > 0) {
    log->error("{} clients were rejected: is {} the allowlist the server runs with?",
               report.rejected, co.insecure ? "(insecure)" : co.keys_dir + "/allow");
    return sfn::ExitCode::kAuthRefused;
  }
  return sfn::ExitCode::kOk;
}

// ---------------------------------------------------------------------------------------
// Simulation: virtual clients in this process.

// On a terminal a progress line replaces the per-round info lines (metrics.jsonl has them);
// its own thread redraws it so that it moves during long rounds too. That thread reads
// only thread-safe state: the atomics below and the fleet's task counters.
class ProgressLine {
 public:
  ProgressLine(const sfn::VirtualFleet& fleet, std::int64_t first, std::int64_t rounds,
               int clients_per_round)
      : fleet_(fleet),
        first_(first),
        rounds_(rounds),
        per_round_(std::max(1, clients_per_round)),
        done_(first),
        tasks_at_round_start_(fleet.tasksDone()),
        thread_([this] { redraw(); }) {}
  ~ProgressLine() {
    stop_.store(true);
    thread_.join();
    draw();
    std::fprintf(stderr, "\n");
  }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void roundStarting() { tasks_at_round_start_.store(fleet_.tasksDone()); }
  void roundDone(std::int64_t rounds_done) { done_.store(rounds_done); }

 private:
  void redraw() {
    while (!stop_.load()) {
      draw();
      for (int i = 0; i < 5 && !stop_.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  void draw() const {
    const double el =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const std::int64_t done = done_.load();
    // The current round's share done, from tasks finished (a round ends at its quorum or
    // deadline, so this is an estimate).
    const double frac = std::min(
        0.99, static_cast<double>(fleet_.tasksDone() - tasks_at_round_start_.load()) / per_round_);
    const double progressed = static_cast<double>(done - first_) + (done < rounds_ ? frac : 0);
    const double left = static_cast<double>(rounds_ - first_) - progressed;
    const std::string eta = progressed > 0 ? fmtDuration(el / progressed * left) : "?";
    std::fprintf(stderr,
                 "\r\x1b[2K[round %lld/%lld] tasks done %zu (%zu in flight)  elapsed %s  ETA %s",
                 static_cast<long long>(done), static_cast<long long>(rounds_), fleet_.tasksDone(),
                 fleet_.tasksInFlight(), fmtDuration(el).c_str(), eta.c_str());
    std::fflush(stderr);
  }

  const sfn::VirtualFleet& fleet_;
  const std::int64_t first_;
  const std::int64_t rounds_;
  const double per_round_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<std::int64_t> done_;
  std::atomic<std::size_t> tasks_at_round_start_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: started once everything it reads is initialized
};

// Device profiles' MACs budgets fill devices the config does not name; virtual clients
// never go silent on their own (dropouts come from device availability).
void applyProfiles(sfn::RunConfig& cfg, const std::vector<sfn::DeviceProfile>& profiles) {
  for (const auto& p : profiles)
    if (p.macs_budget > 0 && !cfg.coordinator.device_macs_budget.count(p.name))
      cfg.coordinator.device_macs_budget[p.name] = p.macs_budget;
  cfg.coordinator.liveness_s = 1e300;
}

std::unique_ptr<sfn::VirtualFleet> makeFleet(const sfn::RunConfig& cfg, const sfn::DataBundle& data,
                                             std::vector<sfn::DeviceProfile> profiles,
                                             sfn::VirtualClock& clock, spdlog::logger& log) {
  const sfn::Partition partition =
      sfn::makePartition(cfg.data.partition, data.split.train, data.train.labelVector(),
                         data.train.num_classes, cfg.simulation.clients, cfg.seed);
  log.info("{} training samples ({} held out for validation) over {} clients ({} partition)",
           data.split.train.size(), data.split.val.size(), partition.size(),
           cfg.data.partition.scheme);
  sfn::FleetOptions fo;
  fo.seed = cfg.seed;
  fo.workers = cfg.simulation.workers;
  fo.torch_threads = cfg.simulation.torch_threads;
  fo.compute_time = cfg.simulation.compute_time;
  fo.device = cfg.device;
  // The fleet flattens the partition into its own index array; this copy dies here.
  return std::make_unique<sfn::VirtualFleet>(fo, cfg.space, data.train, partition,
                                             std::move(profiles), clock);
}

void registerFleet(sfn::Coordinator& coord, sfn::VirtualFleet& fleet, const sfn::RunConfig& cfg,
                   spdlog::logger& log) {
  fleet.registerAll();
  // One pass over the queued Registers (waitForClients would rescan the registry after
  // every message: quadratic, minutes at 100,000 clients).
  coord.pump();
  if (coord.registry().size() != fleet.numClients())
    SFN_THROW(sfn::Error, "only ", coord.registry().size(), " of ", fleet.numClients(),
              " virtual clients registered");
  log.info("{} virtual clients registered; {} rounds of {} clients", fleet.numClients(), cfg.rounds,
           cfg.coordinator.clients_per_round);
}

// The shared federation loop, with a progress line on a terminal.
sfn::FederationResult train(sfn::Coordinator& coord, sfn::RunRecorder& recorder,
                            const sfn::VirtualFleet& fleet, const sfn::RunConfig& cfg,
                            const sfn::StopSignal& stop, const std::shared_ptr<spdlog::logger>& log,
                            bool tty, sfn::OpsEndpoint& ops) {
  sfn::FederationOptions fo = sfn::FederationOptions::from(cfg);
  fo.log = log;
  if (!tty) {
    ops.hook(fo, coord);
    return sfn::runFederation(coord, recorder, fo, stop.flag());
  }
  const auto level = log->level();
  log->set_level(std::max(level, spdlog::level::warn));
  sfn::FederationResult result;
  {
    ProgressLine progress(fleet, coord.round(), cfg.rounds, cfg.coordinator.clients_per_round);
    fo.before_round = [&progress] { progress.roundStarting(); };
    fo.after_round = [&](const sfn::RoundMetrics&) { progress.roundDone(coord.round()); };
    ops.hook(fo, coord);
    result = sfn::runFederation(coord, recorder, fo, stop.flag());
  }
  log->set_level(level);
  return result;
}

// --set, then --http as the key it sets (a JSON string is a valid TOML basic string).
std::vector<std::string> runOverrides(const SimArgs& a) {
  std::vector<std::string> out = a.overrides;
  if (!a.http.empty()) out.push_back("http.listen=" + nlohmann::json(a.http).dump());
  return out;
}

// The settings to run with: -c, --set and --http; a resumed run must keep those it computes
// with (exit 2 otherwise).
sfn::ResumedConfig runSettings(const SimArgs& a) {
  sfn::RunConfig given = sfn::RunConfig::load(a.config_path, runOverrides(a));
  if (a.resume.empty()) return {std::move(given), {}};
  return sfn::RunRecorder::resumeConfig(a.resume, given,
                                        fs::path(a.config_path).parent_path().string());
}

// -o, else the --resume folder, else a new folder named after the run and the time.
std::string runDir(const SimArgs& a, const sfn::RunConfig& cfg) {
  if (!a.run_dir.empty()) return a.run_dir;
  if (!a.resume.empty() && fs::is_directory(a.resume)) return a.resume;
  return (fs::path(cfg.out_dir) / (cfg.name + "-" + timestamp())).string();
}

// Everything after the command line: set up, run the federation, report. Returns false if
// a stop signal ended the run early.
bool simulate(const sfn::AppMain& app, const SimArgs& a, const sfn::StopSignal& stop) {
  const auto t0 = std::chrono::steady_clock::now();
  const sfn::ResumedConfig settings = runSettings(a);  // for config.toml: applyProfiles adds
  sfn::RunConfig cfg = settings.config;
  const auto log = simLogger(app, cfg.log_level, a.quiet);
  cfg.checkSimulationStart(std::thread::hardware_concurrency());
  sfn::setTorchThreads(cfg.simulation.torch_threads);
  const std::string run_dir = runDir(a, cfg);
  // Before the data is loaded: a folder that holds another run is refused at once, and
  // /healthz answers at once (/readyz once the fleet is in).
  sfn::RunRecorder recorder(run_dir, sfn::evalTargetNames(cfg.coordinator.eval_subnets),
                            cfg.checkpoint_keep, cfg.runInfo(a.config_path),
                            a.resume.empty() ? sfn::RunStart::kNew : sfn::RunStart::kResume);
  sfn::OpsEndpoint ops(cfg.http.listen, "http.listen (--http)", cfg.name, cfg.rounds, log);
  ops.writeEndpointFile(run_dir);
  log->info("loading data ({})", cfg.data.dataset);
  const sfn::DataBundle data = sfn::loadDataBundle(cfg.data);
  std::vector<sfn::DeviceProfile> profiles = deviceProfiles(cfg);
  applyProfiles(cfg, profiles);
  // Evaluations run between rounds, when the pool is idle: all the cores training was given.
  const int eval_threads = cfg.simulation.workers * cfg.simulation.torch_threads;
  const sfn::EvalOptions eval_options = cfg.evalOptions(eval_threads, &stop.flag());
  sfn::Evaluator val_eval = sfn::Evaluator::validation(data, eval_options);
  sfn::VirtualClock clock;
  const auto fleet = makeFleet(cfg, data, std::move(profiles), clock, *log);
  sfn::Coordinator coord(cfg.coordinator, sfn::SuperNet(cfg.space, cfg.seed), *fleet, clock,
                         &val_eval, log);
  coord.setHealthProbe(sfn::HealthProbe::validation(data, cfg.coordinator.robust.probe_samples));
  coord.setStopFlag(&stop.flag());
  if (!a.resume.empty()) {
    recorder.resumeFrom(a.resume, coord);
    log->info("resumed at round {} from {}", coord.round(), a.resume);
    for (const std::string& note : settings.notes) log->info("--resume: {}", note);
  }
  recorder.writeConfig(settings.config);
  registerFleet(coord, *fleet, cfg, *log);

  ops.attach(coord);
  ops.setReady(true);
  const sfn::FederationResult result =
      train(coord, recorder, *fleet, cfg, stop, log, progressOnTerminal(app, a.quiet), ops);
  ops.setReady(false);
  if (result.end == sfn::FederationEnd::kStopped) {
    log->warn("interrupted: checkpoint written to {}; continue with --resume {}", result.checkpoint,
              run_dir);
    std::cout << "run folder: " << run_dir << std::endl;
    return false;
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ops.setFinal(sfn::FinalEval::kRunning);
  const sfn::RunSummary summary =
      sfn::finishRun(coord, data, eval_options, val_eval, recorder, result.checkpoint, wall_s);
  ops.setFinal(sfn::FinalEval::kDone, summary.test);
  std::printf("\ntraining: %lld rounds, %zu local tasks, %.1f s wall, %.1f s virtual\n",
              static_cast<long long>(coord.round()), fleet->tasksDone(), wall_s, clock.now());
  std::cout << "run folder: " << run_dir << std::endl;
  return true;
}

// ---------------------------------------------------------------------------------------

void addRunOptions(CLI::App& cli, SimArgs& a) {
  cli.add_option("-c,--config", a.config_path,
                 "run configuration (TOML); required unless --connect (then it gives data, "
                 "partition, preset, seed and workers; defaults otherwise)")
      ->check(CLI::ExistingFile);
  cli.add_option("-s,--set", a.overrides, "override a config key: table.key=value (repeatable)");
  cli.add_option("-o,--out", a.run_dir,
                 "run folder: config, metrics, checkpoints, summary (default: "
                 "<run.out_dir>/<run.name>-<time>, or the --resume folder)");
  cli.add_option("--resume", a.resume,
                 "resume from this run folder or checkpoint file; only " +
                     sfn::RunRecorder::resumeSafeKeyText() +
                     " may differ from the run's config.toml (exit 2 otherwise)");
  cli.add_flag("-q,--quiet", a.quiet, "only warnings and the summary");
  cli.add_option("--http", a.http,
                 "operator endpoint HOST:PORT (/metrics, /healthz, /readyz, /status, dashboard "
                 "at /) or off (http.listen; default " +
                     std::string(sfn::kDefaultHttpListen) + ")");
}

void addConnectOptions(CLI::App& cli, ConnectOptions& c) {
  cli.add_option("--connect", c.endpoint,
                 "run real ZeroMQ clients against the sfn-server at this endpoint "
                 "(tcp://HOST:PORT) until Ctrl-C or the server says Bye");
  cli.add_option("--clients", c.clients,
                 "--connect: number of clients of this process (default simulation.clients); "
                 "its client i trains on shard --shard x N + i of the config's partition into "
                 "--shards x N shards. Each client has its own socket, thread and two open files "
                 "(the process raises its soft open-file limit to the hard one and checks); "
                 "use --shards over several processes, or the simulator (no --connect), for "
                 "larger fleets")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{kMaxFleetClients}));
  cli.add_option("--shard", c.shard,
                 "--connect: index of this process among --shards (a Kubernetes Indexed "
                 "Job's completion index); it runs clients [shard x --clients, (shard + 1) x "
                 "--clients) of the fleet")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cli.add_option("--shards", c.shards,
                 "--connect: processes one fleet of --shards x --clients clients is split "
                 "across; above 1, every key pair must already be in --keys-dir (sfn-sim "
                 "keygen --clients TOTAL) and DIR/allow is left as it is")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}))
      ->capture_default_str();
  cli.add_option("--server-key", c.server_key, "--connect: the server's public key file");
  cli.add_option("--keys-dir", c.keys_dir,
                 "--connect: folder of client key pairs (made by `sfn-sim keygen`; missing ones "
                 "are generated, and DIR/allow is rewritten)")
      ->capture_default_str();
  cli.add_flag("--insecure", c.insecure,
               "--connect: no encryption or authentication (the server must run --insecure)");
  cli.add_option("--client-log-level", c.client_log_level,
                 "--connect: log level of the individual clients")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  cli.add_option("--status-s", c.status_s, "--connect: seconds between status lines")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

CLI::App* addKeygenCommand(CLI::App& cli, SimArgs& a) {
  auto* keys = cli.add_subcommand(
      "keygen",
      "write (or reuse) N client key pairs in a folder plus its allowlist file 'allow' "
      "for sfn-server --allow");
  keys->alias("keys");  // its name before every binary's key command was called keygen
  keys->add_option("--clients", a.keys_clients, "number of clients")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}));
  keys->add_option("-o,--out", a.keys_out, "key folder")->capture_default_str();
  sfn::addKeygenForceFlag(*keys, a.keys_force);
  return keys;
}

}  // namespace

int main(int argc, char** argv) {
  sfn::AppMain app(
      "sfn-sim",
      "sfn-sim: simulate SuperFedNAS federated training with many virtual clients in one "
      "process (-c CONFIG), or drive a running sfn-server with many real ZeroMQ clients "
      "(--connect ENDPOINT; generate and allowlist their keys first with `sfn-sim keygen`).",
      "130 follows SIGINT/SIGTERM: a checkpoint is written, --resume continues (--connect: "
      "the fleet stopped before the server said Bye). 3 (--connect): the server rejected "
      "clients.");
  SimArgs args;
  app.cli().require_subcommand(0, 1);
  CLI::App* keys = addKeygenCommand(app.cli(), args);
  addRunOptions(app.cli(), args);
  // -o's name before the binaries were aligned on -o/--out; hidden, still accepted.
  app.addHiddenAlias("--run-dir", "--out");
  addConnectOptions(app.cli(), args.connect);
  const int rc = app.run(argc, argv, [&] {
    if (keys->parsed())
      return writeKeys(static_cast<std::size_t>(args.keys_clients), args.keys_out, args.keys_force);
    const sfn::StopSignal stop;
    if (!args.connect.endpoint.empty()) {
      const sfn::ExitCode code = runConnect(app, args, stop);
      return code == sfn::ExitCode::kOk && stop.requested() ? sfn::ExitCode::kInterrupted : code;
    }
    if (args.config_path.empty())
      SFN_THROW(sfn::ConfigError, "--config is required (or --connect)");
    return simulate(app, args, stop) ? sfn::ExitCode::kOk : sfn::ExitCode::kInterrupted;
  });
  return rc;
}
