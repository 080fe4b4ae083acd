#include "sfn/simulator/device_profile.h"

#include "sfn/core/error.h"
#include "sfn/core/rng.h"
#include "sfn/io/text_file.h"
#include "sfn/io/toml_reader.h"

#include <algorithm>
#include <cmath>
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

namespace {

// One [[device]] table. Every key but name is optional; a wrongly typed value is an error
// naming it, never its default.
DeviceProfile readDevice(TomlReader& t) {
  DeviceProfile p;
  p.name = t.require<std::string>("name");
  t.get("share", p.share);
  t.get("speed_factor", p.speed_factor);
  t.get("gmacs", p.gmacs);
  t.get("bandwidth_mbps", p.bandwidth_mbps);
  t.get("availability", p.availability);
  t.get("macs_budget", p.macs_budget);
  if (std::string trace; t.getPath("availability_trace", trace))
    p.online = loadAvailabilityTrace(trace);
  t.rejectUnknown();
  p.validate();
  return p;
}

std::vector<DeviceProfile> readDevices(TomlReader root) {
  std::vector<TomlReader> tables = root.tables("device");
  root.rejectUnknown();
  if (tables.empty())
    SFN_THROW(ConfigError, root.origin(), ": needs at least one [[device]] table");
  std::vector<DeviceProfile> out;
  std::set<std::string> names;
  for (TomlReader& t : tables) {
    out.push_back(readDevice(t));
    if (!names.insert(out.back().name).second)
      SFN_THROW(ConfigError, root.origin(), ": device '", out.back().name, "' is defined twice");
  }
  return out;
}

}  // namespace

std::vector<DeviceProfile> parseDeviceProfiles(const std::string& toml_text,
                                               const std::string& origin,
                                               const std::string& base_dir) {
  return readDevices(TomlReader::parse(toml_text, origin, base_dir));
}

std::vector<DeviceProfile> loadDeviceProfiles(const std::string& path) {
  return readDevices(TomlReader::load(path, "device profiles"));
}

}  // namespace sfn
