// sfn-client's settings: an optional TOML file (-c) with the command line's flags applied
// on top as overrides (the same rule as sfn-server's --set), validated once.
//
//   [client]  name, device_class, device ("cpu", "cuda:0"), threads, stay
//   [server]  endpoint, server_key (server.pub), key (client.key), insecure
//   [data]    path (own data: IDX folder, CIFAR-10 .bin file or folder, torch.save file;
//             shard mode: the local copy of the run's dataset), format
//             ("auto" | "idx" | "cifar10" | "torch"), partition, of (shard mode when of > 0)
//   [timing]  heartbeat_s, liveness_s, connect_timeout_s, register_timeout_s, backoff_max_s
//
// Nothing about the run (seed, preset, validation fraction, normalisation) is configured
// here: the server's Welcome brings it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

struct ClientConfig {
  std::string name;  // empty: client-<partition> in shard mode, else the host name
  std::string device_class = "default";
  std::string device = "cpu";
  int threads = 1;  // torch intra-op threads (<= 0 keeps torch's default)
  bool stay = false;

  std::string endpoint;
  std::string server_key;
  std::string key;
  bool insecure = false;

  std::string data_path;
  std::string data_format = "auto";
  std::int64_t partition = 0;
  std::int64_t of = 0;  // > 0: shard mode

  double heartbeat_s = 5.0;
  double liveness_s = 120.0;
  double connect_timeout_s = 60.0;
  double register_timeout_s = 10.0;
  double backoff_max_s = 30.0;

  bool shardMode() const { return of > 0; }

  // Reads `path` (empty: no file) and applies `overrides` ("table.key=value", TOML value
  // syntax) on top. Relative paths in the file resolve against its folder. Throws
  // ConfigError naming the file and key (unknown keys too), IoError if unreadable.
  static ClientConfig load(const std::string& path, const std::vector<std::string>& overrides);
  // Ranges and combinations; ConfigError naming the key (and its flag).
  void validate() const;
};

}  // namespace sfn
