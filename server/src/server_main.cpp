// sfn-server: the Coordinator over ZeroMQ (ROUTER, CURVE-authenticated by default).
#include "sfn/server/coordinator.h"
#include "sfn/io/crypto.h"
#include "sfn/data/data_source.h"
#include "sfn/core/error.h"
#include "sfn/train/evaluator.h"
#include "sfn/train/local_trainer.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"
#include "sfn/net/zmq_transport.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace {

// Set by SIGINT/SIGTERM; a signal handler can only reach process-wide state, so this flag
// is the one exception to "no file-scope mutable state". Read by main() alone.
volatile std::sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

int keygen(const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  const sfn::CurveKeyPair keys = sfn::generateCurveKeyPair();
  const auto secret = std::filesystem::path(out_dir) / "server.key";
  const auto pub = std::filesystem::path(out_dir) / "server.pub";
  sfn::writeKeyPairFile(secret, keys);
  sfn::writePublicKeyFile(pub, keys.public_key);
  std::cout << "server key pair: " << secret.string() << " (secret, mode 0600)\n"
            << "public key:      " << pub.string() << "\n"
            << keys.public_key << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sfn-server: SuperFedNAS aggregation server (Coordinator over ZeroMQ + CURVE)"};
  app.require_subcommand(0, 1);
  auto* kg = app.add_subcommand("keygen", "write a server CURVE key pair (server.key, server.pub)");
  std::string kg_out = ".";
  kg->add_option("--out", kg_out, "folder for server.key and server.pub");

  std::string config_path, run_dir, resume;
  std::vector<std::string> overrides;
  std::string bind, key_file, allowlist;
  bool insecure = false;
  int min_clients = 0;
  app.add_option("-c,--config", config_path, "run configuration (TOML; same format as sfn-sim)")
      ->check(CLI::ExistingFile);
  app.add_option("-s,--set", overrides, "override a config key: table.key=value (repeatable)");
  app.add_option("-o,--run-dir", run_dir, "run folder (metrics, checkpoints)");
  app.add_option("--resume", resume, "resume from this run folder or checkpoint file");
  app.add_option("--bind", bind, "endpoint to bind, e.g. tcp://0.0.0.0:5555 (server.bind)");
  app.add_option("--key", key_file, "server key pair file from keygen (server.key_file)");
  app.add_option("--allow", allowlist,
                 "file of allowed client public keys (server.allowlist_file)");
  app.add_flag("--insecure", insecure, "no encryption or authentication (local development only)");
  app.add_option("--min-clients", min_clients, "clients to wait for before round 0");
  CLI11_PARSE(app, argc, argv);
  if (kg->parsed()) return keygen(kg_out);
  if (config_path.empty()) {
    std::cerr << "sfn-server: --config is required (or use the keygen subcommand)\n";
    return 2;
  }

  try {
    sfn::RunConfig cfg = sfn::RunConfig::load(config_path, overrides);
    if (!bind.empty()) cfg.server.bind = bind;
    if (!key_file.empty()) cfg.server.key_file = key_file;
    if (!allowlist.empty()) cfg.server.allowlist_file = allowlist;
    if (insecure) cfg.server.insecure = true;
    if (min_clients > 0) cfg.server.min_clients = min_clients;
    auto log = spdlog::stderr_color_mt("sfn-server");
    log->set_level(spdlog::level::from_str(cfg.log_level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    sfn::setTorchThreads(cfg.torch_threads);
    if (run_dir.empty())
      run_dir = !resume.empty() && std::filesystem::is_directory(resume)
                    ? resume
                    : (std::filesystem::path(cfg.out_dir) / cfg.name).string();

    sfn::ZmqServerOptions zo;
    zo.bind_endpoint = cfg.server.bind;
    zo.insecure = cfg.server.insecure;
    if (zo.insecure) {
      log->warn("*** --insecure: traffic is NOT encrypted and clients are NOT authenticated ***");
    } else {
      if (cfg.server.key_file.empty() || cfg.server.allowlist_file.empty())
        SFN_THROW(sfn::ConfigError,
                  "server.key_file and server.allowlist_file are required unless --insecure");
      zo.server_keys = sfn::readKeyFile(cfg.server.key_file);
      zo.allowed_client_keys = sfn::readPublicKeys(cfg.server.allowlist_file);
      log->info("CURVE on; {} allowed client keys", zo.allowed_client_keys.size());
    }
    auto transport = sfn::makeZmqServer(zo);
    log->info("listening on {}", transport->endpoint());
    // The endpoint file lets scripts and tests find an ephemeral port.
    std::filesystem::create_directories(run_dir);
    std::ofstream(std::filesystem::path(run_dir) / "endpoint") << transport->endpoint() << '\n';

    sfn::DataBundle data = sfn::loadDataBundle(cfg.data);
    sfn::Evaluator val_eval(data.train, data.split.val, data.split.train, 1000, cfg.device);
    sfn::SteadyClock clock;
    sfn::Coordinator coord(cfg.coordinator, sfn::SuperNet(cfg.space, cfg.seed), *transport, clock,
                           &val_eval, log);
    sfn::RunRecorder recorder(run_dir, sfn::evalTargetNames(cfg.coordinator.eval_subnets),
                              cfg.checkpoint_keep, cfg.runInfo(config_path));
    if (!resume.empty()) {
      const std::string file = recorder.resumeFrom(resume, coord);
      // The digest lets operators (and tests/integration) confirm which bytes were loaded.
      log->info("resumed at round {} from {} (sha256 {})", coord.round(), file,
                sfn::toHex(sfn::sha256File(file)));
    } else if (cfg.checkpoint_every > 0) {
      // The starting SuperNet, so that every round's change can be audited against the
      // SubNets it trained (tests/integration/check_run.cpp) and round 0 can be rerun.
      log->info("checkpoint {}", recorder.checkpoint(coord));
    }
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);

    while (!g_stop && coord.round() < cfg.rounds) {
      if (!coord.waitForClients(static_cast<std::size_t>(cfg.server.min_clients), 1.0)) {
        continue;  // keep serving registrations; the loop re-checks the stop flag every second
      }
      sfn::RoundMetrics m = coord.runRound();
      recorder.appendMetrics(m);
      if (cfg.checkpoint_every > 0 && coord.round() % cfg.checkpoint_every == 0) {
        const std::string path = recorder.checkpoint(coord);
        log->info("checkpoint {}", path);
      }
    }
    const std::string path = recorder.checkpoint(coord);
    log->info("{}; checkpoint {}", g_stop ? "stopped by signal" : "training finished", path);
    coord.sayGoodbye(g_stop ? "server stopping" : "training finished");
    std::cout << "run folder: " << run_dir << std::endl;
    return g_stop ? 130 : 0;
  } catch (const sfn::ConfigError& e) {
    std::cerr << "sfn-server: configuration error: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sfn-server: " << e.what() << std::endl;
    return 1;
  }
}
