// bench_fleet_zmq: the bare-libzmq baseline of bench_fleet.py (how many clients a server can
// welcome, how fast, at what memory).
//
// `serve` is what an sfn-server's transport reduces to when every piece of sfn logic is taken
// away: one ROUTER with CURVE and a ZAP handler that admits an allowlist (as sfn does), echoing
// every message. `clients` is the cheapest way to bring N CURVE clients in: N DEALER sockets on
// one context with one I/O thread, ONE thread polling all of them, each sending a 64-byte
// "register" and waiting for its echo. A design with a thread per client is measured against
// this; neither side does any work the other skips (same handshake, same allowlist lookup,
// same listen backlog as sfn's default).
//
// Output of `serve`: its endpoint on the first stdout line. Output of `clients`: one JSON line
// {"clients": N, "welcome_s": seconds from the first connect to the last echo}.
#include "sfn/app/open_file_limit.h"
#include "sfn/app/stop_signal.h"
#include "sfn/core/error.h"
#include "sfn/net/curve_keys.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kMessageBytes = 64;
// Every blocking wait is cut into slices this long so a stop request or a deadline is seen.
constexpr auto kPollSlice = 100ms;
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr const char* kZapDomain = "bench";
// sfn-server's default listen backlog (ZmqServerOptions::listen_backlog): with libzmq's 100,
// a burst of connects would be throttled by SYN retries and the baseline would not be the
// limit.
constexpr int kListenBacklog = 4096;
// Beyond the client sockets: the context's reaper and spare room (monitor, ZAP).
constexpr int kSpareSockets = 16;
// Open files per DEALER socket: its TCP connection and its mailbox.
constexpr std::uint64_t kFilesPerClient = 2;
constexpr std::uint64_t kSpareFiles = 64;

// Lets a context hold `sockets` sockets; only possible before its first socket exists.
void allowSockets(zmq::context_t& context, int sockets, const char* flag) {
  const int limit = zmq_ctx_get(context.handle(), ZMQ_SOCKET_LIMIT);
  SFN_ENFORCE(limit <= 0 || sockets <= limit, sfn::ConfigError, flag, " asks for ", sockets,
              " sockets but this libzmq allows at most ", limit, " per context");
  if (zmq_ctx_set(context.handle(), ZMQ_MAX_SOCKETS, sockets) != 0) throw zmq::error_t();
}

// zmq::poll that takes a signal (EINTR) as "nothing ready": the caller's loop then sees the
// stop request.
int pollSlice(zmq::pollitem_t* items, std::size_t count) {
  const int n = zmq_poll(items, static_cast<int>(count), static_cast<long>(kPollSlice.count()));
  if (n < 0 && zmq_errno() != EINTR) throw zmq::error_t();
  return n < 0 ? 0 : n;
}

void setBinaryKey(zmq::socket_t& socket, int option, const sfn::CurveKey& key) {
  if (zmq_setsockopt(socket.handle(), option, key.data(), key.size()) != 0) throw zmq::error_t();
}

// Answers ZAP requests (RFC 27): admits CURVE clients whose key is in the allowlist. The REP
// socket is bound in the constructor, before the ROUTER exists, so no handshake can arrive
// unanswered; from then on only the handler thread touches it.
class ZapResponder {
 public:
  ZapResponder(zmq::context_t& context, std::set<sfn::CurveKey> allowed)
      : socket_(context, zmq::socket_type::rep), allowed_(std::move(allowed)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(kZapEndpoint);
    thread_ = std::thread([this] { run(); });
  }
  ~ZapResponder() {
    stop_.store(true);
    thread_.join();
  }
  ZapResponder(const ZapResponder&) = delete;
  ZapResponder& operator=(const ZapResponder&) = delete;

  // Carries a failure of the handler thread to the serving thread.
  void rethrowIfFailed() {
    std::lock_guard lock(error_mu_);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run() {
    // Stop signals are for the serving thread: a blocking recv here must not see EINTR.
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, nullptr);
    try {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      while (!stop_.load()) {
        if (pollSlice(&item, 1) > 0) answer();
      }
    } catch (...) {
      std::lock_guard lock(error_mu_);
      error_ = std::current_exception();
    }
    socket_.close();
  }

