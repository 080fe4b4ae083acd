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
// Threading: a ZmqServerTransport or ZmqClientTransport must be used by one thread at a time
// (handing it to another thread through a queue or a join is fine). A client's socket has
// one owner. The server object owns two threads, joined by its destructor: its ZAP handler,
// and its receive thread (see below), which shares the ROUTER with the caller's thread
// under a mutex. Every wait is bounded: recv takes a timeout, the client's send
// waits at most send_timeout (the server's never waits), the ZAP thread polls with a short
// timeout, close lingers at most linger.
//
// Hostile load (issue 13): the server's sends never block (a full peer queue is reported at
// once and that peer is skipped for full_queue_backoff); each authenticated peer has a
// receive budget (PeerRateLimiter: over it, messages are dropped and counted; over it for
// long, the peer is cut off for a while); warnings about refused or dropped traffic are
// rate-limited (LogRateLimiter) so a flood cannot flood the log too.
//
// libzmq 4.3.4 abort "Assertion failed: !_io_error (src/stream_engine_base.cpp:331)"
// (zeromq/libzmq#4364, #4841): when a peer's inbound pipe is full (it sends faster than we
// read, so libzmq stops reading its socket) and the connection then breaks (the peer closes
// with our replies unread: a RST, reported by epoll as HUP/ERR even with input off), the
// engine marks itself failed but keeps its ZMTP heartbeat timer; the next PING it tries to
// send asserts and aborts the process. The server therefore sends no ZMTP heartbeats
// (ZMQ_HEARTBEAT_IVL 0 on the ROUTER: no timer, nothing to fire). It still answers the
// clients' PINGs, so clients keep detecting a dead server; TCP keepalive
// (dead_peer_keepalive) and the coordinator's liveness and deadlines find dead clients.
// The engine left failed is torn down cleanly the next time that pipe is read.
//
// Scale (issue 13 item 5, experiments/bench/bench_fleet.py): clients send their PINGs
// without a TTL (heartbeat_ttl 0). With a TTL, the server's I/O thread arms a timer per
// client on every PING and cancels it on the next message, and libzmq 4.3.4 cancels a timer
// by walking all of them: with 5,000 clients connected that walk took a third of the I/O
// thread (perf: std::_Rb_tree_increment), accepts fell behind, and registration of 10,000
// clients stalled at about 5,500. Without it, 10,000 register in about 25 s on 2 cores.
// The listen backlog (listen_backlog) is raised for the same fleets.
// A second path to the same assertion needs no timer: a PING still in the failed engine's
// input buffer is answered (out_event) when the pipe is read down again and libzmq
// restarts that input. A peer that puts a PING after every message reaches it (reproduced
// with a raw ZMTP peer). Both paths need a peer whose inbound pipe is full, so the server
// never lets one fill: a receive thread owned by the transport reads the ROUTER all the
// time (its ZMQ_RCVHWM is 0, unbounded, and nothing stops its input), applies the budgets
// and queues what passes for recv(), at most recv_hwm messages per peer (more are dropped
// and counted in backlogDrops(); an honest client sends about one per task). The socket is
// then shared by two threads: every use of it, and all per-peer state, is under one mutex.
// Clients keep their ZMTP heartbeats: their inbound pipe could only fill if the server sent
// faster than they read, and the server is authenticated by its CURVE key (a compromised
// server is outside what this transport defends against).
//
// Allowlist reload (setAllowedKeys, sfn-server on SIGHUP): the ZAP handler judges every new
// handshake by the new list at once. A removed key's connection that is already
// authenticated cannot be closed on its own: libzmq 4.3.4 has no call that disconnects one
// peer of a ROUTER (zmq_disconnect undoes a connect(), and the server only binds). It is
// closed in effect instead: every message that arrives on it is dropped by receiveOne
// before anything else sees it (counted in revokedMessages()), so to the coordinator that
// key is silent for good, and any reconnect is refused by ZAP. Sends to it still go out,
// so the server can tell the client why (its Bye); the socket itself goes when the client
// closes it or TCP keepalive finds it dead.
//
// Pending connections (issue 13 item 4): a TCP connection still in its handshake can make
// libzmq hold one message of up to max_message_bytes and a file descriptor for up to
// handshake_interval, and nothing in libzmq bounds how many such connections there are. The
// server watches its ROUTER through a socket monitor (a PAIR on a private inproc endpoint,
// read by the receive thread, which alone touches it and the PendingConnections record):
// ACCEPTED gives a new connection's fd, DISCONNECTED its end, HANDSHAKE_SUCCEEDED that some
// handshake completed, and the first message of a connection (ZMQ_SRCFD) which one. When
// more than max_pending_connections are unauthenticated, the oldest are closed: the receive
// thread checks that the fd still has the peer address it had when accepted (fds are
// reused), then shutdown(2)s it (never close(2): libzmq owns it; it sees EOF and tears the
// connection down). The same cap holds in plaintext mode (the ZMTP NULL handshake). Counted
// in pendingClosed(), warned about through the rate-limited log. An authenticated connection
// that has sent no message yet is not cut for the cap (it is one of the unidentified
// successes, see pending_connections.h), unless it is among the oldest while attackers fill
// the cap; its client reconnects.
#pragma once

