// Deployment targets of the one-shot search: a device and its budgets.
//
// Targets TOML (an array of tables; every key but `name` is optional, unknown keys are
// errors that name the key):
//   [[target]]
//   name = "phone-low"              # [A-Za-z0-9_.-]+, unique; also the export folder name
//   device = "phone-low"            # device the budgets are for (default: name)
//   max_macs = 2.5e6                # multiply-accumulates per image
//   max_params = 300000
//   max_latency_ms = 0.8            # needs latency_table
//   latency_table = "laptop.json"   # `sfn-client profile` output; relative to the TOML file
// A target without any budget is allowed (it asks for the most accurate SubNet).
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/model/latency_table.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

struct SearchTarget {
  std::string name;
  std::string device;
  std::optional<std::int64_t> max_macs;
  std::optional<std::int64_t> max_params;
  std::optional<double> max_latency_ms;
  std::string latency_table_path;               // resolved; empty if none
  std::shared_ptr<const LatencyTable> latency;  // loaded from latency_table_path

  // Throws ConfigError naming the field ("target[1].max_macs").
  void validate(const std::string& where) const;
  // Throws ConfigError unless the latency table (if any) covers `space`.
  void checkSpace(const DesignSpace& space) const;

  // Predicted latency from the table, if the target has one.
  std::optional<double> predictLatencyMs(const DesignSpace& space,
                                         const SubNetConfig& config) const;
  // Empty if `config` meets every budget, else why not ("MACs 3100000 > max_macs 2500000").
  // `cost` and `latency_ms` may be passed when already known (they must belong to config).
  std::string violation(const DesignSpace& space, const SubNetConfig& config) const;
  std::string violation(const Cost& cost, std::optional<double> latency_ms) const;
  bool feasible(const DesignSpace& space, const SubNetConfig& config) const {
    return violation(space, config).empty();
  }

  // The budgets as given, for reports and manifests (the latency table by file name).
  nlohmann::json constraintsJson() const;
  // "max_macs 2500000, max_latency_ms 0.8 (laptop)" or "unconstrained".
  std::string describe() const;
};

// Parses a targets TOML; `origin` names it in errors, relative latency_table paths are
// resolved against `base_dir` and the tables are loaded. Throws ConfigError (syntax, unknown
// or wrong keys, duplicate names, no targets) and IoError/ConfigError from table loading.
std::vector<SearchTarget> parseTargets(const std::string& toml_text, const std::string& origin,
                                       const std::string& base_dir);
// Reads `path` (relative paths inside it resolve against its folder).
std::vector<SearchTarget> loadTargets(const std::string& path);

}  // namespace sfn
