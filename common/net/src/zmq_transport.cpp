#include "sfn/net/zmq_transport.h"

#include "sfn/core/error.h"
#include "sfn/core/hex.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

namespace sfn {
namespace {

using Clock = std::chrono::steady_clock;

// Both are real options of libzmq 4.3 but are only declared by zmq.h under
// ZMQ_BUILD_DRAFT_API, which Debian's headers do not enable.
constexpr int kZapEnforceDomain = 93;  // ZMQ_ZAP_ENFORCE_DOMAIN (socket)
constexpr int kZeroCopyRecv = 10;      // ZMQ_ZERO_COPY_RECV (context)
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
// ZeroMQ keeps the TTL in deciseconds in a 16-bit field.
constexpr std::chrono::milliseconds kMaxHeartbeatTtl{6'553'599};
// The ZAP thread re-checks its stop flag this often; it bounds destructor latency.
constexpr std::chrono::milliseconds kZapPollInterval{50};
// The events a client watches: handshake outcomes and disconnects. NO_DETAIL (a connection
// that broke during the handshake) is left out: it comes with every failed reconnect and
// says nothing about keys.
constexpr int kMonitorEvents = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_DISCONNECTED;
// The server's monitor (see "Pending connections" in zmq_transport.h). A failed handshake
// is reported just before its DISCONNECTED, which is how the two kinds of close are told
// apart.
constexpr int kServerMonitorEvents =
    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
// The server's context is its own, so a fixed name cannot collide.
constexpr const char* kServerMonitorEndpoint = "inproc://sfn-server-monitor";
// Events read per pass of the receive thread, so a connection flood cannot starve the ROUTER.
constexpr int kMonitorBatch = 4096;
// Kept past the handshake interval before an entry is forgotten: libzmq drops the handshake
// itself by then, and our reading of its events may lag that much on a loaded machine.
constexpr std::chrono::milliseconds kPendingAgeMargin{2'000};
// RFC 27: 400 is a definite "no"; 300 (temporary) and 500 (internal) may pass on a retry.
constexpr std::int32_t kZapStatusRefused = 400;
// Sockets per context: each client needs three (see zmq_transport.h), and libzmq's default
// of 1023 would cap a shared-context fleet at about 340 clients.
constexpr int kMaxContextSockets = 16'384;
// Warnings about refused or dropped traffic: at most this many lines per kind per interval,
// then one line with the count (a flood must not flood the log).
constexpr int kLogLinesPerInterval = 5;
constexpr std::chrono::seconds kLogInterval{10};
// TCP keepalive probes for dead peers, after the idle time (ZmqServerOptions).
constexpr int kKeepaliveProbes = 5;
constexpr int kKeepaliveProbeIntervalS = 2;
// The receive thread reads at most this many messages per hold of the lock (so a flood
// cannot keep send() waiting), and re-checks the socket at least this often: ZMQ_FD only
// signals edges, and send() on the other thread may consume one.
constexpr int kDrainBatch = 256;
constexpr int kReceivePollMs = 10;

// A received frame, kept alive (and not copied) for as long as anything uses its bytes.
class ZmqBytes final : public Bytes {
 public:
  explicit ZmqBytes(zmq::message_t message) : message_(std::move(message)) {}
  const std::uint8_t* data() const override {
    return static_cast<const std::uint8_t*>(message_.data());
  }
  std::size_t size() const override { return message_.size(); }

 private:
  zmq::message_t message_;
};

// Wraps `bytes` in a frame without copying; ZeroMQ drops the reference when it is done,
// possibly on its I/O thread (shared_ptr's count is atomic, so that is safe).
zmq::message_t toFrame(BytesPtr bytes) {
  auto holder = std::make_unique<BytesPtr>(std::move(bytes));
  void* data = const_cast<std::uint8_t*>((*holder)->data());  // ZeroMQ only reads it
  zmq::message_t frame(
      data, (*holder)->size(),
      [](void*, void* hint) { std::unique_ptr<BytesPtr>(static_cast<BytesPtr*>(hint)); },
      holder.get());
  holder.release();  // now owned by the frame's free function
  return frame;
}

int toInt(std::chrono::milliseconds ms) { return static_cast<int>(ms.count()); }

// For options cppzmq has no typed wrapper for (draft-declared ones, binary keys).
void setRawOption(zmq::socket_t& socket, int option, const void* value, std::size_t size) {
  if (zmq_setsockopt(socket.handle(), option, value, size) != 0) throw zmq::error_t();
}

void setBinaryKey(zmq::socket_t& socket, int option, const CurveKey& key) {
  setRawOption(socket, option, key.data(), key.size());
}

void applySocketOptions(zmq::socket_t& socket, const ZmqSocketOptions& o) {
  socket.set(zmq::sockopt::maxmsgsize, o.max_message_bytes);
  socket.set(zmq::sockopt::handshake_ivl, toInt(o.handshake_interval));
  socket.set(zmq::sockopt::heartbeat_ivl, toInt(o.heartbeat_interval));
  socket.set(zmq::sockopt::heartbeat_timeout, toInt(o.heartbeat_timeout));
  socket.set(zmq::sockopt::heartbeat_ttl, toInt(o.heartbeat_ttl));
  socket.set(zmq::sockopt::sndhwm, o.send_hwm);
  socket.set(zmq::sockopt::rcvhwm, o.recv_hwm);
  socket.set(zmq::sockopt::linger, toInt(o.linger));
  socket.set(zmq::sockopt::sndtimeo, toInt(o.send_timeout));
}

// poll() for input on `items` (revents tell which are readable). EINTR counts as a (short)
// timeout so callers simply re-check their deadline.
void pollInput(zmq::pollitem_t* items, std::size_t count, std::chrono::milliseconds timeout) {
  for (std::size_t i = 0; i < count; ++i) items[i].revents = 0;
  try {
    zmq::poll(items, count, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
}

// poll() for input on one socket; false on timeout (or EINTR).
bool waitReadable(zmq::socket_ref socket, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  pollInput(&item, 1, timeout);
  return (item.revents & ZMQ_POLLIN) != 0;
}

// Discards the remaining frames of a multipart message.
void drainFrames(zmq::socket_ref socket, const zmq::message_t& last) {
  bool more = last.more();
  while (more) {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return;
    more = frame.more();
  }
}

// One socket monitor event: [u16 event, i32 value] in host order, then the endpoint.
struct MonitorEvent {
  int id = 0;  // 0: malformed (no ZMQ_EVENT_* is 0)
  std::int32_t value = 0;
  std::string endpoint;
};

// Reads the next event of a monitor PAIR without waiting; false if there is none.
bool readMonitorEvent(zmq::socket_ref monitor, MonitorEvent& out) {
  zmq::message_t event;
  if (!monitor.recv(event, zmq::recv_flags::dontwait)) return false;
  zmq::message_t endpoint;
  // The parts of a message arrive together, so the rest is already there.
  if (event.more() && monitor.recv(endpoint, zmq::recv_flags::dontwait))
    drainFrames(monitor, endpoint);
  out = MonitorEvent{};
  if (event.size() < sizeof(std::uint16_t) + sizeof(std::int32_t)) return true;
  std::uint16_t id = 0;
  std::memcpy(&id, event.data(), sizeof id);
  std::memcpy(&out.value, static_cast<const char*>(event.data()) + sizeof id, sizeof out.value);
  out.id = id;
  out.endpoint = endpoint.to_string();
  return true;
}

// The remote end of TCP socket `fd`, formatted as libzmq 4.3.4 formats addresses
// (tcp_address_t::to_string: "tcp://1.2.3.4:5678", "tcp://[::1]:5678"); empty if `fd` is
// not a connected TCP socket (any more).
std::string peerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char host[NI_MAXHOST];
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return {};
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof host, nullptr, 0,
                    NI_NUMERICHOST) != 0)
    return {};
  if (ss.ss_family == AF_INET6) {
    const auto port = ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return std::string("tcp://[") + host + "]:" + std::to_string(port);
  }
  const auto port = ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  return std::string("tcp://") + host + ":" + std::to_string(port);
}

std::chrono::milliseconds remainingUntil(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds{0};
}

}  // namespace

// --- ZAP handler ----------------------------------------------------------------------

// Answers the ZAP requests (RFC 27) of one context: admits CURVE clients whose public key
// is allowlisted, in the expected domain, and names them by that key (the User-Id). The
// allowlist can be replaced while it runs (setAllowed, from the server's thread); a
// handshake is checked against the list as it stands when its request arrives.
// The REP socket is bound in the constructor (on the caller's thread) so that it exists
// before the server socket accepts any connection; from then on only the handler thread
// touches it.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, std::string domain,
             const std::vector<std::string>& allowed_keys)
      : socket_(context, zmq::socket_type::rep), domain_(std::move(domain)) {
    for (const auto& k : allowed_keys) allowed_.insert(requireCurveKey(k, "allowed client key"));
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(kZapEndpoint);
    thread_ = std::thread([this] { run(); });
  }

  ~ZapHandler() {
    stop_.store(true);
    thread_.join();
  }
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  std::uint64_t refused() const { return refused_.load(); }

  void setAllowed(std::set<CurveKey> keys) {
    std::lock_guard lock(allowed_mu_);
    allowed_ = std::move(keys);
  }

  // Carries an exception of the handler thread to the server's thread.
  void rethrowIfFailed() {
    std::lock_guard lock(error_mu_);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run() {
    try {
      while (!stop_.load()) {
        if (waitReadable(socket_, kZapPollInterval)) handleRequest();
        for (const auto& s : log_limiter_.flush()) spdlog::warn("zap[{}]: {}", domain_, s.text());
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != ETERM) {
        std::lock_guard lock(error_mu_);
        error_ = std::current_exception();
      }
    } catch (...) {
      std::lock_guard lock(error_mu_);
      error_ = std::current_exception();
    }
    socket_.close();
  }

  void handleRequest() {
    // Frames: version, request id, domain, address, routing id, mechanism, credentials...
    std::vector<zmq::message_t> frames;
    bool more = true;
    while (more) {
      zmq::message_t frame;
      if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
      more = frame.more();
      // A REP socket must answer every request, so oversized requests are still read
      // to the end but not kept.
      if (frames.size() < 8) frames.push_back(std::move(frame));
    }
    std::string request_id = frames.size() > 1 ? frames[1].to_string() : std::string();
    std::string status = "400";
    std::string text = "malformed ZAP request";
    std::string user_id;
    if (frames.size() >= 7 && frames[0].to_string_view() == "1.0") {
      const std::string_view domain = frames[2].to_string_view();
      const std::string_view mechanism = frames[5].to_string_view();
      if (domain != domain_) {
        text = "wrong ZAP domain";
      } else if (mechanism != "CURVE") {
        text = "CURVE required";
      } else if (frames[6].size() != sizeof(CurveKey)) {
        text = "bad CURVE credentials";
      } else {
        CurveKey key;
        std::memcpy(key.data(), frames[6].data(), key.size());
        if (isAllowed(key)) {
          status = "200";
          text = "OK";
          user_id = encodeCurveKey(key);
        } else {
          text = "client key not allowlisted";
        }
      }
    }
    if (status != "200") {
      refused_.fetch_add(1);
      if (log_limiter_.allow("refused handshakes"))
        spdlog::warn("zap[{}]: refused handshake from {}: {}", domain_,
                     frames.size() > 3 ? frames[3].to_string() : std::string("?"), text);
    }
    socket_.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
    socket_.send(zmq::message_t(), zmq::send_flags::none);  // metadata: none
  }

  bool isAllowed(const CurveKey& key) {
    std::lock_guard lock(allowed_mu_);
    return allowed_.count(key) != 0;
  }

  zmq::socket_t socket_;
  const std::string domain_;
  std::mutex allowed_mu_;  // allowed_ is read by the handler thread, replaced by setAllowed
  std::set<CurveKey> allowed_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> refused_{0};
  LogRateLimiter log_limiter_{kLogLinesPerInterval, kLogInterval};  // handler thread only
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once every member above is initialized
};

