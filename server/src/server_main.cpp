// sfn-server: the Coordinator over ZeroMQ (ROUTER, CURVE-authenticated by default).
//
//   sfn-server -c CONFIG [--set k=v] [-o RUN] [--resume RUN] [--bind EP] [--key F] [--allow F]
//   sfn-server keygen -o DIR [--force]
#include "sfn/app/open_file_limit.h"
#include "sfn/app/app_main.h"
#include "sfn/app/key_files.h"
#include "sfn/app/stop_signal.h"
#include "sfn/core/error.h"
#include "sfn/core/hex.h"
#include "sfn/data/data_source.h"
#include "sfn/io/crypto.h"
#include "sfn/io/text_file.h"
#include "sfn/net/zmq_transport.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/federation.h"
#include "sfn/server/ops_endpoint.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"
#include "sfn/server/run_summary.h"
#include "sfn/server/shard_catalog.h"
#include "sfn/train/evaluator.h"
#include "sfn/train/local_trainer.h"
#include "sfn/wire/wire.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <thread>

namespace {

namespace fs = std::filesystem;

struct ServerArgs {
  std::string config_path;
  std::vector<std::string> overrides;  // --set, then the flags below as table.key=value
  std::string run_dir;
  std::string resume;
  std::string bind, key_file, allowlist;
  bool insecure = false;
  int min_clients = 0;
  std::string http;
  std::string keygen_out = ".";
  bool keygen_force = false;
};

void addOptions(sfn::AppMain& app, ServerArgs& a) {
  CLI::App& cli = app.cli();
  cli.add_option("-c,--config", a.config_path, "run configuration (TOML; same format as sfn-sim)")
      ->check(CLI::ExistingFile);
  cli.add_option("-s,--set", a.overrides, "override a config key: table.key=value (repeatable)");
  cli.add_option("-o,--out", a.run_dir,
                 "run folder: config, metrics, checkpoints, summary (default: "
                 "<run.out_dir>/<run.name>, or the --resume folder)");
  // The flag's name before the binaries were aligned on -o/--out; hidden, still accepted.
  app.addHiddenAlias("--run-dir", "--out");
  cli.add_option("--resume", a.resume,
                 "resume from this run folder or checkpoint file; only " +
                     sfn::RunRecorder::resumeSafeKeyText() +
                     " may differ from the run's config.toml (exit 2 otherwise)");
  cli.add_option("--bind", a.bind, "endpoint to bind, e.g. tcp://0.0.0.0:5555 (server.bind)");
  cli.add_option("--key", a.key_file, "server key pair file from keygen (server.key_file)");
  cli.add_option("--allow", a.allowlist,
                 "file of allowed client public keys (server.allowlist_file)");
  cli.add_flag("--insecure", a.insecure,
               "no encryption or authentication (local development only)");
  cli.add_option("--min-clients", a.min_clients,
                 "clients to wait for before each round (server.min_clients)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  cli.add_option("--http", a.http,
                 "operator endpoint HOST:PORT (/metrics, /healthz, /readyz, /status, dashboard "
                 "at /) or off (http.listen; default " +
                     std::string(sfn::kDefaultHttpListen) + ")");
}

// The setting flags as overrides, so they are applied and recorded (config.toml) like --set.
std::vector<std::string> effectiveOverrides(const ServerArgs& a) {
  std::vector<std::string> out = a.overrides;
  // A JSON string is a valid TOML basic string (same escapes).
  auto text = [](const std::string& s) { return nlohmann::json(s).dump(); };
  if (!a.bind.empty()) out.push_back("server.bind=" + text(a.bind));
  if (!a.key_file.empty()) out.push_back("server.key_file=" + text(a.key_file));
  if (!a.allowlist.empty()) out.push_back("server.allowlist_file=" + text(a.allowlist));
  if (a.insecure) out.push_back("server.insecure=true");
  if (a.min_clients > 0) out.push_back("server.min_clients=" + std::to_string(a.min_clients));
  if (!a.http.empty()) out.push_back("http.listen=" + text(a.http));
  return out;
}

// The largest message a client may send this run, as ZMQ_MAXMSGSIZE: the Update of a
// MaxNet slice (the whole SuperNet), encoded, plus half again and 16 MiB for everything
// else a client sends (a Register's latency table, metrics). Anything bigger is refused by
// libzmq as it arrives, before authentication too, instead of being buffered (issue 13 #4:
// 1 GiB frames claimed by unauthenticated peers).
std::int64_t largestClientMessage(const sfn::RunConfig& cfg) {
  sfn::UpdateMsg update;
  update.tensors = sfn::SuperNet(cfg.space, cfg.seed).tensors();
  const auto size = static_cast<std::int64_t>(sfn::encode(update)->size());
  return size + size / 2 + (std::int64_t{16} << 20);
}

// One open file per connected client: a soft limit below the allowlist's size would turn
// the clients beyond it away at accept() with no word in the log. Not an error: not every
// allowlisted client connects at once.
void warnIfTooFewFiles(std::size_t allowed_keys, spdlog::logger& log) {
  constexpr std::uint64_t kReserve = 256;  // data, checkpoints, logs, HTTP, LibTorch
  const std::uint64_t have = sfn::raiseOpenFileLimit();
  if (allowed_keys + kReserve > have)
    log.warn(
        "this process may open {} files (ulimit -n) but the allowlist has {} keys: at most "
        "about {} clients can be connected at once; raise the limit (LimitNOFILE= in the "
        "systemd unit)",
        have, allowed_keys, have > kReserve ? have - kReserve : 0);
}

std::unique_ptr<sfn::ZmqServerTransport> makeTransport(const sfn::RunConfig& cfg,
                                                       spdlog::logger& log) {
  sfn::ZmqServerOptions zo;
  zo.bind_endpoint = cfg.server.bind;
  zo.socket.max_message_bytes = largestClientMessage(cfg);
  zo.rate_limit = cfg.server.rate_limit;
  zo.rate_limit.validate("server.rate_limit", zo.socket.max_message_bytes);
  zo.max_pending_connections = cfg.server.max_pending_connections;
  log.info("largest client message accepted: {} bytes", zo.socket.max_message_bytes);
  zo.insecure = cfg.server.insecure;
  if (zo.insecure) {
    log.warn("*** --insecure: traffic is NOT encrypted and clients are NOT authenticated ***");
  } else {
    if (cfg.server.key_file.empty() || cfg.server.allowlist_file.empty())
      SFN_THROW(sfn::ConfigError,
                "server.key_file and server.allowlist_file are required unless --insecure");
    zo.server_keys = sfn::readKeyFile(cfg.server.key_file);
    zo.allowed_client_keys = sfn::readPublicKeys(cfg.server.allowlist_file);
    // No key, no client could ever register: the run would wait forever for min_clients.
    if (zo.allowed_client_keys.empty())
      SFN_THROW(sfn::ConfigError, "server.allowlist_file '", cfg.server.allowlist_file,
                "' holds no client public key: no client could register");
    log.info("CURVE on; {} allowed client keys", zo.allowed_client_keys.size());
    warnIfTooFewFiles(zo.allowed_client_keys.size(), log);
  }
  auto transport = sfn::makeZmqServer(zo);
  log.info("listening on {}", transport->endpoint());
  return transport;
}

// SIGHUP: server.allowlist_file again, without a restart. A file that cannot be read or
// holds no key leaves the list in force (logged, naming the file). Removed keys: ZAP
// refuses their handshakes, the transport drops what their open connections send, and the
// coordinator ends their sessions (task dropped, Bye, never selected again).
void reloadAllowlist(const sfn::RunConfig& cfg, sfn::ZmqServerTransport& transport,
                     sfn::Coordinator& coord, spdlog::logger& log) {
  const std::string& file = cfg.server.allowlist_file;
  if (cfg.server.insecure) {
    log.warn("SIGHUP: --insecure runs without an allowlist; nothing to reload");
    return;
  }
  sfn::AllowlistChange change;
  try {
    const std::vector<std::string> keys = sfn::readPublicKeys(file);
    if (keys.empty()) SFN_THROW(sfn::ConfigError, "it holds no client public key");
    change = transport.setAllowedKeys(keys);
  } catch (const sfn::Error& e) {
    log.error("SIGHUP: allowlist '{}' not reloaded, the previous list stays in force: {}", file,
              e.what());
    return;
  }
  for (const auto& key : change.removed)
    coord.revoke(key, "client key revoked: removed from the server's allowlist");
  for (const auto& key : change.added) coord.reinstate(key);
  std::string removed;
  for (const auto& key : change.removed) removed += (removed.empty() ? ": " : ", ") + key;
  log.info("allowlist '{}' reloaded (SIGHUP): {} keys added, {} removed{}", file,
           change.added.size(), change.removed.size(), removed);
}

// The coordinator polls the SIGHUP flag in its waits; all references outlive the run.
void reloadAllowlistOnSighup(const sfn::StopSignal& stop, const sfn::RunConfig& cfg,
                             sfn::ZmqServerTransport& transport, sfn::Coordinator& coord,
                             std::shared_ptr<spdlog::logger> log) {
  coord.setPollHook([&stop, &cfg, &transport, &coord, log] {
    if (stop.takeReloadRequest()) reloadAllowlist(cfg, transport, coord, *log);
  });
}

// Restores the coordinator from --resume, if given; the digest lets operators (and
// tests/integration) confirm which bytes were loaded.
void resumeIfAsked(const std::string& resume, const std::vector<std::string>& notes,
                   sfn::RunRecorder& recorder, sfn::Coordinator& coord, spdlog::logger& log) {
  if (resume.empty()) return;
  for (const std::string& note : notes) log.info("--resume: {}", note);
  const std::string file = recorder.resumeFrom(resume, coord);
  log.info("resumed at round {} from {} (sha256 {})", coord.round(), file,
           sfn::toHex(sfn::sha256File(file)));
}

// The settings to run with: -c, --set and the flags; a resumed run must keep those it
// computes with (exit 2 otherwise).
sfn::ResumedConfig runSettings(const ServerArgs& a) {
  sfn::RunConfig given = sfn::RunConfig::load(a.config_path, effectiveOverrides(a));
  if (a.resume.empty()) return {std::move(given), {}};
  return sfn::RunRecorder::resumeConfig(a.resume, given,
                                        fs::path(a.config_path).parent_path().string());
}

// Everything after the command line: set up, run the federation, report.
// Shows the transport's counters on /metrics while the transport lives: declared after the
// transport, so it detaches them first (the endpoint outlives the transport).
class TransportMetricsLink {
 public:
  TransportMetricsLink(sfn::OpsEndpoint& ops, const sfn::ZmqServerTransport& t) : ops_(ops) {
    ops_.setTransportCounters([&t] {
      return sfn::TransportCounters{
          t.refusedHandshakes(), t.revokedMessages(), t.rateLimitedMessages(),
          t.cutOffMessages(),    t.backlogDrops(),    t.cutOffs(),
          t.queueFullSends(),    t.pendingClosed(),   t.pendingConnections()};
    });
  }
  ~TransportMetricsLink() { ops_.setTransportCounters(nullptr); }
  TransportMetricsLink(const TransportMetricsLink&) = delete;
  TransportMetricsLink& operator=(const TransportMetricsLink&) = delete;

