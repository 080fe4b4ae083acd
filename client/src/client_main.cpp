// sfn-client: one federated client (ZeroMQ DEALER, CURVE-authenticated by default).
//
//   sfn-client keygen --out DIR        writes DIR/client.key (0600) and DIR/client.pub
//   sfn-client profile --out lut.json  measures this device's latency table
//   sfn-client --server tcp://H:P --server-key server.pub --key client.key --partition I ...
//
// The client's data is its shard of the Fashion-MNIST training split: the same
// loadDataBundle + makePartition calls, with the same seed, that the server and the
// simulator make, so every process agrees on who holds which samples.
#include "sfn/app/app_main.h"
#include "sfn/app/key_files.h"
#include "sfn/app/stop_signal.h"
#include "sfn/client/client_runner.h"
#include "sfn/client/zmq_client_factory.h"
#include "sfn/core/error.h"
#include "sfn/core/exit_code.h"
#include "sfn/core/rng.h"
#include "sfn/data/data_source.h"
#include "sfn/data/partitioner.h"
#include "sfn/model/design_space.h"
#include "sfn/model/latency_table.h"
#include "sfn/model/supernet.h"
#include "sfn/net/zmq_transport.h"
#include "sfn/train/local_trainer.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
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
sfn::ExitCode profile(const ProfileCli& p) {
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
      [](std::size_t done, std::size_t total, const auto& e) {
        std::fprintf(stderr, "[%zu/%zu] %-22s %9.4f ms\n", done, total, e.name.c_str(), e.ms);
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

struct CliOptions {
  std::string server;
  std::string server_key;
  std::string key;
  bool insecure = false;
  std::string name;
  std::string device_class = "default";
  std::string preset = "fmnist";
  std::string data = "fmnist";
  std::string data_dir;
  int partition = 0;
  int of = 1;
  std::string scheme = "dirichlet";
  double alpha = 1.0;
  std::uint64_t seed = 0;
  double val_fraction = 0.1;
  int threads = 1;
  std::string device = "cpu";
  double heartbeat_s = 5.0;
  double liveness_s = 120.0;
  double register_timeout_s = 10.0;
  double backoff_max_s = 30.0;
};

std::chrono::milliseconds fromSeconds(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000.0));
}

sfn::ClientOptions clientOptionsFrom(const CliOptions& cli) {
  if (cli.server.empty()) SFN_THROW(sfn::ConfigError, "--server is required");
  if (cli.of < 1 || cli.partition < 0 || cli.partition >= cli.of)
    SFN_THROW(sfn::ConfigError, "--partition must be in [0, --of), got ", cli.partition, " of ",
              cli.of);
  sfn::ClientOptions opts;
  opts.name = cli.name.empty() ? "client-" + std::to_string(cli.partition) : cli.name;
  opts.device_class = cli.device_class;
  opts.device = cli.device;
  opts.server = cli.server;
  opts.heartbeat_interval = fromSeconds(cli.heartbeat_s);
  opts.liveness_timeout = fromSeconds(cli.liveness_s);
  opts.register_timeout = fromSeconds(cli.register_timeout_s);
  opts.backoff_max = fromSeconds(cli.backoff_max_s);
  opts.validate();
  return opts;
}

// Endpoint and CURVE keys of the ZeroMQ connection. `insecure` is for local development
// only and is logged as a warning on every connect (zmqClientFactory).
sfn::ZmqClientOptions transportOptionsFrom(const CliOptions& cli) {
  sfn::ZmqClientOptions zo;
  zo.server_endpoint = cli.server;
  zo.insecure = cli.insecure;
  if (!cli.insecure) {
    if (cli.server_key.empty() || cli.key.empty())
      SFN_THROW(sfn::ConfigError, "--server-key and --key are required unless --insecure");
    zo.server_public_key = sfn::readKeyFile(cli.server_key).public_key;
    zo.client_keys = sfn::readKeyFile(cli.key);
    if (zo.client_keys.secret_key.empty())
      SFN_THROW(sfn::ConfigError, "--key ", cli.key,
                " holds no secret key (use the client.key written by keygen)");
  }
  zo.validate();
  return zo;
}

// This client's shard: every process computes the whole partition and keeps its own shard.
// Partitioning is cheap next to loading the images, and it is the only way to agree on the
// shards.
sfn::IndexList loadShard(const CliOptions& cli, const sfn::DesignSpace& space,
                         sfn::DataBundle& data) {
  sfn::DataOptions data_opts;
  data_opts.dataset = cli.data;
  data_opts.dir = cli.data_dir;
  data_opts.val_fraction = cli.val_fraction;
  data_opts.split_seed = cli.seed;  // the server defaults split_seed to run.seed as well
  data_opts.synthetic_channels = space.in_channels;
  data_opts.synthetic_image_size = space.image_size;
  data_opts.synthetic_classes = space.num_classes;
  data_opts.partition.scheme = cli.scheme;
  data_opts.partition.alpha = cli.alpha;
  data_opts.validate();
  data = sfn::loadDataBundle(data_opts);
  sfn::Partition partition =
      sfn::makePartition(data_opts.partition, data.split.train, data.train.labelVector(),
                         data.train.num_classes, cli.of, cli.seed);
  return std::move(partition.at(static_cast<std::size_t>(cli.partition)));
}

