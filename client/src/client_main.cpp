// sfn-client: one federated client (ZeroMQ DEALER, CURVE-authenticated by default).
//
//   sfn-client keygen -o DIR           writes DIR/client.key (0600) and DIR/client.pub
//   sfn-client profile -o lut.json     measures this device's latency table
//   sfn-client --server tcp://H:P --server-key server.pub --key client.key --partition I ...
//
//   sfn-client -c client.toml              the same settings from a file ([client] [server] [data])
//
// The client's data is its own (--data: files in IDX, CIFAR-10 binary or torch.save format)
// or, for experiments, shard I of N of the run's dataset (--partition I --of N). Either
// way the run's settings (SuperNet, normalisation, seeds) come from the server's Welcome.
#include "sfn/app/app_main.h"
#include "sfn/app/key_files.h"
#include "sfn/app/stop_signal.h"
#include "sfn/client/client_config.h"
#include "sfn/client/client_runner.h"
#include "sfn/client/client_setup.h"
#include "sfn/client/zmq_client_factory.h"
#include "sfn/core/error.h"
#include "sfn/core/exit_code.h"
#include "sfn/core/rng.h"
#include "sfn/model/design_space.h"
#include "sfn/model/latency_table.h"
#include "sfn/model/supernet.h"
#include "sfn/net/zmq_transport.h"
#include "sfn/train/local_trainer.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

struct ProfileCli {
  std::string out = "lut.json";
  std::string preset = "fmnist";
  int threads = 1;
  std::string device = "cpu";
  std::string device_name;
  int repeats = 100;
  int warmup = 20;
  int batch = 1;
  int check = 20;
  std::string clock = "auto";
};

// Measures this device's latency table. The table is only valid for the thread count and
// batch size it was measured with, so both are recorded in it. `check` random SubNets are
// then timed whole and compared with the table's prediction (an on-device sanity check of
// the additive model, printed, not stored).
sfn::ExitCode profile(const ProfileCli& p, spdlog::logger& log) {
  sfn::checkTorchDevice(p.device, "profile --device");
  sfn::setTorchThreads(p.threads);
  const sfn::DesignSpace space = sfn::DesignSpace::preset(p.preset);
  sfn::LatencyProfileOptions opts;
  opts.device = p.device;
  opts.device_name = p.device_name;
  opts.batch_size = p.batch;
  opts.repeats = p.repeats;
  opts.warmup = p.warmup;
  opts.clock = sfn::parseLatencyClock(p.clock);
  opts.validate();
  // The check SubNets are timed while the table is profiled (one sample of one of them after
  // each profiling pass, in turn), so a device whose speed drifts with other load affects
  // both alike.
  const sfn::SuperNet net(space, 1);
  sfn::Rng rng(7);
  std::vector<sfn::SubNetConfig> configs;
  std::vector<sfn::SubNetModule> modules;
  std::vector<std::unique_ptr<sfn::SubNetTimer>> timers;
  for (int i = 0; i < p.check; ++i) {
    configs.push_back(sfn::SubNetConfig::random(space, rng));
    modules.push_back(net.buildModule(configs.back()));
  }
  for (auto& m : modules) timers.push_back(std::make_unique<sfn::SubNetTimer>(*m, opts));
  std::size_t next = 0;
  const sfn::LatencyTable table = sfn::profileLatency(
      space, opts,
      [&log](std::size_t done, std::size_t total, const auto& e) {
        log.info("[{}/{}] {:<22} {:9.4f} ms", done, total, e.name, e.ms);
      },
      [&] {
        if (timers.empty()) return;
        (void)timers[next]->sampleMs();
        next = (next + 1) % timers.size();
      });
  table.save(p.out);
  std::cout << "latency table of device '" << table.info().device << "' (" << p.preset << ", "
            << table.info().torch_threads << " threads, batch " << p.batch << ", "
            << table.info().clock << " clock, " << table.entries().size() << " entries) written to "
            << p.out << std::endl;
  if (!timers.empty()) {
    double sum_ape = 0.0;
    for (std::size_t i = 0; i < timers.size(); ++i) {
      const double measured = timers[i]->quantileMs();
      sum_ape += std::abs(table.predictMs(space, configs[i]) - measured) / measured;
    }
    std::cout << "check on " << timers.size()
              << " random SubNets timed whole: mean absolute percentage error of the table's "
                 "prediction "
              << 100.0 * sum_ape / static_cast<double>(timers.size()) << " %" << std::endl;
  }
  return sfn::ExitCode::kOk;
}