// --- options --------------------------------------------------------------------------

void ZmqSocketOptions::validate() const {
  SFN_ENFORCE(max_message_bytes > 0, ConfigError, "zmq max_message_bytes must be > 0");
  SFN_ENFORCE(handshake_interval.count() > 0, ConfigError,
              "zmq handshake_interval must be > 0 (0 would disable the handshake timeout)");
  SFN_ENFORCE(heartbeat_interval.count() > 0 && heartbeat_timeout.count() > 0, ConfigError,
              "zmq heartbeat interval and timeout must be > 0");
  SFN_ENFORCE(heartbeat_ttl.count() >= 0 && heartbeat_ttl <= kMaxHeartbeatTtl, ConfigError,
              "zmq heartbeat_ttl must be in [0, ", kMaxHeartbeatTtl.count(), "] ms");
  SFN_ENFORCE(send_hwm > 0 && recv_hwm > 0, ConfigError,
              "zmq high-water marks must be > 0 (0 means unbounded)");
  SFN_ENFORCE(linger.count() >= 0, ConfigError, "zmq linger must be >= 0 (bounded)");
  SFN_ENFORCE(send_timeout.count() >= 0, ConfigError, "zmq send_timeout must be >= 0");
}

void ZmqServerOptions::validate() const {
  socket.validate();
  SFN_ENFORCE(!bind_endpoint.empty(), ConfigError, "zmq server bind_endpoint is empty");
  rate_limit.validate("zmq rate_limit", socket.max_message_bytes);
  SFN_ENFORCE(full_queue_backoff.count() >= 0, ConfigError, "zmq full_queue_backoff must be >= 0");
  SFN_ENFORCE(dead_peer_keepalive.count() > 0, ConfigError, "zmq dead_peer_keepalive must be > 0");
  SFN_ENFORCE(listen_backlog > 0, ConfigError, "zmq listen_backlog must be > 0 (got ",
              listen_backlog, ")");
  SFN_ENFORCE(
      max_pending_connections >= 0 && max_pending_connections <= kMaxPendingConnectionsLimit,
      ConfigError, "zmq max_pending_connections must be in [0, ", kMaxPendingConnectionsLimit,
      "] (0: no cap; got ", max_pending_connections, ")");
  if (insecure) return;
  requireCurveKey(server_keys.public_key, "server public key");
  requireCurveKey(server_keys.secret_key, "server secret key");
  SFN_ENFORCE(!zap_domain.empty(), ConfigError, "zmq zap_domain is empty");
  for (const auto& k : allowed_client_keys) requireCurveKey(k, "allowed client key");
}