#include "sfn/core/log_rate_limiter.h"
#include "sfn/net/curve_keys.h"
#include "sfn/net/peer_rate_limiter.h"
#include "sfn/net/pending_connections.h"
#include "sfn/net/transport.h"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
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
  std::chrono::milliseconds heartbeat_ttl{0};              // ZMQ_HEARTBEAT_TTL: see "Scale"
  int send_hwm = 64;  // messages queued per peer; bounded because messages can be large
  int recv_hwm = 64;  // server: per peer, messages waiting for recv() (more are dropped)
  std::chrono::milliseconds linger{1'000};        // how long close() may flush
  std::chrono::milliseconds send_timeout{1'000};  // client send() wait on a full queue
  void validate() const;                          // throws ConfigError
};

struct ZmqServerOptions {
  std::string bind_endpoint = "tcp://127.0.0.1:*";  // "*" port: ephemeral, see endpoint()
  bool insecure = false;                            // plaintext, no authentication
  CurveKeyPair server_keys;                         // needs the secret key unless insecure
  std::vector<std::string> allowed_client_keys;     // Z85 public keys
  std::string zap_domain = "sfn";
  ZmqSocketOptions socket;  // heartbeat_* apply to the clients' PINGs only (see above)
  // Per authenticated peer, on receive; validate() checks it as "zmq rate_limit".
  RateLimitOptions rate_limit;
  // A peer whose queue was full is not sent to again for this long (sends fail at once
  // with kQueueFull): a peer that does not read must not cost every later send a syscall
  // and a log line, nor hold memory in its queue.
  std::chrono::milliseconds full_queue_backoff{10'000};
  // Dead peers without traffic: TCP keepalive idle time (then 5 probes 2 s apart), since
  // the server sends no ZMTP heartbeats.
  std::chrono::seconds dead_peer_keepalive{20};
  // Connections the kernel queues before the I/O thread accepts them (ZMQ_BACKLOG, capped by
  // net.core.somaxconn). libzmq's default of 100 drops the SYNs of a fleet that connects at
  // once, and each dropped one costs its client a retransmit 1, 3, 7... s later: 10,000
  // clients then needed minutes to register instead of seconds.
  int listen_backlog = 4096;
  // Connections allowed in their handshake at once; beyond it the oldest are closed (see
  // "Pending connections" above). 0: no cap (and no socket monitor). Honest fleets stay
  // below the default: `sfn-sim --connect` handshakes at most 256 clients per process at
  // once (2 processes for 10,000 in integration_fleet_scale and bench_fleet), and a client
  // that authenticated but has not sent its first message yet does not count. It bounds
  // the descriptors held before authentication, and their memory to at most this many x
  // max_message_bytes (a bound, not a budget: 21 GB for fmnist; filling it takes that
  // much traffic within one handshake interval).
  int max_pending_connections = kDefaultMaxPendingConnections;
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
  // How long the socket monitor (secure mode) runs; see "Refused authentication" below.
  enum class Watch {
    kAlways,          // the whole life of the transport (sfn-client)
    kUntilConnected,  // closed at the first completed handshake (fleets: 2 fds per client)
  };
  Watch watch = Watch::kAlways;
  void validate() const;  // throws ConfigError
};

// --- server ---------------------------------------------------------------------------

class ZapHandler;  // zmq_transport.cpp

// What an allowlist reload changed: Z85 public keys, sorted.
struct AllowlistChange {
  std::vector<std::string> added;
  std::vector<std::string> removed;
};

class ZmqServerTransport final : public ServerTransport {
 public:
  // Starts the ZAP handler (secure mode), binds, and starts the receive thread. Throws
  // ConfigError for bad options and zmq::error_t if the endpoint cannot be bound.
  explicit ZmqServerTransport(const ZmqServerOptions& options);
  ~ZmqServerTransport() override;
  ZmqServerTransport(const ZmqServerTransport&) = delete;
  ZmqServerTransport& operator=(const ZmqServerTransport&) = delete;

  // Never waits. kUnknownPeer if the peer never sent anything or has disconnected
  // (EHOSTUNREACH); kQueueFull if its queue is at the high-water mark, and then for every
  // send to it during full_queue_backoff (unless it reconnects: a new connection has an
  // empty queue).
  [[nodiscard]] SendResult send(const PeerId& peer, BytesPtr message) override;
  // Frames that are not [routing id][one payload] or lack an authenticated User-Id are
  // dropped (counted in droppedMessages()), and so are messages over their peer's budget
  // (rateLimitedMessages(), cutOffMessages()) or its backlog (backlogDrops()). Rethrows a
  // failure of the ZAP or the receive thread.
  [[nodiscard]] std::optional<Received> recv(std::chrono::milliseconds timeout) override;

  // The bound endpoint with the actual port (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:41234".
  const std::string& endpoint() const { return endpoint_; }
  // Handshakes the ZAP handler refused (non-allowlisted keys, wrong domain/mechanism).
  std::uint64_t refusedHandshakes() const;
  std::uint64_t droppedMessages() const { return dropped_.load(); }
  // Replaces the allowlist (see "Allowlist reload" above) and returns what changed. A key
  // allowed again is no longer dropped. Throws ConfigError, changing nothing, for a
  // malformed key or on a plaintext server (no allowlist).
  AllowlistChange setAllowedKeys(const std::vector<std::string>& keys);
  // Messages dropped because their key was removed from the allowlist after it connected.
  std::uint64_t revokedMessages() const { return revoked_messages_.load(); }
  // Dropped because their peer was over its receive budget, or cut off.
  std::uint64_t rateLimitedMessages() const { return rate_limited_.load(); }
  std::uint64_t cutOffMessages() const { return cut_off_messages_.load(); }
  // Peers cut off so far (each time counts).
  std::uint64_t cutOffs() const;
  // Dropped because recv_hwm messages of their peer were already waiting for recv().
  std::uint64_t backlogDrops() const { return backlog_drops_.load(); }
  // Sends refused with kQueueFull (the queue was full, or the peer was in its back-off).
  std::uint64_t queueFullSends() const { return queue_full_sends_.load(); }
  // Connections now in their handshake, as the receive thread last counted them (0 without
  // a cap), and connections closed for being over max_pending_connections.
  std::size_t pendingConnections() const { return pending_now_.load(); }
  std::uint64_t pendingClosed() const { return pending_closed_.load(); }

 private:
  void startMonitor();
  void stopMonitor();
  void watchHandshakes();
  void onMonitorEvent(int event, std::int32_t value);
  void closeOverCap();
  void receiveLoop();
  bool drainSocket();
  void enqueue(Received got);
  std::optional<Received> receiveOne();
  bool admit(const PeerId& peer, std::size_t bytes);
  void warn(const std::string& kind, const std::string& text);
  void flushLogSummaries();

  ZmqServerOptions options_;
  // Declaration order is destruction order reversed: the sockets close first, then the ZAP
  // thread is joined, then the context terminates (which waits for all its sockets).
  zmq::context_t context_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t socket_;
  // Our end of the ROUTER's socket monitor (with a cap only). Declared after socket_ so that
  // even when the constructor throws it closes first. Only the receive thread touches it
  // and the three members after it, between the constructor and the join in the destructor.
  zmq::socket_t monitor_;
  std::unique_ptr<PendingConnections> pending_;
  bool last_event_failed_ = false;  // the previous monitor event: a failed handshake
  std::vector<int> heard_fds_;      // fds of messages received since the last watch
  std::string endpoint_;
  // Authenticated key -> current routing id. Refreshed by every received message, so a
  // reconnecting client is reachable again after its first message. At most one entry per
  // allowlisted key.
  std::unordered_map<PeerId, std::string> routes_;
  std::set<std::string> allowed_keys_;  // the allowlist in force (Z85, as User-Ids read)
  std::set<PeerId> revoked_;            // removed by a reload: their messages are dropped
  // Peers whose queue was full, and until when they are skipped.
  std::unordered_map<PeerId, std::chrono::steady_clock::time_point> backoff_until_;
  PeerRateLimiter limiter_;
  LogRateLimiter log_limiter_;
  // Guards socket_ and everything above that the receive thread touches (routes, budgets,
  // back-offs, the allowlist sets, the log limiter) plus the inbox below.
  mutable std::mutex mu_;
  std::condition_variable inbox_ready_;
  std::deque<Received> inbox_;                      // received, admitted, not yet recv()'d
  std::unordered_map<PeerId, int> inbox_per_peer_;  // how many of them each peer has
  std::exception_ptr receive_error_;                // a failure of the receive thread
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> revoked_messages_{0};
  std::atomic<std::uint64_t> rate_limited_{0};
  std::atomic<std::uint64_t> cut_off_messages_{0};
  std::atomic<std::uint64_t> backlog_drops_{0};
  std::atomic<std::uint64_t> queue_full_sends_{0};
  std::atomic<std::size_t> pending_now_{0};
  std::atomic<std::uint64_t> pending_closed_{0};
  std::atomic<bool> stop_{false};
  std::thread receiver_;  // last: started once everything above exists; joined first
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
// The monitor also reports when a handshake completed and when the connection dropped:
// connected() follows them.
// Each client then uses three sockets of its context (DEALER, libzmq's monitor PAIR, ours)
// and four file descriptors (a TCP connection and one eventfd per socket); makeZmqContext
// raises the context's socket limit accordingly. A fleet of thousands in one process
// (sfn-sim --connect) sets watch = kUntilConnected: the monitor closes at the first
// completed handshake, leaving two descriptors per client. After that, a refusal on a later
// reconnect (the server restarted with a new allowlist) is not seen (authenticationRefused
// stays false), and connected() stays true.
// Insecure mode runs no monitor: connected() is always true and nothing is refused.
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
  // See "Refused authentication" above.
  [[nodiscard]] bool connected() override;

 private:
  void startMonitor();
  void stopMonitor();
  void drainMonitor();
  void onEvent(int event, std::int32_t value, const std::string& endpoint);
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
  bool connected_ = false;  // as the monitor last reported
};

std::unique_ptr<ZmqClientTransport> makeZmqClient(
    const ZmqClientOptions& options, std::shared_ptr<zmq::context_t> context = nullptr);

// A context configured the way the transports need it (see zmq_transport.cpp), for sharing
// among clients (its socket limit allows a few thousand clients; each also needs about four
// file descriptors).
std::shared_ptr<zmq::context_t> makeZmqContext(int io_threads = 1);

}  // namespace sfn
