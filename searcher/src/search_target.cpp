#include "sfn/searcher/search_target.h"

#include "sfn/core/error.h"
#include "sfn/io/toml_util.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

namespace sfn {

namespace {

const std::set<std::string> kTargetKeys = {"name",       "device",         "max_macs",
                                           "max_params", "max_latency_ms", "latency_table"};

bool validName(const std::string& s) {
  if (s.empty() || s.size() > 100 || s == "." || s == "..") return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

// A positive whole number; TOML floats such as 2.5e6 are accepted when whole, since
// budgets are naturally written that way.
std::int64_t positiveInteger(const toml::node& n, const std::string& field) {
  if (n.is_integer()) {
    const std::int64_t v = *n.value<std::int64_t>();
    if (v <= 0) SFN_THROW(ConfigError, "targets: '", field, "' must be > 0 (got ", v, ")");
    return v;
  }
  if (n.is_floating_point()) {
    const double d = *n.value<double>();
    if (std::isfinite(d) && d > 0 && d < 9e18 && d == std::floor(d))
      return static_cast<std::int64_t>(d);
  }
  SFN_THROW(ConfigError, "targets: '", field, "' must be a positive integer");
}

double positiveNumber(const toml::node& n, const std::string& field) {
  const auto v = n.value<double>();
  if (!v || !std::isfinite(*v) || *v <= 0)
    SFN_THROW(ConfigError, "targets: '", field, "' must be a number > 0");
  return *v;
}

std::string stringValue(const toml::node& n, const std::string& field) {
  const auto v = n.value<std::string>();
  if (!v) SFN_THROW(ConfigError, "targets: '", field, "' must be a string");
  return *v;
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
    j["latency_table"] = latency_table_path;
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
  const toml::table root = parseToml(toml_text, origin);
  for (const auto& [k, v] : root)
    if (k.str() != "target")
      SFN_THROW(ConfigError, "targets '", origin, "': unknown key '", k.str(),
                "' (expected [[target]] tables)");
  const toml::node* node = root.get("target");
  const toml::array* arr = node ? node->as_array() : nullptr;
  if (arr == nullptr || arr->empty())
    SFN_THROW(ConfigError, "targets '", origin, "': no [[target]] tables");
  std::vector<SearchTarget> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string where = "target[" + std::to_string(i) + "]";
    const toml::table* t = (*arr)[i].as_table();
    if (t == nullptr)
      SFN_THROW(ConfigError, "targets '", origin, "': '", where, "' is not a table");
    for (const auto& [k, v] : *t)
      if (!kTargetKeys.count(std::string(k.str())))
        SFN_THROW(ConfigError, "targets '", origin, "': unknown key '", where, ".", k.str(), "'");
    SearchTarget target;
    const toml::node* n = t->get("name");
    if (n == nullptr)
      SFN_THROW(ConfigError, "targets '", origin, "': '", where, ".name' is missing");
    target.name = stringValue(*n, where + ".name");
    if ((n = t->get("device"))) target.device = stringValue(*n, where + ".device");
    if ((n = t->get("max_macs"))) target.max_macs = positiveInteger(*n, where + ".max_macs");
    if ((n = t->get("max_params"))) target.max_params = positiveInteger(*n, where + ".max_params");
    if ((n = t->get("max_latency_ms")))
      target.max_latency_ms = positiveNumber(*n, where + ".max_latency_ms");
    if ((n = t->get("latency_table"))) {
      std::filesystem::path p = stringValue(*n, where + ".latency_table");
      if (p.empty()) SFN_THROW(ConfigError, "targets: '", where, ".latency_table' is empty");
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      target.latency_table_path = p.lexically_normal().string();
      target.latency =
          std::make_shared<const LatencyTable>(LatencyTable::load(target.latency_table_path));
    }
    if (target.device.empty())
      target.device = target.latency ? target.latency->info().device : target.name;
    target.validate(where);
    if (!names.insert(target.name).second)
      SFN_THROW(ConfigError, "targets '", origin, "': '", where, ".name' = \"", target.name,
                "\" is used by an earlier target");
    out.push_back(std::move(target));
  }
  return out;
}

std::vector<SearchTarget> loadTargets(const std::string& path) {
  const std::string base = std::filesystem::path(path).parent_path().string();
  return parseTargets(readTextFile(path, "targets file"), path, base.empty() ? "." : base);
}

}  // namespace sfn