void ZmqClientOptions::validate() const {
  socket.validate();
  SFN_ENFORCE(!server_endpoint.empty(), ConfigError, "zmq client server_endpoint is empty");
  SFN_ENFORCE(reconnect_interval.count() > 0 && reconnect_interval_max >= reconnect_interval,
              ConfigError, "zmq reconnect intervals must satisfy 0 < ivl <= ivl_max");
  if (insecure) return;
  requireCurveKey(client_keys.public_key, "client public key");
  requireCurveKey(client_keys.secret_key, "client secret key");
  requireCurveKey(server_public_key, "server public key");
}

std::shared_ptr<zmq::context_t> makeZmqContext(int io_threads) {
  auto context = std::make_shared<zmq::context_t>(io_threads);
  // With zero-copy receive, small frames point at arbitrary offsets inside the socket's
  // batch buffer; turning it off gives every frame its own 8-byte aligned allocation, so
  // decode() never needs to copy to realign.
  // Best effort: should an older libzmq refuse the option, decode() copies and counts it.
  (void)zmq_ctx_set(context->handle(), kZeroCopyRecv, 0);
  // Only possible before the first socket exists, hence here. libzmq caps it at what its
  // poller supports (ZMQ_SOCKET_LIMIT).
  const int limit = zmq_ctx_get(context->handle(), ZMQ_SOCKET_LIMIT);
  const int max_sockets = limit > 0 ? std::min(limit, kMaxContextSockets) : kMaxContextSockets;
  if (zmq_ctx_set(context->handle(), ZMQ_MAX_SOCKETS, max_sockets) != 0) throw zmq::error_t();
  return context;
}

