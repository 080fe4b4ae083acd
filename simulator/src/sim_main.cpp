// sfn-sim: the Coordinator of sfn-server driving a fleet of virtual clients in one process,
// or (--connect) a fleet of real ZeroMQ clients driving a running sfn-server.
//
//   sfn-sim -c CONFIG [--set k=v] [-o RUN] [--resume RUN]     simulate (virtual clients)
//   sfn-sim keys --clients N --out DIR                         key pairs + DIR/allow
//   sfn-sim --connect tcp://H:P --clients N --keys-dir DIR --server-key server.pub [-c CONFIG]
#include "sfn/server/coordinator.h"
#include "sfn/data/data_source.h"
#include "sfn/simulator/device_profile.h"
#include "sfn/core/error.h"
#include "sfn/train/evaluator.h"
#include "sfn/simulator/fleet_keys.h"
#include "sfn/train/local_trainer.h"
#include "sfn/data/partitioner.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"
#include "sfn/simulator/virtual_fleet.h"
#include "sfn/simulator/zmq_fleet.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

namespace {

// Set by SIGINT/SIGTERM. A signal handler can only reach process-wide state; this flag is
// the one exception to "no file-scope mutable state" and is read by main() alone.
volatile std::sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

std::string fmtDuration(double s) {
  char buf[32];
  const int total = static_cast<int>(s + 0.5);
  std::snprintf(buf, sizeof buf, "%d:%02d", total / 60, total % 60);
  return buf;
}

// Workers x torch threads must fit the machine (the bound for every training pool).
void checkCores(int workers, int torch_threads) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (static_cast<unsigned>(workers * torch_threads) > cores)
    SFN_THROW(sfn::ConfigError,
              "simulation.workers x simulation.torch_threads = ", workers * torch_threads,
              " exceeds the ", cores, " cores of this machine");
}

std::vector<sfn::DeviceProfile> deviceProfiles(const sfn::RunConfig& cfg) {
  return cfg.simulation.devices_file.empty() ? std::vector<sfn::DeviceProfile>{sfn::DeviceProfile{}}
                                             : sfn::loadDeviceProfiles(cfg.simulation.devices_file);
}

std::shared_ptr<spdlog::logger> makeLogger(const std::string& name, spdlog::level::level_enum lvl) {
  auto log = spdlog::stderr_color_mt(name);
  log->set_level(lvl);
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  return log;
}

// `sfn-sim keys`: the key pairs of a fleet and the allowlist for sfn-server --allow.
int writeKeys(std::size_t clients, const std::string& out) {
  const sfn::FleetKeys keys = sfn::loadOrCreateFleetKeys(out, clients);
  std::cout << clients << " client key pairs in " << out << " (" << keys.generated << " new, "
            << clients - keys.generated << " reused)\n"
            << "allowlist: " << keys.allowlist.string() << "  (start sfn-server with --allow "
            << keys.allowlist.string() << ")" << std::endl;
  return 0;
}

struct ConnectOptions {
  std::string endpoint;
  std::int64_t clients = 0;  // 0: simulation.clients
  std::string server_key;
  std::string keys_dir = "fleet-keys";
  bool insecure = false;
  std::string client_log_level = "warn";
  double status_s = 10;
};

