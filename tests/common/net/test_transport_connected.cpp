// ZmqClientTransport::connected(): it follows the CURVE handshake and the disconnects its
// monitor reports; a fleet's Watch::kUntilConnected closes the monitor at the first
// handshake (two descriptors per client instead of four) and then cannot tell any more.
#include "sfn/net/zmq_transport.h"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Generous: loopback handshakes take milliseconds, but CI machines are shared.
constexpr auto kWait = 10s;

bool waitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

struct Peers {
  sfn::CurveKeyPair server_keys = sfn::generateCurveKeyPair();
  sfn::CurveKeyPair allowed = sfn::generateCurveKeyPair();
  sfn::CurveKeyPair stranger = sfn::generateCurveKeyPair();
  std::unique_ptr<sfn::ZmqServerTransport> server;

  Peers() {
    sfn::ZmqServerOptions o;
    o.server_keys = server_keys;
    o.allowed_client_keys = {allowed.public_key};
    o.socket.linger = 0ms;
    server = sfn::makeZmqServer(o);
  }
  std::unique_ptr<sfn::ZmqClientTransport> client(const sfn::CurveKeyPair& keys,
                                                  sfn::ZmqClientOptions::Watch watch) const {
    sfn::ZmqClientOptions o;
    o.server_endpoint = server->endpoint();
    o.server_public_key = server_keys.public_key;
    o.client_keys = keys;
    o.socket.linger = 0ms;
    o.watch = watch;
    return sfn::makeZmqClient(o);
  }
};

}  // namespace

TEST_CASE("zmq client: connected() is true after the handshake and false after a disconnect") {
  using Watch = sfn::ZmqClientOptions::Watch;
  Peers p;
  auto always = p.client(p.allowed, Watch::kAlways);
  auto until = p.client(p.allowed, Watch::kUntilConnected);
  REQUIRE(waitFor([&] { return always->connected(); }));
  REQUIRE(waitFor([&] { return until->connected(); }));
  p.server.reset();
  // The always-watching client sees the server go; the other no longer watches and, not
  // able to tell, keeps saying connected.
  REQUIRE(waitFor([&] { return !always->connected(); }));
  CHECK(until->connected());
  CHECK_FALSE(until->authenticationRefused());
}

TEST_CASE("zmq client: a refused key is reported with either watch, connected() never true") {
  using Watch = sfn::ZmqClientOptions::Watch;
  Peers p;
  for (const Watch watch : {Watch::kAlways, Watch::kUntilConnected}) {
    auto c = p.client(p.stranger, watch);
    REQUIRE(waitFor([&] { return c->authenticationRefused(); }));
    CHECK_FALSE(c->connected());
  }
}

TEST_CASE("zmq client: an insecure transport cannot tell, so it says connected") {
  sfn::ZmqClientOptions o;
  o.server_endpoint = "tcp://127.0.0.1:9";  // nothing listens there
  o.insecure = true;
  o.socket.linger = 0ms;
  auto c = sfn::makeZmqClient(o);
  CHECK(c->connected());
}