// Flags as "table.key=value" overrides of the client config (a JSON string is a valid TOML
// basic string), so a flag and a config key are one setting with one validation.
struct CliFlags {
  std::string config;
  std::vector<std::string> overrides;  // --set, then the flags below
  struct Flag {
    std::string key;  // config key
    std::string value;
    bool number = false;  // written as a TOML number, not a string
  };
  std::vector<Flag> flags;
  bool insecure = false;
  bool stay = false;

  std::vector<std::string> all() const {
    std::vector<std::string> out = overrides;
    for (const Flag& f : flags)
      if (!f.value.empty())
        out.push_back(f.key + "=" + (f.number ? f.value : nlohmann::json(f.value).dump()));
    if (insecure) out.push_back("server.insecure=true");
    if (stay) out.push_back("client.stay=true");
    return out;
  }
};

// Refused registrations and keys are authentication refusals (3); stopping, by signal or
// by the server's Bye, is a normal end (0).
sfn::ExitCode outcomeExitCode(sfn::RunOutcome outcome) {
  return outcome == sfn::RunOutcome::kRejected || outcome == sfn::RunOutcome::kAuthRefused
             ? sfn::ExitCode::kAuthRefused
             : sfn::ExitCode::kOk;
}

sfn::ExitCode runClient(const CliFlags& flags, const sfn::AppMain& app) {
  auto log = app.logger("info");
  const sfn::ClientConfig cfg = sfn::ClientConfig::load(flags.config, flags.all());
  sfn::ClientOptions opts = sfn::clientOptionsFrom(cfg);
  sfn::ClientTransportFactory connect =
      sfn::zmqClientFactory(sfn::transportOptionsFrom(cfg), nullptr, log, opts.name);
  sfn::setTorchThreads(cfg.threads);
  const std::unique_ptr<sfn::ClientData> data = sfn::loadClientData(cfg, *log);

  const sfn::StopSignal stop;
  sfn::ClientRunner runner(opts, *data, std::move(connect), log);
  const sfn::RunOutcome outcome = runner.run(stop.flag());
  const sfn::ExitCode code = outcomeExitCode(outcome);
  log->info("client {}: {}; exiting with code {}", opts.name, sfn::toString(outcome),
            sfn::toInt(code));
  return code;
}