// Rejected is an authentication refusal (3); stopping, by signal or by the server's Bye,
// is a normal end (0).
sfn::ExitCode outcomeExitCode(sfn::RunOutcome outcome) {
  return outcome == sfn::RunOutcome::kRejected ? sfn::ExitCode::kAuthRefused : sfn::ExitCode::kOk;
}

sfn::ExitCode runClient(const CliOptions& cli, const sfn::AppMain& app) {
  auto log = app.logger("info");
  sfn::ClientOptions opts = clientOptionsFrom(cli);
  sfn::ClientTransportFactory connect =
      sfn::zmqClientFactory(transportOptionsFrom(cli), nullptr, log, opts.name);

  sfn::setTorchThreads(cli.threads);
  const sfn::DesignSpace space = sfn::DesignSpace::preset(cli.preset);
  sfn::DataBundle data;
  sfn::IndexList shard = loadShard(cli, space, data);
  log->info("client {}: {} data, shard {} of {} ({} alpha {}, seed {}): {} samples", opts.name,
            cli.data, cli.partition, cli.of, cli.scheme, cli.alpha, cli.seed, shard.size());

  const sfn::StopSignal stop;
  sfn::ClientRunner runner(opts, space, data.train, std::move(shard), std::move(connect), log);
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
  pf->add_option("--out", p.out, "latency table file (JSON)")->capture_default_str();
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

// The server connection and the client's identity and timing.
void addConnectionOptions(CLI::App& app, CliOptions& cli) {
  app.add_option("--server", cli.server, "server endpoint, e.g. tcp://10.0.0.1:5555");
  app.add_option("--server-key", cli.server_key, "the server's public key file (server.pub)");
  app.add_option("--key", cli.key, "this client's key pair file from keygen (client.key)");
  app.add_flag("--insecure", cli.insecure,
               "no encryption or authentication (local development only; the server must "
               "run --insecure too)");
  app.add_option("--name", cli.name, "client name shown in logs (default client-<partition>)");
  app.add_option("--device-class", cli.device_class,
                 "device class reported to the server; selects its MACs budget")
      ->capture_default_str();
  app.add_option("--heartbeat-s", cli.heartbeat_s, "seconds between heartbeats")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--liveness-s", cli.liveness_s,
                 "reconnect and re-register after this many seconds without a server message "
                 "while idle (0 = never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--register-timeout-s", cli.register_timeout_s,
                 "seconds to wait for Welcome/Reject before reconnecting")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--backoff-max-s", cli.backoff_max_s,
                 "cap of the reconnect delay (starts at 1 s, doubles, +-20% jitter)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

// The local data shard and training.
void addDataOptions(CLI::App& app, CliOptions& cli) {
  app.add_option("--preset", cli.preset, "SuperNet design space; must match the server's")
      ->capture_default_str();
  app.add_option("--data", cli.data, "local data: fmnist | synthetic")
      ->check(CLI::IsMember({"fmnist", "synthetic"}))
      ->capture_default_str();
  app.add_option("--data-dir", cli.data_dir,
                 "Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)");
  app.add_option("--partition", cli.partition, "index of this client's shard, in [0, --of)")
      ->capture_default_str();
  app.add_option("--of", cli.of, "number of shards the training split is cut into")
      ->capture_default_str();
  app.add_option("--scheme", cli.scheme, "partition scheme: iid | dirichlet | shards")
      ->check(CLI::IsMember({"iid", "dirichlet", "shards"}))
      ->capture_default_str();
  app.add_option("--alpha", cli.alpha, "Dirichlet concentration (smaller = more label skew)")
      ->capture_default_str();
  app.add_option("--seed", cli.seed,
                 "seed of the validation split and the partition; must equal the server's "
                 "run.seed")
      ->capture_default_str();
  app.add_option("--val-fraction", cli.val_fraction,
                 "fraction of the training set held out for validation (as the server)")
      ->capture_default_str();
  app.add_option("--threads", cli.threads, "torch intra-op threads (<= 0 keeps torch's default)")
      ->capture_default_str();
  app.add_option("--device", cli.device, "torch device for local training (cpu, cuda:0)")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  sfn::AppMain app(
      "sfn-client",
      "sfn-client: SuperFedNAS federated client. Registers with sfn-server over ZeroMQ "
      "(CURVE-encrypted and authenticated unless --insecure), trains the SubNets it is "
      "assigned on its local data shard and reports the updates. Reconnects with backoff "
      "and re-registers when the server restarts. SIGINT/SIGTERM: say Bye and exit 0.\n"
      "Exit codes: 0 stopped, 1 runtime error, 2 usage or configuration error, 3 registration "
      "rejected by the server, 4 data or integrity error.");
  CLI::App& cli_app = app.cli();
  cli_app.require_subcommand(0, 1);
  auto* kg = cli_app.add_subcommand("keygen", "write a client CURVE key pair (never overwrites)");
  std::string kg_out = ".";
  kg->add_option("--out", kg_out, "folder for client.key (secret, mode 0600) and client.pub")
      ->capture_default_str();
  ProfileCli pcli;
  CLI::App* pf = addProfileCommand(cli_app, pcli);
  CliOptions cli;
  addConnectionOptions(cli_app, cli);
  addDataOptions(cli_app, cli);

  return app.run(argc, argv, [&] {
    if (kg->parsed())
      return sfn::runKeygen(kg_out, "client", sfn::KeyType::kCurve,
                            "add it to the server's allowlist");
    if (pf->parsed()) return profile(pcli);
    return runClient(cli, app);
  });
}
