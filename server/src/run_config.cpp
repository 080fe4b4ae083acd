#include "sfn/server/run_config.h"

#include "sfn/core/error.h"
#include "sfn/io/toml_util.h"

#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace sfn {

std::string_view toString(ComputeTimeMode mode) {
  return mode == ComputeTimeMode::kMeasured ? "measured" : "macs";
}

ComputeTimeMode parseComputeTimeMode(std::string_view text) {
  if (text == "macs") return ComputeTimeMode::kMacs;
  if (text == "measured") return ComputeTimeMode::kMeasured;
  SFN_THROW(ConfigError, "simulation.compute_time must be \"macs\" or \"measured\" (got \"",
            text, "\")");
}

namespace {

// Reads typed values from one table and remembers which keys were used, so unknown keys
// can be reported with their full name.
class Table {
 public:
  Table(const toml::table* t, std::string prefix) : t_(t), prefix_(std::move(prefix)) {}

  template <typename T>
  void get(const char* key, T& out) {
    used_.insert(key);
    if (t_ == nullptr) return;
    const toml::node* n = t_->get(key);
    if (n == nullptr) return;
    if constexpr (std::is_same_v<T, bool>) {
      auto v = n->value<bool>();
      if (!v) fail(key, "expected true or false");
      out = *v;
    } else if constexpr (std::is_integral_v<T>) {
      if (!n->is_integer()) {
        // Allow 20e6 style numbers for large integers when they are whole.
        auto d = n->value<double>();
        if (!d || *d != static_cast<double>(static_cast<std::int64_t>(*d)))
          fail(key, "expected an integer");
        out = static_cast<T>(*d);
        return;
      }
      out = static_cast<T>(*n->value<std::int64_t>());
    } else if constexpr (std::is_floating_point_v<T>) {
      auto v = n->value<double>();
      if (!v) fail(key, "expected a number");
      out = *v;
    } else if constexpr (std::is_same_v<T, std::string>) {
      auto v = n->value<std::string>();
      if (!v) fail(key, "expected a string");
      out = *v;
    } else {
      const toml::array* a = n->as_array();
      if (a == nullptr) fail(key, "expected an array of strings");
      out.clear();
      for (const auto& el : *a) {
        auto v = el.value<std::string>();
        if (!v) fail(key, "expected an array of strings");
        out.push_back(*v);
      }
    }
  }

  void allowRest() { allow_rest_ = true; }

  void checkUnknown() const {
    if (t_ == nullptr || allow_rest_) return;
    for (const auto& [k, v] : *t_)
      if (!used_.count(std::string(k.str())))
        SFN_THROW(ConfigError, "unknown key '", prefix_, ".", k.str(), "'");
  }

  [[noreturn]] void fail(const char* key, const char* why) const {
    SFN_THROW(ConfigError, "config key '", prefix_, ".", key, "': ", why);
  }

 private:
  const toml::table* t_;
  std::string prefix_;
  std::set<std::string> used_;
  bool allow_rest_ = false;
};

std::string resolvePath(const std::string& p, const std::string& base_dir) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
  // Paths are relative to the config file, unless they exist relative to the working dir.
  if (std::filesystem::exists(p)) return p;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

// Sets a dotted key ("round.clients_per_round") in `root` to a TOML value given as text.
void applyOverride(toml::table& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    SFN_THROW(ConfigError, "override '", assignment, "': expected table.key=value");
  const std::string path = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    // Bare words are strings: round.policy=random.
    parsed = toml::table{{"v", value}};
  }
  toml::table* t = &root;
  std::string::size_type start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (dot == std::string::npos) {
      t->insert_or_assign(part, *parsed.get("v"));
      return;
    }
    if (!t->contains(part)) t->insert(part, toml::table{});
    t = (*t)[part].as_table();
    if (t == nullptr)
      SFN_THROW(ConfigError, "override '", assignment, "': ", part, " is not a table");
    start = dot + 1;
  }
}

}  // namespace

RunConfig RunConfig::parse(const std::string& toml_text, const std::string& origin,
                           const std::string& base_dir) {
  return parse(toml_text, origin, base_dir, {});
}

