#include "sfn/device_profile.h"

#include "sfn/error.h"
#include "sfn/toml_util.h"

#include <toml++/toml.h>

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

std::vector<DeviceProfile> parseDeviceProfiles(const std::string& toml_text,
                                               const std::string& origin) {
  toml::table root = parseToml(toml_text, origin);
  const toml::array* devices = root["device"].as_array();
  if (devices == nullptr || devices->empty())
    SFN_THROW(ConfigError, origin, ": needs at least one [[device]] table");
  static const std::set<std::string> kKeys = {
      "name", "share", "speed_factor", "gmacs", "bandwidth_mbps", "availability", "macs_budget"};
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
    p.validate();
    if (!names.insert(p.name).second)
      SFN_THROW(ConfigError, origin, ": device '", p.name, "' is defined twice");
    out.push_back(p);
  }
  return out;
}

std::vector<DeviceProfile> loadDeviceProfiles(const std::string& path) {
  return parseDeviceProfiles(readTextFile(path, "device profiles"), path);
}

}  // namespace sfn