  // Frames: version, request id, domain, address, routing id, mechanism, credentials.
  void answer() {
    std::vector<zmq::message_t> frames;
    for (bool more = true; more;) {
      zmq::message_t frame;
      if (!socket_.recv(frame, zmq::recv_flags::none)) break;
      more = frame.more();
      frames.push_back(std::move(frame));
    }
    bool ok = frames.size() >= 7 && frames[0].to_string_view() == "1.0" &&
              frames[5].to_string_view() == "CURVE" && frames[6].size() == sizeof(sfn::CurveKey);
    sfn::CurveKey key{};
    if (ok) {
      std::memcpy(key.data(), frames[6].data(), key.size());
      ok = allowed_.count(key) != 0;
    }
    const std::string request_id = frames.size() > 1 ? frames[1].to_string() : std::string();
    const std::string user_id = ok ? sfn::encodeCurveKey(key) : std::string();
    socket_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    socket_.send(ok ? zmq::str_buffer("200") : zmq::str_buffer("400"), zmq::send_flags::sndmore);
    socket_.send(ok ? zmq::str_buffer("OK") : zmq::str_buffer("refused"), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
    socket_.send(zmq::message_t(), zmq::send_flags::none);
  }

  zmq::socket_t socket_;
  const std::set<sfn::CurveKey> allowed_;
  std::atomic<bool> stop_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once every member above is initialized
};

// --- serve ----------------------------------------------------------------------------

struct ServeOptions {
  std::string key_file;
  std::string allow_file;
  int io_threads = 1;
};

std::set<sfn::CurveKey> readAllowlist(const std::string& path) {
  std::set<sfn::CurveKey> keys;
  for (const auto& k : sfn::readPublicKeys(path)) keys.insert(sfn::requireCurveKey(k, "--allow"));
  SFN_ENFORCE(!keys.empty(), sfn::ConfigError, "--allow ", path, " holds no key");
  return keys;
}

// Sends one queued message back to its sender; false if none was queued. A ROUTER never
// blocks on send (a message to a peer that is gone or full is dropped, as a client's retry
// would cover).
bool echoOne(zmq::socket_t& router) {
  std::vector<zmq::message_t> frames;
  for (bool more = true; more;) {
    zmq::message_t frame;
    if (!router.recv(frame, zmq::recv_flags::dontwait)) return false;
    more = frame.more();
    frames.push_back(std::move(frame));
  }
  for (std::size_t i = 0; i < frames.size(); ++i)
    (void)router.send(frames[i],
                      i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  return true;
}

int serve(const ServeOptions& o) {
  const sfn::StopSignal stop;
  sfn::raiseOpenFileLimit();
  const sfn::CurveKeyPair keys = sfn::readKeyFile(o.key_file);
  SFN_ENFORCE(!keys.secret_key.empty(), sfn::ConfigError, "--key ", o.key_file,
              " holds no secret key (expected server.key from sfn-server keygen)");
  zmq::context_t context(o.io_threads);
  allowSockets(context, zmq_ctx_get(context.handle(), ZMQ_SOCKET_LIMIT), "serve");
  ZapResponder zap(context, readAllowlist(o.allow_file));
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::backlog, kListenBacklog);
  router.set(zmq::sockopt::curve_server, 1);
  setBinaryKey(router, ZMQ_CURVE_SECRETKEY, sfn::requireCurveKey(keys.secret_key, "--key"));
  router.set(zmq::sockopt::zap_domain, kZapDomain);
  router.bind("tcp://127.0.0.1:*");
  std::cout << router.get(zmq::sockopt::last_endpoint) << std::endl;
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop.requested()) {
    zap.rethrowIfFailed();
    if (pollSlice(&item, 1) > 0)
      while (echoOne(router)) {
      }
  }
  return 0;
}

// --- clients --------------------------------------------------------------------------

struct ClientsOptions {
  std::string connect;
  std::string server_key_file;
  std::string keys_dir;
  int shard = 0;
  int shards = 1;
  int clients = 0;
  double timeout_s = 120.0;
};

std::filesystem::path clientKeyPath(const std::string& dir, std::size_t index) {
  char name[40];
  std::snprintf(name, sizeof name, "client-%06zu.key", index);
  return std::filesystem::path(dir) / name;
}

