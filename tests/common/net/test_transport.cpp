// Transports: the same exchange of raw messages over every backend, then backend-specific
// cases (ZeroMQ CURVE authentication, timeouts, unknown peers; in-process bounds). Links the
// net layer only: messages are plain bytes here, the codec is tested in tests/common/wire.
#include "sfn/net/inproc_transport.h"
#include "sfn/net/transport.h"
#include "sfn/net/zmq_transport.h"

#include "sfn/core/error.h"

// sfn::toString returns a string_view, which doctest would otherwise pick up by ADL and
// fail to concatenate when printing a failed comparison.
#define DOCTEST_CONFIG_DOUBLE_STRINGIFY
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sfn::BytesPtr;
using sfn::PeerId;
using sfn::SendStatus;

namespace {

// Generous: loopback CURVE handshakes take milliseconds, but CI machines are shared.
constexpr auto kWait = 5000ms;

struct TestClient {
  std::unique_ptr<sfn::ClientTransport> transport;
  PeerId expected_peer;  // what the server must see as this client's identity
};

struct InprocBackend {
  sfn::InprocNetwork network;
  std::unique_ptr<sfn::ServerTransport> server_impl = network.server();
  sfn::ServerTransport* server = server_impl.get();
  int next = 0;

  TestClient connect() {
    const std::string name = "sim-client-" + std::to_string(next++);
    return {network.connect(name), name};
  }
};

std::vector<sfn::CurveKeyPair> makeKeys(int n) {
  std::vector<sfn::CurveKeyPair> keys;
  for (int i = 0; i < n; ++i) keys.push_back(sfn::generateCurveKeyPair());
  return keys;
}

std::vector<std::string> publicKeys(const std::vector<sfn::CurveKeyPair>& keys) {
  std::vector<std::string> out;
  for (const auto& k : keys) out.push_back(k.public_key);
  return out;
}

sfn::ZmqServerOptions secureServerOptions(const sfn::CurveKeyPair& server_keys,
                                          const std::vector<std::string>& allowed) {
  sfn::ZmqServerOptions o;
  o.server_keys = server_keys;
  o.allowed_client_keys = allowed;
  o.socket.linger = 100ms;
  return o;
}

sfn::ZmqClientOptions secureClientOptions(const std::string& endpoint,
                                          const sfn::CurveKeyPair& client_keys,
                                          const std::string& server_public_key) {
  sfn::ZmqClientOptions o;
  o.server_endpoint = endpoint;
  o.client_keys = client_keys;
  o.server_public_key = server_public_key;
  o.socket.linger = 100ms;
  return o;
}

// A CURVE server whose allowlist holds one client key pair, `good`.
struct OneKeyServer {
  sfn::CurveKeyPair server_keys = sfn::generateCurveKeyPair();
  sfn::CurveKeyPair good = sfn::generateCurveKeyPair();
  std::unique_ptr<sfn::ZmqServerTransport> server =
      sfn::makeZmqServer(secureServerOptions(server_keys, {good.public_key}));

  // A client holding `keys` that trusts `server_public` (by default this server's key).
  sfn::ZmqClientOptions clientOptions(const sfn::CurveKeyPair& keys,
                                      const std::string& server_public = {}) const {
    return secureClientOptions(server->endpoint(), keys,
                               server_public.empty() ? server_keys.public_key : server_public);
  }
};

struct ZmqBackend {
  sfn::CurveKeyPair server_keys = sfn::generateCurveKeyPair();
  std::vector<sfn::CurveKeyPair> client_keys = makeKeys(6);
  std::unique_ptr<sfn::ZmqServerTransport> server_impl =
      sfn::makeZmqServer(secureServerOptions(server_keys, publicKeys(client_keys)));
  sfn::ServerTransport* server = server_impl.get();
  // One context (one I/O thread) for all clients, as a fleet in one process would do.
  std::shared_ptr<zmq::context_t> client_context = sfn::makeZmqContext();
  std::size_t next = 0;

