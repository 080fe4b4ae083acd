#include "sfn/simulator/connect_gate.h"

#include "sfn/core/error.h"

#include <chrono>
#include <utility>

namespace sfn {

namespace {

// One wait of acquire(): long, because release() and stop() wake it, and thousands of
// waiting clients must not wake the machine up every half second.
constexpr std::chrono::milliseconds kWaitSlice{5000};

// A transport that holds one of the gate's slots until it is connected or destroyed.
class GatedTransport final : public ClientTransport {
 public:
  GatedTransport(std::unique_ptr<ClientTransport> inner, std::shared_ptr<ConnectGate> gate)
      : inner_(std::move(inner)), gate_(std::move(gate)) {}
  ~GatedTransport() override { giveBack(); }
  GatedTransport(const GatedTransport&) = delete;
  GatedTransport& operator=(const GatedTransport&) = delete;

  SendResult send(BytesPtr message) override { return inner_->send(std::move(message)); }
  std::optional<BytesPtr> recv(std::chrono::milliseconds timeout) override {
    std::optional<BytesPtr> got = inner_->recv(timeout);
    if (got) giveBack();  // an answer proves the connection, whether or not it was asked
    return got;
  }
  bool authenticationRefused() override { return inner_->authenticationRefused(); }
  bool connected() override {
    const bool up = inner_->connected();
    if (up) giveBack();
    return up;
  }

 private:
  void giveBack() {
    if (!gate_) return;
    gate_->release();
    gate_.reset();
  }

  std::unique_ptr<ClientTransport> inner_;
  std::shared_ptr<ConnectGate> gate_;  // null once the slot is given back
};

}  // namespace

std::shared_ptr<ConnectGate> ConnectGate::make(std::size_t slots) {
  SFN_ENFORCE(slots > 0, ConfigError, "a connect gate needs at least one slot");
  return std::shared_ptr<ConnectGate>(new ConnectGate(slots));
}

ClientTransportFactory ConnectGate::wrap(ClientTransportFactory make) {
  return [gate = shared_from_this(), make = std::move(make)]() -> std::unique_ptr<ClientTransport> {
    if (!gate->acquire()) return make();  // stopping: the runner will not use it
    try {
      return std::make_unique<GatedTransport>(make(), gate);
    } catch (...) {
      gate->release();
      throw;
    }
  };
}

std::size_t ConnectGate::inUse() const {
  std::lock_guard lock(mu_);
  return used_;
}

bool ConnectGate::acquire() {
  std::unique_lock lock(mu_);
  // Bounded waits: every slot is given back within a runner's connect_timeout.
  while (used_ >= slots_ && !stopped_) freed_.wait_for(lock, kWaitSlice);
  if (stopped_) return false;
  ++used_;
  return true;
}

void ConnectGate::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  freed_.notify_all();
}

void ConnectGate::release() {
  {
    std::lock_guard lock(mu_);
    // Called from destructors: an unmatched release is ignored rather than thrown.
    if (used_ > 0) --used_;
  }
  freed_.notify_one();
}

}  // namespace sfn