// --- server ---------------------------------------------------------------------------

ZmqServerTransport::ZmqServerTransport(const ZmqServerOptions& options)
    : options_(options),
      context_(1),
      limiter_(options.rate_limit),
      log_limiter_(kLogLinesPerInterval, kLogInterval) {
  options_.validate();
  (void)zmq_ctx_set(context_.handle(), kZeroCopyRecv, 0);  // see makeZmqContext
  if (!options_.insecure)
    zap_ =
        std::make_unique<ZapHandler>(context_, options_.zap_domain, options_.allowed_client_keys);
  for (const auto& k : options_.allowed_client_keys)
    allowed_keys_.insert(encodeCurveKey(requireCurveKey(k, "allowed client key")));
  socket_ = zmq::socket_t(context_, zmq::socket_type::router);
  applySocketOptions(socket_, options_.socket);
  // Never full, so libzmq never stops reading a peer (see the header): the receive thread
  // drains it and applies the per-peer backlog bound (recv_hwm) itself.
  socket_.set(zmq::sockopt::rcvhwm, 0);
  // No ZMTP PINGs from the server: their timer is what aborts in libzmq 4.3.4 (see the
  // header). TCP keepalive finds the dead peers instead.
  socket_.set(zmq::sockopt::heartbeat_ivl, 0);
  socket_.set(zmq::sockopt::tcp_keepalive, 1);
  socket_.set(zmq::sockopt::tcp_keepalive_idle,
              static_cast<int>(options_.dead_peer_keepalive.count()));
  socket_.set(zmq::sockopt::tcp_keepalive_intvl, kKeepaliveProbeIntervalS);
  socket_.set(zmq::sockopt::tcp_keepalive_cnt, kKeepaliveProbes);
  socket_.set(zmq::sockopt::backlog, options_.listen_backlog);
  // Unroutable sends fail with EHOSTUNREACH instead of being dropped silently.
  socket_.set(zmq::sockopt::router_mandatory, 1);
  if (!options_.insecure) {
    socket_.set(zmq::sockopt::curve_server, 1);
    setBinaryKey(socket_, ZMQ_CURVE_SECRETKEY,
                 requireCurveKey(options_.server_keys.secret_key, "server secret key"));
    socket_.set(zmq::sockopt::zap_domain, options_.zap_domain);
    const int enforce = 1;
    setRawOption(socket_, kZapEnforceDomain, &enforce, sizeof enforce);
  }
  if (options_.max_pending_connections > 0) startMonitor();  // before bind: see every accept
  try {
    socket_.bind(options_.bind_endpoint);
  } catch (const zmq::error_t& e) {
    // libzmq says only "Address already in use": which endpoint is the operator's question.
    const bool malformed =
        e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO;
    if (malformed) SFN_THROW(ConfigError, "cannot bind ", options_.bind_endpoint, ": ", e.what());
    SFN_THROW(IoError, "cannot bind ", options_.bind_endpoint, ": ", e.what());
  }
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  receiver_ = std::thread([this] { receiveLoop(); });
}

