// The ZeroMQ backend of ClientRunner's transport factory (sfn-client, sfn-sim --connect).
#pragma once

#include "sfn/client/client_runner.h"
#include "sfn/net/zmq_transport.h"

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace sfn {

// A factory that makes a new DEALER socket to options.server_endpoint on every call (one per
// ClientRunner session), on `context` (null: a new one shared by all sockets of this
// factory). With options.insecure every connect logs a warning naming `client_name` on
// `log`. Throws ConfigError now for invalid options; a call throws what makeZmqClient throws
// (bad keys, bad endpoint).
ClientTransportFactory zmqClientFactory(ZmqClientOptions options,
                                        std::shared_ptr<zmq::context_t> context,
                                        std::shared_ptr<spdlog::logger> log,
                                        std::string client_name);

}  // namespace sfn