  TestClient connect() {
    const sfn::CurveKeyPair& keys = client_keys.at(next++);
    return {sfn::makeZmqClient(
                secureClientOptions(server_impl->endpoint(), keys, server_keys.public_key),
                client_context),
            keys.public_key};
  }
};

// A message of raw bytes: the text, then `padding` bytes of a pattern, so large messages
// can be built too.
BytesPtr message(const std::string& text, std::size_t padding = 0) {
  std::vector<std::uint8_t> bytes(text.begin(), text.end());
  for (std::size_t i = 0; i < padding; ++i) bytes.push_back(static_cast<std::uint8_t>(i * 7));
  return std::make_shared<sfn::VectorBytes>(std::move(bytes));
}

// The leading text of a message made by message().
std::string textOf(const BytesPtr& bytes, std::size_t length) {
  REQUIRE(bytes->size() >= length);
  return std::string(reinterpret_cast<const char*>(bytes->data()), length);
}

std::string textOf(const BytesPtr& bytes) { return textOf(bytes, bytes->size()); }

std::string tempName(const char* stem) {
  std::random_device rd;
  return (std::filesystem::temp_directory_path() /
          (std::string(stem) + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd())))
      .string();
}

}  // namespace

TEST_CASE_TEMPLATE("transport: register, welcome, task and update with several clients", Backend,
                   InprocBackend, ZmqBackend) {
  Backend backend;
  constexpr int kClients = 4;
  constexpr std::size_t kTaskBytes = 256 * 1024;  // many TCP segments: arrives whole or not
  std::vector<TestClient> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(backend.connect());
  for (int i = 0; i < kClients; ++i)
    REQUIRE(clients[i].transport->send(message("register " + std::to_string(i))).ok());

  // The server learns who is who from the transport, and answers each peer.
  std::map<PeerId, std::uint64_t> task_of_peer;
  for (int i = 0; i < kClients; ++i) {
    auto got = backend.server->recv(kWait);
    REQUIRE(got.has_value());
    CHECK(textOf(got->message).rfind("register ", 0) == 0);
    REQUIRE(task_of_peer.count(got->peer) == 0);
    const std::uint64_t task_id = 1000 + task_of_peer.size();
    task_of_peer[got->peer] = task_id;
    const std::string id = std::to_string(task_id);
    CHECK(backend.server->send(got->peer, message("welcome " + id)).ok());
    CHECK(backend.server->send(got->peer, message("task " + id, kTaskBytes)).ok());
  }
  for (const auto& c : clients) CHECK(task_of_peer.count(c.expected_peer) == 1);

  // Each client gets its messages in order and whole, then reports.
  const BytesPtr pattern = message("", kTaskBytes);
  for (auto& c : clients) {
    const std::string id = std::to_string(task_of_peer.at(c.expected_peer));
    auto welcome = c.transport->recv(kWait);
    REQUIRE(welcome.has_value());
    CHECK(textOf(*welcome) == "welcome " + id);
    auto task = c.transport->recv(kWait);
    REQUIRE(task.has_value());
    const std::string head = "task " + id;
    REQUIRE((*task)->size() == head.size() + kTaskBytes);
    CHECK(textOf(*task, head.size()) == head);
    CHECK(std::memcmp((*task)->data() + head.size(), pattern->data(), kTaskBytes) == 0);
    // Received buffers are 8-byte aligned, so the codec views them in place, uncopied.
    CHECK(reinterpret_cast<std::uintptr_t>((*task)->data()) % 8 == 0);
    REQUIRE(c.transport->send(message("update " + id)).ok());
  }

  // The server ties each update to the peer the transport names.
  for (int i = 0; i < kClients; ++i) {
    auto got = backend.server->recv(kWait);
    REQUIRE(got.has_value());
    CHECK(textOf(got->message) == "update " + std::to_string(task_of_peer.at(got->peer)));
    CHECK(reinterpret_cast<std::uintptr_t>(got->message->data()) % 8 == 0);
  }
  CHECK_FALSE(backend.server->recv(0ms).has_value());
}