// `sfn-sim --connect`: N real clients against a running sfn-server, until Ctrl-C or the
// server says Bye. The server owns rounds, metrics and checkpoints; this side reports what
// its clients did.
int runConnect(const sfn::RunConfig& cfg, const ConnectOptions& co, bool quiet) {
  auto log =
      makeLogger("sfn-sim", quiet ? spdlog::level::warn : spdlog::level::from_str(cfg.log_level));
  auto client_log = makeLogger("fleet", spdlog::level::from_str(co.client_log_level));
  const std::int64_t n = co.clients > 0 ? co.clients : cfg.simulation.clients;
  if (n > 2000)
    SFN_THROW(sfn::ConfigError, "--connect runs one socket and thread per client: ", n,
              " clients (simulation.clients) is more than the 2000 allowed; pass --clients");
  checkCores(cfg.simulation.workers, cfg.simulation.torch_threads);
  sfn::setTorchThreads(cfg.simulation.torch_threads);

  sfn::ZmqFleetOptions fo;
  fo.server_endpoint = co.endpoint;
  fo.insecure = co.insecure;
  fo.seed = cfg.seed;
  fo.workers = cfg.simulation.workers;
  fo.torch_threads = cfg.simulation.torch_threads;
  fo.device = cfg.device;
  fo.status_interval = std::chrono::milliseconds(static_cast<long long>(co.status_s * 1000));
  if (co.insecure) {
    log->warn("*** --insecure: fleet traffic is NOT encrypted and NOT authenticated ***");
  } else {
    if (co.server_key.empty())
      SFN_THROW(sfn::ConfigError,
                "--connect needs --server-key (the server's server.pub) "
                "unless --insecure");
    fo.server_public_key = sfn::readKeyFile(co.server_key).public_key;
    sfn::FleetKeys keys = sfn::loadOrCreateFleetKeys(co.keys_dir, static_cast<std::size_t>(n));
    log->info("{} client key pairs from {}; allowlist {}", n, co.keys_dir, keys.allowlist.string());
    if (keys.generated > 0)
      log->warn(
          "{} new client keys generated: the server must be (re)started with --allow {} "
          "before they can register (or run `sfn-sim keys` first)",
          keys.generated, keys.allowlist.string());
    fo.keys = std::move(keys.keys);
  }

  log->info("loading data ({})", cfg.data.dataset);
  sfn::DataBundle data = sfn::loadDataBundle(cfg.data);
  // The same split and partition (seed, scheme, client count) as sfn-sim and sfn-client.
  const sfn::Partition shards =
      sfn::makePartition(cfg.data.partition, data.split.train, data.train.labelVector(),
                         data.train.num_classes, n, cfg.seed);
  log->info("{} shards ({} partition, seed {}) of {} training samples", shards.size(),
            cfg.data.partition.scheme, cfg.seed, data.split.train.size());

  sfn::ZmqFleet fleet(fo, cfg.space, data.train, shards, deviceProfiles(cfg), log, client_log);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  // The signal flag is process-wide; the fleet takes an atomic it can share with threads.
  std::thread watcher([&] {
    while (!done.load()) {
      if (g_stop) stop.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const bool tty = isatty(STDERR_FILENO) && !quiet;
  bool warned = false;
  auto on_status = [&](const sfn::ZmqFleetStatus& s) {
    // A key missing from the server's allowlist fails in the CURVE handshake: the client
    // hears nothing and keeps retrying, so say what the likely cause is.
    if (!warned && s.wall_s > 30 && s.ended == 0 && s.registering == s.clients) {
      warned = true;
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
  sfn::ZmqFleetReport report;
  try {
    report = fleet.run(stop, on_status);
  } catch (...) {
    done.store(true);
    watcher.join();
    throw;
  }
  done.store(true);
  watcher.join();
  if (tty) std::fprintf(stderr, "\n");

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
  if (report.rejected > 0) {
    log->error("{} clients were rejected: is {} the allowlist the server runs with?",
               report.rejected, co.insecure ? "(insecure)" : co.keys_dir + "/allow");
    return 3;
  }
  return g_stop ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sfn-sim: simulate SuperFedNAS federated training with many virtual clients in one "
      "process (-c CONFIG), or drive a running sfn-server with many real ZeroMQ clients "
      "(--connect ENDPOINT; generate and allowlist their keys first with `sfn-sim keys`)."};
  app.require_subcommand(0, 1);
  auto* keys_cmd = app.add_subcommand(
      "keys",
      "write (or reuse) N client key pairs in a folder plus its allowlist file 'allow' "
      "for sfn-server --allow");
  std::int64_t keys_clients = 0;
  std::string keys_out = "fleet-keys";
  keys_cmd->add_option("--clients", keys_clients, "number of clients")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}));
  keys_cmd->add_option("--out", keys_out, "key folder")->capture_default_str();

  std::string config_path;
  std::vector<std::string> overrides;
  std::string run_dir;
  std::string resume;
  bool quiet = false;
  ConnectOptions connect;
  app.add_option("-c,--config", config_path,
                 "run configuration (TOML); required unless --connect (then it gives data, "
                 "partition, preset, seed and workers; defaults otherwise)")
      ->check(CLI::ExistingFile);
  app.add_option("-s,--set", overrides, "override a config key: table.key=value (repeatable)");
  app.add_option("-o,--run-dir", run_dir, "run folder (default: <run.out_dir>/<run.name>-<time>)");
  app.add_option("--resume", resume, "resume from this run folder or checkpoint file");
  app.add_flag("-q,--quiet", quiet, "only warnings and the summary");
  app.add_option("--connect", connect.endpoint,
                 "run real ZeroMQ clients against the sfn-server at this endpoint "
                 "(tcp://HOST:PORT) until Ctrl-C or the server says Bye");
  app.add_option("--clients", connect.clients,
                 "--connect: number of clients (default simulation.clients); client i trains "
                 "on shard i of the config's partition into that many shards. Each client has "
                 "its own socket and thread (~2 MB), hence the cap; use the simulator (no "
                 "--connect) for larger fleets")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{2'000}));
  app.add_option("--server-key", connect.server_key, "--connect: the server's public key file");
  app.add_option("--keys-dir", connect.keys_dir,
                 "--connect: folder of client key pairs (made by `sfn-sim keys`; missing ones "
                 "are generated, and DIR/allow is rewritten)")
      ->capture_default_str();
  app.add_flag("--insecure", connect.insecure,
               "--connect: no encryption or authentication (the server must run --insecure)");
  app.add_option("--client-log-level", connect.client_log_level,
                 "--connect: log level of the individual clients")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--status-s", connect.status_s, "--connect: seconds between status lines")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (keys_cmd->parsed()) return writeKeys(static_cast<std::size_t>(keys_clients), keys_out);
    if (!connect.endpoint.empty()) {
      const sfn::RunConfig ccfg = config_path.empty()
                                      ? sfn::RunConfig::parse("", "(defaults)", ".", overrides)
                                      : sfn::RunConfig::load(config_path, overrides);
      return runConnect(ccfg, connect, quiet);
    }
    if (config_path.empty()) SFN_THROW(sfn::ConfigError, "--config is required (or --connect)");
    sfn::RunConfig cfg = sfn::RunConfig::load(config_path, overrides);
    auto log =
        makeLogger("sfn-sim", quiet ? spdlog::level::warn : spdlog::level::from_str(cfg.log_level));
    const int workers = cfg.simulation.workers;
    const int tthreads = cfg.simulation.torch_threads;
    checkCores(workers, tthreads);
    sfn::setTorchThreads(tthreads);

    if (run_dir.empty())
      run_dir =
          !resume.empty() && std::filesystem::is_directory(resume)
              ? resume
              : (std::filesystem::path(cfg.out_dir) / (cfg.name + "-" + timestamp())).string();

    const auto t0 = std::chrono::steady_clock::now();
    log->info("loading data ({})", cfg.data.dataset);
    sfn::DataBundle data = sfn::loadDataBundle(cfg.data);
    const auto labels = data.train.labelVector();
    sfn::Partition partition =
        sfn::makePartition(cfg.data.partition, data.split.train, labels, data.train.num_classes,
                           cfg.simulation.clients, cfg.seed);
    log->info("{} training samples ({} held out for validation) over {} clients ({} partition)",
              data.split.train.size(), data.split.val.size(), partition.size(),
              cfg.data.partition.scheme);

    std::vector<sfn::DeviceProfile> profiles = deviceProfiles(cfg);
    for (const auto& p : profiles)
      if (p.macs_budget > 0 && !cfg.coordinator.device_macs_budget.count(p.name))
        cfg.coordinator.device_macs_budget[p.name] = p.macs_budget;
    // Virtual clients never go silent on their own; dropouts come from device availability.
    cfg.coordinator.liveness_s = 1e300;

    sfn::Evaluator val_eval(data.train, data.split.val, data.split.train, 1000, cfg.device);
    sfn::VirtualClock clock;
    sfn::FleetOptions fo;
    fo.seed = cfg.seed;
    fo.workers = workers;
    fo.torch_threads = tthreads;
    fo.compute_time = cfg.simulation.compute_time;
    fo.device = cfg.device;
    sfn::VirtualFleet fleet(fo, cfg.space, data.train, partition, profiles, clock);
    partition.clear();
    partition.shrink_to_fit();

    sfn::Coordinator coord(cfg.coordinator, sfn::SuperNet(cfg.space, cfg.seed), fleet, clock,
                           &val_eval, log);
    sfn::RunRecorder recorder(run_dir, sfn::evalTargetNames(cfg.coordinator.eval_subnets),
                              cfg.checkpoint_keep, cfg.runInfo(config_path));
    if (!resume.empty()) {
      recorder.resumeFrom(resume, coord);
      log->info("resumed at round {} from {}", coord.round(), resume);
    }
    {
      std::ofstream cfg_out(std::filesystem::path(run_dir) / "config.toml");
      std::ifstream cfg_in(config_path);
      cfg_out << cfg_in.rdbuf();
      for (const auto& o : overrides) cfg_out << "# override: " << o << '\n';
    }

    fleet.registerAll();
    // One pass over the queued Registers (waitForClients would rescan the registry after
    // every message: quadratic, minutes at 100,000 clients).
    coord.pump();
    if (coord.registry().size() != fleet.numClients())
      SFN_THROW(sfn::Error, "only ", coord.registry().size(), " of ", fleet.numClients(),
                " virtual clients registered");
    log->info("{} virtual clients registered; {} rounds of {} clients", fleet.numClients(),
              cfg.rounds, cfg.coordinator.clients_per_round);

    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    const bool tty = isatty(STDERR_FILENO) && !quiet;
    const auto train_start = std::chrono::steady_clock::now();
    const std::int64_t first = coord.round();
    // On a terminal a progress line replaces the per-round info lines (metrics.jsonl has
    // them); it is redrawn by its own thread so that it moves during long rounds too. That
    // thread reads only thread-safe state: atomics below and the fleet's task counters.
    std::atomic<std::int64_t> rounds_done{first};
    std::atomic<std::size_t> tasks_at_round_start{fleet.tasksDone()};
    std::atomic<bool> progress_stop{false};
    std::thread progress;
    auto progressLine = [&] {
      const double el =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
      const std::int64_t done = rounds_done.load();
      // The current round's share done, from tasks finished (a round ends at its quorum or
      // deadline, so this is an estimate).
      const double per_round = std::max(1, cfg.coordinator.clients_per_round);
      const double frac = std::min(
          0.99, static_cast<double>(fleet.tasksDone() - tasks_at_round_start.load()) / per_round);
      const double progressed = static_cast<double>(done - first) + (done < cfg.rounds ? frac : 0);
      const std::string eta =
          progressed > 0 ? fmtDuration(el / progressed *
                                       (static_cast<double>(cfg.rounds - first) - progressed))
                         : "?";
      std::fprintf(stderr,
                   "\r\x1b[2K[round %lld/%lld] tasks done %zu (%zu in flight)  elapsed %s  ETA %s",
                   static_cast<long long>(done), static_cast<long long>(cfg.rounds),
                   fleet.tasksDone(), fleet.tasksInFlight(), fmtDuration(el).c_str(), eta.c_str());
      std::fflush(stderr);
    };
    if (tty) {
      log->set_level(std::max(log->level(), spdlog::level::warn));
      progress = std::thread([&] {
        while (!progress_stop.load()) {
          progressLine();
          for (int i = 0; i < 5 && !progress_stop.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      });
    }
    bool interrupted = false;
    try {
      while (coord.round() < cfg.rounds) {
        if (g_stop) {
          interrupted = true;
          break;
        }
        tasks_at_round_start.store(fleet.tasksDone());
        sfn::RoundMetrics m = coord.runRound();
        recorder.appendMetrics(m);
        rounds_done.store(coord.round());
        if (cfg.checkpoint_every > 0 && coord.round() % cfg.checkpoint_every == 0)
          recorder.checkpoint(coord);
      }
    } catch (...) {
      progress_stop.store(true);
      if (progress.joinable()) progress.join();
      throw;
    }
    if (progress.joinable()) {
      progress_stop.store(true);
      progress.join();
      progressLine();
      std::fprintf(stderr, "\n");
      log->set_level(quiet ? spdlog::level::warn : spdlog::level::from_str(cfg.log_level));
    }
    const std::string ckpt = recorder.checkpoint(coord);
    if (interrupted) {
      log->warn("interrupted: checkpoint written to {}; continue with --resume {}", ckpt, run_dir);
      std::cout << "run folder: " << run_dir << std::endl;
      return 130;
    }

    // Final report on the TEST set (validation accuracy is what training and search see).
    // The pool is idle now: evaluation may use all the cores training was given.
    sfn::setTorchThreads(workers * tthreads);
    sfn::Evaluator test_eval(data.test, {}, data.split.train, 1000, cfg.device);
    const auto& space = coord.supernet().space();
    const std::vector<sfn::EvalTarget> targets =
        sfn::evalTargets(cfg.coordinator.eval_subnets, space);
    const std::vector<sfn::EvalRecord> final_test = test_eval.evaluate(coord.supernet(), targets);
    const std::vector<sfn::EvalRecord> final_val = val_eval.evaluate(coord.supernet(), targets);
    nlohmann::json summary = {
        {"rounds", coord.round()},
        {"clients", fleet.numClients()},
        {"wall_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
        {"virtual_s", clock.now()},
        {"checkpoint", ckpt}};
    std::printf("\n%-6s %-70s %10s %9s %8s %8s\n", "subnet", "config", "MACs", "params", "val acc",
                "test acc");
    for (std::size_t i = 0; i < final_test.size(); ++i) {
      const auto& r = final_test[i];
      std::printf("%-6s %-70s %10lld %9lld %8.4f %8.4f\n", r.name.c_str(), r.subnet.c_str(),
                  static_cast<long long>(r.macs), static_cast<long long>(r.params),
                  final_val[i].accuracy, r.accuracy);
      summary["final"].push_back({{"name", r.name},
                                  {"subnet", r.subnet},
                                  {"macs", r.macs},
                                  {"params", r.params},
                                  {"val_accuracy", final_val[i].accuracy},
                                  {"test_accuracy", r.accuracy}});
    }
    std::ofstream(std::filesystem::path(run_dir) / "summary.json") << summary.dump(2) << '\n';
    std::printf("\ntraining: %lld rounds, %zu local tasks, %.1f s wall, %.1f s virtual\n",
                static_cast<long long>(coord.round()), fleet.tasksDone(),
                summary["wall_s"].get<double>(), clock.now());
    std::cout << "run folder: " << run_dir << std::endl;
    return 0;
  } catch (const sfn::ConfigError& e) {
    std::cerr << "sfn-sim: configuration error: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sfn-sim: " << e.what() << std::endl;
    return 1;
  }
}
