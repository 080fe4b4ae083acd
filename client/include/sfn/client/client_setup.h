// From a client's settings (ClientConfig) to what ClientRunner and the ZeroMQ factory take,
// and to its data: the one mapping behind sfn-client and libsfn-client (sfn/sfn_client.h).
#pragma once

#include "sfn/client/client_config.h"
#include "sfn/client/client_data.h"
#include "sfn/client/client_runner.h"
#include "sfn/net/zmq_transport.h"

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace sfn {

// ClientRunner's options: the name (empty: client-<partition> in shard mode, else the host
// name), device, timings. Throws ConfigError naming the key.
ClientOptions clientOptionsFrom(const ClientConfig& config);

// Throws ConfigError naming server.endpoint (--server) unless `endpoint` is
// tcp://HOST:PORT, ipc://... or inproc://...: libzmq would say only "Invalid argument", and
// only at the first connect.
void checkServerEndpoint(const std::string& endpoint);

// The ZeroMQ connection: endpoint checked, CURVE keys read (unless insecure). Throws
// ConfigError naming the key and file, IoError if a key file cannot be read.
ZmqClientOptions transportOptionsFrom(const ClientConfig& config);

// The client's data: its own files (data.path) or, in shard mode, shard `partition` of `of`
// of the run's dataset, cut once the server's Welcome says how. Logs what it loaded. Throws
// what loadLocalData throws.
std::unique_ptr<ClientData> loadClientData(const ClientConfig& config, spdlog::logger& log);

}  // namespace sfn