TEST_CASE_TEMPLATE("transport: timeouts and unknown peers are values", Backend, InprocBackend,
                   ZmqBackend) {
  Backend backend;
  auto client = backend.connect();

  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(backend.server->recv(100ms).has_value());
  CHECK(std::chrono::steady_clock::now() - start >= 90ms);
  CHECK_FALSE(client.transport->recv(50ms).has_value());
  CHECK_FALSE(backend.server->recv(0ms).has_value());

  const auto r = backend.server->send("no-such-peer", message("heartbeat 1"));
  CHECK(r.status == SendStatus::kUnknownPeer);
  CHECK_FALSE(r.reason.empty());
}

TEST_CASE("zmq: ephemeral bind reports the real endpoint") {
  const auto server_keys = sfn::generateCurveKeyPair();
  auto server = sfn::makeZmqServer(secureServerOptions(server_keys, {}));
  const std::string& ep = server->endpoint();
  REQUIRE(ep.rfind("tcp://127.0.0.1:", 0) == 0);
  const int port = std::stoi(ep.substr(std::string("tcp://127.0.0.1:").size()));
  CHECK(port > 0);
  CHECK(port < 65536);
  // Two servers in one process: each owns its context and its ZAP handler.
  auto second = sfn::makeZmqServer(secureServerOptions(server_keys, {}));
  CHECK(second->endpoint() != ep);
}

TEST_CASE("zmq: CURVE peers are named by their authenticated public key") {
  OneKeyServer s;
  auto& server = s.server;
  auto client = sfn::makeZmqClient(s.clientOptions(s.good));
  // The client claims to be someone else: irrelevant, identity comes from the handshake.
  REQUIRE(client->send(message("register i-am-admin")).ok());
  auto got = server->recv(kWait);
  REQUIRE(got.has_value());
  CHECK(got->peer == s.good.public_key);
  CHECK(server->refusedHandshakes() == 0);
}

TEST_CASE("zmq: a client key that is not allowlisted is refused") {
  OneKeyServer s;
  auto& server = s.server;
  auto bad_client = sfn::makeZmqClient(s.clientOptions(sfn::generateCurveKeyPair()));
  REQUIRE(bad_client->send(message("heartbeat 666")).ok());  // queued locally
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (server->refusedHandshakes() == 0 && std::chrono::steady_clock::now() < deadline)
    CHECK_FALSE(server->recv(20ms).has_value());
  CHECK(server->refusedHandshakes() >= 1);

  // The allowlisted client still gets through, and only its message is delivered.
  auto good_client = sfn::makeZmqClient(s.clientOptions(s.good));
  REQUIRE(good_client->send(message("heartbeat 1")).ok());
  auto got = server->recv(kWait);
  REQUIRE(got.has_value());
  CHECK(got->peer == s.good.public_key);
  CHECK(textOf(got->message) == "heartbeat 1");
  CHECK_FALSE(server->recv(300ms).has_value());
  CHECK_FALSE(bad_client->recv(0ms).has_value());
}

TEST_CASE("zmq: a client with the wrong server key never gets through") {
  OneKeyServer s;
  auto& server = s.server;
  const auto impostor_server = sfn::generateCurveKeyPair();
  auto client = sfn::makeZmqClient(s.clientOptions(s.good, impostor_server.public_key));
  REQUIRE(client->send(message("heartbeat 1")).ok());
  CHECK_FALSE(server->recv(500ms).has_value());
}

// Polls `client` the way sfn-client does (short recv() calls) until the server refuses it
// or `limit` passes; returns whether it was refused. Anything received fails the test.
bool waitForRefusal(sfn::ClientTransport& client, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!client.authenticationRefused()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    CHECK_FALSE(client.recv(100ms).has_value());
  }
  return true;
}

