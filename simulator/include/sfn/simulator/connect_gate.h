// ConnectGate: at most N clients of a fleet connecting at once.
//
// A fleet of thousands in one process that connects all at once fills the server's accept
// backlog and this process's file descriptors: a client that is connecting holds four (its
// TCP connection, its DEALER and the two ends of its handshake monitor), a connected one two
// (the fleet closes the monitor at the first handshake, ZmqClientOptions::Watch::
// kUntilConnected). 5,000 clients connecting at once would need 20,000 descriptors, more
// than many machines allow one process.
//
// The gate wraps the fleet's transport factory: making a transport first takes a slot,
// waiting while all are taken, and the slot is given back as soon as the transport reports
// connected() or receives a message, or when it is destroyed (its session ended without a
// connection: the runner's connect_timeout bounds that). stop() ends every wait at once; the
// factory then makes ungated transports, which the stopping runners drop unused.
//
// Thread-safe: the runners' threads call the wrapped factory and their transports at once.
#pragma once

#include "sfn/client/client_runner.h"

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>

namespace sfn {

class ConnectGate : public std::enable_shared_from_this<ConnectGate> {
 public:
  // Throws ConfigError for 0 slots.
  static std::shared_ptr<ConnectGate> make(std::size_t slots);

  // The factory `make`, gated. The result holds the gate alive.
  ClientTransportFactory wrap(ClientTransportFactory make);

  // Slots taken now (any thread).
  std::size_t inUse() const;
  // Ends every wait, now and later (any thread).
  void stop();

  // Takes a slot, waiting while all are taken; false if stopped first. Public for the
  // gated transports and tests; a true return must be matched by one release().
  bool acquire();
  void release();

 private:
  explicit ConnectGate(std::size_t slots) : slots_(slots) {}

  const std::size_t slots_;
  mutable std::mutex mu_;
  bool stopped_ = false;
  std::condition_variable freed_;
  std::size_t used_ = 0;
};

}  // namespace sfn