RunConfig RunConfig::parse(const std::string& toml_text, const std::string& origin,
                           const std::string& base_dir, const std::vector<std::string>& overrides) {
  toml::table root = parseToml(toml_text, origin);
  for (const auto& o : overrides) applyOverride(root, o);

  static const std::set<std::string> kTables = {"run",       "supernet",   "data",  "round",
                                                "weighting", "train",      "eval",  "checkpoint",
                                                "devices",   "simulation", "server"};
  for (const auto& [k, v] : root) {
    if (!kTables.count(std::string(k.str())))
      SFN_THROW(ConfigError, origin, ": unknown table or key '", k.str(), "'");
    if (!v.is_table()) SFN_THROW(ConfigError, origin, ": '", k.str(), "' must be a table");
  }
  auto table = [&](const char* name) { return root[name].as_table(); };

  RunConfig c;
  {
    Table t(table("run"), "run");
    t.get("name", c.name);
    t.get("seed", c.seed);
    t.get("rounds", c.rounds);
    t.get("out_dir", c.out_dir);
    t.get("torch_threads", c.torch_threads);
    t.get("device", c.device);
    t.get("log_level", c.log_level);
    t.checkUnknown();
  }
  {
    // [supernet] preset = "fmnist", then any DesignSpace key overrides the preset.
    const toml::table* st = table("supernet");
    std::string preset = "fmnist";
    toml::table rest;
    if (st) {
      for (const auto& [k, v] : *st) {
        if (k.str() == "preset") {
          auto p = v.value<std::string>();
          if (!p) SFN_THROW(ConfigError, "config key 'supernet.preset': expected a string");
          preset = *p;
        } else {
          rest.insert(k, v);
        }
      }
    }
    std::ostringstream os;
    os << rest;
    try {
      c.space = DesignSpace::fromToml(os.str(), DesignSpace::preset(preset));
    } catch (const ConfigError& e) {
      SFN_THROW(ConfigError, "[supernet] ", e.what());
    }
  }
  {
    Table t(table("data"), "data");
    t.get("dataset", c.data.dataset);
    t.get("dir", c.data.dir);
    t.get("val_fraction", c.data.val_fraction);
    t.get("split_seed", c.data.split_seed);
    t.get("synthetic_train", c.data.synthetic_train);
    t.get("synthetic_test", c.data.synthetic_test);
    t.get("synthetic_channels", c.data.synthetic_channels);
    t.get("synthetic_image_size", c.data.synthetic_image_size);
    t.get("synthetic_classes", c.data.synthetic_classes);
    t.get("partition", c.data.partition.scheme);
    t.get("alpha", c.data.partition.alpha);
    t.get("shards_per_client", c.data.partition.shards_per_client);
    t.get("min_samples", c.data.partition.min_samples);
    t.checkUnknown();
    c.data.dir = resolvePath(c.data.dir, base_dir);
  }
  CoordinatorOptions& co = c.coordinator;
  {
    Table t(table("round"), "round");
    t.get("clients_per_round", co.clients_per_round);
    t.get("over_selection", co.over_selection);
    t.get("quorum", co.quorum);
    t.get("deadline_s", co.round_deadline_s);
    t.get("liveness_s", co.liveness_s);
    std::string policy = toString(co.policy);
    t.get("policy", policy);
    co.policy = parseAssignPolicy(policy);
    t.get("fixed_subnet", co.fixed_subnet);
    t.get("max_samples_per_client", co.max_samples_per_client);
    t.checkUnknown();
  }
  {
    Table t(table("weighting"), "weighting");
    t.get("base", co.weighting.base);
    t.get("maxnet_beta", co.weighting.maxnet_beta);
    t.get("b0", co.weighting.b0);
    t.get("bT", co.weighting.bT);
    co.weighting.decay_rounds = static_cast<double>(c.rounds);  // paper: decay over training
    t.get("decay_rounds", co.weighting.decay_rounds);
    t.checkUnknown();
  }
  {
    Table t(table("train"), "train");
    t.get("epochs", co.train.epochs);
    t.get("batch_size", co.train.batch_size);
    t.get("lr", co.train.lr);
    t.get("momentum", co.train.momentum);
    t.get("weight_decay", co.train.weight_decay);
    t.get("clip_grad_norm", co.train.clip_grad_norm);
    t.checkUnknown();
    co.train.device = c.device;
  }
  {
    Table t(table("eval"), "eval");
    t.get("every", co.eval_every);
    t.get("subnets", co.eval_subnets);
    t.checkUnknown();
  }
  {
    Table t(table("checkpoint"), "checkpoint");
    t.get("every", c.checkpoint_every);
    t.get("keep", c.checkpoint_keep);
    t.checkUnknown();
  }
  if (const toml::table* dt = table("devices")) {
    for (const auto& [cls, v] : *dt) {
      const toml::table* one = v.as_table();
      if (one == nullptr) SFN_THROW(ConfigError, "devices.", cls.str(), " must be a table");
      Table t(one, "devices." + std::string(cls.str()));
      std::int64_t budget = 0;
      t.get("macs_budget", budget);
      t.checkUnknown();
      co.device_macs_budget[std::string(cls.str())] = budget;
    }
  }
  {
    Table t(table("simulation"), "simulation");
    t.get("clients", c.simulation.clients);
    t.get("workers", c.simulation.workers);
    t.get("torch_threads", c.simulation.torch_threads);
    t.get("devices_file", c.simulation.devices_file);
    std::string compute_time(toString(c.simulation.compute_time));
    t.get("compute_time", compute_time);
    c.simulation.compute_time = parseComputeTimeMode(compute_time);
    t.checkUnknown();
    c.simulation.devices_file = resolvePath(c.simulation.devices_file, base_dir);
  }
  {
    Table t(table("server"), "server");
    t.get("bind", c.server.bind);
    t.get("key_file", c.server.key_file);
    t.get("allowlist_file", c.server.allowlist_file);
    t.get("insecure", c.server.insecure);
    t.get("min_clients", c.server.min_clients);
    t.get("wait_clients_s", c.server.wait_clients_s);
    t.checkUnknown();
    c.server.key_file = resolvePath(c.server.key_file, base_dir);
    c.server.allowlist_file = resolvePath(c.server.allowlist_file, base_dir);
  }
  co.seed = c.seed;
  c.data.split_seed = c.data.split_seed ? c.data.split_seed : c.seed;
  c.validate();
  return c;
}

