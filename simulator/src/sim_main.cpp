// sfn-sim: the Coordinator of sfn-server driving a fleet of virtual clients in one process.
#include "sfn/coordinator.h"
#include "sfn/data_source.h"
#include "sfn/device_profile.h"
#include "sfn/error.h"
#include "sfn/evaluator.h"
#include "sfn/local_trainer.h"
#include "sfn/partitioner.h"
#include "sfn/run_config.h"
#include "sfn/run_recorder.h"
#include "sfn/virtual_fleet.h"

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sfn-sim: simulate SuperFedNAS federated training with many virtual clients"};
  std::string config_path;
  std::vector<std::string> overrides;
  std::string run_dir;
  std::string resume;
  bool quiet = false;
  app.add_option("-c,--config", config_path, "run configuration (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("-s,--set", overrides, "override a config key: table.key=value (repeatable)");
  app.add_option("-o,--run-dir", run_dir, "run folder (default: <run.out_dir>/<run.name>-<time>)");
  app.add_option("--resume", resume, "resume from this run folder or checkpoint file");
  app.add_flag("-q,--quiet", quiet, "only warnings and the summary");
  CLI11_PARSE(app, argc, argv);

  try {
    sfn::RunConfig cfg = sfn::RunConfig::load(config_path, overrides);
    auto log = spdlog::stderr_color_mt("sfn-sim");
    log->set_level(quiet ? spdlog::level::warn : spdlog::level::from_str(cfg.log_level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const int workers = cfg.simulation.workers;
    const int tthreads = cfg.simulation.torch_threads;
    if (static_cast<unsigned>(workers * tthreads) > cores)
      SFN_THROW(sfn::ConfigError,
                "simulation.workers x simulation.torch_threads = ", workers * tthreads,
                " exceeds the ", cores, " cores of this machine");
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

    std::vector<sfn::DeviceProfile> profiles =
        cfg.simulation.devices_file.empty() ? std::vector<sfn::DeviceProfile>{sfn::DeviceProfile{}}
                                            : sfn::loadDeviceProfiles(cfg.simulation.devices_file);
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
    if (!coord.waitForClients(fleet.numClients(), 1e9))
      SFN_THROW(sfn::Error, "virtual clients failed to register");
    log->info("{} virtual clients registered; {} rounds of {} clients", fleet.numClients(),
              cfg.rounds, cfg.coordinator.clients_per_round);

    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    const bool tty = isatty(STDERR_FILENO) && !quiet;
    const auto train_start = std::chrono::steady_clock::now();
    const std::int64_t first = coord.round();
    bool interrupted = false;
    while (coord.round() < cfg.rounds) {
      if (g_stop) {
        interrupted = true;
        break;
      }
      sfn::RoundMetrics m = coord.runRound();
      recorder.appendMetrics(m);
      const std::int64_t done = coord.round();
      if (cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0) recorder.checkpoint(coord);
      if (tty) {
        const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
        const double eta =
            el / static_cast<double>(done - first) * static_cast<double>(cfg.rounds - done);
        std::fprintf(stderr, "\r[round %lld/%lld] tasks done %zu  elapsed %s  ETA %s   ",
                     static_cast<long long>(done), static_cast<long long>(cfg.rounds),
                     fleet.tasksDone(), fmtDuration(el).c_str(), fmtDuration(eta).c_str());
        if (done == cfg.rounds) std::fprintf(stderr, "\n");
      }
    }
    const std::string ckpt = recorder.checkpoint(coord);
    if (interrupted) {
      log->warn("interrupted: checkpoint written to {}; continue with --resume {}", ckpt, run_dir);
      std::cout << "run folder: " << run_dir << std::endl;
      return 130;
    }

    // Final report on the TEST set (validation accuracy is what training and search see).
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
