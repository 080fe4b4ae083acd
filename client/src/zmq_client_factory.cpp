#include "sfn/client/zmq_client_factory.h"

#include "sfn/core/error.h"

#include <utility>

namespace sfn {

ClientTransportFactory zmqClientFactory(ZmqClientOptions options,
                                        std::shared_ptr<zmq::context_t> context,
                                        std::shared_ptr<spdlog::logger> log,
                                        std::string client_name) {
  SFN_ENFORCE(log != nullptr, ConfigError, "zmqClientFactory needs a logger");
  options.validate();
  // One context for every reconnect: sockets come and go, the I/O thread stays.
  if (!context) context = makeZmqContext();
  return [options = std::move(options), context = std::move(context), log = std::move(log),
          name = std::move(client_name)]() -> std::unique_ptr<ClientTransport> {
    if (options.insecure)
      log->warn(
          "client {}: *** --insecure: traffic to {} is NOT encrypted and the server is NOT "
          "authenticated; local development only ***",
          name, options.server_endpoint);
    return makeZmqClient(options, context);
  };
}

}  // namespace sfn