CLI::App* addProfileCommand(CLI::App& app, ProfileCli& p) {
  auto* pf = app.add_subcommand(
      "profile",
      "measure this device's latency table (every block variant, stem and head) for sfn-search");
  pf->add_option("-o,--out", p.out, "latency table file (JSON)")->capture_default_str();
  pf->add_option("--preset", p.preset, "SuperNet design space")->capture_default_str();
  pf->add_option("--threads", p.threads,
                 "torch intra-op threads (use the count the deployed model will run with)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  pf->add_option("--device", p.device, "torch device to profile (cpu, cuda:0)")
      ->capture_default_str();
  pf->add_option("--device-name", p.device_name,
                 "device name recorded in the table (default: host name)");
  pf->add_option("--repeats", p.repeats, "timed samples per entry (median taken)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  pf->add_option("--warmup", p.warmup, "untimed calls before timing each entry")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  pf->add_option("--batch", p.batch, "batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  pf->add_option("--clock", p.clock,
                 "auto: thread CPU time with one CPU thread (immune to other processes' load), "
                 "else wall-clock time")
      ->check(CLI::IsMember({"auto", "wall", "thread_cpu"}))
      ->capture_default_str();
  pf->add_option("--check", p.check,
                 "random SubNets to time whole and compare with the table (0 = skip)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return pf;
}

// Every setting flag is an override of the client config key named in its help.
void addSettingOptions(CLI::App& app, CliFlags& f) {
  app.add_option("-c,--config", f.config, "client config (TOML: [client] [server] [data] [timing])")
      ->check(CLI::ExistingFile);
  app.add_option("-s,--set", f.overrides, "override a config key: table.key=value (repeatable)");
  f.flags.reserve(16);  // add_option keeps pointers into the vector: no reallocation
  const auto add = [&](const std::string& flag, const std::string& key, const std::string& help,
                       bool number) {
    f.flags.push_back({key, "", number});
    CLI::Option* o = app.add_option(flag, f.flags.back().value, help + " (" + key + ")");
    if (number) o->check(CLI::Number);
  };
  const auto str = [&](const std::string& flag, const std::string& key, const std::string& help) {
    add(flag, key, help, false);
  };
  const auto num = [&](const std::string& flag, const std::string& key, const std::string& help) {
    add(flag, key, help, true);
  };
  str("--server", "server.endpoint", "server endpoint, e.g. tcp://10.0.0.1:5555");
  str("--server-key", "server.server_key", "the server's public key file (server.pub)");
  str("--key", "server.key", "this client's key pair file from keygen (client.key)");
  app.add_flag("--insecure", f.insecure,
               "no encryption or authentication (local development only; the server must "
               "run --insecure too)");
  str("--name", "client.name", "client name in logs (default: client-<partition>, or host name)");
  str("--device-class", "client.device_class", "device class; selects the server's MACs budget");
  str("--device", "client.device", "torch device for local training (cpu, cuda:0)");
  num("--threads", "client.threads", "torch intra-op threads (<= 0 keeps torch's default)");
  app.add_flag("--stay", f.stay,
               "after the server's last round, reconnect for its next run instead of exiting 0");
  str("--data", "data.path",
      "own data: IDX folder, CIFAR-10 .bin file or folder, or a torch.save file of "
      "{'images', 'labels'}; shard mode: the folder of the run's dataset");
  str("--data-format", "data.format", "auto | idx | cifar10 | torch");
  num("--partition", "data.partition", "shard mode: index of this client's shard, in [0, --of)");
  num("--of", "data.of", "shard mode: number of shards the run's training split is cut into");
  num("--heartbeat-s", "timing.heartbeat_s", "seconds between heartbeats");
  num("--liveness-s", "timing.liveness_s",
      "reconnect after this many silent seconds while idle (0 = never)");
  num("--connect-timeout-s", "timing.connect_timeout_s",
      "seconds to wait for the connection (TCP and handshake) before starting over");
  num("--register-timeout-s", "timing.register_timeout_s",
      "seconds to wait for Welcome/Reject once connected");
  num("--backoff-max-s", "timing.backoff_max_s", "cap of the reconnect delay (doubles from 1 s)");
}

}  // namespace

int main(int argc, char** argv) {
  sfn::AppMain app(
      "sfn-client",
      "sfn-client: SuperFedNAS federated client. Registers with sfn-server over ZeroMQ "
      "(CURVE-encrypted and authenticated unless --insecure), trains the SubNets it is "
      "assigned on its own data (--data) or on a shard of the run's dataset (--partition, "
      "--of) and reports the updates. The run's settings come from the server. Reconnects "
      "with backoff and re-registers when the server restarts. SIGINT/SIGTERM: say Bye and "
      "exit 0.",
      "0 also when stopped by SIGINT/SIGTERM or when the server's run finished; 3 when the "
      "server refused this client (key not on its allowlist, or data that does not fit the "
      "run).");
  CLI::App& cli_app = app.cli();
  cli_app.require_subcommand(0, 1);
  auto* kg = cli_app.add_subcommand(
      "keygen", "write a client CURVE key pair (never overwrites without --force)");
  std::string kg_out = ".";
  kg->add_option("-o,--out", kg_out, "folder for client.key (secret, mode 0600) and client.pub")
      ->capture_default_str();
  bool kg_force = false;
  sfn::addKeygenForceFlag(*kg, kg_force);
  ProfileCli pcli;
  CLI::App* pf = addProfileCommand(cli_app, pcli);
  CliFlags flags;
  addSettingOptions(cli_app, flags);

  return app.run(argc, argv, [&] {
    if (kg->parsed())
      return sfn::runKeygen(kg_out, "client", sfn::KeyType::kCurve,
                            "add it to the server's allowlist", kg_force);
    if (pf->parsed()) return profile(pcli, *app.logger("info"));
    return runClient(flags, app);
  });
}
