// Device classes of a simulated fleet: how fast they compute, how fast they talk, how
// often they are there. Loaded from TOML (experiments/configs/devices/*.toml):
//
//   [[device]]
//   name = "phone-low"
//   share = 0.4            # fraction of the fleet (normalized over all devices)
//   speed_factor = 4.0     # simulated compute time = host time x speed_factor ("measured")
//   gmacs = 2.0            # sustained GMAC/s ("macs" compute model)
//   bandwidth_mbps = 10    # up and down link, megabits per second
//   availability = 0.8     # probability the device answers a task
//   macs_budget = 20e6     # largest SubNet forward MACs it can run (static-capacity); 0 = any
//   availability_trace = "traces/phone-low.csv"   # optional, relative to the device file
//
// `name` is required, every other key optional; unknown keys and wrongly typed values are
// errors naming the key (sfn/io/toml_reader.h).
//
// An availability trace is a CSV file with a header "start_s,end_s" and one row per window
// of virtual time during which devices of the class are online; it repeats with the period
// given by the end of its last window (a daily cycle, say). A task sent while the class is
// offline is never answered; while online, `availability` still applies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sfn {

struct DeviceProfile {
  std::string name = "default";
  double share = 1.0;
  double speed_factor = 1.0;
  double gmacs = 10.0;
  double bandwidth_mbps = 100.0;
  double availability = 1.0;
  std::int64_t macs_budget = 0;
  std::vector<std::pair<double, double>> online;  // from availability_trace; empty = always

  // Whether the class is online at virtual time t (the trace repeats).
  bool onlineAt(double t) const;
  void validate() const;  // throws ConfigError naming the device and key
};

// Reads an availability trace (see above); throws ConfigError / IoError naming the file.
std::vector<std::pair<double, double>> loadAvailabilityTrace(const std::string& path);
// Reads a device file; throws ConfigError / IoError.
std::vector<DeviceProfile> loadDeviceProfiles(const std::string& path);
// The device class of client `client` of a fleet: drawn by the profiles' shares from the
// client's own (seed, client) stream, so it depends neither on the fleet size nor on the
// order of construction (virtual and real-client fleets agree). `profiles` must not be empty.
std::size_t profileIndexFor(const std::vector<DeviceProfile>& profiles, std::uint64_t seed,
                            std::size_t client);
// Parses the same format from a string (tests).
std::vector<DeviceProfile> parseDeviceProfiles(const std::string& toml_text,
                                               const std::string& origin,
                                               const std::string& base_dir = ".");

}  // namespace sfn
