#include "sfn/client/client_config.h"

#include "sfn/core/error.h"
#include "sfn/io/toml_reader.h"
#include "sfn/train/local_trainer.h"

namespace sfn {
namespace {

constexpr std::string_view kTables[] = {"client", "server", "data", "timing"};

void readTables(TomlReader& root, ClientConfig& c) {
  TomlReader client = root.table("client");
  client.get("name", c.name);
  client.get("device_class", c.device_class);
  client.get("device", c.device);
  client.get("threads", c.threads);
  client.get("stay", c.stay);
  client.rejectUnknown();
  TomlReader server = root.table("server");
  server.get("endpoint", c.endpoint);
  server.getPath("server_key", c.server_key);
  server.getPath("key", c.key);
  server.get("insecure", c.insecure);
  server.rejectUnknown();
  TomlReader data = root.table("data");
  data.getPath("path", c.data_path);
  data.get("format", c.data_format);
  data.get("partition", c.partition);
  data.get("of", c.of);
  data.rejectUnknown();
  TomlReader timing = root.table("timing");
  timing.get("heartbeat_s", c.heartbeat_s);
  timing.get("liveness_s", c.liveness_s);
  timing.get("connect_timeout_s", c.connect_timeout_s);
  timing.get("register_timeout_s", c.register_timeout_s);
  timing.get("backoff_max_s", c.backoff_max_s);
  timing.rejectUnknown();
}

}  // namespace

ClientConfig ClientConfig::load(const std::string& path,
                                const std::vector<std::string>& overrides) {
  TomlReader root = path.empty() ? TomlReader::parse("", "command line")
                                 : TomlReader::load(path, "client config");
  for (const std::string& o : overrides) root.applyOverride(o);
  for (const std::string& key : root.keys()) {
    bool known = false;
    for (std::string_view t : kTables) known = known || key == t;
    if (!known)
      SFN_THROW(ConfigError, path.empty() ? "command line" : path, ": unknown table [", key,
                "] (known: client, server, data, timing)");
  }
  ClientConfig c;
  readTables(root, c);
  c.validate();
  return c;
}

void ClientConfig::validate() const {
  if (endpoint.empty())
    SFN_THROW(ConfigError, "server.endpoint (--server) is required, e.g. tcp://10.0.0.1:5555");
  if (!insecure && (server_key.empty() || key.empty()))
    SFN_THROW(ConfigError,
              "server.server_key (--server-key) and server.key (--key) are required unless "
              "--insecure");
  if (of < 0 || of > 1'000'000)
    SFN_THROW(ConfigError, "data.of (--of) must be in [0, 1000000], got ", of);
  if (of > 0 && (partition < 0 || partition >= of))
    SFN_THROW(ConfigError, "data.partition (--partition) must be in [0, ", of, "), got ",
              partition);
  if (of == 0 && data_path.empty())
    SFN_THROW(ConfigError,
              "no data: give data.path (--data PATH, this device's own samples) or "
              "data.partition and data.of (--partition I --of N, a shard of the run's dataset)");
  if (data_format != "auto" && data_format != "idx" && data_format != "cifar10" &&
      data_format != "torch")
    SFN_THROW(ConfigError, "data.format (--data-format) must be auto, idx, cifar10 or torch, got '",
              data_format, "'");
  if (threads > 1024) SFN_THROW(ConfigError, "client.threads (--threads) must be <= 1024");
  checkTorchDevice(device, "client.device (--device)");
  if (!(heartbeat_s > 0) || !(connect_timeout_s > 0) || !(register_timeout_s > 0) ||
      !(backoff_max_s > 0) || !(liveness_s >= 0))
    SFN_THROW(ConfigError,
              "timing: heartbeat_s, connect_timeout_s, register_timeout_s and backoff_max_s "
              "must be > 0, liveness_s >= 0");
}

}  // namespace sfn
