// Message transport between one server and many clients, behind a small interface.
//
// A transport moves opaque, whole messages (BytesPtr, see sfn/core/bytes.h) without copying them
// where the backend allows it. It does not interpret bytes: decoding and all protocol
// checks happen above it. Backends (one factory each):
//   inproc_transport.h  in-process queues, for tests and the simulator
//   zmq_transport.h     ZeroMQ ROUTER/DEALER over tcp, CURVE-authenticated by default
//
// Peer identity on the server comes from the transport, never from message contents: the
// CURVE public key (Z85) a ZeroMQ client authenticated with, or the name an in-process
// client was connected under.
//
// Failures that a healthy system meets in normal operation (unknown or gone peer, full
// queue, timeout) are values: send() returns a SendResult, recv() an empty optional.
// Exceptions are left for misconfiguration and broken invariants.
#pragma once

#include "sfn/core/bytes.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sfn {

// Transport-assigned identity of a client, printable (used in logs and as a map key).
using PeerId = std::string;

enum class SendStatus {
  kOk,
  kUnknownPeer,  // no such peer, or it disconnected (ZeroMQ EHOSTUNREACH)
  kQueueFull,    // the peer's bounded queue / high-water mark is full (see each backend)
  kClosed,       // the other side (or this transport) is shut down
  kTooLarge,     // above the transport's message size limit
  kError,        // any other transport failure; reason says which
};

inline std::string_view toString(SendStatus s) {
  switch (s) {
    case SendStatus::kOk:
      return "ok";
    case SendStatus::kUnknownPeer:
      return "unknown_peer";
    case SendStatus::kQueueFull:
      return "queue_full";
    case SendStatus::kClosed:
      return "closed";
    case SendStatus::kTooLarge:
      return "too_large";
    case SendStatus::kError:
      return "error";
  }
  return "unknown";
}

struct SendResult {
  SendStatus status = SendStatus::kOk;
  std::string reason;  // empty when ok
  bool ok() const { return status == SendStatus::kOk; }
  explicit operator bool() const { return ok(); }
};

// One message received by the server and the authenticated peer that sent it.
struct Received {
  PeerId peer;
  BytesPtr message;
};

// Server side. See each backend for which threads may call what.
class ServerTransport {
 public:
  virtual ~ServerTransport() = default;
  // Queues `message` for `peer`. Waits at most the backend's send timeout for queue space
  // (the ZeroMQ server never waits: a peer that does not read must not stall the caller);
  // never throws for a peer that is unknown, gone or slow.
  [[nodiscard]] virtual SendResult send(const PeerId& peer, BytesPtr message) = 0;
  // The next message from any client, or nothing if none arrived within `timeout`
  // (0 polls without waiting).
  [[nodiscard]] virtual std::optional<Received> recv(std::chrono::milliseconds timeout) = 0;
};

// Client side: one connection to one server.
class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  [[nodiscard]] virtual SendResult send(BytesPtr message) = 0;
  [[nodiscard]] virtual std::optional<BytesPtr> recv(std::chrono::milliseconds timeout) = 0;
  // Whether the server refused this connection's authentication (a ZeroMQ CURVE key not on
  // its allowlist). Retrying cannot help: the caller should give up. Backends that cannot
  // tell return false. Call it from the thread that uses the transport, like send/recv.
  [[nodiscard]] virtual bool authenticationRefused() { return false; }
  // Whether the connection is up: the handshake with the server completed, and no
  // disconnect since. ClientRunner times the server's answer to a Register from then on, so
  // a client queued behind thousands of others in the server's accept backlog waits its turn
  // instead of reconnecting (which would lose its place). Backends that cannot tell return
  // true. Same thread rule as above.
  [[nodiscard]] virtual bool connected() { return true; }
};

}  // namespace sfn