// One DEALER per client, options set but not yet connected (creating thousands of sockets is
// set-up, not welcome time).
std::vector<zmq::socket_t> makeClientSockets(zmq::context_t& context, const ClientsOptions& o) {
  const sfn::CurveKeyPair server = sfn::readKeyFile(o.server_key_file);
  const sfn::CurveKey server_key = sfn::requireCurveKey(server.public_key, "--server-key");
  std::vector<zmq::socket_t> sockets;
  sockets.reserve(static_cast<std::size_t>(o.clients));
  const auto first = static_cast<std::size_t>(o.shard) * static_cast<std::size_t>(o.clients);
  for (std::size_t i = first; i < first + static_cast<std::size_t>(o.clients); ++i) {
    const auto path = clientKeyPath(o.keys_dir, i);
    const sfn::CurveKeyPair keys = sfn::readKeyFile(path);
    SFN_ENFORCE(!keys.secret_key.empty(), sfn::ConfigError, "--keys-dir: ", path.string(),
                " holds no secret key (expected a key pair written by sfn-sim keygen)");
    zmq::socket_t& s = sockets.emplace_back(context, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    setBinaryKey(s, ZMQ_CURVE_SERVERKEY, server_key);
    setBinaryKey(s, ZMQ_CURVE_PUBLICKEY, sfn::requireCurveKey(keys.public_key, path.string()));
    setBinaryKey(s, ZMQ_CURVE_SECRETKEY, sfn::requireCurveKey(keys.secret_key, path.string()));
  }
  return sockets;
}

// Receives what is ready on the polled sockets; drops the ones whose echo arrived from
// `items`. Returns how many echoes arrived.
std::size_t collectEchoes(std::vector<zmq::pollitem_t>& items) {
  std::size_t done = 0;
  for (std::size_t i = 0; i < items.size();) {
    zmq::socket_ref socket(zmq::from_handle, items[i].socket);
    zmq::message_t reply;
    if ((items[i].revents & ZMQ_POLLIN) == 0 || !socket.recv(reply, zmq::recv_flags::dontwait)) {
      ++i;
      continue;
    }
    SFN_ENFORCE(reply.size() == kMessageBytes, sfn::ProtocolError, "echo of ", reply.size(),
                " bytes, expected ", kMessageBytes);
    items[i] = items.back();
    items.pop_back();
    ++done;
  }
  return done;
}

int runClients(const ClientsOptions& o) {
  SFN_ENFORCE(o.shard < o.shards, sfn::ConfigError, "--shard ", o.shard, " must be below --shards ",
              o.shards);
  const std::uint64_t files = sfn::raiseOpenFileLimit();
  const std::uint64_t needed =
      kFilesPerClient * static_cast<std::uint64_t>(o.clients) + kSpareFiles;
  SFN_ENFORCE(files >= needed, sfn::ConfigError, "--clients ", o.clients, " needs about ", needed,
              " open files but the limit is ", files,
              "; raise it (ulimit -n) or use more --shards");
  zmq::context_t context(1);
  allowSockets(context, o.clients + kSpareSockets, "--clients");
  std::vector<zmq::socket_t> sockets = makeClientSockets(context, o);
  std::string message(kMessageBytes, '\0');
  message.replace(0, 8, "register");
  std::vector<zmq::pollitem_t> pending;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(o.timeout_s);
  for (auto& s : sockets) {
    s.connect(o.connect);
    // The pipe exists from connect() on (ZMQ_IMMEDIATE off): the message waits for the
    // handshake instead of failing.
    SFN_ENFORCE(s.send(zmq::buffer(message), zmq::send_flags::dontwait).has_value(), sfn::Error,
                "could not queue a register message to ", o.connect);
    pending.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
  }
  while (!pending.empty() && Clock::now() < deadline) {
    if (pollSlice(pending.data(), pending.size()) > 0) collectEchoes(pending);
  }
  if (!pending.empty()) {
    std::cerr << "bench_fleet_zmq clients: timeout: " << pending.size() << " of " << o.clients
              << " clients (shard " << o.shard << ") got no echo within --timeout-s " << o.timeout_s
              << " s\n";
    return 1;
  }
  const double welcome_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << nlohmann::json{{"clients", o.clients}, {"welcome_s", welcome_s}}.dump() << std::endl;
  return 0;
}

void addServe(CLI::App& app, ServeOptions& o) {
  CLI::App* cmd = app.add_subcommand("serve", "ROUTER + CURVE + ZAP allowlist, echoing");
  cmd->add_option("--key", o.key_file, "server key pair file (sfn-server keygen)")->required();
  cmd->add_option("--allow", o.allow_file, "allowlist of client public keys")->required();
  cmd->add_option("--io-threads", o.io_threads, "libzmq I/O threads")->check(CLI::PositiveNumber);
}

void addClients(CLI::App& app, ClientsOptions& o) {
  CLI::App* cmd = app.add_subcommand("clients", "N DEALERs on one thread: register, await echo");
  cmd->add_option("--connect", o.connect, "server endpoint (first line of serve)")->required();
  cmd->add_option("--server-key", o.server_key_file, "server public key file")->required();
  cmd->add_option("--keys-dir", o.keys_dir, "folder of client-%06d.key (sfn-sim keygen)")
      ->required();
  cmd->add_option("--shard", o.shard, "index of this process")->check(CLI::NonNegativeNumber);
  cmd->add_option("--shards", o.shards, "processes the fleet is split across")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--clients", o.clients, "clients of this process")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--timeout-s", o.timeout_s, "give up after this many seconds")
      ->check(CLI::PositiveNumber);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_fleet_zmq: bare-libzmq baseline of bench_fleet.py"};
  app.require_subcommand(1);
  ServeOptions serve_options;
  ClientsOptions clients_options;
  addServe(app, serve_options);
  addClients(app, clients_options);
  CLI11_PARSE(app, argc, argv);
  try {
    if (app.got_subcommand("serve")) return serve(serve_options);
    return runClients(clients_options);
  } catch (const sfn::ConfigError& e) {
    std::cerr << "bench_fleet_zmq: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_fleet_zmq: " << e.what() << '\n';
    return 1;
  }
}