 private:
  sfn::OpsEndpoint& ops_;
};

bool serve(const sfn::AppMain& app, const ServerArgs& a, const sfn::StopSignal& stop) {
  const auto t0 = std::chrono::steady_clock::now();
  const sfn::ResumedConfig settings = runSettings(a);
  const sfn::RunConfig& cfg = settings.config;
  const auto log = app.logger(cfg.log_level);
  cfg.checkServerStart(std::thread::hardware_concurrency());
  sfn::setTorchThreads(cfg.torch_threads);
  const std::string run_dir = !a.run_dir.empty() ? a.run_dir
                              : !a.resume.empty() && fs::is_directory(a.resume)
                                  ? a.resume
                                  : (fs::path(cfg.out_dir) / cfg.name).string();
  // Before anything is bound or loaded: a folder that holds another run is refused at once.
  sfn::RunRecorder recorder(run_dir, sfn::evalTargetNames(cfg.coordinator.eval_subnets),
                            cfg.checkpoint_keep, cfg.runInfo(a.config_path),
                            a.resume.empty() ? sfn::RunStart::kNew : sfn::RunStart::kResume);
  // Up before the data loads: /healthz answers at once, /readyz once clients are accepted.
  sfn::OpsEndpoint ops(cfg.http.listen, "http.listen (--http)", cfg.name, cfg.rounds, log);
  ops.writeEndpointFile(run_dir);
  auto transport = makeTransport(cfg, *log);
  const TransportMetricsLink transport_metrics(ops, *transport);
  fs::create_directories(run_dir);
  std::ofstream(fs::path(run_dir) / "endpoint") << transport->endpoint() << '\n';  // for scripts

  const sfn::DataBundle data = sfn::loadDataBundle(cfg.data);
  const sfn::EvalOptions eval_options = cfg.evalOptions(cfg.torch_threads, &stop.flag());
  sfn::Evaluator val_eval = sfn::Evaluator::validation(data, eval_options);
  sfn::SteadyClock clock;
  sfn::Coordinator coord(cfg.coordinator, sfn::SuperNet(cfg.space, cfg.seed), *transport, clock,
                         &val_eval, log);
  coord.setHealthProbe(sfn::HealthProbe::validation(data, cfg.coordinator.robust.probe_samples));
  coord.setShardService(
      sfn::ShardCatalog::service(std::make_shared<sfn::ShardCatalog>(cfg.data, data, cfg.seed)));
  coord.setStopFlag(&stop.flag());
  reloadAllowlistOnSighup(stop, cfg, *transport, coord, log);
  resumeIfAsked(a.resume, settings.notes, recorder, coord, *log);
  recorder.writeConfig(cfg);

  sfn::FederationOptions fo = sfn::FederationOptions::from(cfg);
  fo.min_clients = static_cast<std::size_t>(cfg.server.min_clients);
  fo.log = log;
  ops.attach(coord);
  ops.hook(fo, coord);
  ops.setReady(true);
  const sfn::FederationResult result = sfn::runFederation(coord, recorder, fo, stop.flag());
  ops.setReady(false);
  const bool stopped = result.end == sfn::FederationEnd::kStopped;
  log->info("{}; checkpoint {}", stopped ? "stopped by signal" : "training finished",
            result.checkpoint);
  coord.sayGoodbye(stopped ? sfn::ByeCode::kStopping : sfn::ByeCode::kFinished,
                   stopped ? "server stopping" : "training finished");
  if (!stopped) {
    ops.setFinal(sfn::FinalEval::kRunning);
    const sfn::RunSummary summary = sfn::finishRun(
        coord, data, eval_options, val_eval, recorder, result.checkpoint,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ops.setFinal(sfn::FinalEval::kDone, summary.test);
  }
  std::cout << "run folder: " << run_dir << std::endl;
  return !stopped;
}

}  // namespace

int main(int argc, char** argv) {
  sfn::AppMain app("sfn-server",
                   "sfn-server: SuperFedNAS aggregation server (Coordinator over ZeroMQ + CURVE)",
                   "130 follows SIGINT/SIGTERM: a checkpoint is written, --resume continues.");
  ServerArgs args;
  addOptions(app, args);
  CLI::App& cli = app.cli();
  cli.require_subcommand(0, 1);
  auto* keygen =
      cli.add_subcommand("keygen", "write a server CURVE key pair (server.key, server.pub)");
  keygen->add_option("-o,--out", args.keygen_out, "folder for server.key and server.pub")
      ->capture_default_str();
  sfn::addKeygenForceFlag(*keygen, args.keygen_force);
  const int rc = app.run(argc, argv, [&] {
    if (keygen->parsed())
      return sfn::runKeygen(args.keygen_out, "server", sfn::KeyType::kCurve,
                            "give it to every client", args.keygen_force);
    if (args.config_path.empty())
      SFN_THROW(sfn::ConfigError, "--config is required (or use the keygen subcommand)");
    const sfn::StopSignal stop(sfn::StopSignal::Hangup::kReload);  // SIGHUP: allowlist
    return serve(app, args, stop) ? sfn::ExitCode::kOk : sfn::ExitCode::kInterrupted;
  });
  return rc;
}
