#include "sfn/client/client_setup.h"

#include "sfn/client/own_data.h"
#include "sfn/client/shard_data.h"
#include "sfn/core/error.h"
#include "sfn/data/local_data.h"
#include "sfn/net/curve_keys.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <utility>

namespace sfn {
namespace {

std::chrono::milliseconds fromSeconds(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000.0));
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "client";
  return buf;
}

}  // namespace

ClientOptions clientOptionsFrom(const ClientConfig& c) {
  ClientOptions opts;
  opts.name = !c.name.empty() ? c.name
              : c.shardMode() ? "client-" + std::to_string(c.partition)
                              : hostName();
  opts.device_class = c.device_class;
  opts.device = c.device;
  opts.server = c.endpoint;
  opts.stay = c.stay;
  opts.heartbeat_interval = fromSeconds(c.heartbeat_s);
  opts.liveness_timeout = fromSeconds(c.liveness_s);
  opts.connect_timeout = fromSeconds(c.connect_timeout_s);
  opts.register_timeout = fromSeconds(c.register_timeout_s);
  opts.backoff_max = fromSeconds(c.backoff_max_s);
  opts.validate();
  return opts;
}

void checkServerEndpoint(const std::string& endpoint) {
  const std::size_t sep = endpoint.find("://");
  const std::string scheme = endpoint.substr(0, sep);
  const std::string rest = sep == std::string::npos ? "" : endpoint.substr(sep + 3);
  bool ok = !rest.empty() && (scheme == "ipc" || scheme == "inproc");
  if (scheme == "tcp") {
    const std::size_t colon = rest.rfind(':');
    const std::string port = colon == std::string::npos ? "" : rest.substr(colon + 1);
    ok = colon != std::string::npos && colon > 0 && !port.empty() && port.size() <= 5 &&
         port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) >= 1 &&
         std::stoi(port) <= 65535;
  }
  if (!ok)
    SFN_THROW(ConfigError, "server.endpoint (--server) '", endpoint,
              "' is not an endpoint: expected tcp://HOST:PORT (e.g. tcp://10.0.0.1:5555)");
}

ZmqClientOptions transportOptionsFrom(const ClientConfig& c) {
  checkServerEndpoint(c.endpoint);
  ZmqClientOptions zo;
  zo.server_endpoint = c.endpoint;
  zo.insecure = c.insecure;
  if (!c.insecure) {
    zo.server_public_key = readKeyFile(c.server_key).public_key;
    zo.client_keys = readKeyFile(c.key);
    if (zo.client_keys.secret_key.empty())
      SFN_THROW(ConfigError, "server.key (--key) ", c.key,
                " holds no secret key (use the client.key written by keygen)");
  }
  zo.validate();
  return zo;
}

std::unique_ptr<ClientData> loadClientData(const ClientConfig& c, spdlog::logger& log) {
  if (c.shardMode()) {
    log.info("shard mode: shard {} of {} of the run's dataset (settings from the server)",
             c.partition, c.of);
    return std::make_unique<ShardData>(static_cast<std::uint32_t>(c.partition),
                                       static_cast<std::uint32_t>(c.of), c.data_path);
  }
  Dataset raw = loadLocalData(c.data_path, parseLocalDataFormat(c.data_format));
  log.info("own data {}: {} samples of {}x{}x{}, labels 0..{}", c.data_path, raw.size(),
           raw.images.size(1), raw.images.size(2), raw.images.size(3), raw.num_classes - 1);
  return std::make_unique<OwnData>(std::move(raw));
}

}  // namespace sfn
