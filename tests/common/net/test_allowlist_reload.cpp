// ZmqServerTransport::setAllowedKeys (issue 11: the allowlist reloads on SIGHUP): removed
// keys are refused at the handshake, and what their open connections still send is dropped
// and counted; a bad list changes nothing.
#include "sfn/net/zmq_transport.h"

#include "sfn/core/error.h"

#define DOCTEST_CONFIG_DOUBLE_STRINGIFY
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr auto kWait = 5000ms;

sfn::BytesPtr bytesOf(const std::string& text) {
  return std::make_shared<sfn::VectorBytes>(std::vector<std::uint8_t>(text.begin(), text.end()));
}

std::string textOf(const sfn::BytesPtr& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

struct ReloadFixture {
  sfn::CurveKeyPair server_keys = sfn::generateCurveKeyPair();
  sfn::CurveKeyPair a = sfn::generateCurveKeyPair();
  sfn::CurveKeyPair b = sfn::generateCurveKeyPair();
  std::unique_ptr<sfn::ZmqServerTransport> server = makeServer();

  std::unique_ptr<sfn::ZmqServerTransport> makeServer() const {
    sfn::ZmqServerOptions o;
    o.server_keys = server_keys;
    o.allowed_client_keys = {a.public_key, b.public_key};
    o.socket.linger = 100ms;
    return sfn::makeZmqServer(o);
  }
  std::unique_ptr<sfn::ZmqClientTransport> connect(const sfn::CurveKeyPair& keys) const {
    sfn::ZmqClientOptions o;
    o.server_endpoint = server->endpoint();
    o.client_keys = keys;
    o.server_public_key = server_keys.public_key;
    o.socket.linger = 100ms;
    return sfn::makeZmqClient(o);
  }
  // Sends `text` from `client` and returns the peer the server saw it from, or "" if nothing
  // arrived within `wait`.
  std::string roundTrip(sfn::ClientTransport& client, const std::string& text,
                        std::chrono::milliseconds wait = kWait) {
    REQUIRE(client.send(bytesOf(text)).ok());
    auto got = server->recv(wait);
    if (!got) return {};
    CHECK(textOf(got->message) == text);
    return got->peer;
  }
};

bool refused(sfn::ClientTransport& client, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!client.authenticationRefused()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    CHECK_FALSE(client.recv(100ms).has_value());
  }
  return true;
}

}  // namespace

TEST_CASE("zmq reload: a removed key's connection is closed in effect and its reconnects refused") {
  ReloadFixture f;
  auto ca = f.connect(f.a);
  auto cb = f.connect(f.b);
  REQUIRE(f.roundTrip(*ca, "a: hello") == f.a.public_key);
  REQUIRE(f.roundTrip(*cb, "b: hello") == f.b.public_key);

  const sfn::AllowlistChange change = f.server->setAllowedKeys({f.b.public_key});
  CHECK(change.added.empty());
  REQUIRE(change.removed.size() == 1);
  CHECK(change.removed[0] == f.a.public_key);

  // The authenticated connection of `a` stays open, but nothing it sends gets through.
  CHECK(f.roundTrip(*ca, "a: after removal", 500ms).empty());
  CHECK(f.server->revokedMessages() == 1);
  CHECK(f.roundTrip(*cb, "b: still here") == f.b.public_key);
  // The server can still say why (its Bye) on that connection.
  REQUIRE(f.server->send(f.a.public_key, bytesOf("bye: key revoked")).ok());
  auto bye = ca->recv(kWait);
  REQUIRE(bye.has_value());
  CHECK(textOf(*bye) == "bye: key revoked");

  // A new connection with the removed key is refused by ZAP.
  auto again = f.connect(f.a);
  REQUIRE(again->send(bytesOf("a: new connection")).ok());
  CHECK(refused(*again, 10'000ms));
  CHECK(f.server->refusedHandshakes() >= 1);

  // Allowed again: new connections get through, and so does the old one.
  const sfn::AllowlistChange back = f.server->setAllowedKeys({f.a.public_key, f.b.public_key});
  REQUIRE(back.added.size() == 1);
  CHECK(back.added[0] == f.a.public_key);
  CHECK(back.removed.empty());
  auto fresh = f.connect(f.a);
  CHECK(f.roundTrip(*fresh, "a: back") == f.a.public_key);
  CHECK(f.roundTrip(*ca, "a: old connection") == f.a.public_key);
  CHECK(f.server->revokedMessages() == 1);
}

TEST_CASE("zmq reload: a list with a malformed key changes nothing") {
  ReloadFixture f;
  auto ca = f.connect(f.a);
  REQUIRE(f.roundTrip(*ca, "a: hello") == f.a.public_key);
  CHECK_THROWS_AS(f.server->setAllowedKeys({f.b.public_key, "not-a-key"}), sfn::ConfigError);
  CHECK(f.roundTrip(*ca, "a: still allowed") == f.a.public_key);
  auto fresh = f.connect(f.a);
  CHECK(f.roundTrip(*fresh, "a: new connection") == f.a.public_key);
  CHECK(f.server->revokedMessages() == 0);
}

TEST_CASE("zmq reload: a plaintext server has no allowlist to replace") {
  sfn::ZmqServerOptions o;
  o.insecure = true;
  auto server = sfn::makeZmqServer(o);
  CHECK_THROWS_AS(server->setAllowedKeys({}), sfn::ConfigError);
}
