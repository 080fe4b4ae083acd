#include "sfn/simulator/device_profile.h"

#include "sfn/core/error.h"
#include "sfn/core/rng.h"
#include "sfn/io/toml_util.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace sfn {

void DeviceProfile::validate() const {
  auto fail = [&](const char* key, const char* why) {
    SFN_THROW(ConfigError, "device '", name, "': ", key, " ", why);
  };
  if (name.empty()) fail("name", "must not be empty");
  if (!(share > 0)) fail("share", "must be > 0");
  if (!(speed_factor > 0)) fail("speed_factor", "must be > 0");
  if (!(gmacs > 0)) fail("gmacs", "must be > 0");
  if (!(bandwidth_mbps > 0)) fail("bandwidth_mbps", "must be > 0");
  if (!(availability >= 0 && availability <= 1)) fail("availability", "must be in [0, 1]");
  if (macs_budget < 0) fail("macs_budget", "must be >= 0");
}

std::size_t profileIndexFor(const std::vector<DeviceProfile>& profiles, std::uint64_t seed,
                            std::size_t client) {
  SFN_ENFORCE(!profiles.empty(), ConfigError, "a fleet needs at least one device profile");
  double share_sum = 0;
  for (const auto& p : profiles) share_sum += p.share;
  Rng rng(seed, 0xde71ce, client);
  double u = rng.uniform() * share_sum;
  std::size_t k = 0;
  while (k + 1 < profiles.size() && u >= profiles[k].share) u -= profiles[k++].share;
  return k;
}

bool DeviceProfile::onlineAt(double t) const {
  if (online.empty()) return true;
  const double period = online.back().second;
  const double phase = period > 0 ? std::fmod(std::max(t, 0.0), period) : t;
  for (const auto& [start, end] : online)
    if (phase >= start && phase < end) return true;
  return false;
}

std::vector<std::pair<double, double>> loadAvailabilityTrace(const std::string& path) {
  std::istringstream in(readTextFile(path, "availability trace"));
  std::string line;
  std::vector<std::pair<double, double>> out;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    if (lineno == 1 && line.rfind("start_s", 0) == 0) continue;  // header
    const auto comma = line.find(',');
    double start = 0, end = 0;
    try {
      if (comma == std::string::npos) throw std::invalid_argument("no comma");
      start = std::stod(line.substr(0, comma));
      end = std::stod(line.substr(comma + 1));
    } catch (const std::exception&) {
      SFN_THROW(ConfigError, path, ":", lineno, ": expected \"start_s,end_s\"");
    }
    if (!(start >= 0 && end > start) || (!out.empty() && start < out.back().second))
      SFN_THROW(ConfigError, path, ":", lineno,
                ": windows must be non-empty, non-negative and in increasing order");
    out.emplace_back(start, end);
  }
  if (out.empty()) SFN_THROW(ConfigError, path, ": no availability windows");
  return out;
}

std::vector<DeviceProfile> parseDeviceProfiles(const std::string& toml_text,
                                               const std::string& origin,
                                               const std::string& base_dir) {
  toml::table root = parseToml(toml_text, origin);
  const toml::array* devices = root["device"].as_array();
  if (devices == nullptr || devices->empty())
    SFN_THROW(ConfigError, origin, ": needs at least one [[device]] table");
  static const std::set<std::string> kKeys = {
      "name",           "share",        "speed_factor", "gmacs",
      "bandwidth_mbps", "availability", "macs_budget",  "availability_trace"};
  std::vector<DeviceProfile> out;
  std::set<std::string> names;
  for (const auto& node : *devices) {
    const toml::table* t = node.as_table();
    if (t == nullptr) SFN_THROW(ConfigError, origin, ": [[device]] entries must be tables");
    for (const auto& [k, v] : *t)
      if (!kKeys.count(std::string(k.str())))
        SFN_THROW(ConfigError, origin, ": unknown device key '", k.str(), "'");
    DeviceProfile p;
    p.name = (*t)["name"].value_or(std::string());
    p.share = (*t)["share"].value_or(1.0);
    p.speed_factor = (*t)["speed_factor"].value_or(1.0);
    p.gmacs = (*t)["gmacs"].value_or(10.0);
    p.bandwidth_mbps = (*t)["bandwidth_mbps"].value_or(100.0);
    p.availability = (*t)["availability"].value_or(1.0);
    p.macs_budget = static_cast<std::int64_t>((*t)["macs_budget"].value_or(0.0));
    if (auto trace = (*t)["availability_trace"].value<std::string>()) {
      const std::filesystem::path tp(*trace);
      p.online = loadAvailabilityTrace(
          tp.is_absolute() ? tp.string() : (std::filesystem::path(base_dir) / tp).string());
    }
    p.validate();
    if (!names.insert(p.name).second)
      SFN_THROW(ConfigError, origin, ": device '", p.name, "' is defined twice");
    out.push_back(p);
  }
  return out;
}

std::vector<DeviceProfile> loadDeviceProfiles(const std::string& path) {
  const std::string base = std::filesystem::path(path).parent_path().string();
  return parseDeviceProfiles(readTextFile(path, "device profiles"), path,
                             base.empty() ? "." : base);
}

}  // namespace sfn