ZmqServerTransport::~ZmqServerTransport() {
  stop_.store(true);
  if (receiver_.joinable()) receiver_.join();
  stopMonitor();
}

void ZmqServerTransport::startMonitor() {
  if (zmq_socket_monitor(socket_.handle(), kServerMonitorEndpoint, kServerMonitorEvents) != 0)
    throw zmq::error_t();
  monitor_ = zmq::socket_t(context_, zmq::socket_type::pair);
  monitor_.set(zmq::sockopt::linger, 0);
  // Unbounded: libzmq's I/O thread sends each event with a blocking send, so a full pipe
  // (this thread busy for a moment during a connection flood) would stall every connection.
  monitor_.set(zmq::sockopt::rcvhwm, 0);
  monitor_.connect(kServerMonitorEndpoint);
  pending_ = std::make_unique<PendingConnections>(
      static_cast<std::size_t>(options_.max_pending_connections),
      options_.socket.handshake_interval + kPendingAgeMargin);
}

// After the receive thread is joined: libzmq's side stops first (it closes its PAIR), then
// ours; both must be closed before the context can terminate.
void ZmqServerTransport::stopMonitor() {
  if (!monitor_) return;
  (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
  monitor_.close();
}

// Applies the monitor's events, then the fds that messages arrived on (only once every
// event before them is applied: a message's ACCEPTED was sent before the message), then
// the cap.
void ZmqServerTransport::watchHandshakes() {
  MonitorEvent event;
  int read = 0;
  while (read < kMonitorBatch && readMonitorEvent(monitor_, event)) {
    onMonitorEvent(event.id, event.value);
    ++read;
  }
  if (read < kMonitorBatch) {
    for (const int fd : heard_fds_) (void)pending_->heardFrom(fd);
    heard_fds_.clear();
  }
  closeOverCap();
}

void ZmqServerTransport::onMonitorEvent(int event, std::int32_t value) {
  const auto now = Clock::now();
  if (event == ZMQ_EVENT_ACCEPTED) {
    // Gone already if empty: its DISCONNECTED follows.
    if (std::string address = peerAddress(value); !address.empty())
      pending_->accepted(value, std::move(address), now);
  } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
    pending_->authenticated(now);
  } else if (event == ZMQ_EVENT_DISCONNECTED) {
    (void)pending_->disconnected(value, last_event_failed_);
  }
  last_event_failed_ = event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                       event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                       event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

void ZmqServerTransport::closeOverCap() {
  std::uint64_t closed = 0;
  for (const PendingConnections::Connection& c : pending_->overCap(Clock::now())) {
    // The fd may have been closed and reused by a connection whose ACCEPTED is still
    // unread: then its peer differs and it is left alone. (libzmq could still close and
    // reuse it between these two calls; that costs the new peer one reconnect.)
    if (peerAddress(c.fd) == c.address && ::shutdown(c.fd, SHUT_RDWR) == 0) ++closed;
  }
  pending_now_.store(pending_->pending());
  if (closed == 0) return;
  pending_closed_ += closed;
  std::lock_guard lock(mu_);
  warn("connections over the pending cap",
       "closed " + std::to_string(closed) + " connections over the cap of " +
           std::to_string(options_.max_pending_connections) + " pending handshakes");
}

std::uint64_t ZmqServerTransport::cutOffs() const {
  std::lock_guard lock(mu_);
  return limiter_.cutOffs();
}

std::uint64_t ZmqServerTransport::refusedHandshakes() const { return zap_ ? zap_->refused() : 0; }

AllowlistChange ZmqServerTransport::setAllowedKeys(const std::vector<std::string>& keys) {
  SFN_ENFORCE(zap_ != nullptr, ConfigError, "a plaintext (insecure) server has no allowlist");
  std::lock_guard lock(mu_);  // revoked_ is read by the receive thread
  std::set<CurveKey> binary;
  std::set<std::string> canonical;  // the User-Id form, as receiveOne sees peers
  for (const auto& k : keys) {
    const CurveKey key = requireCurveKey(k, "allowed client key");
    binary.insert(key);
    canonical.insert(encodeCurveKey(key));
  }
  AllowlistChange change;
  std::set_difference(canonical.begin(), canonical.end(), allowed_keys_.begin(),
                      allowed_keys_.end(), std::back_inserter(change.added));
  std::set_difference(allowed_keys_.begin(), allowed_keys_.end(), canonical.begin(),
                      canonical.end(), std::back_inserter(change.removed));
  zap_->setAllowed(std::move(binary));  // new handshakes: from now on
  for (const auto& k : change.removed) revoked_.insert(k);
  for (const auto& k : change.added) revoked_.erase(k);
  allowed_keys_ = std::move(canonical);
  return change;
}

SendResult ZmqServerTransport::send(const PeerId& peer, BytesPtr message) {
  if (!message) return {SendStatus::kError, "null message"};
  std::lock_guard lock(mu_);
  if (message->size() > static_cast<std::uint64_t>(options_.socket.max_message_bytes))
    return {SendStatus::kTooLarge, std::to_string(message->size()) + " bytes"};
  std::string routing_id;
  if (options_.insecure) {
    const auto decoded = fromHex(peer);
    if (!decoded || decoded->empty())
      return {SendStatus::kUnknownPeer, "bad peer id '" + peer + "'"};
    routing_id.assign(decoded->begin(), decoded->end());
  } else {
    auto it = routes_.find(peer);
    if (it == routes_.end()) return {SendStatus::kUnknownPeer, "no route to '" + peer + "'"};
    routing_id = it->second;
  }
  const auto now = Clock::now();
  if (auto b = backoff_until_.find(peer); b != backoff_until_.end()) {
    if (now < b->second) {
      ++queue_full_sends_;
      return {SendStatus::kQueueFull, "peer '" + peer + "' had a full queue; skipped for now"};
    }
    backoff_until_.erase(b);
  }
  try {
    // With ROUTER_MANDATORY the first frame decides: EHOSTUNREACH if the peer is gone,
    // EAGAIN (empty result, at once: dontwait) if its queue is full. The second frame of
    // an accepted message always goes through.
    if (!socket_.send(zmq::buffer(routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      ++queue_full_sends_;
      backoff_until_[peer] = now + options_.full_queue_backoff;
      return {SendStatus::kQueueFull, "peer '" + peer + "' queue full"};
    }
    (void)socket_.send(toFrame(std::move(message)), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      routes_.erase(peer);
      return {SendStatus::kUnknownPeer, "peer '" + peer + "' is not connected"};
    }
    if (e.num() == ETERM) return {SendStatus::kClosed, e.what()};
    return {SendStatus::kError, e.what()};
  }
  return {};
}

std::optional<Received> ZmqServerTransport::receiveOne() {
  zmq::message_t routing_id;
  if (!socket_.recv(routing_id, zmq::recv_flags::dontwait)) return std::nullopt;
  if (!routing_id.more()) {
    ++dropped_;
    return std::nullopt;
  }
  zmq::message_t payload;
  // The parts of a message arrive together, so the rest is already there.
  if (!socket_.recv(payload, zmq::recv_flags::dontwait)) {
    ++dropped_;
    return std::nullopt;
  }
  if (pending_) {  // any message proves its connection's handshake complete
    const int fd = zmq_msg_get(payload.handle(), ZMQ_SRCFD);
    if (fd >= 0) heard_fds_.push_back(fd);
  }
  if (payload.more()) {
    drainFrames(socket_, payload);
    ++dropped_;
    warn("dropped multi-frame messages", "dropped a multi-frame message");
    return std::nullopt;
  }
  PeerId peer;
  if (options_.insecure) {
    peer = toHex({static_cast<const std::uint8_t*>(routing_id.data()), routing_id.size()});
  } else {
    // Set by libzmq from our ZAP reply: the key the peer proved it holds.
    const char* user_id = zmq_msg_gets(payload.handle(), "User-Id");
    if (user_id == nullptr || *user_id == '\0') {
      ++dropped_;
      warn("dropped unauthenticated messages", "dropped a message without authenticated User-Id");
      return std::nullopt;
    }
    peer = user_id;
    if (revoked_.count(peer) != 0) {  // authenticated before its key was removed
      ++revoked_messages_;
      warn("messages from revoked keys",
           "dropped a message from '" + peer + "': its key was removed from the allowlist");
      return std::nullopt;
    }
    std::string& route = routes_[peer];
    // A new connection comes with an empty queue: no reason to keep skipping it.
    if (route != routing_id.to_string()) backoff_until_.erase(peer);
    route = routing_id.to_string();
  }
  if (!admit(peer, payload.size())) return std::nullopt;
  return Received{std::move(peer), std::make_shared<ZmqBytes>(std::move(payload))};
}

bool ZmqServerTransport::admit(const PeerId& peer, std::size_t bytes) {
  const std::uint64_t cut_offs_before = limiter_.cutOffs();
  switch (limiter_.admit(peer, bytes, Clock::now())) {
    case Admission::kAccepted:
      return true;
    case Admission::kOverBudget:
      ++rate_limited_;
      warn("messages over their peer's budget", "dropped a message of " + std::to_string(bytes) +
                                                    " bytes from '" + peer +
                                                    "': over its receive budget");
      return false;
    case Admission::kCutOff:
      ++cut_off_messages_;
      if (limiter_.cutOffs() != cut_offs_before)
        warn("cut-offs", "cut off '" + peer + "' for " +
                             std::to_string(options_.rate_limit.cut_off.count() / 1000) +
                             " s: over its receive budget for " +
                             std::to_string(options_.rate_limit.sustained.count() / 1000) + " s");
      warn("messages from cut-off peers",
           "dropped a message from '" + peer + "': cut off for exceeding its receive budget");
      return false;
  }
  return false;
}

void ZmqServerTransport::warn(const std::string& kind, const std::string& text) {
  if (log_limiter_.allow(kind)) spdlog::warn("zmq server {}: {}", endpoint_, text);
}

void ZmqServerTransport::flushLogSummaries() {
  for (const auto& s : log_limiter_.flush()) spdlog::warn("zmq server {}: {}", endpoint_, s.text());
}

void ZmqServerTransport::receiveLoop() {
  try {
    std::array<pollfd, 2> items{};  // the ROUTER, and the monitor if there is one
    {
      std::lock_guard lock(mu_);
      items[0] = {socket_.get(zmq::sockopt::fd), POLLIN, 0};  // fixed for the socket's life
    }
    if (monitor_) items[1] = {monitor_.get(zmq::sockopt::fd), POLLIN, 0};
    const nfds_t count = monitor_ ? 2 : 1;
    while (!stop_.load()) {
      const bool full = drainSocket();  // a full batch: more may be waiting
      if (monitor_) watchHandshakes();
      if (full) continue;
      (void)::poll(items.data(), count, kReceivePollMs);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return;
    std::lock_guard lock(mu_);
    receive_error_ = std::current_exception();
  } catch (...) {
    std::lock_guard lock(mu_);
    receive_error_ = std::current_exception();
  }
  inbox_ready_.notify_all();
}

// Reads what the socket holds, up to one batch; true if the batch was full.
bool ZmqServerTransport::drainSocket() {
  std::lock_guard lock(mu_);
  for (int i = 0; i < kDrainBatch; ++i) {
    // Also lets libzmq process its pending commands (new peers, pipe activations).
    if ((socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) == 0) return false;
    if (auto got = receiveOne()) enqueue(std::move(*got));
  }
  return true;
}

void ZmqServerTransport::enqueue(Received got) {
  int& waiting = inbox_per_peer_[got.peer];
  if (waiting >= options_.socket.recv_hwm) {
    ++backlog_drops_;
    warn("messages over a peer's backlog", "dropped a message from '" + got.peer +
                                               "': " + std::to_string(waiting) +
                                               " of its messages wait for the server already");
    return;
  }
  ++waiting;
  inbox_.push_back(std::move(got));
  inbox_ready_.notify_one();
}

std::optional<Received> ZmqServerTransport::recv(std::chrono::milliseconds timeout) {
  if (zap_) zap_->rethrowIfFailed();
  std::unique_lock lock(mu_);
  flushLogSummaries();
  inbox_ready_.wait_for(lock, timeout, [this] { return !inbox_.empty() || receive_error_; });
  if (receive_error_) std::rethrow_exception(receive_error_);
  if (inbox_.empty()) return std::nullopt;
  Received got = std::move(inbox_.front());
  inbox_.pop_front();
  if (auto it = inbox_per_peer_.find(got.peer); it != inbox_per_peer_.end() && --it->second <= 0)
    inbox_per_peer_.erase(it);
  return got;
}

std::unique_ptr<ZmqServerTransport> makeZmqServer(const ZmqServerOptions& options) {
  return std::make_unique<ZmqServerTransport>(options);
}

// --- client ---------------------------------------------------------------------------

ZmqClientTransport::ZmqClientTransport(const ZmqClientOptions& options,
                                       std::shared_ptr<zmq::context_t> context)
    : options_(options), context_(context ? std::move(context) : makeZmqContext()) {
  options_.validate();
  socket_ = zmq::socket_t(*context_, zmq::socket_type::dealer);
  applySocketOptions(socket_, options_.socket);
  socket_.set(zmq::sockopt::reconnect_ivl, toInt(options_.reconnect_interval));
  socket_.set(zmq::sockopt::reconnect_ivl_max, toInt(options_.reconnect_interval_max));
  if (!options_.insecure) {
    setBinaryKey(socket_, ZMQ_CURVE_SERVERKEY,
                 requireCurveKey(options_.server_public_key, "server public key"));
    setBinaryKey(socket_, ZMQ_CURVE_PUBLICKEY,
                 requireCurveKey(options_.client_keys.public_key, "client public key"));
    setBinaryKey(socket_, ZMQ_CURVE_SECRETKEY,
                 requireCurveKey(options_.client_keys.secret_key, "client secret key"));
    startMonitor();  // before connect(), or the first handshake could go unseen
  }
  socket_.connect(options_.server_endpoint);
}

ZmqClientTransport::~ZmqClientTransport() { stopMonitor(); }

void ZmqClientTransport::stopMonitor() {
  if (!monitor_) return;
  // Stops libzmq's side (it closes its PAIR and unbinds the endpoint) before our side and
  // the DEALER close; all three must be closed before a shared context can terminate.
  (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
  monitor_.close();
}

void ZmqClientTransport::startMonitor() {
  // Unique within the (possibly shared) context while this object lives. A predecessor at
  // the same address may not have released its endpoint yet (libzmq unbinds in its reaper
  // thread), hence the suffix that counts up on EADDRINUSE.
  const std::string base =
      "inproc://sfn-client-monitor-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
  constexpr int kAttempts = 1000;
  std::string endpoint;
  for (int attempt = 0;; ++attempt) {
    endpoint = base + "-" + std::to_string(attempt);
    if (zmq_socket_monitor(socket_.handle(), endpoint.c_str(), kMonitorEvents) == 0) break;
    if (zmq_errno() != EADDRINUSE || attempt + 1 >= kAttempts) throw zmq::error_t();
  }
  monitor_ = zmq::socket_t(*context_, zmq::socket_type::pair);
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(endpoint);
}

void ZmqClientTransport::drainMonitor() {
  MonitorEvent event;
  while (monitor_ && readMonitorEvent(monitor_, event)) {
    if (event.id != 0) onEvent(event.id, event.value, event.endpoint);  // may stop the monitor
  }
}

void ZmqClientTransport::onEvent(int event, std::int32_t value, const std::string& endpoint) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    onHandshakeFailed(event, value, endpoint);
  } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
    connected_ = true;
    if (options_.watch == ZmqClientOptions::Watch::kUntilConnected) stopMonitor();
  } else if (event == ZMQ_EVENT_DISCONNECTED) {
    connected_ = false;
  }
}

bool ZmqClientTransport::connected() {
  drainMonitor();
  return connected_ || !monitor_;  // no monitor (any more): cannot tell
}

void ZmqClientTransport::onHandshakeFailed(int event, std::int32_t value,
                                           const std::string& endpoint) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == kZapStatusRefused) {
    // The caller decides what to do (and logs that); this names the key to allowlist.
    if (!refused_)
      spdlog::warn(
          "zmq client: server {} refused this client's CURVE key {} (ZAP status {}): the key "
          "is not on the server's allowlist",
          endpoint, options_.client_keys.public_key, value);
    refused_ = true;
  } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    spdlog::warn("zmq client: server {} could not authenticate this client (ZAP status {})",
                 endpoint, value);
  } else {
    spdlog::warn("zmq client: handshake with {} failed: ZeroMQ protocol error {:#x}", endpoint,
                 static_cast<std::uint32_t>(value));
  }
}

