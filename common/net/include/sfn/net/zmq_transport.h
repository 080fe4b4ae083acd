// ZeroMQ transport: server ROUTER, client DEALER, over tcp (or any ZeroMQ endpoint).
//
// Secure by default: CURVE encryption, and a ZAP handler that admits only allowlisted client
// public keys (ZMQ_ZAP_ENFORCE_DOMAIN on, so a missing handler refuses instead of admitting).
// The server names each peer by the public key it authenticated with (the "User-Id"
// metadata of its messages, Z85 text), never by anything the client sends. Plaintext mode
// exists for debugging only and must be asked for (insecure = true); peers are then named
// by their ROUTER routing id in hex.
//
// Messages are single frames holding one encoded Envelope. Sends hand the buffer to ZeroMQ
// without copying it (it is released when ZeroMQ is done); received frames are wrapped
// without copying into Bytes that decoded tensors can keep alive.
//
// Threading: one thread owns each socket. A ZmqServerTransport or ZmqClientTransport must be
// used by one thread at a time (handing it to another thread through a queue or a join is
// fine). The server's ZAP handler runs on its own thread, owned by the server object and
// joined by its destructor. Every wait is bounded: recv takes a timeout, send waits at most
// send_timeout, the ZAP thread polls with a short timeout, close lingers at most linger.
#pragma once

#include "sfn/net/curve_keys.h"
#include "sfn/net/transport.h"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sfn {

// --- options --------------------------------------------------------------------------

