// A run's whole configuration, read from one TOML file (experiments/configs/*.toml) with
// CLI overrides applied on top, validated once, then handed to the pieces that need it.
// Unknown tables or keys are errors that name the key, so typos never pass silently.
//
// Tables: [run] [supernet] [data] [round] [weighting] [train] [eval] [checkpoint]
// [devices.<class>] [simulation] [server] [robust]. See experiments/configs/fmnist-default.toml for
// every key with its default.
#pragma once

#include "sfn/app/http_server.h"
#include "sfn/server/coordinator_options.h"
#include "sfn/data/data_source.h"
#include "sfn/model/design_space.h"
#include "sfn/net/peer_rate_limiter.h"
#include "sfn/net/pending_connections.h"
#include "sfn/train/evaluator.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

// How the simulator's virtual clock charges a training task (simulation.compute_time).
enum class ComputeTimeMode {
  kMacs,      // 3 x MACs x samples x epochs / device GMAC/s: deterministic, load-independent
  kMeasured,  // measured host time x the device's speed factor
};
std::string_view toString(ComputeTimeMode mode);
// "macs" | "measured"; throws ConfigError naming simulation.compute_time otherwise.
ComputeTimeMode parseComputeTimeMode(std::string_view text);

struct SimulationSection {
  std::int64_t clients = 100;
  int workers = 1;
  int torch_threads = 2;
  std::string devices_file;  // device profiles TOML; empty = one default device
  ComputeTimeMode compute_time = ComputeTimeMode::kMacs;
};

struct ServerSection {
  std::string bind = "tcp://0.0.0.0:5555";
  std::string key_file;        // server CURVE key pair (sfn-server keygen)
  std::string allowlist_file;  // client public keys, one per line
  bool insecure = false;       // plaintext and unauthenticated: local development only
  // Clients to wait for before each round. The server waits as long as it takes, saying so
  // every few seconds ("waiting for N clients (have M)"); SIGTERM ends the wait.
  int min_clients = 2;
  // TCP connections allowed in their handshake (not yet authenticated) at once; beyond it the
  // oldest are closed. 0: no cap. See ZmqServerOptions::max_pending_connections.
  int max_pending_connections = kDefaultMaxPendingConnections;
  // [server.rate_limit]: each client key's receive budget (messages_per_s, message_burst,
  // bytes_per_s, bytes_burst, sustained_s, cut_off_s, enabled); see peer_rate_limiter.h.
  RateLimitOptions rate_limit;
};

struct HttpSection {
  std::string listen = kDefaultHttpListen;  // HOST:PORT of the operator endpoint, or "off"
};

struct RunConfig {
  std::string name = "run";
  std::uint64_t seed = 1;
  std::int64_t rounds = 20;
  std::string out_dir = "runs";
  int torch_threads = 2;
  std::string device = "cpu";
  std::string log_level = "info";

  DesignSpace space;               // [supernet]: preset = "fmnist" plus any DesignSpace key
  DataOptions data;                // [data]
  CoordinatorOptions coordinator;  // [round] [weighting] [train] [eval] [devices.*]
  // [eval] batch_size, bn_samples: how every evaluation of the run scores (bench_sim eval).
  int eval_batch_size = 500;
  int eval_bn_samples = 2000;  // trainable BN: training images each SubNet is calibrated on
  int checkpoint_every = 5;    // [checkpoint] every (0 = only at the end)
  int checkpoint_keep = 3;
  SimulationSection simulation;
  ServerSection server;  // [server], sfn-server only
  HttpSection http;      // [http]: /metrics, /healthz, /readyz, /status and the dashboard

  // Reads `path`. Relative paths inside it (data.dir, simulation.devices_file,
  // server.key_file, server.allowlist_file) are resolved against its folder; run.out_dir is
  // where runs are written, relative to the working directory. Throws ConfigError naming
  // the file and key (unknown keys, wrong types, invalid values), IoError if unreadable.
  static RunConfig load(const std::string& path);
  static RunConfig parse(const std::string& toml_text, const std::string& origin,
                         const std::string& base_dir = ".");
  // Applies "table.key=value" overrides (TOML value syntax), e.g. "round.clients_per_round=5".
  // Paths given this way are relative to the working directory.
  static RunConfig parse(const std::string& toml_text, const std::string& origin,
                         const std::string& base_dir, const std::vector<std::string>& overrides);
  static RunConfig load(const std::string& path, const std::vector<std::string>& overrides);

  // Each value alone: ranges, names (run.log_level: spdlog's level names), run.device (a
  // torch device this LibTorch build can use: a CUDA device needs CUDA). Called by parse()
  // and load(). Throws ConfigError naming the key.
  void validate() const;
  // Start-up checks of settings against each other and this machine, for the binary that
  // uses them; `cores` is std::thread::hardware_concurrency(). Throw ConfigError naming the
  // keys.
  // sfn-server: run.torch_threads <= cores.
  void checkServerStart(unsigned cores) const;
  // sfn-sim --connect (a fleet of real clients): simulation.workers x
  // simulation.torch_threads <= cores.
  void checkFleetStart(unsigned cores) const;
  // sfn-sim: as checkFleetStart, and round.clients_per_round <= simulation.clients (a round
  // cannot select more clients than the simulation has).
  void checkSimulationStart(unsigned cores) const;
  // The evaluators' options on cfg.device, with `threads` torch threads while scoring.
  // With `stop`, evaluations end early (Interrupted) once it is set.
  EvalOptions evalOptions(int threads, const std::atomic<bool>* stop = nullptr) const;
  // The effective settings as TOML (every table and key, defaults included; paths
  // absolute), the form a run folder's config.toml records: parse() of it gives this
  // configuration back. Keys derived from others (weighting.bT, weighting.decay_rounds,
  // train.lr_final, train.lr_decay_rounds) are written out, so the text alone fixes the run.
  std::string toToml() const;
  // What checkpoints record about the run so tools reading them (sfn-search) can rebuild
  // the same data split.
  nlohmann::json runInfo(const std::string& config_path) const;
};

}  // namespace sfn