bool ZmqClientTransport::authenticationRefused() {
  drainMonitor();
  return refused_;
}

SendResult ZmqClientTransport::send(BytesPtr message) {
  if (!message) return {SendStatus::kError, "null message"};
  if (message->size() > static_cast<std::uint64_t>(options_.socket.max_message_bytes))
    return {SendStatus::kTooLarge, std::to_string(message->size()) + " bytes"};
  try {
    if (!socket_.send(toFrame(std::move(message)), zmq::send_flags::none))
      return {
          SendStatus::kQueueFull,
          "send queue full for " + std::to_string(options_.socket.send_timeout.count()) + " ms"};
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return {SendStatus::kClosed, e.what()};
    return {SendStatus::kError, e.what()};
  }
  return {};
}

std::optional<BytesPtr> ZmqClientTransport::receiveFrame() {
  zmq::message_t frame;
  if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
  if (!frame.more()) return std::make_shared<ZmqBytes>(std::move(frame));
  drainFrames(socket_, frame);  // not a protocol message: drop it
  return std::nullopt;
}

std::optional<BytesPtr> ZmqClientTransport::recv(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    // Once refused nothing new can arrive, but frames received before still count.
    const bool refused = authenticationRefused();
    // The monitor is polled too, so that a refusal ends the wait at once. Rebuilt on every
    // pass: draining it may have closed it (Watch::kUntilConnected).
    std::array<zmq::pollitem_t, 2> items{
        {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {monitor_.handle(), 0, ZMQ_POLLIN, 0}}};
    const std::size_t count = monitor_ ? 2 : 1;
    pollInput(items.data(), count,
              refused ? std::chrono::milliseconds{0} : remainingUntil(deadline));
    if ((items[0].revents & ZMQ_POLLIN) != 0) {
      if (auto frame = receiveFrame()) return frame;
    }
    if (refused || Clock::now() >= deadline) return std::nullopt;
  }
}

std::unique_ptr<ZmqClientTransport> makeZmqClient(const ZmqClientOptions& options,
                                                  std::shared_ptr<zmq::context_t> context) {
  return std::make_unique<ZmqClientTransport>(options, std::move(context));
}

}  // namespace sfn
