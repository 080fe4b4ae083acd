// ScriptedTransport: a ServerTransport whose clients are test code, shared by the
// Coordinator's tests. recv() on an empty queue advances the virtual clock by the timeout,
// like a fleet with nothing in flight.
#pragma once

#include "sfn/core/bytes.h"
#include "sfn/core/clock.h"
#include "sfn/net/transport.h"
#include "sfn/wire/wire.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace sfn::test {

class ScriptedTransport final : public ServerTransport {
 public:
  explicit ScriptedTransport(VirtualClock& clock) : clock_(clock) {}
  // Sees every message the Coordinator sends, decoded.
  std::function<void(const PeerId&, Message&)> on_send;
  std::deque<Received> inbox;

  SendResult send(const PeerId& peer, BytesPtr message) override {
    DecodeResult d = decode(message);
    REQUIRE(d.ok());
    if (on_send) on_send(peer, d.message());
    return {};
  }
  std::optional<Received> recv(std::chrono::milliseconds timeout) override {
    if (inbox.empty()) {
      clock_.advanceTo(clock_.now() + static_cast<double>(timeout.count()) / 1000.0);
      return std::nullopt;
    }
    Received r = std::move(inbox.front());
    inbox.pop_front();
    return r;
  }
  void push(const PeerId& peer, const Message& m) { inbox.push_back({peer, encode(m)}); }
  void pushRaw(const PeerId& peer, std::vector<std::uint8_t> bytes) {
    inbox.push_back({peer, std::make_shared<VectorBytes>(std::move(bytes))});
  }

 private:
  VirtualClock& clock_;
};

}  // namespace sfn::test
