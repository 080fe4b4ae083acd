// ConnectGate: a fleet's clients connect at most N at a time, and each slot comes back once
// its transport is connected, has received something, or is gone.
#include "sfn/simulator/connect_gate.h"

#include "sfn/core/error.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Generous: the waits end as soon as the condition holds.
constexpr auto kWait = 10s;

// A transport whose connection state and inbox the test sets.
struct FakeLink {
  std::atomic<bool> up{false};
  std::atomic<bool> has_message{false};
};

class FakeTransport final : public sfn::ClientTransport {
 public:
  explicit FakeTransport(std::shared_ptr<FakeLink> link) : link_(std::move(link)) {}
  sfn::SendResult send(sfn::BytesPtr) override { return {}; }
  std::optional<sfn::BytesPtr> recv(std::chrono::milliseconds) override {
    if (!link_->has_message.exchange(false)) return std::nullopt;
    return sfn::BytesPtr{};
  }
  bool connected() override { return link_->up.load(); }

 private:
  std::shared_ptr<FakeLink> link_;
};

struct Fixture {
  std::shared_ptr<sfn::ConnectGate> gate = sfn::ConnectGate::make(2);
  std::vector<std::shared_ptr<FakeLink>> links;
  sfn::ClientTransportFactory factory;

  Fixture() {
    for (int i = 0; i < 4; ++i) links.push_back(std::make_shared<FakeLink>());
    auto next = std::make_shared<std::atomic<int>>(0);
    factory = gate->wrap([this, next] {
      return std::make_unique<FakeTransport>(links[static_cast<std::size_t>(next->fetch_add(1))]);
    });
  }
  // The factory on another thread: it returns once the gate lets it through.
  std::future<std::unique_ptr<sfn::ClientTransport>> makeAsync() {
    return std::async(std::launch::async, factory);
  }
};

bool ready(std::future<std::unique_ptr<sfn::ClientTransport>>& f, std::chrono::milliseconds wait) {
  return f.wait_for(wait) == std::future_status::ready;
}

}  // namespace

TEST_CASE("connect gate: a third transport waits until one of two is connected") {
  Fixture fx;
  auto a = fx.factory();
  auto b = fx.factory();
  CHECK(fx.gate->inUse() == 2);
  auto third = fx.makeAsync();
  // Not let through while both slots are held (a short look: it must not be ready).
  CHECK_FALSE(ready(third, 200ms));
  CHECK_FALSE(a->connected());  // asking does not free a slot until it is true
  fx.links[0]->up = true;
  CHECK(a->connected());
  REQUIRE(ready(third, kWait));
  CHECK(fx.gate->inUse() == 2);  // b and the third
  CHECK(a->connected());         // asking again gives nothing back twice
  CHECK(fx.gate->inUse() == 2);
}

TEST_CASE("connect gate: a received message or a destroyed transport gives its slot back") {
  Fixture fx;
  auto a = fx.factory();
  auto b = fx.factory();
  auto third = fx.makeAsync();
  fx.links[1]->has_message = true;
  CHECK(b->recv(0ms).has_value());
  REQUIRE(ready(third, kWait));
  auto fourth = fx.makeAsync();
  CHECK_FALSE(ready(fourth, 200ms));
  a.reset();  // its session ended without a connection
  REQUIRE(ready(fourth, kWait));
  CHECK(fx.gate->inUse() == 2);
}

TEST_CASE("connect gate: stop() lets every waiting factory through, ungated") {
  Fixture fx;
  auto a = fx.factory();
  auto b = fx.factory();
  auto third = fx.makeAsync();
  auto fourth = fx.makeAsync();
  CHECK_FALSE(ready(third, 100ms));
  fx.gate->stop();
  REQUIRE(ready(third, kWait));
  REQUIRE(ready(fourth, kWait));
  CHECK(fx.gate->inUse() == 2);  // the two made after stop() hold no slot
  third.get().reset();
  CHECK(fx.gate->inUse() == 2);
  a.reset();
  CHECK(fx.gate->inUse() == 1);
}

TEST_CASE("connect gate: zero slots is a configuration error") {
  CHECK_THROWS_AS(sfn::ConnectGate::make(0), sfn::ConfigError);
}