// Socket settings shared by both sides.
struct ZmqSocketOptions {
  std::int64_t max_message_bytes = std::int64_t{1} << 30;  // ZMQ_MAXMSGSIZE (inbound)
  std::chrono::milliseconds handshake_interval{10'000};    // ZMQ_HANDSHAKE_IVL
  std::chrono::milliseconds heartbeat_interval{2'000};     // ZMQ_HEARTBEAT_IVL
  std::chrono::milliseconds heartbeat_timeout{10'000};     // ZMQ_HEARTBEAT_TIMEOUT
  std::chrono::milliseconds heartbeat_ttl{20'000};         // ZMQ_HEARTBEAT_TTL (<= 6553.5 s)
  int send_hwm = 64;  // messages queued per peer; bounded because messages can be large
  int recv_hwm = 64;
  std::chrono::milliseconds linger{1'000};        // how long close() may flush
  std::chrono::milliseconds send_timeout{1'000};  // send() wait on a full queue
  void validate() const;                          // throws ConfigError
};

struct ZmqServerOptions {
  std::string bind_endpoint = "tcp://127.0.0.1:*";  // "*" port: ephemeral, see endpoint()
  bool insecure = false;                            // plaintext, no authentication
  CurveKeyPair server_keys;                         // needs the secret key unless insecure
  std::vector<std::string> allowed_client_keys;     // Z85 public keys
  std::string zap_domain = "sfn";
  ZmqSocketOptions socket;
  void validate() const;  // throws ConfigError
};

struct ZmqClientOptions {
  std::string server_endpoint;  // e.g. the server's endpoint()
  bool insecure = false;
  CurveKeyPair client_keys;                                  // needs both halves unless insecure
  std::string server_public_key;                             // Z85
  std::chrono::milliseconds reconnect_interval{100};         // ZMQ_RECONNECT_IVL
  std::chrono::milliseconds reconnect_interval_max{10'000};  // ZMQ_RECONNECT_IVL_MAX (backoff)
  ZmqSocketOptions socket;
  void validate() const;  // throws ConfigError
};

// --- server ---------------------------------------------------------------------------

class ZapHandler;  // zmq_transport.cpp

class ZmqServerTransport final : public ServerTransport {
 public:
  // Starts the ZAP handler (secure mode) and binds. Throws ConfigError for bad options and
  // zmq::error_t if the endpoint cannot be bound.
  explicit ZmqServerTransport(const ZmqServerOptions& options);
  ~ZmqServerTransport() override;
  ZmqServerTransport(const ZmqServerTransport&) = delete;
  ZmqServerTransport& operator=(const ZmqServerTransport&) = delete;

  // kUnknownPeer if the peer never sent anything or has disconnected (EHOSTUNREACH),
  // kQueueFull if its queue stayed at the high-water mark for send_timeout.
  [[nodiscard]] SendResult send(const PeerId& peer, BytesPtr message) override;
  // Frames that are not [routing id][one payload] or lack an authenticated User-Id are
  // dropped (counted in droppedMessages()). Rethrows a failure of the ZAP thread.
  [[nodiscard]] std::optional<Received> recv(std::chrono::milliseconds timeout) override;

  // The bound endpoint with the actual port (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:41234".
  const std::string& endpoint() const { return endpoint_; }
  // Handshakes the ZAP handler refused (non-allowlisted keys, wrong domain/mechanism).
  std::uint64_t refusedHandshakes() const;
  std::uint64_t droppedMessages() const { return dropped_; }

 private:
  std::optional<Received> receiveOne();

  ZmqServerOptions options_;
  // Declaration order is destruction order reversed: the socket closes first, then the ZAP
  // thread is joined, then the context terminates (which waits for both sockets).
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t socket_;
  std::string endpoint_;
  // Authenticated key -> current routing id. Refreshed by every received message, so a
  // reconnecting client is reachable again after its first message. At most one entry per
  // allowlisted key.
  std::unordered_map<PeerId, std::string> routes_;
  std::uint64_t dropped_ = 0;
};

// The factory; same as constructing one.
std::unique_ptr<ZmqServerTransport> makeZmqServer(const ZmqServerOptions& options);

// --- client ---------------------------------------------------------------------------

// Refused authentication. In secure mode the client watches its own handshakes through a
// ZeroMQ socket monitor (a PAIR socket on a private inproc endpoint, drained by recv() and
// authenticationRefused() on the caller's thread; no extra thread). What libzmq 4.3.4
// reports to the client, as measured against ZmqServerTransport:
//   key not allowlisted   HANDSHAKE_FAILED_AUTH, value 400 (the ZAP status our handler
//                         sends for every refusal). libzmq then drops the connection for
//                         good: the DEALER never reconnects, so waiting cannot help.
//                         -> authenticationRefused() becomes true, and stays true.
//   wrong server key      DISCONNECTED + HANDSHAKE_FAILED_NO_DETAIL (errno EPIPE) on every
//                         reconnect: the server cannot decrypt the HELLO and just closes.
//                         A plaintext server and a server without a ZAP handler look
//                         exactly the same, and so does a server that goes away mid-
//                         handshake, so this is NOT reported as refused (stays false); the
//                         caller's own timeout has to catch it.
//   HANDSHAKE_FAILED_PROTOCOL (malformed commands, mechanism mismatch, a server-side ZAP
//                         protocol error): not seen in any of the cases above. It says the
//                         peer is misconfigured, not that this key was refused, so it is
//                         only logged; libzmq drops that connection too, and a fresh
//                         transport may succeed.
//   ZAP status 300 / 500  (temporary / internal failure; our handler never sends them):
//                         logged, not refused, for the same reason.
// Each client then uses three sockets of its context (DEALER, libzmq's monitor PAIR, ours);
// makeZmqContext raises the context's socket limit accordingly.
class ZmqClientTransport final : public ClientTransport {
 public:
  // Connects in the background (ZeroMQ reconnects with backoff on its own). `context` may be
  // shared by many clients (a fleet in one process) to share I/O threads; null creates one.
  explicit ZmqClientTransport(const ZmqClientOptions& options,
                              std::shared_ptr<zmq::context_t> context = nullptr);
  ~ZmqClientTransport() override;
  ZmqClientTransport(const ZmqClientTransport&) = delete;
  ZmqClientTransport& operator=(const ZmqClientTransport&) = delete;

  // Queues the message; before the connection is up it waits in ZeroMQ's queue. kQueueFull
  // if the queue stayed full for send_timeout (also what a refused client soon gets: libzmq
  // drops its connection, so nothing drains the queue any more).
  [[nodiscard]] SendResult send(BytesPtr message) override;
  // Returns early, empty, once authenticationRefused() is true and no frame is left:
  // nothing more can arrive.
  [[nodiscard]] std::optional<BytesPtr> recv(std::chrono::milliseconds timeout) override;
  // See "Refused authentication" above. Always false in insecure mode.
  [[nodiscard]] bool authenticationRefused() override;

 private:
  void startMonitor();
  void drainMonitor();
  void onHandshakeFailed(int event, std::int32_t value, const std::string& endpoint);
  std::optional<BytesPtr> receiveFrame();

  ZmqClientOptions options_;
  std::shared_ptr<zmq::context_t> context_;  // outlives both sockets
  zmq::socket_t socket_;
  // Our end of the socket monitor (secure mode only). Declared after socket_ so that even
  // when the constructor throws it is closed first; the destructor also stops the monitor
  // before socket_ closes.
  zmq::socket_t monitor_;
  bool refused_ = false;
};

std::unique_ptr<ZmqClientTransport> makeZmqClient(
    const ZmqClientOptions& options, std::shared_ptr<zmq::context_t> context = nullptr);

// A context configured the way the transports need it (see zmq_transport.cpp), for sharing
// among clients (its socket limit allows a few thousand clients; each also needs about four
// file descriptors).
std::shared_ptr<zmq::context_t> makeZmqContext(int io_threads = 1);

}  // namespace sfn
