#include "sfn/server/run_config.h"

#include "sfn/core/error.h"
#include "sfn/io/toml_reader.h"
#include "sfn/train/local_trainer.h"

#include <spdlog/common.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

namespace sfn {

std::string_view toString(ComputeTimeMode mode) {
  return mode == ComputeTimeMode::kMeasured ? "measured" : "macs";
}

ComputeTimeMode parseComputeTimeMode(std::string_view text) {
  if (text == "macs") return ComputeTimeMode::kMacs;
  if (text == "measured") return ComputeTimeMode::kMeasured;
  SFN_THROW(ConfigError, "simulation.compute_time must be \"macs\" or \"measured\" (got \"", text,
            "\")");
}

namespace {

// The tables of a run config, each read by one function below: it reads the keys it knows
// (absent keys keep their defaults), then rejects any other key of its table.
constexpr std::string_view kTables[] = {"run",    "supernet", "data",       "round",   "weighting",
                                        "train",  "eval",     "checkpoint", "devices", "simulation",
                                        "server", "robust",   "http"};

void readRun(TomlReader t, RunConfig& c) {
  t.get("name", c.name);
  t.get("seed", c.seed);
  t.get("rounds", c.rounds);
  t.get("out_dir", c.out_dir);  // where runs are written: relative to the working directory
  t.get("torch_threads", c.torch_threads);
  t.get("device", c.device);
  t.get("log_level", c.log_level);
  t.rejectUnknown();
}

// [supernet] preset = "fmnist", then any DesignSpace key overrides the preset.
void readSupernet(TomlReader t, RunConfig& c) {
  std::string preset = "fmnist";
  t.get("preset", preset);
  c.space = DesignSpace::read(t, DesignSpace::preset(preset));
}

void readData(TomlReader t, DataOptions& d) {
  t.get("dataset", d.dataset);
  t.getPath("dir", d.dir);
  t.get("val_fraction", d.val_fraction);
  t.get("split_seed", d.split_seed);
  t.get("synthetic_train", d.synthetic_train);
  t.get("synthetic_test", d.synthetic_test);
  t.get("synthetic_channels", d.synthetic_channels);
  t.get("synthetic_image_size", d.synthetic_image_size);
  t.get("synthetic_classes", d.synthetic_classes);
  t.get("partition", d.partition.scheme);
  t.get("alpha", d.partition.alpha);
  t.get("shards_per_client", d.partition.shards_per_client);
  t.get("min_samples", d.partition.min_samples);
  t.rejectUnknown();
}

void readRound(TomlReader t, CoordinatorOptions& co) {
  t.get("clients_per_round", co.clients_per_round);
  t.get("over_selection", co.over_selection);
  t.get("quorum", co.quorum);
  t.get("deadline_s", co.round_deadline_s);
  t.get("liveness_s", co.liveness_s);
  t.get("select_within_s", co.select_within_s);
  if (std::string policy; t.get("policy", policy)) co.policy = parseAssignPolicy(policy);
  t.get("fixed_subnet", co.fixed_subnet);
  t.get("max_samples_per_client", co.max_samples_per_client);
  t.rejectUnknown();
}

// As the authors do, the MaxNet weight decays to 1/K (plain uniform averaging over K
// clients) over 80 % of the rounds and then holds there, unless bT or decay_rounds are set.
// Needs [round] and [run] read first: the defaults follow clients_per_round and rounds.
void readWeighting(TomlReader t, WeightingOptions& w, int clients_per_round, std::int64_t rounds) {
  t.get("base", w.base);
  t.get("maxnet_beta", w.maxnet_beta);
  t.get("b0", w.b0);
  w.bT = defaultFinalBeta(clients_per_round);
  t.get("bT", w.bT);
  w.decay_rounds = defaultDecayRounds(rounds);
  t.get("decay_rounds", w.decay_rounds);
  t.rejectUnknown();
}

// The cosine schedule ends at a tenth of lr after all rounds unless lr_final or
// lr_decay_rounds are set. Needs [run] read first: the default length follows rounds.
void readTrain(TomlReader t, TrainOptions& train, LrSchedule& schedule, std::int64_t rounds) {
  t.get("epochs", train.epochs);
  t.get("batch_size", train.batch_size);
  t.get("lr", train.lr);
  t.get("momentum", train.momentum);
  t.get("weight_decay", train.weight_decay);
  t.get("clip_grad_norm", train.clip_grad_norm);
  if (std::string kind; t.get("lr_schedule", kind)) schedule.kind = parseLrScheduleKind(kind);
  schedule.final_lr = 0.1 * train.lr;
  t.get("lr_final", schedule.final_lr);
  schedule.decay_rounds = static_cast<double>(rounds);
  t.get("lr_decay_rounds", schedule.decay_rounds);
  t.rejectUnknown();
}

void readEvalAndCheckpoint(TomlReader eval, TomlReader checkpoint, RunConfig& c) {
  eval.get("every", c.coordinator.eval_every);
  eval.get("subnets", c.coordinator.eval_subnets);
  eval.get("batch_size", c.eval_batch_size);
  eval.get("bn_samples", c.eval_bn_samples);
  eval.rejectUnknown();
  checkpoint.get("every", c.checkpoint_every);
  checkpoint.get("keep", c.checkpoint_keep);
  checkpoint.rejectUnknown();
}

// [devices.<class>] macs_budget = N, one table per device class.
void readDevices(TomlReader t, std::map<std::string, std::int64_t>& budgets) {
  for (const std::string& cls : t.keys()) {
    TomlReader one = t.table(cls);
    std::int64_t budget = 0;
    one.get("macs_budget", budget);
    one.rejectUnknown();
    budgets[cls] = budget;
  }
}

void readSimulation(TomlReader t, SimulationSection& sim) {
  t.get("clients", sim.clients);
  t.get("workers", sim.workers);
  t.get("torch_threads", sim.torch_threads);
  t.getPath("devices_file", sim.devices_file);
  if (std::string mode; t.get("compute_time", mode)) sim.compute_time = parseComputeTimeMode(mode);
  t.rejectUnknown();
}

void readSeconds(TomlReader& t, std::string_view key, std::chrono::milliseconds& out) {
  double s = 0;
  if (!t.get(key, s)) return;
  if (!(s >= 0 && s <= 1e9))
    SFN_THROW(ConfigError, t.where(key), " must be in [0, 1e9] s (got ", s, ")");
  out = std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

void readRateLimit(TomlReader t, RateLimitOptions& r) {
  t.get("enabled", r.enabled);
  t.get("messages_per_s", r.messages_per_s);
  t.get("message_burst", r.message_burst);
  t.get("bytes_per_s", r.bytes_per_s);
  t.get("bytes_burst", r.bytes_burst);
  readSeconds(t, "sustained_s", r.sustained);
  readSeconds(t, "cut_off_s", r.cut_off);
  t.rejectUnknown();
}

void readServer(TomlReader t, ServerSection& server) {
  t.get("bind", server.bind);
  t.getPath("key_file", server.key_file);
  t.getPath("allowlist_file", server.allowlist_file);
  t.get("insecure", server.insecure);
  t.get("min_clients", server.min_clients);
  t.get("max_pending_connections", server.max_pending_connections);
  readRateLimit(t.table("rate_limit"), server.rate_limit);
  t.rejectUnknown();
}

void readHttp(TomlReader t, HttpSection& http) {
  t.get("listen", http.listen);
  (void)parseHttpListen(http.listen, t.where("listen"));  // ConfigError naming the key
  t.rejectUnknown();
}

// Overrides are applied first, so they are checked like keys of the file.
RunConfig readConfig(TomlReader root, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) root.applyOverride(o);
  for (const std::string_view table : kTables) (void)root.has(table);
  root.rejectUnknown();

  RunConfig c;
  CoordinatorOptions& co = c.coordinator;
  readRun(root.table("run"), c);
  readSupernet(root.table("supernet"), c);
  readData(root.table("data"), c.data);
  readRound(root.table("round"), co);
  readWeighting(root.table("weighting"), co.weighting, co.clients_per_round, c.rounds);
  readTrain(root.table("train"), co.train, co.lr_schedule, c.rounds);
  readEvalAndCheckpoint(root.table("eval"), root.table("checkpoint"), c);
  readDevices(root.table("devices"), co.device_macs_budget);
  readSimulation(root.table("simulation"), c.simulation);
  readServer(root.table("server"), c.server);
  readRobust(root.table("robust"), co.robust);
  readHttp(root.table("http"), c.http);
  co.train.device = c.device;
  co.seed = c.seed;
  co.run_id = c.name;
  c.data.split_seed = c.data.split_seed ? c.data.split_seed : c.seed;
  c.validate();
  return c;
}

// spdlog's level names, the only values run.log_level (and --log-level) may take.
void checkLogLevel(const std::string& level) {
  // from_str answers "off" for any name it does not know.
  if (spdlog::level::from_str(level) != spdlog::level::off || level == "off") return;
  std::string names;
  for (int l = 0; l < spdlog::level::n_levels; ++l) {
    const auto name = spdlog::level::to_string_view(static_cast<spdlog::level::level_enum>(l));
    names += (l > 0 ? ", " : "") + std::string(name.data(), name.size());
  }
  SFN_THROW(ConfigError, "run.log_level must be one of ", names, " (got \"", level, "\")");
}

// `threads` of one pool (or workers x threads) against the machine's cores.
void checkThreads(std::int64_t threads, const char* what, unsigned cores) {
  if (threads > static_cast<std::int64_t>(std::max(1u, cores)))
    SFN_THROW(ConfigError, what, " = ", threads, " exceeds the ", std::max(1u, cores),
              " cores of this machine");
}

// ---- toToml: one function per table, the mirror of the readers above ----

template <typename T>
toml::array tomlArray(const std::vector<T>& values) {
  toml::array a;
  for (const T& v : values) a.push_back(v);
  return a;
}

// Absolute, so the record means the same file wherever it is read from.
std::string absolutePath(const std::string& path) {
  return path.empty() ? path : std::filesystem::absolute(path).lexically_normal().string();
}

// TOML integers are signed 64-bit; the readers refuse larger values, so none is held.
std::int64_t tomlInt(std::uint64_t v) { return static_cast<std::int64_t>(v); }

toml::table runToml(const RunConfig& c) {
  return toml::table{
      {"name", c.name},          {"seed", tomlInt(c.seed)},          {"rounds", c.rounds},
      {"out_dir", c.out_dir},    {"torch_threads", c.torch_threads}, {"device", c.device},
      {"log_level", c.log_level}};
}

toml::table dataToml(const DataOptions& d) {
  return toml::table{{"dataset", d.dataset},
                     {"dir", absolutePath(d.dir)},
                     {"val_fraction", d.val_fraction},
                     {"split_seed", tomlInt(d.split_seed)},
                     {"synthetic_train", d.synthetic_train},
                     {"synthetic_test", d.synthetic_test},
                     {"synthetic_channels", d.synthetic_channels},
                     {"synthetic_image_size", d.synthetic_image_size},
                     {"synthetic_classes", d.synthetic_classes},
                     {"partition", d.partition.scheme},
                     {"alpha", d.partition.alpha},
                     {"shards_per_client", d.partition.shards_per_client},
                     {"min_samples", d.partition.min_samples}};
}

toml::table roundToml(const CoordinatorOptions& co) {
  return toml::table{{"clients_per_round", co.clients_per_round},
                     {"over_selection", co.over_selection},
                     {"quorum", co.quorum},
                     {"deadline_s", co.round_deadline_s},
                     {"liveness_s", co.liveness_s},
                     {"select_within_s", co.select_within_s},
                     {"policy", toString(co.policy)},
                     {"fixed_subnet", co.fixed_subnet},
                     {"max_samples_per_client", tomlInt(co.max_samples_per_client)}};
}

toml::table trainToml(const TrainOptions& t, const LrSchedule& s) {
  return toml::table{{"epochs", t.epochs},
                     {"batch_size", t.batch_size},
                     {"lr", t.lr},
                     {"momentum", t.momentum},
                     {"weight_decay", t.weight_decay},
                     {"clip_grad_norm", t.clip_grad_norm},
                     {"lr_schedule", std::string(toString(s.kind))},
                     {"lr_final", s.final_lr},
                     {"lr_decay_rounds", s.decay_rounds}};
}

toml::table robustToml(const RobustOptions& r) {
  return toml::table{{"bound_multiple", r.bound.multiple},
                     {"bound_cap", r.bound.cap},
                     {"bound_min_history", r.bound.min_history},
                     {"bound_window", r.bound.window},
                     {"bound_per_tensor", r.bound.per_tensor},
                     {"clip_norm", r.clip_norm},
                     {"trim_fraction", r.trim_fraction},
                     {"probe_samples", r.probe_samples},
                     {"probe_loss_multiple", r.probe_loss_multiple},
                     {"probe_loss_cap", r.probe_loss_cap},
                     {"quarantine_rounds", r.quarantine_rounds},
                     {"backoff_after", r.backoff_after},
                     {"backoff_base_s", r.backoff_base_s},
                     {"backoff_max_s", r.backoff_max_s}};
}

toml::table rateLimitToml(const RateLimitOptions& r) {
  const auto seconds = [](std::chrono::milliseconds ms) { return ms.count() / 1000.0; };
  return toml::table{{"enabled", r.enabled},
                     {"messages_per_s", r.messages_per_s},
                     {"message_burst", r.message_burst},
                     {"bytes_per_s", r.bytes_per_s},
                     {"bytes_burst", r.bytes_burst},
                     {"sustained_s", seconds(r.sustained)},
                     {"cut_off_s", seconds(r.cut_off)}};
}

// The tables that need no more than a line each.
void addSmallTables(const RunConfig& c, toml::table& t) {
  const WeightingOptions& w = c.coordinator.weighting;
  t.insert("weighting", toml::table{{"base", w.base},
                                    {"maxnet_beta", w.maxnet_beta},
                                    {"b0", w.b0},
                                    {"bT", w.bT},
                                    {"decay_rounds", w.decay_rounds}});
  t.insert("eval", toml::table{{"every", c.coordinator.eval_every},
                               {"subnets", tomlArray(c.coordinator.eval_subnets)},
                               {"batch_size", c.eval_batch_size},
                               {"bn_samples", c.eval_bn_samples}});
  t.insert("checkpoint", toml::table{{"every", c.checkpoint_every}, {"keep", c.checkpoint_keep}});
  toml::table devices;
  for (const auto& [cls, budget] : c.coordinator.device_macs_budget)
    devices.insert(cls, toml::table{{"macs_budget", budget}});
  t.insert("devices", std::move(devices));
  const SimulationSection& sim = c.simulation;
  t.insert("simulation", toml::table{{"clients", sim.clients},
                                     {"workers", sim.workers},
                                     {"torch_threads", sim.torch_threads},
                                     {"devices_file", absolutePath(sim.devices_file)},
                                     {"compute_time", std::string(toString(sim.compute_time))}});
  t.insert("server", toml::table{{"bind", c.server.bind},
                                 {"key_file", absolutePath(c.server.key_file)},
                                 {"allowlist_file", absolutePath(c.server.allowlist_file)},
                                 {"insecure", c.server.insecure},
                                 {"min_clients", c.server.min_clients},
                                 {"max_pending_connections", c.server.max_pending_connections},
                                 {"rate_limit", rateLimitToml(c.server.rate_limit)}});
  t.insert("http", toml::table{{"listen", c.http.listen}});
}

}  // namespace

std::string RunConfig::toToml() const {
  toml::table t;
  t.insert("run", runToml(*this));
  // The whole design space, so no preset (whose definition may change) is needed to read it.
  t.insert("supernet", toml::parse(space.toToml()));
  t.insert("data", dataToml(data));
  t.insert("round", roundToml(coordinator));
  t.insert("train", trainToml(coordinator.train, coordinator.lr_schedule));
  t.insert("robust", robustToml(coordinator.robust));
  addSmallTables(*this, t);
  std::ostringstream os;
  os << t << '\n';
  return os.str();
}

RunConfig RunConfig::parse(const std::string& toml_text, const std::string& origin,
                           const std::string& base_dir) {
  return parse(toml_text, origin, base_dir, {});
}

RunConfig RunConfig::parse(const std::string& toml_text, const std::string& origin,
                           const std::string& base_dir, const std::vector<std::string>& overrides) {
  return readConfig(TomlReader::parse(toml_text, origin, base_dir), overrides);
}

RunConfig RunConfig::load(const std::string& path) { return load(path, {}); }

RunConfig RunConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  return readConfig(TomlReader::load(path, "config file"), overrides);
}

