// In-process transport: one server and any number of clients in the same process.
//
// Messages move by handing over the BytesPtr (zero-copy: the receiver decodes the very
// buffer the sender encoded). Queues are bounded: one shared server inbox and one small
// inbox per client. There is no thread per client, or any thread at all: senders and
// receivers run on whatever threads the caller uses (the simulator's pool), so thousands
// of virtual clients cost a queue each.
//
// Threading: every method of InprocNetwork, InprocServerTransport and InprocClientTransport
// is thread-safe. Still, messages of one endpoint are received in order only when a single
// thread calls its recv() at a time, as with any transport.
#pragma once

#include "sfn/net/transport.h"

#include <chrono>
#include <cstddef>
#include <memory>

namespace sfn {

struct InprocOptions {
  std::size_t server_queue_capacity = 1 << 16;  // messages from all clients to the server
  std::size_t client_queue_capacity = 64;       // messages from the server to one client
  // How long send() waits for space in a full queue before returning kQueueFull.
  std::chrono::milliseconds send_timeout{1000};
  void validate() const;  // throws ConfigError
};

class InprocNetworkState;  // shared by the network and its endpoints (inproc_transport.cpp)

// The rendezvous of one server and its clients. Endpoints keep the shared state alive, so
// the network object itself may be dropped once they are created.
class InprocNetwork {
 public:
  explicit InprocNetwork(const InprocOptions& options = {});

  // The server endpoint. At most one may exist at a time; throws ConfigError otherwise.
  // While no server exists, client sends return kClosed.
  std::unique_ptr<ServerTransport> server();
  // Connects a client under `peer` (non-empty, unique among connected clients; throws
  // ConfigError otherwise). The server sees its messages as coming from `peer`; destroying
  // the client disconnects it and later sends to it return kUnknownPeer.
  std::unique_ptr<ClientTransport> connect(const PeerId& peer);

 private:
  std::shared_ptr<InprocNetworkState> state_;
};

}  // namespace sfn
