#include "sfn/searcher/search_target.h"

#include "sfn/core/error.h"
#include "sfn/io/toml_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

namespace sfn {

namespace {

bool validName(const std::string& s) {
  if (s.empty() || s.size() > 100 || s == "." || s == "..") return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

// Budgets must be positive; integers may be written as whole floats (2.5e6), since budgets
// are naturally written that way.
template <typename T>
std::optional<T> positive(TomlReader& t, const char* key) {
  std::optional<T> v = t.optional<T>(key);
  if (v && !(*v > 0 && std::isfinite(static_cast<double>(*v)))) t.fail(key, "must be > 0");
  return v;
}

SearchTarget readTarget(TomlReader& t) {
  SearchTarget target;
  target.name = t.require<std::string>("name");
  t.get("device", target.device);
  target.max_macs = positive<std::int64_t>(t, "max_macs");
  target.max_params = positive<std::int64_t>(t, "max_params");
  target.max_latency_ms = positive<double>(t, "max_latency_ms");
  if (std::string path; t.getPath("latency_table", path)) {
    if (path.empty()) t.fail("latency_table", "is empty");
    target.latency_table_path = path;
    target.latency = std::make_shared<const LatencyTable>(LatencyTable::load(path));
  }
  t.rejectUnknown();
  if (target.device.empty())
    target.device = target.latency ? target.latency->info().device : target.name;
  return target;
}

std::vector<SearchTarget> readTargets(TomlReader root) {
  std::vector<TomlReader> tables = root.tables("target");
  root.rejectUnknown();
  if (tables.empty()) SFN_THROW(ConfigError, "targets '", root.origin(), "': no [[target]] tables");
  std::vector<SearchTarget> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const std::string where = "target[" + std::to_string(i) + "]";
    SearchTarget target = readTarget(tables[i]);
    target.validate(where);
    if (!names.insert(target.name).second)
      SFN_THROW(ConfigError, "targets '", root.origin(), "': '", where, ".name' = \"", target.name,
                "\" is used by an earlier target");
    out.push_back(std::move(target));
  }
  return out;
}

}  // namespace

void SearchTarget::validate(const std::string& where) const {
  if (!validName(name))
    SFN_THROW(ConfigError, "targets: '", where, ".name' = \"", name,
              "\" must be 1-100 characters of [A-Za-z0-9_.-] (it names the export folder)");
  // Device names end up in CSV headers and cells: no commas, quotes or control characters.
  const bool device_ok = !device.empty() && device.size() <= 100 &&
                         std::none_of(device.begin(), device.end(), [](unsigned char c) {
                           return c == ',' || c == '"' || c < 0x20 || c == 0x7f;
                         });
  if (!device_ok)
    SFN_THROW(ConfigError, "targets: '", where, ".device' = \"", device,
              "\" must be 1-100 characters without commas, quotes or control characters");
  if (max_macs && *max_macs <= 0) SFN_THROW(ConfigError, "targets: '", where, ".max_macs' <= 0");
  if (max_params && *max_params <= 0)
    SFN_THROW(ConfigError, "targets: '", where, ".max_params' <= 0");
  if (max_latency_ms && !(*max_latency_ms > 0))
    SFN_THROW(ConfigError, "targets: '", where, ".max_latency_ms' <= 0");
  if (max_latency_ms && !latency)
    SFN_THROW(ConfigError, "targets: '", where, ".max_latency_ms' needs a latency table ('", where,
              ".latency_table', written by sfn-client profile)");
}

void SearchTarget::checkSpace(const DesignSpace& space) const {
  if (!latency) return;
  try {
    latency->checkCovers(space);
  } catch (const ConfigError& e) {
    SFN_THROW(ConfigError, "target '", name, "': latency table '", latency_table_path,
              "' does not fit the SuperNet: ", e.what());
  }
}

std::optional<double> SearchTarget::predictLatencyMs(const DesignSpace& space,
                                                     const SubNetConfig& config) const {
  if (!latency) return std::nullopt;
  return latency->predictMs(space, config);
}

std::string SearchTarget::violation(const Cost& cost, std::optional<double> latency_ms) const {
  std::ostringstream os;
  if (max_macs && cost.macs > *max_macs) os << "MACs " << cost.macs << " > max_macs " << *max_macs;
  if (max_params && cost.params > *max_params)
    os << (os.tellp() > 0 ? ", " : "") << "params " << cost.params << " > max_params "
       << *max_params;
  if (max_latency_ms && latency_ms && *latency_ms > *max_latency_ms)
    os << (os.tellp() > 0 ? ", " : "") << "latency " << *latency_ms << " ms > max_latency_ms "
       << *max_latency_ms;
  return os.str();
}

std::string SearchTarget::violation(const DesignSpace& space, const SubNetConfig& config) const {
  const Cost cost = computeCost(space, config);
  // Latency is only looked up when it is constrained; a target's table may be present just
  // to report predictions.
  std::optional<double> lat;
  if (max_latency_ms) lat = predictLatencyMs(space, config);
  return violation(cost, lat);
}

nlohmann::json SearchTarget::constraintsJson() const {
  nlohmann::json j = nlohmann::json::object();
  j["device"] = device;
  if (max_macs) j["max_macs"] = *max_macs;
  if (max_params) j["max_params"] = *max_params;
  if (max_latency_ms) j["max_latency_ms"] = *max_latency_ms;
  if (latency) {
    // Its file name, not the path: manifests carry no host paths (results.json neither
    // needs one: the targets file names the table).
    j["latency_table"] = std::filesystem::path(latency_table_path).filename().string();
    j["latency_table_device"] = latency->info().device;
    j["latency_table_threads"] = latency->info().torch_threads;
    j["latency_table_batch_size"] = latency->info().batch_size;
  }
  return j;
}

std::string SearchTarget::describe() const {
  std::ostringstream os;
  if (max_macs) os << "max_macs " << *max_macs;
  if (max_params) os << (os.tellp() > 0 ? ", " : "") << "max_params " << *max_params;
  if (max_latency_ms)
    os << (os.tellp() > 0 ? ", " : "") << "max_latency_ms " << *max_latency_ms << " ("
       << (latency ? latency->info().device : device) << ")";
  return os.tellp() > 0 ? os.str() : "unconstrained";
}

std::vector<SearchTarget> parseTargets(const std::string& toml_text, const std::string& origin,
                                       const std::string& base_dir) {
  return readTargets(TomlReader::parse(toml_text, origin, base_dir));
}

std::vector<SearchTarget> loadTargets(const std::string& path) {
  return readTargets(TomlReader::load(path, "targets file"));
}

}  // namespace sfn