nlohmann::json RunConfig::runInfo(const std::string& config_path) const {
  nlohmann::json info = {
      {"dataset", data.dataset},       {"data_dir", data.dir}, {"val_fraction", data.val_fraction},
      {"split_seed", data.split_seed}, {"seed", seed},         {"config", config_path}};
  // A synthetic set is defined by its size too; sfn-search rebuilds it from these.
  if (data.dataset == "synthetic") {
    info["synthetic_train"] = data.synthetic_train;
    info["synthetic_test"] = data.synthetic_test;
  }
  return info;
}

EvalOptions RunConfig::evalOptions(int threads, const std::atomic<bool>* stop) const {
  // Whole batches: the calibration takes at least bn_samples images.
  const int bn_batches = (eval_bn_samples + eval_batch_size - 1) / eval_batch_size;
  return EvalOptions{eval_batch_size, device, bn_batches, threads, stop};
}

void RunConfig::validate() const {
  if (rounds < 0) SFN_THROW(ConfigError, "run.rounds must be >= 0 (got ", rounds, ")");
  if (torch_threads < 1)
    SFN_THROW(ConfigError, "run.torch_threads must be >= 1 (got ", torch_threads, ")");
  checkLogLevel(log_level);
  checkTorchDevice(device, "run.device");
  if (checkpoint_every < 0) SFN_THROW(ConfigError, "checkpoint.every must be >= 0");
  if (eval_batch_size < 1) SFN_THROW(ConfigError, "eval.batch_size must be >= 1");
  if (eval_bn_samples < 1) SFN_THROW(ConfigError, "eval.bn_samples must be >= 1");
  if (checkpoint_keep < 1) SFN_THROW(ConfigError, "checkpoint.keep must be >= 1");
  if (simulation.clients < 1) SFN_THROW(ConfigError, "simulation.clients must be >= 1");
  if (simulation.workers < 1)
    SFN_THROW(ConfigError, "simulation.workers must be >= 1 (got ", simulation.workers, ")");
  if (simulation.torch_threads < 1)
    SFN_THROW(ConfigError, "simulation.torch_threads must be >= 1 (got ", simulation.torch_threads,
              ")");
  if (server.min_clients < 1)
    SFN_THROW(ConfigError, "server.min_clients must be >= 1 (got ", server.min_clients, ")");
  if (server.max_pending_connections < 0 ||
      server.max_pending_connections > kMaxPendingConnectionsLimit)
    SFN_THROW(ConfigError, "server.max_pending_connections must be in [0, ",
              kMaxPendingConnectionsLimit, "] (0: no cap; got ", server.max_pending_connections,
              ")");
  // Against the largest message too once the server knows it (sfn-server's transport).
  server.rate_limit.validate("server.rate_limit", 0);
  space.validate();
  data.validate();
  coordinator.validate();
}

void RunConfig::checkServerStart(unsigned cores) const {
  checkThreads(torch_threads, "run.torch_threads", cores);
}

void RunConfig::checkFleetStart(unsigned cores) const {
  // Two ints: their product always fits 64 bits.
  checkThreads(static_cast<std::int64_t>(simulation.workers) * simulation.torch_threads,
               "simulation.workers x simulation.torch_threads", cores);
}

void RunConfig::checkSimulationStart(unsigned cores) const {
  checkFleetStart(cores);
  if (coordinator.clients_per_round > simulation.clients)
    SFN_THROW(ConfigError, "round.clients_per_round = ", coordinator.clients_per_round,
              " exceeds simulation.clients = ", simulation.clients,
              ": no round could select that many clients");
}

}  // namespace sfn