TEST_CASE("zmq: a client whose key is not allowlisted learns that it was refused") {
  OneKeyServer s;
  auto& server = s.server;
  auto bad_client = sfn::makeZmqClient(s.clientOptions(sfn::generateCurveKeyPair()));
  REQUIRE(bad_client->send(message("heartbeat 666")).ok());  // queued locally
  CHECK_FALSE(server->recv(0ms).has_value());
  REQUIRE(waitForRefusal(*bad_client, 10'000ms));
  CHECK(server->refusedHandshakes() >= 1);
  CHECK_FALSE(server->recv(300ms).has_value());  // its queued message never arrives

  // Refusal is final: recv() no longer waits out its timeout, the flag stays set.
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(bad_client->recv(10'000ms).has_value());
  CHECK(std::chrono::steady_clock::now() - start < 5'000ms);
  CHECK(bad_client->authenticationRefused());
}

TEST_CASE("zmq: an allowlisted client is not reported as refused") {
  OneKeyServer s;
  auto& server = s.server;
  auto client = sfn::makeZmqClient(s.clientOptions(s.good));
  CHECK_FALSE(client->authenticationRefused());
  REQUIRE(client->send(message("register 1")).ok());
  auto got = server->recv(kWait);
  REQUIRE(got.has_value());
  CHECK(got->peer == s.good.public_key);
  REQUIRE(server->send(got->peer, message("welcome 1")).ok());
  auto back = client->recv(kWait);
  REQUIRE(back.has_value());
  CHECK(textOf(*back) == "welcome 1");
  CHECK_FALSE(client->authenticationRefused());
  CHECK(server->refusedHandshakes() == 0);
}

// Documented in zmq_transport.h: the server closes the connection without saying why, the
// same as a plaintext server or one that dies mid-handshake, so this is not a refusal.
TEST_CASE("zmq: a wrong server key is not reported as refused") {
  OneKeyServer s;
  auto& server = s.server;
  const auto impostor_server = sfn::generateCurveKeyPair();
  auto client = sfn::makeZmqClient(s.clientOptions(s.good, impostor_server.public_key));
  REQUIRE(client->send(message("heartbeat 1")).ok());
  // Long enough for a dozen failed handshakes (reconnect_interval 100 ms, then backoff).
  CHECK_FALSE(waitForRefusal(*client, 2'000ms));
  CHECK_FALSE(server->recv(0ms).has_value());
  CHECK(server->refusedHandshakes() == 0);  // the ZAP handler was never even asked
}

// Several hundred clients on one context, as sfn-sim --connect runs them: each brings a
// monitor, so this needs more than libzmq's default 1023 sockets, and each monitor needs an
// endpoint of its own even where a new client reuses a destroyed one's address.
TEST_CASE("zmq: monitors of a fleet sharing one context stay apart") {
  OneKeyServer s;
  auto context = sfn::makeZmqContext();
  constexpr int kIdle = 400;
  std::vector<std::unique_ptr<sfn::ZmqClientTransport>> fleet;
  fleet.reserve(kIdle);
  const auto stranger = sfn::generateCurveKeyPair();
  for (int i = 0; i < kIdle; ++i) {
    // Bad keys but never connecting (nothing listens on port 1), so no handshake traffic.
    auto opts = secureClientOptions("tcp://127.0.0.1:1", stranger, s.server_keys.public_key);
    opts.reconnect_interval = opts.reconnect_interval_max = 60'000ms;
    fleet.push_back(sfn::makeZmqClient(opts, context));
  }
  for (int i = 0; i < 50; ++i) fleet.pop_back();  // frees addresses for the next two
  auto bad_client = sfn::makeZmqClient(s.clientOptions(stranger), context);
  auto good_client = sfn::makeZmqClient(s.clientOptions(s.good), context);
  REQUIRE(good_client->send(message("heartbeat 1")).ok());
  REQUIRE(bad_client->send(message("heartbeat 2")).ok());
  auto got = s.server->recv(kWait);
  REQUIRE(got.has_value());
  CHECK(got->peer == s.good.public_key);
  REQUIRE(waitForRefusal(*bad_client, 10'000ms));
  CHECK_FALSE(good_client->authenticationRefused());
  for (auto& idle : fleet) CHECK_FALSE(idle->authenticationRefused());
}

// ZmqServerTransport always starts its ZAP handler before binding, so a server without one
// is built by hand here: a CURVE ROUTER configured exactly like ours (zap_domain set) in a
// context where nothing serves inproc://zeromq.zap.01.
TEST_CASE("zmq: with no ZAP handler running, CURVE connections fail rather than pass") {
  constexpr int kZapEnforceDomain = 93;  // ZMQ_ZAP_ENFORCE_DOMAIN, a draft-declared option
  const auto server_keys = sfn::generateCurveKeyPair();
  const auto client_keys = sfn::generateCurveKeyPair();

  // Returns whether a message from a correctly keyed client reaches the ROUTER.
  auto messagePasses = [&](int enforce_domain) {
    zmq::context_t context(1);  // no ZAP handler in this context
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, server_keys.secret_key);
    router.set(zmq::sockopt::zap_domain, "sfn");
    REQUIRE(zmq_setsockopt(router.handle(), kZapEnforceDomain, &enforce_domain,
                           sizeof enforce_domain) == 0);
    router.bind("tcp://127.0.0.1:*");
    const std::string endpoint = router.get(zmq::sockopt::last_endpoint);

    auto client =
        sfn::makeZmqClient(secureClientOptions(endpoint, client_keys, server_keys.public_key));
    REQUIRE(client->send(message("heartbeat 5")).ok());  // queued until connected
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    // The client keeps reconnecting (every 100 ms): several handshakes fail in this window.
    zmq::poll(&item, 1, std::chrono::milliseconds(1500));
    return (item.revents & ZMQ_POLLIN) != 0;
  };

  // What sfn-server sets: without a handler to ask, the handshake is refused.
  CHECK_FALSE(messagePasses(1));
  // The control: libzmq's legacy default would let the same client in unauthenticated,
  // which is why zap_enforce_domain must stay on.
  CHECK(messagePasses(0));
}

TEST_CASE("zmq: sends to a disconnected peer fail with a value") {
  OneKeyServer s;
  auto& server = s.server;
  const auto& good = s.good;
  {
    auto client = sfn::makeZmqClient(s.clientOptions(good));
    REQUIRE(client->send(message("heartbeat 1")).ok());
    REQUIRE(server->recv(kWait).has_value());
    CHECK(server->send(good.public_key, message("heartbeat 2")).ok());
    auto echo = client->recv(kWait);
    REQUIRE(echo.has_value());
  }
  // The route goes away once the server notices the closed connection (EHOSTUNREACH).
  SendStatus status = SendStatus::kOk;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (status == SendStatus::kOk && std::chrono::steady_clock::now() < deadline) {
    status = server->send(good.public_key, message("heartbeat 3")).status;
    if (status == SendStatus::kOk) std::this_thread::sleep_for(20ms);
  }
  CHECK(status == SendStatus::kUnknownPeer);
}

TEST_CASE("zmq: outgoing messages above the size limit are refused") {
  OneKeyServer s;
  auto opts = s.clientOptions(s.good);
  opts.socket.max_message_bytes = 64;
  auto client = sfn::makeZmqClient(opts);
  CHECK(client->send(message("big", 400)).status == SendStatus::kTooLarge);
}

TEST_CASE("zmq: plaintext only when explicitly requested") {
  sfn::ZmqServerOptions secure_default;
  CHECK_THROWS_AS(secure_default.validate(), sfn::ConfigError);  // no keys: refuses to start
  CHECK_THROWS_AS(sfn::makeZmqServer(secure_default), sfn::ConfigError);

  sfn::ZmqServerOptions opts;
  opts.insecure = true;
  opts.socket.linger = 100ms;
  auto server = sfn::makeZmqServer(opts);
  sfn::ZmqClientOptions copts;
  copts.insecure = true;
  copts.server_endpoint = server->endpoint();
  copts.socket.linger = 100ms;
  auto client = sfn::makeZmqClient(copts);
  REQUIRE(client->send(message("heartbeat 7")).ok());
  auto got = server->recv(kWait);
  REQUIRE(got.has_value());
  CHECK_FALSE(got->peer.empty());
  CHECK(server->send(got->peer, message("heartbeat 8")).ok());
  auto back = client->recv(kWait);
  REQUIRE(back.has_value());
  CHECK(textOf(*back) == "heartbeat 8");
  CHECK(server->send("zz-not-hex", message("heartbeat 9")).status == SendStatus::kUnknownPeer);
  CHECK_FALSE(client->authenticationRefused());  // no handshake to watch: never refused
}

TEST_CASE("zmq: key generation") {
  const auto keys = sfn::generateCurveKeyPair();
  CHECK(keys.public_key.size() == 40);
  CHECK(keys.secret_key.size() == 40);
  CHECK(sfn::isValidCurveKey(keys.public_key));
  CHECK_FALSE(sfn::isValidCurveKey("too-short"));
  CHECK(keys.public_key != sfn::generateCurveKeyPair().public_key);
}

namespace {
// A fresh key pair written as a secret key file and a public key file in a temporary
// folder, removed with the fixture.
struct KeyFiles {
  KeyFiles() {
    std::filesystem::create_directories(dir);
    sfn::writeKeyPairFile(secret_file, keys);
    sfn::writePublicKeyFile(public_file, keys.public_key);
  }
  ~KeyFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  KeyFiles(const KeyFiles&) = delete;
  KeyFiles& operator=(const KeyFiles&) = delete;

  const sfn::CurveKeyPair keys = sfn::generateCurveKeyPair();
  const std::filesystem::path dir = tempName("sfn-keys");
  const std::filesystem::path secret_file = dir / "client.key";
  const std::filesystem::path public_file = dir / "client.pub";
};
}  // namespace

TEST_CASE("zmq: key files: the secret file is 0600 and both files read back") {
  const KeyFiles f;
  struct stat st {};
  REQUIRE(::stat(f.secret_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  const auto back = sfn::readKeyFile(f.secret_file);
  CHECK(back.public_key == f.keys.public_key);
  CHECK(back.secret_key == f.keys.secret_key);
  const auto pub = sfn::readKeyFile(f.public_file);
  CHECK(pub.public_key == f.keys.public_key);
  CHECK(pub.secret_key.empty());
}

TEST_CASE("zmq: key files: an allowlist of key files, comments and bare keys with '=' and '#'") {
  const KeyFiles f;
  // An allowlist is public key files concatenated, plus comments and bare keys. Z85 has
  // '=' and '#' in its alphabet, so keys containing them must survive the parser.
  const auto other = sfn::generateCurveKeyPair();
  const std::string tricky = "=#000" + std::string(35, '0');
  REQUIRE(sfn::isValidCurveKey(tricky));
  const auto allowlist = f.dir / "allowed";
  {
    std::ofstream out(allowlist);
    std::ifstream in(f.public_file);
    out << in.rdbuf() << "\n# another device\n"
        << other.public_key << "\n"
        << tricky << "\npublic-key = " << tricky << "\n";
  }
  const auto allowed = sfn::readPublicKeys(allowlist);
  REQUIRE(allowed.size() == 4);
  CHECK(allowed[0] == f.keys.public_key);
  CHECK(allowed[1] == other.public_key);
  CHECK(allowed[2] == tricky);
  CHECK(allowed[3] == tricky);
}

TEST_CASE("zmq: key files: readable by others, malformed or missing are refused") {
  const KeyFiles f;
  // A secret key others can read is refused; rewriting tightens the mode again.
  std::filesystem::permissions(f.secret_file, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  CHECK_THROWS_WITH_AS(sfn::readKeyFile(f.secret_file), doctest::Contains("chmod 600"),
                       sfn::ConfigError);
  sfn::writeKeyPairFile(f.secret_file, f.keys);
  CHECK_NOTHROW(sfn::readKeyFile(f.secret_file));

  {
    std::ofstream bad(f.dir / "bad.key");
    bad << "public-key = nonsense\n";
  }
  CHECK_THROWS_WITH_AS(sfn::readKeyFile(f.dir / "bad.key"), doctest::Contains("bad.key\" line 1"),
                       sfn::ConfigError);
  CHECK_THROWS_WITH_AS(sfn::readKeyFile(f.dir / "missing.key"), doctest::Contains("does not exist"),
                       sfn::ConfigError);
}

TEST_CASE("inproc: zero-copy hand-over, bounds and lifecycle") {
  sfn::InprocOptions opts;
  opts.client_queue_capacity = 1;
  opts.send_timeout = 0ms;
  sfn::InprocNetwork network(opts);

  auto orphan = network.connect("early");
  CHECK(orphan->send(message("heartbeat 1")).status == SendStatus::kClosed);
  CHECK_FALSE(orphan->authenticationRefused());  // no authentication to refuse

  auto server = network.server();
  CHECK_THROWS_AS((void)network.server(), sfn::ConfigError);
  CHECK_THROWS_AS((void)network.connect("early"), sfn::ConfigError);
  CHECK_THROWS_AS((void)network.connect(""), sfn::ConfigError);

  SUBCASE("the receiver gets the sender's buffer itself") {
    BytesPtr sent = message("heartbeat 5");
    REQUIRE(orphan->send(sent).ok());
    auto got = server->recv(kWait);
    REQUIRE(got.has_value());
    CHECK(got->peer == "early");
    CHECK(got->message.get() == sent.get());
  }
  SUBCASE("a full client queue is reported") {
    CHECK(server->send("early", message("heartbeat 1")).ok());
    CHECK(server->send("early", message("heartbeat 2")).status == SendStatus::kQueueFull);
    REQUIRE(orphan->recv(0ms).has_value());
    CHECK(server->send("early", message("heartbeat 3")).ok());
  }
  SUBCASE("a disconnected client becomes unknown") {
    orphan.reset();
    CHECK(server->send("early", message("heartbeat 1")).status == SendStatus::kUnknownPeer);
    auto again = network.connect("early");  // the name is free again
    CHECK(server->send("early", message("heartbeat 1")).ok());
  }
  SUBCASE("a closed server refuses further sends") {
    server.reset();
    CHECK(orphan->send(message("heartbeat 1")).status == SendStatus::kClosed);
  }
}

TEST_CASE("inproc: thousands of clients without a thread each") {
  sfn::InprocNetwork network;
  auto server = network.server();
  constexpr int kClients = 2000;
  std::vector<std::unique_ptr<sfn::ClientTransport>> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    // append() rather than "v" + ...: GCC 12 reports a bogus -Wstringop-overflow there.
    std::string name("v");
    name.append(std::to_string(i));
    clients.push_back(network.connect(name));
  }
  // Two sender threads stand in for the simulator's pool.
  std::atomic<int> failed_sends{0};
  auto sendRange = [&](int from, int to) {
    for (int i = from; i < to; ++i)
      if (!clients[i]->send(message("heartbeat " + std::to_string(i))).ok()) ++failed_sends;
  };
  std::thread a(sendRange, 0, kClients / 2);
  std::thread b(sendRange, kClients / 2, kClients);
  a.join();
  b.join();
  CHECK(failed_sends.load() == 0);
  std::map<PeerId, std::uint64_t> seen;
  for (int i = 0; i < kClients; ++i) {
    auto got = server->recv(kWait);
    REQUIRE(got.has_value());
    const std::string text = textOf(got->message);
    REQUIRE(text.rfind("heartbeat ", 0) == 0);
    seen[got->peer] = std::stoull(text.substr(10));
  }
  REQUIRE(seen.size() == kClients);
  CHECK(seen.at("v1234") == 1234);
}