RunConfig RunConfig::load(const std::string& path) { return load(path, {}); }

RunConfig RunConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string base = std::filesystem::path(path).parent_path().string();
  return parse(readTextFile(path, "config file"), path, base.empty() ? "." : base, overrides);
}

nlohmann::json RunConfig::runInfo(const std::string& config_path) const {
  return {
      {"dataset", data.dataset},       {"data_dir", data.dir}, {"val_fraction", data.val_fraction},
      {"split_seed", data.split_seed}, {"seed", seed},         {"config", config_path}};
}

void RunConfig::validate() const {
  if (rounds < 0) SFN_THROW(ConfigError, "run.rounds must be >= 0 (got ", rounds, ")");
  if (torch_threads < 1) SFN_THROW(ConfigError, "run.torch_threads must be >= 1");
  if (checkpoint_every < 0) SFN_THROW(ConfigError, "checkpoint.every must be >= 0");
  if (checkpoint_keep < 1) SFN_THROW(ConfigError, "checkpoint.keep must be >= 1");
  if (simulation.clients < 1) SFN_THROW(ConfigError, "simulation.clients must be >= 1");
  if (simulation.workers < 1) SFN_THROW(ConfigError, "simulation.workers must be >= 1");
  if (simulation.torch_threads < 1) SFN_THROW(ConfigError, "simulation.torch_threads must be >= 1");
  if (server.min_clients < 1) SFN_THROW(ConfigError, "server.min_clients must be >= 1");
  if (!(server.wait_clients_s > 0)) SFN_THROW(ConfigError, "server.wait_clients_s must be > 0");
  space.validate();
  data.validate();
  coordinator.validate();
}

}  // namespace sfn
